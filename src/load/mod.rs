//! `hubchat-load`: many headless clients against one server, counted.
//!
//! The tool speaks only the original protocol's flags, so it measures any
//! compatible server; or, with [`Proto::Irc`], IRC (see [`irc`]), so an IRC
//! server such as ngIRCd can be measured side by side with the same
//! scenarios and counters. The protocol is a seam of three parts: how a
//! client joins ([`Joined`]), what its reader hears ([`Inbound`] yielding
//! [`Heard`]), and how a message and a goodbye are written ([`Proto`]).
//!
//! It connects N clients with bounded concurrency, waits until every client
//! has every other in its roster (the join time), then has each send M
//! stamped messages to a partner, either as fast as a window of W messages
//! in flight allows or at a fixed rate. Receivers count what
//! arrives (see [`stamp`]); the report gives loss, duplicates, throughput,
//! latency and the tool's own CPU time. Each client has a reader thread and,
//! while sending, a writer thread; the writer sends everything its window
//! allows in one write, and readers decode only what they count (see
//! [`wire`]), so the tool stays cheaper than the server.
//!
//! With `tls` the HubChat clients join encrypted, as the real client does
//! (see [`tls`]): each with a certificate of its own, made before the
//! clock starts; the report says how many joins were encrypted, and a join
//! the server did not encrypt fails.
//!
//! A storm ([`Storm`]) makes K clients leave at the same moment, by
//! DISCONNECT or by closing their sockets, while a fresh client joins; the
//! tool checks that every remaining client is told of each leaver exactly
//! once and times the fresh client's join, then runs the message phase
//! between the remaining clients.

pub mod attack;
pub mod attack_kinds;
pub mod attack_net;
pub mod attack_png;
pub mod cli;
pub mod discover;
pub mod files;
pub mod irc;
pub mod stamp;
pub mod tls;
pub mod wire;

use std::borrow::Cow;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::common::connection::FrameReader;
use crate::common::frame::DEFAULT_MAX_BODY;
use crate::common::packet::{client_number, ClientHello, ClientPacket, Info, PROTOCOL_VERSION};
use crate::common::tls::{Credentials, Fingerprint};
use crate::common::transport::Link;
use stamp::Tally;
use wire::Seen;

/// Stack for the tool's per-client threads: they decode small packets and
/// count; thousands of them must fit in a small machine.
const THREAD_STACK: usize = 64 * 1024;

/// Who sends to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// 0 <-> 1, 2 <-> 3, ...; an odd last client sends to client 0.
    Pairs,
    /// Each client sends to the next, the last to the first.
    Ring,
}

/// How fast each client sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as possible with at most this many messages in flight.
    Window(u64),
    /// This many messages a second.
    Rate(f64),
}

/// How the clients of a storm leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormKind {
    /// Each says DISCONNECT.
    Disconnect,
    /// Each closes its socket without a word, as a killed program does.
    Kill,
}

/// `count` clients leave at the same moment, in the way `kind` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storm {
    pub kind: StormKind,
    pub count: usize,
}

/// Which protocol the tool's clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HubChat's, as far as the original protocol's flags go.
    Hubchat,
    /// IRC: nicks, one channel as the roster, `PRIVMSG` to the partner.
    Irc,
}

impl Proto {
    /// Appends the bytes that send `text` to the client `to`.
    fn encode_message(self, to: &str, text: String, out: &mut Vec<u8>) {
        match self {
            Proto::Hubchat => out.extend_from_slice(
                &ClientPacket::Message {
                    to: to.to_string(),
                    text,
                }
                .encode(),
            ),
            Proto::Irc => irc::encode_message(to, &text, out),
        }
    }

    /// What a client says to leave; the server then closes it.
    fn bye(self) -> Vec<u8> {
        match self {
            Proto::Hubchat => ClientPacket::Disconnect.encode(),
            Proto::Irc => irc::BYE.to_vec(),
        }
    }
}

