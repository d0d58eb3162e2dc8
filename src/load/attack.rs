//! `hubchat-load attack`: a hostile LAN user, measured.
//!
//! Each attack runs against a server on loopback while a pair of normal
//! clients chats throughout, from addresses of their own, and a newcomer
//! from yet another address tries to join once a second. For every attack
//! the tool reports the server's peak memory, the pair's latency and loss,
//! how many newcomers got in within a second, and how fast the server
//! honoured SIGTERM afterwards (when the tool started it). Every attack is
//! bounded in connections and in time and stops by itself; nothing is ever
//! sent beyond loopback (see [`attack_net`](super::attack_net)).
//!
//! The attacks themselves are in [`attack_kinds`](super::attack_kinds); this
//! module is the bench around them.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::attack_kinds;
use super::attack_net::{self, connect_from, OwnServer, Source, Stopped};
use super::stamp::{self, Tally};
use super::wire::{self, Seen};
use crate::common::connection::FrameReader;
use crate::common::packet::{ClientHello, ClientPacket, Info, PROTOCOL_VERSION};

/// The goals from issue 10, printed beside the figures.
pub const GOAL_RSS_KIB: u64 = 256 * 1024;
pub const GOAL_P99_MS: f64 = 50.0;
pub const GOAL_NEWCOMER: Duration = Duration::from_secs(1);

/// The attacks, in the order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    SlowHeader,
    SlowHandshake,
    BigColour,
    JoinLeave,
    Flood,
    PictureFlood,
    StalledReaders,
    InflatingPng,
    PalettePanic,
    LogPressure,
    LookAlikes,
}

impl Attack {
    pub const ALL: [Attack; 11] = [
        Attack::SlowHeader,
        Attack::SlowHandshake,
        Attack::BigColour,
        Attack::JoinLeave,
        Attack::Flood,
        Attack::PictureFlood,
        Attack::StalledReaders,
        Attack::InflatingPng,
        Attack::PalettePanic,
        Attack::LogPressure,
        Attack::LookAlikes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::SlowHeader => "slow-header",
            Attack::SlowHandshake => "slow-handshake",
            Attack::BigColour => "big-colour",
            Attack::JoinLeave => "join-leave",
            Attack::Flood => "flood",
            Attack::PictureFlood => "picture-flood",
            Attack::StalledReaders => "stalled-readers",
            Attack::InflatingPng => "inflating-png",
            Attack::PalettePanic => "palette-panic",
            Attack::LogPressure => "log-pressure",
            Attack::LookAlikes => "look-alikes",
        }
    }

    pub fn by_name(name: &str) -> Option<Attack> {
        Attack::ALL.into_iter().find(|a| a.name() == name)
    }

    /// What `--count` means for this attack, and its default.
    pub fn count_meaning(self) -> (&'static str, usize) {
        match self {
            Attack::SlowHeader => ("connections", 500),
            Attack::SlowHandshake => ("connections", 1300),
            Attack::BigColour => ("original clients with a 1 MB colour", 3),
            Attack::JoinLeave => ("join/leave cycles", 28),
            Attack::Flood => ("messages a second, 0 as fast as possible", 0),
            Attack::PictureFlood => ("pictures a second", 150),
            Attack::StalledReaders => ("HubChat clients that never read", 200),
            Attack::InflatingPng => ("pictures", 1),
            Attack::PalettePanic => ("pictures", 1),
            Attack::LogPressure => ("messages a second, 0 as fast as possible", 0),
            Attack::LookAlikes => ("(not used)", 0),
        }
    }
}

/// One attack run's settings.
#[derive(Debug, Clone)]
pub struct AttackOptions {
    pub attacks: Vec<Attack>,
    /// A server to attack; `None`: start `hubchat-server` for each attack.
    pub server: Option<SocketAddr>,
    /// The attacked server's process, to read its memory.
    pub server_pid: Option<u32>,
    /// The server executable to start; `None`: the one beside this program.
    pub server_exe: Option<PathBuf>,
    /// Extra arguments for a server the tool starts.
    pub server_args: Vec<String>,
    /// `--max-clients` of a server the tool starts.
    pub max_clients: usize,
    /// How long each attack lasts.
    pub seconds: u64,
    /// The attack's scale (see [`Attack::count_meaning`]); `None`: default.
    pub count: Option<usize>,
    /// Normal users present during the attacks that have bystanders.
    pub bystanders: usize,
    /// Attacker connections come from this many loopback addresses.
    pub spread: usize,
    /// Messages a second each of the pair sends.
    pub pair_rate: f64,
    /// Bytes a second of an own server's log the tool reads; `None`: as
    /// fast as it comes, except 1 MB/s for log-pressure.
    pub log_rate: Option<u64>,
    pub progress: bool,
}

