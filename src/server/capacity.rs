//! How many connections this computer lets one server process hold.
//!
//! Each connection has a reader thread, and a writer thread while its
//! client falls behind (see [`crate::server::outbox`]): two threads at
//! worst, which is what is counted here, since every client can fall
//! behind at once (a stalled network). On Linux every
//! thread costs four memory mappings (its stack and guard page, and the
//! signal stack Rust gives each thread, with its guard page), and a process
//! may have only `vm.max_map_count` mappings (65,530 by default), about
//! 8,000 connections' worth. Past that, starting a thread fails inside
//! Rust's runtime, which aborts the whole process. So the server never
//! admits more connections than the system can give threads to: the rest
//! are refused as "server full", and the server goes on.
//!
//! `sysctl vm.max_map_count=262144` (and `kernel.pid_max`, which caps
//! threads machine-wide) raise the limit; see the README.
//!
//! Within that, [`Admission`] shares the connections out fairly, so that one
//! person on the LAN cannot take them all: at most `max_per_address` open
//! connections from one address, and at most `max_handshaking` still in
//! their handshake. Connections stuck in their handshake must never lock
//! out a newcomer from another address, so when that cap is reached a
//! newcomer takes the slot of the oldest stuck handshake (one older than
//! [`HANDSHAKE_GRACE`]) from the address holding the most of them. A
//! newcomer is refused only when its own address holds as many as any, or
//! when every handshake is younger than the grace: then they are a burst of
//! people connecting, not stuck, and the first come are served first.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A handshake younger than this is taken to be under way, not stuck, and
/// keeps its slot: a client on a LAN answers the INFO request within a few
/// milliseconds.
pub const HANDSHAKE_GRACE: Duration = Duration::from_secs(1);

/// Mappings one connection's two threads take, at worst.
const MAPS_PER_CONNECTION: u64 = 8;
/// Mappings left for everything else: libraries, the heap, the window.
const RESERVED_MAPS: u64 = 2_000;
/// Threads one connection takes, at worst.
const THREADS_PER_CONNECTION: u64 = 2;
/// Threads left for everything else, on a machine shared with others.
const RESERVED_THREADS: u64 = 1_000;

/// The most connections the system lets this process serve, where it says.
pub fn system_limit() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        let threads = match (
            read("/proc/sys/kernel/threads-max"),
            read("/proc/sys/kernel/pid_max"),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        limit_from(read("/proc/sys/vm/max_map_count"), threads)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The connection limit that follows from the mapping and thread limits.
pub fn limit_from(max_map_count: Option<u64>, max_threads: Option<u64>) -> Option<usize> {
    let by_maps = max_map_count.map(|m| m.saturating_sub(RESERVED_MAPS) / MAPS_PER_CONNECTION);
    let by_threads =
        max_threads.map(|t| t.saturating_sub(RESERVED_THREADS) / THREADS_PER_CONNECTION);
    let limit = match (by_maps, by_threads) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(usize::try_from(limit).unwrap_or(usize::MAX).max(1))
}

/// Why [`Admission`] turned a connection away, in words for the person
/// connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turned {
    /// The address already has `limit` connections open.
    PerAddress { limit: usize },
    /// `limit` connections are in their handshake, as many from this address
    /// as from any other.
    Handshakes { limit: usize },
}

impl fmt::Display for Turned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Turned::PerAddress { limit } => write!(
                f,
                "Too many connections from your address: the server allows {limit} at once. \
                 Close some and try again."
            ),
            Turned::Handshakes { limit } => write!(
                f,
                "Too many connections are starting at once ({limit}). Try again in a few \
                 seconds."
            ),
        }
    }
}

/// Counts open connections per address and those still in their
/// handshake, and decides who may connect. `H` is what closes a connection
/// that loses its handshake slot (the server's outbox); it is handed back to
/// the caller, which closes it outside the lock.
pub struct Admission<H> {
    /// 0: no limit per address.
    max_per_address: usize,
    max_handshaking: usize,
    /// Handshakes younger than this are never displaced.
    grace: Duration,
    state: Mutex<Tally<H>>,
}

struct Tally<H> {
    next: u64,
    open: HashMap<IpAddr, usize>,
    /// Connections in their handshake, oldest first.
    handshaking: Vec<Pending<H>>,
}