/// What a client heard, in either protocol, as far as the tool counts it.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard<'a> {
    /// These clients (by roster number) are now listed: a roster, or a join.
    Listed(Vec<usize>),
    /// A message's text.
    Message(Cow<'a, str>),
    /// This client left; `None` for one the tool cannot have listed.
    Left(Option<usize>),
    /// The server closes the connection, with its sentence.
    Closed(Cow<'a, str>),
    Other,
}

/// One client's incoming side in some protocol.
pub trait Inbound: Send + 'static {
    /// The next thing heard; an error once the connection is over.
    fn next(&mut self) -> io::Result<Heard<'_>>;
}

/// A client that has joined: its id (what others address it by), its
/// incoming side, and the clients it listed while joining.
pub struct Joined<I> {
    pub id: String,
    pub inbound: I,
    pub listed: Vec<usize>,
}

/// One client's sending side. Each write goes whole under a lock, so a
/// reader answering an IRC `PING` never splits a writer's batch.
#[derive(Clone)]
pub struct Sender(Arc<Mutex<Link>>);

impl Sender {
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).send(bytes)
    }
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub server: String,
    pub proto: Proto,
    /// HubChat clients join encrypted (TLS 1.3 after STARTTLS), each with
    /// its own certificate.
    pub tls: bool,
    pub clients: usize,
    pub messages: u64,
    pub pattern: Pattern,
    pub pace: Pace,
    pub size: usize,
    pub connect_concurrency: usize,
    /// Hold the clients connected this long instead of sending messages.
    pub hold: Option<Duration>,
    /// Make some clients leave at once before the message phase.
    pub storm: Option<Storm>,
    /// Give up on missing messages after this long without progress.
    pub patience: Duration,
    /// Progress lines on standard error.
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            server: "127.0.0.1:5050".into(),
            proto: Proto::Hubchat,
            tls: false,
            clients: 10,
            messages: 100,
            pattern: Pattern::Pairs,
            pace: Pace::Window(32),
            size: 64,
            connect_concurrency: 64,
            hold: None,
            storm: None,
            patience: Duration::from_secs(5),
            progress: false,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub clients: usize,
    pub connected: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    /// Whether the clients were to join encrypted.
    pub tls: bool,
    /// Clients whose join was encrypted (TLS finished, the server's
    /// certificate seen).
    pub encrypted: usize,
    /// The server's certificate, as the first encrypted client saw it.
    pub server_key: Option<Fingerprint>,
    /// Milliseconds it took to make the clients' certificates, before the
    /// clock of `connect_ms` started.
    pub identities_ms: Option<f64>,
    /// Milliseconds from the first connect until the last client had joined
    /// (had its own roster: in IRC, the channel's member list).
    pub connect_ms: f64,
    /// Milliseconds from the first connect until every client listed all.
    pub join_ms: f64,
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub seconds: f64,
    pub latency_us: [f64; 4],
    /// Departures announced for a client the receiver did not list (it was
    /// told twice, or of a client it never heard of).
    pub told_twice: u64,
    pub storm: Option<StormReport>,
    pub tool_cpu_s: Option<f64>,
}

/// What a storm measured.
#[derive(Debug, Clone, Default)]
pub struct StormReport {
    pub leavers: usize,
    /// Clients that stayed (the fresh one not counted).
    pub survivors: usize,
    /// Departures the survivors were told of, one per survivor and leaver.
    pub announced: u64,
    /// `leavers * survivors`: what `announced` must reach.
    pub expected: u64,
    /// Milliseconds from the storm until every survivor was told of every
    /// leaver (or the tool gave up).
    pub told_ms: f64,
    /// Milliseconds from the storm until a fresh client, connecting at the
    /// same moment, had its roster; `None` if it failed.
    pub fresh_join_ms: Option<f64>,
    pub fresh_error: Option<String>,
}