impl Default for AttackOptions {
    fn default() -> Self {
        AttackOptions {
            attacks: Vec::new(),
            server: None,
            server_pid: None,
            server_exe: None,
            server_args: Vec::new(),
            max_clients: 1000,
            seconds: 10,
            count: None,
            bystanders: 200,
            spread: 1,
            pair_rate: 15.0,
            log_rate: None,
            progress: false,
        }
    }
}

impl AttackOptions {
    pub fn count(&self, attack: Attack) -> usize {
        self.count.unwrap_or(attack.count_meaning().1)
    }
}

/// What one attack measured.
#[derive(Debug, Clone, Default)]
pub struct AttackReport {
    pub attack: &'static str,
    pub seconds: f64,
    /// The server's peak resident memory in KiB (`VmHWM` of a server the
    /// tool started; the highest `VmRSS` sampled otherwise).
    pub peak_rss_kib: Option<u64>,
    pub pair_sent: u64,
    pub pair_delivered: u64,
    pub pair_lost: u64,
    /// The pair's one-way latency in milliseconds: p50, p99, max.
    pub pair_ms: [f64; 3],
    /// Seconds into the attack when a member of the pair was dropped.
    pub pair_dropped_at: Option<f64>,
    pub newcomers: usize,
    pub newcomers_in_time: usize,
    pub slowest_newcomer_ms: Option<f64>,
    pub newcomer_error: Option<String>,
    pub stopped: Option<Stopped>,
    pub server_panics: Option<u64>,
    pub log_bytes: Option<u64>,
    /// What this attack saw of its own effect, in words.
    pub notes: Vec<String>,
}

impl AttackReport {
    /// Whether the goals of issue 10 held.
    pub fn goals_met(&self) -> bool {
        self.peak_rss_kib.is_some_and(|k| k <= GOAL_RSS_KIB)
            && self.pair_ms[1] < GOAL_P99_MS
            && self.pair_lost == 0
            && self.pair_dropped_at.is_none()
            && self.newcomers > 0
            && self.newcomers_in_time == self.newcomers
            && self.stopped.is_none_or(|s| s.honoured && s.seconds <= 2.0)
            && !self.harmed()
    }

    /// Whether the attack saw damage of its own kind (a victim dropped, a
    /// ghost left, a look-alike name accepted, ...).
    pub fn harmed(&self) -> bool {
        self.notes.iter().any(|n| n.starts_with(attack_kinds::HARM))
    }
}

/// What an attack's code is given: where the server is, when to stop, and
/// its scale.
pub struct Bench {
    pub addr: SocketAddr,
    pub stop: Arc<AtomicBool>,
    pub count: usize,
    pub bystanders: usize,
    pub spread: usize,
    pub seconds: u64,
    /// A unique prefix for names, so runs against one server never clash.
    pub tag: String,
}

