//! The per-address limit on password guesses: after 5 tries from one address
//! within a minute, further tries from it wait until the oldest of those 5 is
//! a minute old. Whoever guesses gets at most 5 verdicts a minute from one
//! address; a person who mistypes is never refused, only made to wait.
//!
//! A try is counted when it asks how long to wait ([`Guesses::wait`]), not
//! when its verdict comes: counting failures only afterwards would let 16
//! connections opened at once from one address all see "under the limit"
//! and all get their verdict at once. Counted on arrival, simultaneous tries
//! queue one behind another, and a try whose connection closes while it
//! waits still counts. A right password takes its own try back
//! ([`Guesses::succeeded`]), so someone who knows it is never held up by
//! their own earlier successes.
//!
//! The caller keeps one `Guesses` behind a mutex, holds it only for these
//! calls (never while waiting) and sleeps the returned time before checking
//! the password, so the verdict (and the cost of the hash) comes only then.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Tries allowed from one address within [`WINDOW`] without waiting.
pub const FREE_TRIES: usize = 5;

/// The span over which tries are counted.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The most addresses remembered at once. Memory stays bounded however many
/// addresses try (an IPv6 guesser has more than anyone can count): past it,
/// the address whose last try is oldest is forgotten first. Addresses whose
/// last try is more than a minute old are forgotten anyway.
pub const MAX_ADDRESSES: usize = 4_096;

/// The most tries remembered per address. Only the 5th newest decides a
/// wait, but a right password takes back the newest ([`Guesses::succeeded`]),
/// so a few more are kept; with tries made faster than they are answered,
/// the waits reach at most some 6 minutes ahead.
const MAX_TRIES_KEPT: usize = 32;

/// Recent password tries, per address.
#[derive(Debug, Default)]
pub struct Guesses {
    /// Address -> the verdict times of its tries in the last minute, oldest
    /// first (a waiting try's time is in the future). The next try waits for
    /// the 5th newest to be a minute old.
    tries: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Guesses {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a try from `ip` arriving at `now`, and says how long it must
    /// wait before its verdict is given: zero under the limit, else until
    /// the oldest of the address's last 5 tries is a minute old.
    pub fn wait(&mut self, ip: IpAddr, now: Instant) -> Duration {
        let ip = ip.to_canonical();
        if !self.tries.contains_key(&ip) {
            self.make_room(now);
        }
        let tries = self.tries.entry(ip).or_default();
        while tries.front().is_some_and(|&t| t + WINDOW <= now) {
            tries.pop_front();
        }
        let verdict = match tries.len().checked_sub(FREE_TRIES) {
            Some(fifth_newest) => (tries[fifth_newest] + WINDOW).max(now),
            None => now,
        };
        tries.push_back(verdict);
        if tries.len() > MAX_TRIES_KEPT {
            tries.pop_front();
        }
        verdict.saturating_duration_since(now)
    }

    /// The password tried from `ip` was right: that try does not count.
    pub fn succeeded(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        if let Some(tries) = self.tries.get_mut(&ip) {
            tries.pop_back();
            if tries.is_empty() {
                self.tries.remove(&ip);
            }
        }
    }

    /// How many addresses are remembered.
    pub fn addresses(&self) -> usize {
        self.tries.len()
    }

    /// Before a new address is remembered: forgets the addresses whose last
    /// try is more than a minute old, and if that is not enough, the one
    /// whose last try is oldest. Runs only when the table is full, so its
    /// scan is paid once per 4,096 addresses in the usual case.
    fn make_room(&mut self, now: Instant) {
        if self.tries.len() < MAX_ADDRESSES {
            return;
        }
        self.tries
            .retain(|_, tries| tries.back().is_some_and(|&last| last + WINDOW > now));
        if self.tries.len() < MAX_ADDRESSES {
            return;
        }
        let oldest = self
            .tries
            .iter()
            .min_by_key(|(_, tries)| tries.back().copied())
            .map(|(&ip, _)| ip);
        if let Some(ip) = oldest {
            self.tries.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SECOND: Duration = Duration::from_secs(1);

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, last))
    }

    #[test]
    fn five_tries_a_minute_do_not_wait() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        for i in 0..5 {
            assert_eq!(guesses.wait(v4(1), start + i * SECOND), Duration::ZERO);
        }
    }

    #[test]
    fn the_sixth_try_within_a_minute_waits_until_the_first_is_a_minute_old() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        for i in 0..5 {
            guesses.wait(v4(1), start + i * SECOND);
        }
        assert_eq!(guesses.wait(v4(1), start + 10 * SECOND), 50 * SECOND);
    }

    #[test]
    fn tries_made_at_once_queue_five_a_minute() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        let waits: Vec<Duration> = (0..12).map(|_| guesses.wait(v4(1), start)).collect();
        assert_eq!(waits[..5], [Duration::ZERO; 5]);
        assert_eq!(waits[5..10], [60 * SECOND; 5]);
        assert_eq!(waits[10..], [120 * SECOND; 2]);
    }

    #[test]
    fn after_a_quiet_minute_an_address_tries_freely_again() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        for _ in 0..5 {
            guesses.wait(v4(1), start);
        }
        assert_eq!(guesses.wait(v4(1), start + 60 * SECOND), Duration::ZERO);
    }

    #[test]
    fn other_addresses_are_not_held_up() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        for _ in 0..10 {
            guesses.wait(v4(1), start);
        }
        assert_eq!(guesses.wait(v4(2), start), Duration::ZERO);
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 168, 1, 1).to_ipv6_mapped());
        for _ in 0..5 {
            guesses.wait(mapped, start);
        }
        assert_eq!(guesses.wait(v4(1), start), 60 * SECOND);
        assert_eq!(guesses.addresses(), 1);
    }

    #[test]
    fn a_right_password_takes_its_try_back() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        for _ in 0..20 {
            assert_eq!(guesses.wait(v4(1), start), Duration::ZERO);
            guesses.succeeded(v4(1));
        }
        assert_eq!(guesses.addresses(), 0);
    }

    #[test]
    fn a_right_password_does_not_forgive_the_wrong_ones_before_it() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        for _ in 0..5 {
            guesses.wait(v4(1), start);
        }
        guesses.wait(v4(1), start);
        guesses.succeeded(v4(1));
        assert_eq!(guesses.wait(v4(1), start), 60 * SECOND);
    }

    #[test]
    fn memory_stays_bounded_forgetting_the_oldest_address() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        for _ in 0..5 {
            guesses.wait(v4(1), start);
        }
        for i in 0..MAX_ADDRESSES as u128 {
            let ip = IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | i));
            guesses.wait(ip, start + SECOND);
        }
        assert_eq!(guesses.addresses(), MAX_ADDRESSES);
        // The first address, oldest, was forgotten to make room.
        assert_eq!(guesses.wait(v4(1), start + SECOND), Duration::ZERO);
        assert_eq!(guesses.addresses(), MAX_ADDRESSES);
    }

    #[test]
    fn addresses_idle_for_a_minute_are_forgotten_first() {
        let (mut guesses, start) = (Guesses::new(), Instant::now());
        for i in 0..MAX_ADDRESSES as u128 {
            guesses.wait(IpAddr::V6(Ipv6Addr::from(i + 1)), start);
        }
        guesses.wait(v4(1), start + 61 * SECOND);
        assert_eq!(guesses.addresses(), 1);
    }
}
