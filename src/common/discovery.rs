//! Finding servers on the LAN without typing an address: the UDP packets,
//! the server's responder and the client's search. No FLTK here; both
//! windows and the load tool drive this same code.
//!
//! A client broadcasts a small query on the server's port number (UDP);
//! each server that lets clients find it answers by unicast with its name,
//! the addresses and port to connect to, and its version. Both packets are
//! 8 bytes of magic followed by one JSON object, so later versions can add
//! fields (a key fingerprint comes with encryption) that older ones ignore.
//!
//! The responder is careful because anyone on the LAN can send it anything,
//! with any source address: whatever does not parse is dropped without a
//! word, answers are rate-limited per source and in total, and an answer is
//! never longer than the query it answers ([`MIN_QUERY`] makes room for
//! one), so the server cannot be used to amplify a flood at someone else.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};

/// What every query starts with.
pub const QUERY_MAGIC: &[u8; 8] = b"HUBCHAT?";
/// What every answer starts with.
pub const ANSWER_MAGIC: &[u8; 8] = b"HUBCHAT!";
/// The discovery protocol's version. A server answers queries of this
/// version and any later one (whose extra fields it ignores).
pub const VERSION: u32 = 1;
/// The shortest query answered, in bytes: clients pad their queries to
/// this length so that an answer fits in the same number of bytes.
pub const MIN_QUERY: usize = 512;
/// The longest query read; anything longer is ignored.
pub const MAX_QUERY: usize = 1024;
/// An answer is never longer than `AMPLIFICATION` times the query it
/// answers: no more bytes go out than came in.
pub const AMPLIFICATION: usize = 1;
/// The longest server name sent or shown, in characters.
pub const MAX_NAME: usize = 64;
/// How long a client's search listens for answers by default.
pub const SEARCH_TIME: Duration = Duration::from_secs(2);

/// A client's question: "which HubChat servers are there?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The discovery protocol version the client speaks.
    pub v: u32,
    /// Chosen by the client; an answer repeats it, so a client keeps only
    /// answers to its own query.
    pub nonce: String,
}

/// A server's reply to one [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub v: u32,
    /// The query's nonce.
    pub nonce: String,
    /// The name the server's owner gave it (default: the host name).
    pub name: String,
    /// The TCP port clients connect to.
    pub port: u16,
    /// The addresses clients may connect to, best first; empty when the
    /// server listens on all of them (the answer's source address is then
    /// the one to use).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// The server program's version.
    #[serde(default)]
    pub version: String,
}

impl Query {
    /// A query with a fresh nonce.
    pub fn new() -> Self {
        Query {
            v: VERSION,
            nonce: fresh_nonce(),
        }
    }

    /// The bytes sent: magic, JSON, then spaces up to [`MIN_QUERY`] (JSON
    /// allows trailing white space, so the padding needs no field).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = QUERY_MAGIC.to_vec();
        // A struct of a number and a string always serialises.
        bytes.extend(serde_json::to_vec(self).unwrap_or_default());
        if bytes.len() < MIN_QUERY {
            bytes.resize(MIN_QUERY, b' ');
        }
        bytes
    }

    /// Reads a query, or `None` for anything that is not a sound one:
    /// wrong magic, too short or too long, not JSON, an older version, a
    /// nonce that is not 1 to 32 letters and digits. Unknown fields are
    /// ignored.
    pub fn decode(bytes: &[u8]) -> Option<Query> {
        if !(MIN_QUERY..=MAX_QUERY).contains(&bytes.len()) {
            return None;
        }
        let body = bytes.strip_prefix(QUERY_MAGIC)?;
        let query: Query = serde_json::from_slice(body).ok()?;
        (query.v >= VERSION && nonce_is_sound(&query.nonce)).then_some(query)
    }
}

impl Default for Query {
    fn default() -> Self {
        Self::new()
    }
}

impl Answer {
    /// The bytes sent, in at most `budget` bytes: addresses are dropped
    /// from the end, then the name shortened, until it fits. `None` if even
    /// that does not fit (then nothing is sent).
    pub fn encode_within(&self, budget: usize) -> Option<Vec<u8>> {
        let mut answer = self.clone();
        answer.name = clip_name(&answer.name);
        loop {
            let mut bytes = ANSWER_MAGIC.to_vec();
            bytes.extend(serde_json::to_vec(&answer).ok()?);
            if bytes.len() <= budget {
                return Some(bytes);
            }
            if answer.addresses.pop().is_none() {
                if answer.name.is_empty() {
                    return None;
                }
                let keep = answer.name.chars().count() / 2;
                answer.name = answer.name.chars().take(keep).collect();
            }
        }
    }