impl Bench {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, waking early when the attack is over.
    pub fn nap(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() && Instant::now() < until {
            thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
    }
}

/// Runs every chosen attack in turn; each report is passed to `each` as
/// soon as it is ready.
pub fn run(
    opts: &AttackOptions,
    mut each: impl FnMut(&AttackReport),
) -> Result<Vec<AttackReport>, String> {
    let _ = crate::common::fdlimit::raise_open_file_limit();
    let exe = match (&opts.server, &opts.server_exe) {
        (Some(_), _) => None,
        (None, Some(exe)) => Some(exe.clone()),
        (None, None) => Some(attack_net::server_beside_me()?),
    };
    let mut reports = Vec::new();
    for &attack in &opts.attacks {
        let report = run_one(attack, opts, exe.as_deref())?;
        each(&report);
        reports.push(report);
    }
    Ok(reports)
}

fn progress(opts: &AttackOptions, line: &str) {
    if opts.progress {
        eprintln!("hubchat-load attack: {line}");
    }
}

fn run_one(
    attack: Attack,
    opts: &AttackOptions,
    exe: Option<&std::path::Path>,
) -> Result<AttackReport, String> {
    let own = match exe {
        Some(exe) => {
            let log_rate = opts.log_rate.unwrap_or(match attack {
                Attack::LogPressure => 1_000_000,
                _ => 0,
            });
            Some(OwnServer::start(
                exe,
                opts.max_clients,
                &opts.server_args,
                log_rate,
            )?)
        }
        None => None,
    };
    let addr = own
        .as_ref()
        .map(|s| s.addr)
        .or(opts.server)
        .ok_or("no server to attack")?;
    let pid = own.as_ref().map(OwnServer::pid).or(opts.server_pid);
    progress(
        opts,
        &format!("{} against {addr} for {} s", attack.name(), opts.seconds),
    );

    let tag = format!("a{}x{}", std::process::id(), attack as u8);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|pid| Sampler::start(pid, own.is_some(), stop.clone()));
    let pair = Pair::start(addr, &tag, opts.pair_rate)
        .map_err(|e| format!("the chatting pair could not join {addr}: {e}"))?;
    let bench = Bench {
        addr,
        stop: stop.clone(),
        count: opts.count(attack),
        bystanders: opts.bystanders,
        spread: opts.spread.max(1),
        seconds: opts.seconds,
        tag: tag.clone(),
    };
    let begun = Instant::now();
    let attacker = thread::Builder::new()
        .name(attack.name().into())
        .spawn(move || attack_kinds::run(attack, &bench))
        .map_err(|e| format!("cannot start the attack's thread: {e}"))?;

    let probes = newcomers_each_second(addr, &tag, begun, opts.seconds);
    sleep_until(begun + Duration::from_secs(opts.seconds));
    stop.store(true, Ordering::SeqCst);

    let mut report = AttackReport {
        attack: attack.name(),
        ..AttackReport::default()
    };
    report.notes = attacker
        .join()
        .unwrap_or_else(|_| vec!["the attack's own thread panicked".into()]);
    report.seconds = begun.elapsed().as_secs_f64();
    pair.finish(begun, &mut report);
    count_newcomers(probes, &mut report);
    report.peak_rss_kib = sampler.and_then(Sampler::finish);
    if let Some(own) = own {
        report.server_panics = Some(own.panics.load(Ordering::Relaxed));
        let log = own.log_bytes.clone();
        report.stopped = Some(own.stop(Duration::from_secs(15)));
        report.log_bytes = Some(log.load(Ordering::Relaxed));
    }
    Ok(report)
}

/// Starts a newcomer's join at each whole second of the attack but the
/// last; each thread returns how long its join took.
fn newcomers_each_second(
    addr: SocketAddr,
    tag: &str,
    begun: Instant,
    seconds: u64,
) -> Vec<JoinHandle<Result<Duration, String>>> {
    let mut probes = Vec::new();
    for second in 1..seconds.max(2) {
        sleep_until(begun + Duration::from_secs(second));
        let name = format!("{tag}-new{second}");
        probes.push(thread::spawn(move || newcomer(addr, &name)));
    }
    probes
}

/// Gathers the newcomers' joins into the report.
fn count_newcomers(probes: Vec<JoinHandle<Result<Duration, String>>>, report: &mut AttackReport) {
    for p in probes {
        report.newcomers += 1;
        match p
            .join()
            .unwrap_or_else(|_| Err("its thread panicked".into()))
        {
            Ok(took) => {
                let ms = took.as_secs_f64() * 1000.0;
                report.newcomers_in_time += usize::from(took <= GOAL_NEWCOMER);
                report.slowest_newcomer_ms =
                    Some(report.slowest_newcomer_ms.unwrap_or(0.0).max(ms));
            }
            Err(e) => {
                report.newcomer_error.get_or_insert(e);
            }
        }
    }
}

fn sleep_until(t: Instant) {
    thread::sleep(t.saturating_duration_since(Instant::now()));
}

/// Reads the server's memory every 50 ms until told to stop.
struct Sampler {
    thread: JoinHandle<Option<u64>>,
}