impl StormReport {
    /// Everyone was told of everyone who left, and the fresh client got in.
    pub fn clean(&self) -> bool {
        self.announced == self.expected && self.fresh_join_ms.is_some()
    }
}

impl Report {
    /// Whether the run passed: every client joined, nothing lost or doubled,
    /// every departure announced once.
    pub fn clean(&self) -> bool {
        self.failed == 0
            && self.lost == 0
            && self.duplicated == 0
            && self.told_twice == 0
            && self.connected == self.clients
            && (!self.tls || self.encrypted == self.connected)
            && self.storm.as_ref().is_none_or(StormReport::clean)
    }

    /// Clients joined per second, from the first connect to the last join.
    pub fn join_rate(&self) -> f64 {
        if self.connect_ms > 0.0 {
            self.connected as f64 * 1000.0 / self.connect_ms
        } else {
            0.0
        }
    }

    pub fn throughput(&self) -> f64 {
        if self.seconds > 0.0 {
            self.delivered as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Everything the clients' threads share. Per-client vectors have one slot
/// per client plus one for the fresh client a storm brings in.
struct Shared {
    start: Instant,
    /// Per client slot, its certificate, when the run is encrypted.
    identities: Vec<Credentials>,
    clients: usize,
    /// Per sender: how many of its messages have arrived anywhere.
    delivered_from: Vec<AtomicU64>,
    /// Per client: its writer thread, woken when its window opens.
    writers: Mutex<Vec<Option<Thread>>>,
    /// Per client: how many clients its roster lists.
    known: Vec<AtomicUsize>,
    /// Per client: how many listed clients it was told have left.
    departed: Vec<AtomicUsize>,
    /// Departures announced for clients the receiver did not list.
    told_twice: AtomicU64,
    delivered_total: AtomicU64,
    /// The message phase's total; the reader that delivers the last one
    /// wakes the main thread.
    expected_total: AtomicU64,
    main: Thread,
    stop: AtomicBool,
}

impl Shared {
    /// Counts one delivered message from `sender` and wakes whoever waits.
    fn delivered(&self, sender: usize) {
        let Some(count) = self.delivered_from.get(sender) else {
            return;
        };
        count.fetch_add(1, Ordering::SeqCst);
        if self.delivered_total.fetch_add(1, Ordering::SeqCst) + 1
            == self.expected_total.load(Ordering::SeqCst)
        {
            self.main.unpark();
        }
        if let Some(Some(t)) = self
            .writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sender)
        {
            t.unpark();
        }
    }
}

struct Client {
    idx: usize,
    id: String,
    /// One connection per client, shared by its reader and writer.
    link: Link,
    send: Sender,
    reader: JoinHandle<Tally>,
}

/// Runs the load and returns its figures.
pub fn run(opts: &LoadOptions) -> io::Result<Report> {
    if opts.tls && opts.proto != Proto::Hubchat {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TLS is measured for HubChat servers only; an IRC server encrypts on a port of its own",
        ));
    }
    let addr = resolve(&opts.server)?;
    let slots = opts.clients + 1;
    let (identities, identities_ms) = if opts.tls {
        progress(opts, &format!("making {slots} client certificates"));
        let (made, ms) = tls::identities(slots)?;
        (made, Some(ms))
    } else {
        (Vec::new(), None)
    };
    let shared = Arc::new(Shared {
        start: Instant::now(),
        identities,
        clients: opts.clients,
        delivered_from: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        writers: Mutex::new(vec![None; slots]),
        known: (0..slots).map(|_| AtomicUsize::new(0)).collect(),
        departed: (0..slots).map(|_| AtomicUsize::new(0)).collect(),
        told_twice: AtomicU64::new(0),
        delivered_total: AtomicU64::new(0),
        expected_total: AtomicU64::new(u64::MAX),
        main: thread::current(),
        stop: AtomicBool::new(false),
    });
    let cpu_before = cpu_seconds();
    let mut report = Report {
        clients: opts.clients,
        tls: opts.tls,
        identities_ms,
        ..Report::default()
    };