    /// Reads an answer, or `None` if it is not a sound one.
    pub fn decode(bytes: &[u8]) -> Option<Answer> {
        if bytes.len() > MAX_QUERY * AMPLIFICATION {
            return None;
        }
        let body = bytes.strip_prefix(ANSWER_MAGIC)?;
        let answer: Answer = serde_json::from_slice(body).ok()?;
        (answer.v >= VERSION && answer.port != 0).then_some(answer)
    }
}

/// A server a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its name, cleaned of anything that is not plain text.
    pub name: String,
    /// Where to connect.
    pub addr: SocketAddr,
    pub version: String,
}

impl Found {
    /// Where to connect, from an answer that came from `source`: the source
    /// address if the server lists it (or lists none), else the first it
    /// lists (a server bound to one address answers from whichever the
    /// system picks).
    pub fn from_answer(answer: &Answer, source: IpAddr) -> Found {
        let listed: Vec<IpAddr> = answer
            .addresses
            .iter()
            .copied()
            .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
            .collect();
        let ip = if listed.is_empty() || listed.contains(&source) {
            source
        } else {
            listed[0]
        };
        Found {
            name: clean_name(&answer.name),
            addr: SocketAddr::new(ip, answer.port),
            version: clean_name(&answer.version),
        }
    }

    /// How it is offered: "Office - 192.168.1.20:5050".
    pub fn label(&self) -> String {
        format!("{} - {}", self.name, self.addr)
    }
}

/// Why the responder is not answering, or on which port it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Answering { port: u16 },
    Unavailable { port: u16, reason: String },
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Answering { port } => write!(f, "answering discovery on UDP {port}"),
            Status::Unavailable { port, reason } => write!(
                f,
                "clients cannot find this server by itself: UDP port {port} is not available ({reason}); they can still type its address"
            ),
        }
    }
}

/// How often the responder answers. Counted in fixed windows: simple, and
/// a burst at a window's edge can at most double a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Answers to one source address per window.
    pub per_source: u32,
    /// Answers to everyone together per window.
    pub total: u32,
    pub window: Duration,
}

impl RateLimits {
    /// 5 answers a second to one address, 100 a second in all: a search
    /// sends 3 queries per port, and a LAN has far fewer than 30 clients
    /// starting in the same second.
    pub const DEFAULT: RateLimits = RateLimits {
        per_source: 5,
        total: 100,
        window: Duration::from_secs(1),
    };
}

/// What a responder says about its server.
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    /// The UDP port to answer on: the server's TCP port.
    pub port: u16,
    pub name: String,
    /// The addresses clients may connect to; empty for "the one you reached
    /// me at".
    pub addresses: Vec<IpAddr>,
    pub limits: RateLimits,
}

/// The addresses a server listening on `bind` tells clients: none when it
/// listens on all interfaces (the address a query reached it at, which is
/// where its answer comes from, is the right one for that client), else
/// the one it listens on.
pub fn addresses_for(bind: IpAddr) -> Vec<IpAddr> {
    if bind.is_unspecified() {
        Vec::new()
    } else {
        vec![bind]
    }
}

/// Answers discovery queries on a thread of its own until stopped or
/// dropped.
pub struct Responder {
    port: u16,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How long the responder waits for a query before it checks whether it
/// should stop, in case the wake-up a stop sends (see
/// [`Responder::shutdown`]) never arrives: the longest a stop can take.
/// Normally the wake-up ends the wait at once, so an idle server sleeps.
const STOP_CHECK: Duration = Duration::from_secs(5);

impl Responder {
    /// Binds UDP `config.port` on all IPv4 interfaces (a socket bound to
    /// one address never sees broadcasts), shared with other servers on
    /// this machine, and starts answering.
    pub fn start(config: ResponderConfig) -> io::Result<Responder> {
        let socket = shared_udp_socket(config.port)?;
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let port = socket.local_addr()?.port();
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let stopping = stopping.clone();
            thread::Builder::new()
                .name("discovery".into())
                .spawn(move || answer_loop(&socket, &config, &stopping))?
        };
        Ok(Responder {
            port,
            stopping,
            thread: Some(thread),
        })
    }