struct Pending<H> {
    key: u64,
    ip: IpAddr,
    since: Instant,
    handle: H,
}

/// One admitted connection's place in the counts, given back when dropped
/// (when its thread ends, whatever ends it).
pub struct Ticket<H> {
    admission: Arc<Admission<H>>,
    key: u64,
    ip: IpAddr,
}

impl<H> Admission<H> {
    /// `max_per_address` 0 means no limit per address; `max_handshaking` is
    /// at least 1.
    pub fn new(max_per_address: usize, max_handshaking: usize) -> Self {
        Admission {
            max_per_address,
            max_handshaking: max_handshaking.max(1),
            grace: HANDSHAKE_GRACE,
            state: Mutex::new(Tally {
                next: 0,
                open: HashMap::new(),
                handshaking: Vec::new(),
            }),
        }
    }

    /// Lets handshakes younger than `grace` (instead of
    /// [`HANDSHAKE_GRACE`]) keep their slots.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The counts are changed whole under the lock, so they stay consistent
    /// even after a panic elsewhere.
    fn lock(&self) -> MutexGuard<'_, Tally<H>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many connections from `ip` are open (admitted and not ended).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.lock().open.get(&canonical(ip)).copied().unwrap_or(0)
    }

    /// How many admitted connections have not finished their handshake.
    pub fn handshaking(&self) -> usize {
        self.lock().handshaking.len()
    }

    /// Admits a connection from `ip`, or says why not. With the ticket may
    /// come the handle of a connection that gave up its handshake slot for
    /// this one: the caller closes it.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        handle: H,
    ) -> Result<(Ticket<H>, Option<H>), Turned> {
        let ip = canonical(ip);
        let mut tally = self.lock();
        let open = tally.open.get(&ip).copied().unwrap_or(0);
        if self.max_per_address > 0 && open >= self.max_per_address {
            return Err(Turned::PerAddress {
                limit: self.max_per_address,
            });
        }
        let mut evicted = None;
        if tally.handshaking.len() >= self.max_handshaking {
            let at = tally
                .slot_to_free(ip, self.grace)
                .ok_or(Turned::Handshakes {
                    limit: self.max_handshaking,
                })?;
            evicted = Some(tally.handshaking.remove(at).handle);
        }
        let key = tally.next;
        tally.next += 1;
        *tally.open.entry(ip).or_insert(0) += 1;
        tally.handshaking.push(Pending {
            key,
            ip,
            since: Instant::now(),
            handle,
        });
        let ticket = Ticket {
            admission: self.clone(),
            key,
            ip,
        };
        Ok((ticket, evicted))
    }
}

impl<H> Tally<H> {
    /// The handshake to displace for a newcomer from `ip`: among those
    /// older than `grace` whose address holds more than `ip` does, the
    /// oldest of an address holding the most.
    fn slot_to_free(&self, ip: IpAddr, grace: Duration) -> Option<usize> {
        let mut counts: HashMap<IpAddr, usize> = HashMap::new();
        for p in &self.handshaking {
            *counts.entry(p.ip).or_insert(0) += 1;
        }
        let mine = counts.get(&ip).copied().unwrap_or(0);
        let mut best: Option<(usize, usize)> = None;
        for (at, p) in self.handshaking.iter().enumerate() {
            let count = counts[&p.ip];
            let heavier = best.is_none_or(|(_, most)| count > most);
            if count > mine && heavier && p.since.elapsed() >= grace {
                best = Some((at, count));
            }
        }
        best.map(|(at, _)| at)
    }

    fn forget_handshake(&mut self, key: u64) {
        self.handshaking.retain(|p| p.key != key);
    }
}

impl<H> Ticket<H> {
    /// The connection has joined: it no longer holds a handshake slot.
    pub fn handshake_done(&self) {
        self.admission.lock().forget_handshake(self.key);
    }
}

impl<H> Drop for Ticket<H> {
    fn drop(&mut self) {
        let mut tally = self.admission.lock();
        tally.forget_handshake(self.key);
        if let Some(n) = tally.open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                tally.open.remove(&self.ip);
            }
        }
    }
}