    let (mut clients, errors) = connect_all(addr, opts, &shared);
    report.connected = clients.len();
    report.encrypted = clients.iter().filter(|c| c.link.is_encrypted()).count();
    report.server_key = clients.iter().find_map(|c| c.link.peer_identity());
    report.failed = errors.len();
    report.first_error = errors.into_iter().next();
    report.connect_ms = shared.start.elapsed().as_secs_f64() * 1000.0;
    progress(
        opts,
        &format!("connected {} of {} clients", clients.len(), opts.clients),
    );

    // Every client has every other in its roster.
    let join_deadline = Instant::now() + opts.patience.max(Duration::from_secs(60));
    while !all_listed(&clients, &shared) && Instant::now() < join_deadline {
        thread::sleep(Duration::from_millis(1));
    }
    report.join_ms = shared.start.elapsed().as_secs_f64() * 1000.0;

    let mut tally = Tally::default();
    if let (Some(storm), 0) = (opts.storm, report.failed) {
        let (remaining, storm_report, leavers_tally) =
            run_storm(clients, storm, addr, opts, &shared);
        clients = remaining;
        tally.merge(leavers_tally);
        report.storm = Some(storm_report);
    }

    if let Some(hold) = opts.hold {
        hold_for(hold, opts, &shared);
    } else if report.failed == 0 {
        send_all(&clients, opts, &shared, &mut report);
    }

    tally.merge(disconnect_all(clients, opts.proto));
    report.delivered = tally.delivered;
    report.duplicated = tally.duplicates;
    report.lost = report.sent.saturating_sub(tally.delivered);
    report.told_twice = shared.told_twice.load(Ordering::SeqCst);
    let mut lat = tally.latencies;
    lat.sort_unstable();
    let us = |p: f64| stamp::percentile(&lat, p) as f64 / 1000.0;
    report.latency_us = [us(50.0), us(90.0), us(99.0), us(100.0)];
    report.tool_cpu_s = cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    Ok(report)
}

/// Whether every client lists every client.
fn all_listed(clients: &[Client], shared: &Shared) -> bool {
    clients
        .iter()
        .all(|c| shared.known[c.idx].load(Ordering::SeqCst) >= clients.len())
}

/// Which of `n` clients leave in a storm of `k`: spread evenly, so pairs
/// and rings lose partners all over.
fn leaves(i: usize, n: usize, k: usize) -> bool {
    i * k / n != (i + 1) * k / n
}