    /// The UDP port answered on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops answering and frees the port (at once; within [`STOP_CHECK`]
    /// if the wake-up is lost).
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Sets the stop flag, then wakes the responder's blocked receive with
    /// a datagram too short to be a query: broadcast on loopback, so it
    /// reaches every socket sharing the port (ours among them; other
    /// servers ignore it), and sent straight to the port as well.
    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Ok(waker) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) {
            let _ = waker.set_broadcast(true);
            for to in [Ipv4Addr::new(127, 255, 255, 255), Ipv4Addr::LOCALHOST] {
                let _ = waker.send_to(b"stop", (to, self.port));
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A UDP socket on 0.0.0.0:`port` that other servers on this machine may
/// bind too (SO_REUSEADDR, and SO_REUSEPORT where it exists): each of them
/// then receives every broadcast query and answers it.
fn shared_udp_socket(port: u16) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn answer_loop(socket: &UdpSocket, config: &ResponderConfig, stopping: &AtomicBool) {
    // One byte more than the longest query: a datagram that fills the
    // buffer was longer and is ignored.
    let mut buf = [0u8; MAX_QUERY + 1];
    let mut limiter = Limiter::new(config.limits);
    while !stopping.load(Ordering::SeqCst) {
        let Ok((n, source)) = socket.recv_from(&mut buf) else {
            continue; // The timeout, or an ICMP error from an earlier send.
        };
        if let Some(reply) = reply(&buf[..n], config) {
            if limiter.admit(source.ip(), Instant::now()) {
                let _ = socket.send_to(&reply, source);
            }
        }
    }
}

/// The answer to `packet`, if it is a sound query: never longer than the
/// query times [`AMPLIFICATION`].
pub fn reply(packet: &[u8], config: &ResponderConfig) -> Option<Vec<u8>> {
    let query = Query::decode(packet)?;
    let answer = Answer {
        v: VERSION,
        nonce: query.nonce,
        name: config.name.clone(),
        port: config.port,
        addresses: config.addresses.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    answer.encode_within(packet.len() * AMPLIFICATION)
}

/// Counts answers per source and in total, per window.
struct Limiter {
    limits: RateLimits,
    window_start: Instant,
    total: u32,
    per_source: HashMap<IpAddr, u32>,
}

/// The most sources counted in one window; the total limit is lower, so
/// the table never needs more.
const MAX_SOURCES: usize = 4096;

impl Limiter {
    fn new(limits: RateLimits) -> Self {
        Limiter {
            limits,
            window_start: Instant::now(),
            total: 0,
            per_source: HashMap::new(),
        }
    }

    fn admit(&mut self, source: IpAddr, now: Instant) -> bool {
        if now.duration_since(self.window_start) >= self.limits.window {
            self.window_start = now;
            self.total = 0;
            self.per_source.clear();
        }
        if self.total >= self.limits.total || self.per_source.len() >= MAX_SOURCES {
            return false;
        }
        let count = self.per_source.entry(source).or_insert(0);
        if *count >= self.limits.per_source {
            return false;
        }
        *count += 1;
        self.total += 1;
        true
    }
}

/// Where and how long a client searches.
#[derive(Debug, Clone)]
pub struct Search {
    /// The ports to ask on (servers answer on their TCP port number).
    pub ports: Vec<u16>,
    /// The broadcast addresses to send to; see [`broadcast_targets`].
    pub targets: Vec<Ipv4Addr>,
    pub duration: Duration,
}

impl Search {
    /// A search of every broadcast address of this machine on `ports`
    /// (duplicates dropped), for [`SEARCH_TIME`].
    pub fn on_ports(ports: &[u16]) -> Search {
        let mut unique = Vec::new();
        for &p in ports {
            if p != 0 && !unique.contains(&p) {
                unique.push(p);
            }
        }
        Search {
            ports: unique,
            targets: broadcast_targets(),
            duration: SEARCH_TIME,
        }
    }
}

/// When, from the start of a search, the query is sent (again): a datagram
/// can be lost, and a server may start a moment late.
const SENDS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(400),
    Duration::from_millis(1000),
];

/// Searches for servers, calling `found` once for each new one as its
/// answer arrives, until the search's time is up. Returns how many were
/// found. Fails only if no UDP socket could be made; sends that fail (an
/// interface without a route) are skipped.
pub fn search(search: &Search, mut found: impl FnMut(Found)) -> io::Result<usize> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_broadcast(true)?;
    let query = Query::new();
    let packet = query.encode();
    let start = Instant::now();
    let deadline = start + search.duration;
    let mut sends = SENDS.iter().map(|d| start + *d).peekable();
    let mut seen = HashSet::new();
    let mut buf = [0u8; MAX_QUERY * AMPLIFICATION + 1];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(seen.len());
        }
        while sends.next_if(|at| *at <= now).is_some() {
            send_everywhere(&socket, &packet, search);
        }
        let wake = sends.peek().copied().unwrap_or(deadline).min(deadline);
        socket.set_read_timeout(Some(wake.saturating_duration_since(now).max(MS)))?;
        let Ok((n, source)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some(answer) = Answer::decode(&buf[..n]).filter(|a| a.nonce == query.nonce) else {
            continue;
        };
        let server = Found::from_answer(&answer, source.ip());
        if seen.insert(server.addr) {
            found(server);
        }
    }
}