impl Sampler {
    /// `own`: the process was started for this attack, so its `VmHWM` is
    /// this attack's peak; a server started earlier may have peaked before,
    /// so only the samples count for it.
    fn start(pid: u32, own: bool, stop: Arc<AtomicBool>) -> Sampler {
        let thread = thread::spawn(move || {
            let mut peak: Option<u64> = None;
            loop {
                if let Some((rss, hwm)) = attack_net::memory_kib(pid) {
                    let seen = if own { rss.max(hwm) } else { rss };
                    peak = Some(peak.unwrap_or(0).max(seen));
                }
                if stop.load(Ordering::SeqCst) {
                    return peak;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler { thread }
    }

    fn finish(self) -> Option<u64> {
        self.thread.join().ok().flatten()
    }
}

/// A client of the bench: a socket and its frame reader, joined.
pub struct Joined {
    pub stream: TcpStream,
    pub reader: FrameReader<TcpStream>,
    pub id: String,
}

/// The INFO of a bench client: HubChat or original, with a colour.
pub fn info(name: &str, color: &str, hubchat: bool) -> ClientPacket {
    ClientPacket::Info(Info {
        name: name.into(),
        color: color.into(),
        image_name: "image_3.png".into(),
        hubchat: hubchat.then_some(ClientHello {
            version: PROTOCOL_VERSION,
            image_name: None,
            ..Default::default()
        }),
    })
}

/// Connects from `from`, sends `hello` (an INFO) and waits up to `patience`
/// for the roster that lists `name`; the refusal's sentence otherwise.
pub fn join(
    from: Source,
    addr: SocketAddr,
    name: &str,
    hello: &ClientPacket,
    patience: Duration,
) -> Result<Joined, String> {
    let deadline = Instant::now() + patience;
    let mut stream = connect_from(from, addr).map_err(|e| format!("cannot connect: {e}"))?;
    let read_clone = stream
        .try_clone()
        .map_err(|e| format!("cannot share the socket: {e}"))?;
    stream
        .write_all(&hello.encode())
        .map_err(|e| format!("cannot send INFO: {e}"))?;
    let mut reader = FrameReader::new(read_clone, 64 << 20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("not listed within {} ms", patience.as_millis()));
        }
        let _ = stream.set_read_timeout(Some(left));
        let body = match reader.read_frame() {
            Ok(Some(body)) => body,
            Ok(None) => return Err("the server closed the connection".into()),
            Err(e) => return Err(format!("no roster: {e}")),
        };
        match wire::decode(body) {
            Ok(Seen::Roster(entries)) => {
                if let Some((id, _)) = entries.iter().rev().find(|(_, n)| n == name) {
                    let id = id.to_string();
                    let _ = stream.set_read_timeout(None);
                    return Ok(Joined { stream, reader, id });
                }
            }
            Ok(Seen::Closed(why)) => return Err(format!("refused: {why}")),
            _ => {}
        }
    }
}

/// A newcomer from 127.0.0.2 joins as a HubChat client; how long it took.
fn newcomer(addr: SocketAddr, name: &str) -> Result<Duration, String> {
    let begun = Instant::now();
    let patience = Duration::from_secs(5);
    let joined = join(
        Source::Newcomer,
        addr,
        name,
        &info(name, "blue", true),
        patience,
    )?;
    let took = begun.elapsed();
    let mut s = &joined.stream;
    let _ = s.write_all(&ClientPacket::Disconnect.encode());
    Ok(took)
}

/// Two normal original clients, each sending stamped messages to the other
/// at a steady rate for the whole attack.
struct Pair {
    stop: Arc<AtomicBool>,
    streams: Vec<TcpStream>,
    writers: Vec<JoinHandle<u64>>,
    readers: Vec<JoinHandle<(Tally, Option<Instant>)>>,
    delivered: Arc<AtomicU64>,
}

impl Pair {
    fn start(addr: SocketAddr, tag: &str, rate: f64) -> Result<Pair, String> {
        let patience = Duration::from_secs(10);
        let a_name = format!("{tag}-pair0");
        let b_name = format!("{tag}-pair1");
        let a = join(
            Source::Pair(0),
            addr,
            &a_name,
            &info(&a_name, "red", false),
            patience,
        )?;
        let b = join(
            Source::Pair(1),
            addr,
            &b_name,
            &info(&b_name, "blue", false),
            patience,
        )?;
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(AtomicU64::new(0));
        let mut pair = Pair {
            stop: stop.clone(),
            streams: Vec::new(),
            writers: Vec::new(),
            readers: Vec::new(),
            delivered: delivered.clone(),
        };
        let ids = [a.id.clone(), b.id.clone()];
        for (k, joined) in [a, b].into_iter().enumerate() {
            let to = ids[1 - k].clone();
            let out = joined
                .stream
                .try_clone()
                .map_err(|e| format!("cannot share the socket: {e}"))?;
            pair.streams.push(joined.stream);
            let (stop_w, stop_r) = (stop.clone(), stop.clone());
            let count = delivered.clone();
            pair.writers.push(thread::spawn(move || {
                talk(&mut { out }, k, &to, rate, start, &stop_w)
            }));
            let reader = joined.reader;
            pair.readers.push(thread::spawn(move || {
                listen(reader, start, &stop_r, &count)
            }));
        }
        Ok(pair)
    }

    /// Stops sending, waits up to 2 s for what is in flight, and fills in
    /// the pair's figures.
    fn finish(self, begun: Instant, report: &mut AttackReport) {
        self.stop.store(true, Ordering::SeqCst);
        let sent: u64 = self
            .writers
            .into_iter()
            .map(|w| w.join().unwrap_or(0))
            .sum();
        let grace = Instant::now() + Duration::from_secs(2);
        while self.delivered.load(Ordering::SeqCst) < sent && Instant::now() < grace {
            thread::sleep(Duration::from_millis(5));
        }
        for s in &self.streams {
            let mut s = s;
            let _ = s.write_all(&ClientPacket::Disconnect.encode());
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let mut tally = Tally::default();
        for r in self.readers {
            if let Ok((t, dropped)) = r.join() {
                tally.merge(t);
                if let Some(at) = dropped {
                    let secs = at.saturating_duration_since(begun).as_secs_f64();
                    report.pair_dropped_at =
                        Some(report.pair_dropped_at.map_or(secs, |d: f64| d.min(secs)));
                }
            }
        }
        report.pair_sent = sent;
        report.pair_delivered = tally.delivered;
        report.pair_lost = sent.saturating_sub(tally.delivered);
        let mut lat = tally.latencies;
        lat.sort_unstable();
        let ms = |p: f64| stamp::percentile(&lat, p) as f64 / 1e6;
        report.pair_ms = [ms(50.0), ms(99.0), ms(100.0)];
    }
}

/// Sends a stamped message to `to` every 1/rate seconds until `stop`
/// (seen within 20 ms, also between slow messages); returns how many. The
/// files mode's chat uses it too.
pub(crate) fn talk(
    out: &mut TcpStream,
    me: usize,
    to: &str,
    rate: f64,
    start: Instant,
    stop: &AtomicBool,
) -> u64 {
    let begun = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let text = stamp::text(me, sent, stamp::since(start), 64);
        let packet = ClientPacket::Message {
            to: to.into(),
            text,
        };
        if out.write_all(&packet.encode()).is_err() {
            break;
        }
        sent += 1;
        let next = begun + Duration::from_secs_f64(sent as f64 / rate.max(0.1));
        while !stop.load(Ordering::SeqCst) {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(Duration::from_millis(20)));
        }
    }
    sent
}

/// Counts the stamped messages that arrive; notes when the server dropped
/// this client before the end.
fn listen(
    mut reader: FrameReader<TcpStream>,
    start: Instant,
    stop: &AtomicBool,
    count: &AtomicU64,
) -> (Tally, Option<Instant>) {
    let mut tally = Tally::default();
    while let Ok(Some(body)) = reader.read_frame() {
        match wire::decode(body) {
            Ok(Seen::Message(text)) => {
                tally.record(&text, stamp::since(start));
                count.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Seen::Closed(_)) => break,
            _ => {}
        }
    }
    let dropped = (!stop.load(Ordering::SeqCst)).then(Instant::now);
    (tally, dropped)
}

/// Keeps a list of sentences across an attack's threads.
#[derive(Default, Clone)]
pub struct Notes(Arc<Mutex<Vec<String>>>);

impl Notes {
    pub fn add(&self, line: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.into());
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One attack's report as a readable block.
pub fn table(r: &AttackReport) -> String {
    let mut t = format!("attack {} ({:.1} s)\n", r.attack, r.seconds);
    let rss = match r.peak_rss_kib {
        Some(k) => format!("{:.1} MB", k as f64 / 1024.0),
        None => "unknown (pass --server-pid)".into(),
    };
    t += &format!("  server peak RSS   {rss} (goal <= 256 MB)\n");
    let [p50, p99, max] = r.pair_ms;
    t += &format!(
        "  pair              {} sent, {} delivered, {} lost; p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (goal p99 < 50 ms, no loss)\n",
        r.pair_sent, r.pair_delivered, r.pair_lost
    );
    if let Some(at) = r.pair_dropped_at {
        t += &format!("  pair dropped      {at:.1} s into the attack\n");
    }
    t += &format!(
        "  newcomers         {} of {} joined within 1 s{} (goal: all)\n",
        r.newcomers_in_time,
        r.newcomers,
        r.slowest_newcomer_ms
            .map(|ms| format!(", slowest {ms:.0} ms"))
            .unwrap_or_default()
    );
    if let Some(e) = &r.newcomer_error {
        t += &format!("  newcomer error    {e}\n");
    }
    if let Some(s) = r.stopped {
        t += &if s.honoured {
            format!(
                "  SIGTERM           exited in {:.2} s (goal <= 2 s)\n",
                s.seconds
            )
        } else {
            format!(
                "  SIGTERM           ignored for {:.0} s, killed\n",
                s.seconds
            )
        };
    }
    if let Some(n) = r.server_panics.filter(|n| *n > 0) {
        t += &format!("  server panics     {n} reported on its standard error\n");
    }
    if let Some(b) = r.log_bytes {
        t += &format!("  server log        {:.1} MB read\n", b as f64 / 1e6);
    }
    for n in &r.notes {
        t += &format!("  attack            {n}\n");
    }
    t += &format!(
        "  goals             {}\n",
        if r.goals_met() { "met" } else { "NOT met" }
    );
    t
}

/// One line per attack, for the README.
pub fn summary(reports: &[AttackReport]) -> String {
    let mut t = String::from(
        "| attack | peak RSS | pair p99 | newcomers <= 1 s | pair lost | SIGTERM | harm seen |\n|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let rss = r
            .peak_rss_kib
            .map_or("?".into(), |k| format!("{:.0} MB", k as f64 / 1024.0));
        let stop = match r.stopped {
            Some(s) if s.honoured => format!("{:.1} s", s.seconds),
            Some(s) => format!("ignored {:.0} s", s.seconds),
            None => "-".into(),
        };
        t += &format!(
            "| {} | {rss} | {:.1} ms | {}/{} | {}{} | {stop} | {} |\n",
            r.attack,
            r.pair_ms[1],
            r.newcomers_in_time,
            r.newcomers,
            r.pair_lost,
            if r.pair_dropped_at.is_some() {
                " (dropped)"
            } else {
                ""
            },
            if r.harmed() { "yes" } else { "no" }
        );
    }
    t
}

/// One attack's report as a JSON line, for scripts.
pub fn json(r: &AttackReport) -> String {
    serde_json::json!({
        "attack": r.attack,
        "seconds": r.seconds,
        "peak_rss_kib": r.peak_rss_kib,
        "pair": {
            "sent": r.pair_sent,
            "delivered": r.pair_delivered,
            "lost": r.pair_lost,
            "p50_ms": r.pair_ms[0],
            "p99_ms": r.pair_ms[1],
            "max_ms": r.pair_ms[2],
            "dropped_at_s": r.pair_dropped_at,
        },
        "newcomers": r.newcomers,
        "newcomers_within_1s": r.newcomers_in_time,
        "slowest_newcomer_ms": r.slowest_newcomer_ms,
        "newcomer_error": r.newcomer_error,
        "sigterm_s": r.stopped.map(|s| s.seconds),
        "sigterm_honoured": r.stopped.map(|s| s.honoured),
        "server_panics": r.server_panics,
        "log_bytes": r.log_bytes,
        "notes": r.notes,
        "harmed": r.harmed(),
        "goals_met": r.goals_met(),
    })
    .to_string()
}

/// Writes to standard output, ignoring a closed pipe.
pub fn print(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