/// Makes `storm.count` clients leave at the same moment while a fresh
/// client connects, and waits until every survivor was told of every
/// leaver. Returns the survivors and the fresh client, the storm's
/// figures, and the leavers' tallies.
fn run_storm(
    clients: Vec<Client>,
    storm: Storm,
    addr: SocketAddr,
    opts: &LoadOptions,
    shared: &Arc<Shared>,
) -> (Vec<Client>, StormReport, Tally) {
    let n = clients.len();
    let k = storm.count.min(n);
    let (mut leavers, mut survivors) = (Vec::new(), Vec::new());
    for (i, c) in clients.into_iter().enumerate() {
        if leaves(i, n, k) {
            leavers.push(c);
        } else {
            survivors.push(c);
        }
    }
    let mut report = StormReport {
        leavers: leavers.len(),
        survivors: survivors.len(),
        expected: (leavers.len() * survivors.len()) as u64,
        ..StormReport::default()
    };
    let told_before: Vec<usize> = survivors
        .iter()
        .map(|c| shared.departed[c.idx].load(Ordering::SeqCst))
        .collect();
    progress(opts, &format!("storm: {} clients leave at once", k));

    let begun = Instant::now();
    let fresh = {
        let shared = shared.clone();
        let (idx, proto) = (opts.clients, opts.proto);
        thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || join(addr, proto, idx, &shared).map(|c| (c, begun.elapsed())))
    };
    let bye = opts.proto.bye();
    for c in &leavers {
        let _ = match storm.kind {
            StormKind::Disconnect => c.send.send(&bye),
            StormKind::Kill => c.link.stream().shutdown(std::net::Shutdown::Both),
        };
    }

    // Wait until every survivor was told of every leaver, or progress stops.
    let told = || -> u64 {
        survivors
            .iter()
            .zip(&told_before)
            .map(|(c, before)| (shared.departed[c.idx].load(Ordering::SeqCst) - before) as u64)
            .sum()
    };
    let mut last = (0, Instant::now());
    loop {
        let now = told();
        if now >= report.expected {
            break;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > opts.patience {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    report.told_ms = begun.elapsed().as_secs_f64() * 1000.0;
    report.announced = told();

    match fresh.map_err(|e| e.to_string()).and_then(|t| {
        t.join()
            .unwrap_or_else(|_| Err(io::Error::other("its thread panicked")))
            .map_err(|e| e.to_string())
    }) {
        Ok((client, took)) => {
            report.fresh_join_ms = Some(took.as_secs_f64() * 1000.0);
            survivors.push(client);
        }
        Err(e) => report.fresh_error = Some(e),
    }
    (survivors, report, finish(leavers))
}

fn resolve(server: &str) -> io::Result<SocketAddr> {
    server
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{server} has no address")))
}

fn progress(opts: &LoadOptions, line: &str) {
    if opts.progress {
        eprintln!("hubchat-load: {line}");
    }
}

/// Connects every client, `connect_concurrency` at a time.
fn connect_all(
    addr: SocketAddr,
    opts: &LoadOptions,
    shared: &Arc<Shared>,
) -> (Vec<Client>, Vec<String>) {
    let next = AtomicUsize::new(0);
    let clients = Mutex::new(Vec::with_capacity(opts.clients));
    let errors = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..opts.connect_concurrency.clamp(1, opts.clients.max(1)) {
            s.spawn(|| loop {
                let idx = next.fetch_add(1, Ordering::SeqCst);
                if idx >= opts.clients {
                    return;
                }
                match join(addr, opts.proto, idx, shared) {
                    Ok(c) => clients.lock().unwrap_or_else(|p| p.into_inner()).push(c),
                    Err(e) => errors
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("client {idx}: {e}")),
                }
            });
        }
    });
    let mut clients = clients.into_inner().unwrap_or_else(|p| p.into_inner());
    clients.sort_by_key(|c| c.idx);
    (
        clients,
        errors.into_inner().unwrap_or_else(|p| p.into_inner()),
    )
}

/// Connects one client and runs its handshake in `proto`; its reader
/// thread takes over once the client has joined.
fn join(addr: SocketAddr, proto: Proto, idx: usize, shared: &Arc<Shared>) -> io::Result<Client> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(JOIN_READ_TIMEOUT))?;
    let link = Link::plain(Arc::new(stream));
    let send = Sender(Arc::new(Mutex::new(link.clone())));
    match proto {
        Proto::Hubchat => {
            let identity = shared.identities.get(idx);
            let joined = join_hubchat(link.clone(), &send, idx, identity)?;
            start_reader(idx, link, send, joined, shared)
        }
        Proto::Irc => {
            let joined = irc::join(link.clone(), send.clone(), std::process::id(), idx)?;
            start_reader(idx, link, send, joined, shared)
        }
    }
}

/// How long a joining client waits for each answer of the server.
const JOIN_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the reader thread of a client that has joined.
fn start_reader<I: Inbound>(
    idx: usize,
    link: Link,
    send: Sender,
    joined: Joined<I>,
    shared: &Arc<Shared>,
) -> io::Result<Client> {
    link.stream().set_read_timeout(None)?;
    let mut roster = RosterCount::default();
    roster.add(joined.listed.into_iter());
    let inbound = joined.inbound;
    let reader = {
        let shared = shared.clone();
        thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || read_loop(idx, inbound, roster, &shared))?
    };
    Ok(Client {
        idx,
        id: joined.id,
        link,
        send,
        reader,
    })
}