const MS: Duration = Duration::from_millis(1);

fn send_everywhere(socket: &UdpSocket, packet: &[u8], search: &Search) {
    for target in &search.targets {
        for port in &search.ports {
            let _ = socket.send_to(packet, (*target, *port));
        }
    }
}

/// Where a search broadcasts: 255.255.255.255, then each IPv4 interface's
/// own broadcast address (loopback's is 127.255.255.255), without repeats.
///
/// `HUBCHAT_DISCOVERY_TARGETS` (IPv4 addresses separated by commas)
/// replaces the list: for tests, which must keep to loopback, and for
/// networks where only a directed broadcast gets through.
pub fn broadcast_targets() -> Vec<Ipv4Addr> {
    if let Ok(list) = std::env::var("HUBCHAT_DISCOVERY_TARGETS") {
        return list
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
    }
    let mut targets = vec![Ipv4Addr::BROADCAST];
    for b in interface_broadcasts() {
        if !targets.contains(&b) {
            targets.push(b);
        }
    }
    targets
}

/// Each IPv4 interface's broadcast address, from its address and netmask.
#[cfg(unix)]
fn interface_broadcasts() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we only read and
    // then free once with freeifaddrs; each pointer is checked for null and
    // read as the sockaddr_in its family says it is.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cursor = list;
        while !cursor.is_null() {
            let ifa = &*cursor;
            cursor = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
                continue;
            }
            if i32::from((*ifa.ifa_addr).sa_family) != libc::AF_INET {
                continue;
            }
            let addr = ipv4_of(ifa.ifa_addr as *const libc::sockaddr_in);
            let mask = ipv4_of(ifa.ifa_netmask as *const libc::sockaddr_in);
            out.push(Ipv4Addr::from(u32::from(addr) | !u32::from(mask)));
        }
        libc::freeifaddrs(list);
    }
    out
}

/// # Safety
/// `sa` must point to a valid `sockaddr_in`.
#[cfg(unix)]
unsafe fn ipv4_of(sa: *const libc::sockaddr_in) -> Ipv4Addr {
    Ipv4Addr::from(u32::from_be((*sa).sin_addr.s_addr))
}

/// Without netmasks to hand (Windows), each address's /24, the usual home
/// and office LAN, plus loopback.
#[cfg(not(unix))]
fn interface_broadcasts() -> Vec<Ipv4Addr> {
    let mut out = vec![Ipv4Addr::new(127, 255, 255, 255)];
    for (_, ip) in local_ip_address::list_afinet_netifas().unwrap_or_default() {
        if let IpAddr::V4(v4) = ip {
            if !v4.is_loopback() {
                let [a, b, c, _] = v4.octets();
                out.push(Ipv4Addr::new(a, b, c, 255));
            }
        }
    }
    out
}

/// This machine's name, for a server that was given none.
pub fn host_name() -> String {
    let name = system_host_name()
        .map(|n| clean_name(&n))
        .unwrap_or_default();
    if name.is_empty() {
        "HubChat server".into()
    } else {
        name
    }
}

#[cfg(unix)]
fn system_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(windows)]
fn system_host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

#[cfg(not(any(unix, windows)))]
fn system_host_name() -> Option<String> {
    None
}

/// A name as it may be shown: control and format characters (line breaks,
/// bidi overrides, zero-width marks) dropped, white space trimmed, at most
/// [`MAX_NAME`] characters. Names come from the network: anyone can answer.
pub fn clean_name(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|&c| !c.is_control() && !is_format(c))
        .collect();
    clip_name(kept.trim())
}

fn clip_name(name: &str) -> String {
    name.chars().take(MAX_NAME).collect()
}

