//! `hubchat-load`: many headless clients against one server, counted.
//!
//! The tool speaks only the original protocol's flags, so it measures any
//! compatible server. It connects N clients with bounded concurrency, waits
//! until every client has every other in its roster (the join time), then
//! has each send M stamped messages to a partner, either as fast as a window
//! of W messages in flight allows or at a fixed rate. Receivers count what
//! arrives (see [`stamp`]); the report gives loss, duplicates, throughput,
//! latency and the tool's own CPU time. Each client has a reader thread and,
//! while sending, a writer thread; the writer sends everything its window
//! allows in one write so the tool stays cheaper than the server.

pub mod cli;
pub mod stamp;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::common::connection::FrameReader;
use crate::common::frame::DEFAULT_MAX_BODY;
use crate::common::packet::{client_number, ClientPacket, Info, ServerPacket};
use stamp::Tally;

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

/// One run's settings.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub server: String,
    pub clients: usize,
    pub messages: u64,
    pub pattern: Pattern,
    pub pace: Pace,
    pub size: usize,
    pub connect_concurrency: usize,
    /// Hold the clients connected this long instead of sending messages.
    pub hold: Option<Duration>,
    /// Give up on missing messages after this long without progress.
    pub patience: Duration,
    /// Progress lines on standard error.
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            server: "127.0.0.1:5050".into(),
            clients: 10,
            messages: 100,
            pattern: Pattern::Pairs,
            pace: Pace::Window(32),
            size: 64,
            connect_concurrency: 64,
            hold: None,
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
    /// Milliseconds from the first connect until every client listed all.
    pub join_ms: f64,
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub seconds: f64,
    pub latency_us: [f64; 4],
    pub tool_cpu_s: Option<f64>,
}

impl Report {
    /// Whether the run passed: every client joined, nothing lost or doubled.
    pub fn clean(&self) -> bool {
        self.failed == 0 && self.lost == 0 && self.duplicated == 0 && self.connected == self.clients
    }