/// A HubChat client's incoming side: frames, decoded only as far as counted.
struct Frames(FrameReader<Link>);

impl Inbound for Frames {
    fn next(&mut self) -> io::Result<Heard<'_>> {
        Ok(match wire::decode(next_frame(&mut self.0)?) {
            Ok(Seen::Message(text)) => Heard::Message(text),
            Ok(Seen::Roster(entries)) => Heard::Listed(roster_numbers(&entries).collect()),
            Ok(Seen::Departure(id)) => Heard::Left(number(&id)),
            Ok(Seen::Closed(why)) => Heard::Closed(why),
            Ok(Seen::Other) | Err(_) => Heard::Other,
        })
    }
}

/// The roster number of a HubChat id (`client<k>`).
fn number(id: &str) -> Option<usize> {
    client_number(id).and_then(|k| usize::try_from(k).ok())
}

fn roster_numbers<'e>(entries: &'e [(Cow<str>, Cow<str>)]) -> impl Iterator<Item = usize> + 'e {
    entries.iter().filter_map(|(id, _)| number(id))
}

/// Says INFO for client `idx` and reads until the server's roster lists
/// it, which tells the client its own id. With an `identity` the INFO
/// offers TLS and the client encrypts after STARTTLS, then says INFO again
/// inside TLS, as the HubChat client does; without, it is an original
/// client in plain text.
fn join_hubchat(
    link: Link,
    send: &Sender,
    idx: usize,
    identity: Option<&Credentials>,
) -> io::Result<Joined<Frames>> {
    let mut reader = FrameReader::new(link.clone(), DEFAULT_MAX_BODY * 64);
    let name = format!("load-{}-{idx}", std::process::id());
    let colors = crate::common::color::ORIGINAL_PALETTE;
    let info = Info {
        name: name.clone(),
        color: colors[idx % colors.len()].0.into(),
        image_name: format!("image_{}.png", idx % 25 + 1),
        hubchat: identity.map(|_| ClientHello {
            version: PROTOCOL_VERSION,
            image_name: None,
            tls: true,
            password: None,
        }),
    };
    let info = ClientPacket::Info(info).encode();
    send.send(&info)?;
    if let Some(identity) = identity {
        tls::await_start_tls(&mut reader)?;
        tls::encrypt(&link, &reader, identity, JOIN_READ_TIMEOUT)?;
        send.send(&info)?;
    }
    let mut listed = Vec::new();
    let id = loop {
        match wire::decode(next_frame(&mut reader)?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            Seen::Roster(entries) => {
                listed.extend(roster_numbers(&entries));
                // Our own roster is the one that lists our name (last).
                if let Some((id, _)) = entries.iter().rev().find(|(_, n)| *n == name) {
                    break id.to_string();
                }
            }
            Seen::Closed(message) => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    message.into_owned(),
                ))
            }
            _ => {}
        }
    };
    Ok(Joined {
        id,
        inbound: Frames(reader),
        listed,
    })
}

/// The next frame's body; the end of the stream is an error here.
fn next_frame(reader: &mut FrameReader<Link>) -> io::Result<&[u8]> {
    match reader.read_frame() {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection",
        )),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// Which client ids a client has in its list, as a bit per `client<k>`:
/// 10,000 clients each knowing 10,000 others fit in 12 MB this way.
#[derive(Default)]
struct RosterCount {
    bits: Vec<u64>,
    count: usize,
}

impl RosterCount {
    fn add(&mut self, numbers: impl Iterator<Item = usize>) {
        for k in numbers {
            let (word, bit) = (k / 64, 1u64 << (k % 64));
            if word >= self.bits.len() {
                self.bits.resize(word + 1, 0);
            }
            if self.bits[word] & bit == 0 {
                self.bits[word] |= bit;
                self.count += 1;
            }
        }
    }