/// An IPv4 client reaching a server bound to `::` shows as `::ffff:a.b.c.d`:
/// it is the same address as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_gets_its_limit_and_no_more_until_one_closes() {
        let admission = Arc::new(Admission::new(2, 100));
        let a = admission.admit(ip("10.0.0.1"), ()).unwrap().0;
        let _b = admission.admit(ip("10.0.0.1"), ()).unwrap();
        assert_eq!(
            admission.admit(ip("10.0.0.1"), ()).err(),
            Some(Turned::PerAddress { limit: 2 })
        );
        assert!(
            admission.admit(ip("10.0.0.2"), ()).is_ok(),
            "another address"
        );
        drop(a);
        assert!(admission.admit(ip("10.0.0.1"), ()).is_ok());
    }

    #[test]
    fn zero_means_no_limit_per_address() {
        let admission = Arc::new(Admission::new(0, 1000));
        let tickets: Vec<_> = (0..500)
            .map(|_| admission.admit(ip("127.0.0.1"), ()).unwrap())
            .collect();
        assert_eq!(admission.open_from(ip("127.0.0.1")), tickets.len());
    }

    #[test]
    fn a_newcomer_takes_the_oldest_handshake_of_the_busiest_address() {
        let admission = Arc::new(Admission::new(0, 3).with_grace(Duration::ZERO));
        let _t: Vec<_> = ["a", "b", "c"]
            .map(|h| admission.admit(ip("10.0.0.1"), h).unwrap().0)
            .into();
        let (_d, evicted) = admission.admit(ip("10.0.0.2"), "d").unwrap();
        assert_eq!(evicted, Some("a"));
        let (_e, evicted) = admission.admit(ip("10.0.0.3"), "e").unwrap();
        assert_eq!(evicted, Some("b"));
        // Now 10.0.0.1 holds one, as do the others: a fourth address still
        // holds none, so it takes the oldest of them.
        let (_f, evicted) = admission.admit(ip("10.0.0.4"), "f").unwrap();
        assert_eq!(evicted, Some("c"));
        // The same address as the busiest is refused rather than evict.
        assert_eq!(
            admission.admit(ip("10.0.0.2"), "g").err(),
            Some(Turned::Handshakes { limit: 3 })
        );
    }

    #[test]
    fn handshakes_within_their_grace_are_never_displaced() {
        let admission = Arc::new(Admission::new(0, 2).with_grace(Duration::from_secs(60)));
        let _a = admission.admit(ip("10.0.0.1"), "a").unwrap();
        let _b = admission.admit(ip("10.0.0.1"), "b").unwrap();
        assert_eq!(
            admission.admit(ip("10.0.0.2"), "c").err(),
            Some(Turned::Handshakes { limit: 2 })
        );
    }

    #[test]
    fn a_joined_connection_frees_its_handshake_slot_but_still_counts_for_its_address() {
        let admission = Arc::new(Admission::new(5, 1));
        let (t, _) = admission.admit(ip("10.0.0.1"), ()).unwrap();
        t.handshake_done();
        assert_eq!(admission.handshaking(), 0);
        assert_eq!(admission.open_from(ip("10.0.0.1")), 1);
        assert_eq!(admission.admit(ip("10.0.0.1"), ()).unwrap().1, None);
    }

    #[test]
    fn an_ipv4_client_on_a_dual_stack_server_counts_as_its_ipv4_address() {
        let admission = Arc::new(Admission::new(1, 10));
        let _t = admission.admit(ip("::ffff:10.0.0.1"), ()).unwrap();
        assert!(admission.admit(ip("10.0.0.1"), ()).is_err());
    }

    #[test]
    fn linux_defaults_allow_about_eight_thousand_connections() {
        assert_eq!(limit_from(Some(65_530), Some(32_768)), Some(7_941));
    }

    #[test]
    fn the_tighter_of_mappings_and_threads_wins() {
        assert_eq!(limit_from(Some(1_000_000), Some(9_000)), Some(4_000));
        assert_eq!(limit_from(Some(262_144), None), Some(32_518));
        assert_eq!(limit_from(None, None), None);
        assert_eq!(limit_from(Some(10), Some(10)), Some(1), "never zero");
    }
}