    pub fn throughput(&self) -> f64 {
        if self.seconds > 0.0 {
            self.delivered as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Everything the clients' threads share.
struct Shared {
    start: Instant,
    clients: usize,
    /// Per sender: how many of its messages have arrived anywhere.
    delivered_from: Vec<AtomicU64>,
    /// Per client: its writer thread, woken when its window opens.
    writers: Mutex<Vec<Option<Thread>>>,
    /// Per client: how many clients its roster lists.
    known: Vec<AtomicUsize>,
    delivered_total: AtomicU64,
    stop: AtomicBool,
}

struct Client {
    idx: usize,
    id: String,
    stream: TcpStream,
    reader: JoinHandle<Tally>,
}

/// Runs the load and returns its figures.
pub fn run(opts: &LoadOptions) -> io::Result<Report> {
    let addr = resolve(&opts.server)?;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        clients: opts.clients,
        delivered_from: (0..opts.clients).map(|_| AtomicU64::new(0)).collect(),
        writers: Mutex::new(vec![None; opts.clients]),
        known: (0..opts.clients).map(|_| AtomicUsize::new(0)).collect(),
        delivered_total: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let cpu_before = cpu_seconds();
    let mut report = Report {
        clients: opts.clients,
        ..Report::default()
    };

    let (clients, errors) = connect_all(addr, opts, &shared);
    report.connected = clients.len();
    report.failed = errors.len();
    report.first_error = errors.into_iter().next();
    progress(
        opts,
        &format!("connected {} of {} clients", clients.len(), opts.clients),
    );

    // Every client has every other in its roster.
    let everyone_listed = || {
        clients
            .iter()
            .all(|c| shared.known[c.idx].load(Ordering::SeqCst) >= clients.len())
    };
    let join_deadline = Instant::now() + opts.patience.max(Duration::from_secs(60));
    while !everyone_listed() && Instant::now() < join_deadline {
        thread::sleep(Duration::from_micros(200));
    }
    report.join_ms = shared.start.elapsed().as_secs_f64() * 1000.0;

    if let Some(hold) = opts.hold {
        hold_for(hold, opts, &shared);
    } else if report.failed == 0 {
        send_all(&clients, opts, &shared, &mut report);
    }

    let tally = disconnect_all(clients);
    report.delivered = tally.delivered;
    report.duplicated = tally.duplicates;
    report.lost = report.sent.saturating_sub(tally.delivered);
    let mut lat = tally.latencies;
    lat.sort_unstable();
    let us = |p: f64| stamp::percentile(&lat, p) as f64 / 1000.0;
    report.latency_us = [us(50.0), us(90.0), us(99.0), us(100.0)];
    report.tool_cpu_s = cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    Ok(report)
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
                match join(addr, idx, shared) {
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

/// Connects one client and runs its handshake; its reader thread takes over
/// once the client knows its own id.
fn join(addr: SocketAddr, idx: usize, shared: &Arc<Shared>) -> io::Result<Client> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = FrameReader::new(stream.try_clone()?, DEFAULT_MAX_BODY * 64);
    let name = format!("load-{}-{idx}", std::process::id());
    let colors = crate::common::color::ORIGINAL_PALETTE;
    let info = Info {
        name: name.clone(),
        color: colors[idx % colors.len()].0.into(),
        image_name: format!("image_{}.png", idx % 25 + 1),
        hubchat: None,
    };
    (&stream).write_all(&ClientPacket::Info(info).encode())?;
    let mut roster = RosterCount::default();
    let id = loop {
        match next_packet(&mut reader)? {
            ServerPacket::AllClients(r) => {
                roster.add(r.0.iter().map(|(id, _)| id.as_str()));
                if let Some((id, _)) = r.0.iter().rev().find(|(_, p)| p.name == name) {
                    break id.clone();
                }
            }
            ServerPacket::ServerClose { message } => {
                return Err(io::Error::new(io::ErrorKind::ConnectionRefused, message))
            }
            _ => {}
        }
    };
    stream.set_read_timeout(None)?;
    let reader = {
        let shared = shared.clone();
        thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || read_loop(idx, reader, roster, &shared))?
    };
    Ok(Client {
        idx,
        id,
        stream,
        reader,
    })
}

fn next_packet(reader: &mut FrameReader<TcpStream>) -> io::Result<ServerPacket> {
    match reader.read_frame() {
        Ok(Some(body)) => {
            ServerPacket::decode(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
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
    fn add<'a>(&mut self, ids: impl Iterator<Item = &'a str>) {
        for k in ids.filter_map(client_number).map(|k| k as usize) {
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

    fn remove(&mut self, id: &str) {
        if let Some(k) = client_number(id).map(|k| k as usize) {
            if let Some(word) = self.bits.get_mut(k / 64) {
                if *word & (1 << (k % 64)) != 0 {
                    *word &= !(1 << (k % 64));
                    self.count -= 1;
                }
            }
        }
    }
}

/// Reads one client's packets until the server closes it.
fn read_loop(
    idx: usize,
    mut reader: FrameReader<TcpStream>,
    mut roster: RosterCount,
    shared: &Shared,
) -> Tally {
    let mut tally = Tally::default();
    let known = &shared.known[idx];
    known.store(roster.count, Ordering::SeqCst);
    while let Ok(packet) = next_packet(&mut reader) {
        match packet {
            ServerPacket::Message { text, .. } => {
                tally.record(&text, stamp::since(shared.start));
                if let Some((sender, _, _)) = stamp::parse(&text) {
                    if let Some(count) = shared.delivered_from.get(sender) {
                        count.fetch_add(1, Ordering::SeqCst);
                        shared.delivered_total.fetch_add(1, Ordering::Relaxed);
                        wake_writer(shared, sender);
                    }
                }
            }
            ServerPacket::AllClients(r) => {
                roster.add(r.0.iter().map(|(id, _)| id.as_str()));
                known.store(roster.count, Ordering::SeqCst);
            }
            ServerPacket::Disconnect { id } => {
                roster.remove(&id);
                known.store(roster.count, Ordering::SeqCst);
            }
            ServerPacket::ServerClose { .. } => break,
            _ => {}
        }
    }
    tally
}

fn wake_writer(shared: &Shared, sender: usize) {
    if let Some(Some(t)) = shared
        .writers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(sender)
    {
        t.unpark();
    }
}

fn partner(idx: usize, n: usize, pattern: Pattern) -> usize {
    match pattern {
        Pattern::Ring => (idx + 1) % n,
        Pattern::Pairs if idx ^ 1 < n => idx ^ 1,
        Pattern::Pairs => 0,
    }
}

/// The message phase: every client sends its messages; waits until all
/// arrived or no progress was made for `patience`.
fn send_all(clients: &[Client], opts: &LoadOptions, shared: &Arc<Shared>, report: &mut Report) {
    let n = clients.len();
    if n == 0 {
        return;
    }
    let barrier = Arc::new(Barrier::new(n + 1));
    let writers: Vec<JoinHandle<u64>> = clients
        .iter()
        .map(|c| {
            let to = clients[partner(c.idx, n, opts.pattern)].id.clone();
            let stream = c.stream.try_clone().expect("clone a connected socket");
            let (shared, barrier, opts, idx) =
                (shared.clone(), barrier.clone(), opts.clone(), c.idx);
            thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || write_loop(stream, idx, &to, &opts, &shared, &barrier))
                .expect("spawn a writer thread")
        })
        .collect();
    {
        let mut slots = shared.writers.lock().unwrap_or_else(|p| p.into_inner());
        for (c, w) in clients.iter().zip(&writers) {
            slots[c.idx] = Some(w.thread().clone());
        }
    }
    barrier.wait();
    let started = Instant::now();
    let expected = opts.messages * n as u64;
    let mut last = (0, Instant::now());
    let mut last_print = Instant::now();
    loop {
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
        thread::sleep(Duration::from_micros(100));
    }
    report.seconds = started.elapsed().as_secs_f64();
    shared.stop.store(true, Ordering::SeqCst);
    for w in &writers {
        w.thread().unpark();
    }
    report.sent = writers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
}

/// Sends one client's messages; returns how many it sent.
fn write_loop(
    mut stream: TcpStream,
    idx: usize,
    to: &str,
    opts: &LoadOptions,
    shared: &Shared,
    barrier: &Barrier,
) -> u64 {
    barrier.wait();
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
            let message = ClientPacket::Message {
                to: to.to_string(),
                text,
            };
            batch.extend_from_slice(&message.encode());
        }
        if stream.write_all(&batch).is_err() {
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

/// Says DISCONNECT for every client at once and gathers the readers' tallies.
fn disconnect_all(clients: Vec<Client>) -> Tally {
    let bye = ClientPacket::Disconnect.encode();
    for c in &clients {
        let _ = (&c.stream).write_all(&bye);
    }
    // The server closes each connection after DISCONNECT; readers still
    // open after a grace period are cut off.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && clients.iter().any(|c| !c.reader.is_finished()) {
        thread::sleep(Duration::from_millis(2));
    }
    let mut total = Tally::default();
    for c in clients {
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
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