    /// Forgets client `k`; false if it was not listed.
    fn remove(&mut self, k: usize) -> bool {
        match self.bits.get_mut(k / 64) {
            Some(word) if *word & (1 << (k % 64)) != 0 => {
                *word &= !(1 << (k % 64));
                self.count -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Reads what one client hears until the server closes it.
fn read_loop<I: Inbound>(
    idx: usize,
    mut inbound: I,
    mut roster: RosterCount,
    shared: &Shared,
) -> Tally {
    let mut tally = Tally::default();
    let known = &shared.known[idx];
    known.store(roster.count, Ordering::SeqCst);
    while let Ok(heard) = inbound.next() {
        match heard {
            Heard::Message(text) => {
                tally.record(&text, stamp::since(shared.start));
                if let Some((sender, _, _)) = stamp::parse(&text) {
                    shared.delivered(sender);
                }
            }
            Heard::Listed(numbers) => {
                roster.add(numbers.into_iter());
                known.store(roster.count, Ordering::SeqCst);
            }
            Heard::Left(k) => {
                if k.is_some_and(|k| roster.remove(k)) {
                    shared.departed[idx].fetch_add(1, Ordering::SeqCst);
                } else {
                    shared.told_twice.fetch_add(1, Ordering::SeqCst);
                }
                known.store(roster.count, Ordering::SeqCst);
            }
            Heard::Closed(_) => break,
            Heard::Other => {}
        }
    }
    tally
}

fn partner(idx: usize, n: usize, pattern: Pattern) -> usize {
    match pattern {
        Pattern::Ring => (idx + 1) % n,
        Pattern::Pairs if idx ^ 1 < n => idx ^ 1,
        Pattern::Pairs => 0,
    }
}

/// The message phase: every client sends its messages to its partner (by
/// position among `clients`); waits until all arrived or no progress was
/// made for `patience`.
fn send_all(clients: &[Client], opts: &LoadOptions, shared: &Arc<Shared>, report: &mut Report) {
    let n = clients.len();
    if n == 0 {
        return;
    }
    let expected = opts.messages * n as u64;
    shared.expected_total.store(expected, Ordering::SeqCst);
    // Writers wait for the gate to open (the write lock to be released) so
    // they all start together; if one cannot start, the others see `stop`.
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write().unwrap_or_else(|p| p.into_inner());
    let mut writers: Vec<JoinHandle<u64>> = Vec::with_capacity(n);
    for (pos, c) in clients.iter().enumerate() {
        let to = clients[partner(pos, n, opts.pattern)].id.clone();
        let idx = c.idx;
        let spawned = {
            let (send, shared, gate, opts) =
                (c.send.clone(), shared.clone(), gate.clone(), opts.clone());
            thread::Builder::new()
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    drop(gate.read().unwrap_or_else(|p| p.into_inner()));
                    write_loop(&send, idx, &to, &opts, &shared)
                })
        };
        match spawned {
            Ok(w) => writers.push(w),
            Err(e) => {
                report.failed += 1;
                report
                    .first_error
                    .get_or_insert(format!("client {idx}: {e}"));
                shared.stop.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    {
        let mut slots = shared.writers.lock().unwrap_or_else(|p| p.into_inner());
        for (c, w) in clients.iter().zip(&writers) {
            slots[c.idx] = Some(w.thread().clone());
        }
    }
    let started = Instant::now();
    drop(closed);

    let mut last = (0, Instant::now());
    let mut last_print = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        let got = shared.delivered_total.load(Ordering::SeqCst);
        if got >= expected {
            break;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > opts.patience {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(1) {
            progress(opts, &format!("{got} of {expected} messages delivered"));
            last_print = Instant::now();
        }
        // The reader that delivers the last message wakes us.
        thread::park_timeout(Duration::from_millis(100));
    }
    report.seconds = started.elapsed().as_secs_f64();
    shared.stop.store(true, Ordering::SeqCst);
    for w in &writers {
        w.thread().unpark();
    }
    report.sent = writers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
}

/// Sends one client's messages; returns how many it sent.
fn write_loop(send: &Sender, idx: usize, to: &str, opts: &LoadOptions, shared: &Shared) -> u64 {
    let begun = Instant::now();
    let mut sent = 0u64;
    let mut batch = Vec::new();
    while sent < opts.messages && !shared.stop.load(Ordering::SeqCst) {
        let room = match opts.pace {
            Pace::Window(w) => {
                let in_flight = sent - shared.delivered_from[idx].load(Ordering::SeqCst);
                if in_flight >= w {
                    thread::park_timeout(Duration::from_millis(50));
                    continue;
                }
                w - in_flight
            }
            Pace::Rate(r) => {
                // Everything due by now goes in one write; then sleep until
                // the next one is due.
                let due = (begun.elapsed().as_secs_f64() * r) as u64 + 1;
                if due <= sent {
                    let next = begun + Duration::from_secs_f64(sent as f64 / r);
                    thread::sleep(next.saturating_duration_since(Instant::now()));
                    continue;
                }
                due - sent
            }
        };
        batch.clear();
        let count = room.min(opts.messages - sent);
        for seq in sent..sent + count {
            let text = stamp::text(idx, seq, stamp::since(shared.start), opts.size);
            opts.proto.encode_message(to, text, &mut batch);
        }
        if send.send(&batch).is_err() {
            break;
        }
        sent += count;
    }
    sent
}

fn hold_for(hold: Duration, opts: &LoadOptions, shared: &Shared) {
    let until = Instant::now() + hold;
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(250).min(until - Instant::now()));
        progress(
            opts,
            &format!(
                "holding {} clients, {:.0} s left",
                shared.clients,
                (until - Instant::now()).as_secs_f64()
            ),
        );
    }
}

/// Says goodbye (DISCONNECT, or QUIT) for every client at once and gathers
/// the readers' tallies.
fn disconnect_all(clients: Vec<Client>, proto: Proto) -> Tally {
    let bye = proto.bye();
    for c in &clients {
        let _ = c.send.send(&bye);
    }
    finish(clients)
}

/// Waits for the server to close each client (as it does after DISCONNECT,
/// or after the client closed), cuts off readers still open after a grace
/// period, and gathers their tallies.
fn finish(clients: Vec<Client>) -> Tally {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && clients.iter().any(|c| !c.reader.is_finished()) {
        thread::sleep(Duration::from_millis(2));
    }
    let mut total = Tally::default();
    for c in clients {
        c.link.shutdown();
        if let Ok(t) = c.reader.join() {
            total.merge(t);
        }
    }
    total
}

/// CPU seconds this process has used (user + system), where the platform
/// tells (Linux); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_takes_exactly_k_clients_spread_over_all() {
        for (n, k) in [(10, 3), (2000, 1000), (50, 20), (7, 7), (5, 0)] {
            let chosen: Vec<usize> = (0..n).filter(|&i| leaves(i, n, k)).collect();
            assert_eq!(chosen.len(), k, "{n} {k}");
        }
        let chosen: Vec<usize> = (0..10).filter(|&i| leaves(i, 10, 2)).collect();
        assert_eq!(chosen, [4, 9]);
    }

    #[test]
    fn a_departure_counts_once_and_a_second_one_is_told_twice() {
        let mut roster = RosterCount::default();
        roster.add([0, 7, 70].into_iter());
        roster.add([7].into_iter());
        assert_eq!(roster.count, 3, "listing a client again adds nothing");
        assert!(roster.remove(7));
        assert!(!roster.remove(7), "the second announcement");
        assert!(!roster.remove(999), "never listed");
        assert_eq!(roster.count, 2);
    }
}