/// Unicode format characters and separators that change how text around
/// them is shown: bidi controls, zero-width marks, line separators.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// 1 to 32 ASCII letters and digits.
fn nonce_is_sound(nonce: &str) -> bool {
    (1..=32).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// 16 hex digits, different for every query. Not a secret: it only tells
/// a client's answers from those to another client's query.
fn fresh_nonce() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, addresses: &[&str]) -> ResponderConfig {
        ResponderConfig {
            port: 5050,
            name: name.into(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            limits: RateLimits::DEFAULT,
        }
    }

    #[test]
    fn a_query_is_padded_to_the_minimum_and_reads_back() {
        let query = Query::new();
        let bytes = query.encode();
        assert_eq!(bytes.len(), MIN_QUERY);
        assert_eq!(Query::decode(&bytes), Some(query));
    }

    #[test]
    fn unknown_fields_and_later_versions_are_understood() {
        let mut bytes = QUERY_MAGIC.to_vec();
        bytes.extend(br#"{"v":2,"nonce":"ab12","fingerprint":"SHA256:xyz"}"#);
        bytes.resize(MIN_QUERY, b' ');
        assert_eq!(Query::decode(&bytes).map(|q| q.nonce), Some("ab12".into()));
    }

    #[test]
    fn anything_unsound_is_not_a_query() {
        let good = Query::new().encode();
        let mut wrong_magic = good.clone();
        wrong_magic[0] = b'X';
        let mut too_long = good.clone();
        too_long.resize(MAX_QUERY + 1, b' ');
        let mut not_json = QUERY_MAGIC.to_vec();
        not_json.resize(MIN_QUERY, b'{');
        let mut bad_nonce = QUERY_MAGIC.to_vec();
        bad_nonce.extend(br#"{"v":1,"nonce":"a b"}"#);
        bad_nonce.resize(MIN_QUERY, b' ');
        let mut old = QUERY_MAGIC.to_vec();
        old.extend(br#"{"v":0,"nonce":"ab"}"#);
        old.resize(MIN_QUERY, b' ');
        for (what, bytes) in [
            ("wrong magic", wrong_magic),
            ("truncated", good[..MIN_QUERY - 1].to_vec()),
            ("too long", too_long),
            ("not JSON", not_json),
            ("a nonce with a space", bad_nonce),
            ("version 0", old),
            ("empty", Vec::new()),
        ] {
            assert_eq!(Query::decode(&bytes), None, "{what}");
        }
    }

    #[test]
    fn an_answer_never_outgrows_its_query_dropping_addresses_then_shortening_the_name() {
        let many: Vec<String> = (0..60).map(|i| format!("10.0.{i}.200")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let config = config(&"N".repeat(500), &many);
        let query = Query::new().encode();
        let bytes = reply(&query, &config).expect("an answer");
        assert!(
            bytes.len() <= query.len() * AMPLIFICATION,
            "{}",
            bytes.len()
        );
        let answer = Answer::decode(&bytes).unwrap();
        assert_eq!(answer.name.chars().count(), MAX_NAME);
        assert!(!answer.addresses.is_empty() && answer.addresses.len() < 60);
        assert_eq!(
            &answer.addresses[..],
            &config.addresses[..answer.addresses.len()]
        );
    }

    #[test]
    fn the_address_to_use_is_the_source_unless_the_server_lists_others() {
        let answer = |addresses: &[&str]| Answer {
            v: 1,
            nonce: "n".into(),
            name: "Office\u{202E}\n".into(),
            port: 6000,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            version: "0.1.0".into(),
        };
        let source: IpAddr = "192.168.1.20".parse().unwrap();
        let at = |a: &[&str]| Found::from_answer(&answer(a), source).addr.to_string();
        assert_eq!(at(&[]), "192.168.1.20:6000");
        assert_eq!(at(&["10.0.0.1", "192.168.1.20"]), "192.168.1.20:6000");
        assert_eq!(at(&["10.0.0.1"]), "10.0.0.1:6000");
        let found = Found::from_answer(&answer(&[]), source);
        assert_eq!(found.label(), "Office - 192.168.1.20:6000");
    }

    #[test]
    fn answers_are_limited_per_source_and_in_total_per_window() {
        let limits = RateLimits {
            per_source: 2,
            total: 3,
            window: Duration::from_secs(1),
        };
        let mut limiter = Limiter::new(limits);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        assert!(limiter.admit(a, t0));
        assert!(limiter.admit(a, t0));
        assert!(!limiter.admit(a, t0), "a third to one source");
        assert!(limiter.admit(b, t0));
        assert!(!limiter.admit(c, t0), "a fourth in all");
        let t1 = t0 + Duration::from_secs(1);
        assert!(limiter.admit(a, t1), "a new window");
    }

    #[test]
    fn names_are_cleaned_of_controls_and_clipped() {
        assert_eq!(clean_name("  Off\u{200B}ice\r\n "), "Office");
        assert_eq!(clean_name(&"x".repeat(100)).len(), MAX_NAME);
        assert!(!host_name().is_empty());
    }
}
