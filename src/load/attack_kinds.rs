//! The hostile traffic of each attack in issue 10's table, bounded by the
//! bench's count and stopped by its flag. Each attack returns sentences on
//! what it saw of its own effect (refused, dropped, forwarded, ...); the
//! bench around it ([`attack`](super::attack)) measures the server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::attack::{info, join, Attack, Bench, Joined};
use super::attack_net::{connect_from, Source};
use super::attack_png;
use crate::common::connection::FrameReader;
use crate::common::packet::{ClientPacket, ServerPacket};

/// Marks a note as damage done: the goals then count as missed.
pub const HARM: &str = "HARM: ";

fn harm(line: impl std::fmt::Display) -> String {
    format!("{HARM}{line}")
}

/// A name as it can be read in a terminal: ASCII as is, the rest escaped.
fn shown(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

/// A colour of nearly one mebibyte (valid characters for a Tk colour
/// name), so that the whole INFO stays within a 1 MiB packet limit.
const BIG_COLOUR_BYTES: usize = (1 << 20) - 512;

/// Runs `attack` until the bench says stop; what it saw, in words.
pub fn run(attack: Attack, b: &Bench) -> Vec<String> {
    match attack {
        Attack::SlowHeader => slow_frames(b, 1_000_000),
        Attack::SlowHandshake => slow_frames(b, 200),
        Attack::BigColour => big_colour(b),
        Attack::JoinLeave => join_leave(b),
        Attack::Flood => flood(b, Target::Victim),
        Attack::PictureFlood => picture_flood(b),
        Attack::StalledReaders => stalled_readers(b),
        Attack::InflatingPng => bad_picture(b, &attack_png::inflating().0, "inflating"),
        Attack::PalettePanic => palette_panic(b),
        Attack::LogPressure => flood(b, Target::Nobody),
        Attack::LookAlikes => look_alikes(b),
    }
}

fn attacker(b: &Bench, i: usize) -> Source {
    Source::Attacker {
        i,
        spread: b.spread,
    }
}

/// Connections that send a header announcing `announce` bytes, then one
/// byte every 5 s: the slow-header (large announcement) and slow-handshake
/// attacks.
fn slow_frames(b: &Bench, announce: usize) -> Vec<String> {
    let header = format!("{announce:<10}");
    let mut open: Vec<TcpStream> = Vec::with_capacity(b.count);
    let mut failed = 0usize;
    let mut first_error = None;
    let mut sent = 0u64;
    for i in 0..b.count {
        if b.stopped() {
            break;
        }
        match connect_from(attacker(b, i), b.addr).and_then(|mut s| {
            s.set_write_timeout(Some(Duration::from_millis(200)))?;
            s.write_all(header.as_bytes())?;
            Ok(s)
        }) {
            Ok(s) => {
                sent += 10;
                open.push(s);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let opened = open.len();
    let mut closed = 0usize;
    while !b.stopped() {
        b.nap(Duration::from_secs(5));
        if b.stopped() {
            break;
        }
        open.retain_mut(|s| match s.write_all(b"x") {
            Ok(()) => {
                sent += 1;
                true
            }
            Err(_) => {
                closed += 1;
                false
            }
        });
    }
    let mut notes = vec![format!(
        "{opened} of {} connections opened, each announcing {announce} bytes then sending 1 byte every 5 s; {} bytes sent in all",
        b.count, sent
    )];
    if let Some(e) = first_error {
        notes.push(format!("{failed} could not connect (first: {e})"));
    }
    notes.push(format!(
        "{} still open at the end, {closed} found closed by the server",
        open.len()
    ));
    notes
}

/// Normal users on addresses of their own that read everything and count
/// it: their drops show an attack's damage to others.
struct Bystanders {
    joined: usize,
    first_error: Option<String>,
    drains: Vec<Drain>,
}

impl Bystanders {
    fn join(b: &Bench, hubchat: bool) -> Bystanders {
        let mut crowd = Bystanders {
            joined: 0,
            first_error: None,
            drains: Vec::new(),
        };
        for i in 0..b.bystanders {
            let name = format!("{}-by{i}", b.tag);
            let hello = info(&name, "plum", hubchat);
            match join(
                Source::Bystander(i),
                b.addr,
                &name,
                &hello,
                Duration::from_secs(5),
            ) {
                Ok(j) => {
                    crowd.joined += 1;
                    crowd.drains.push(Drain::start(j.stream, b));
                }
                Err(e) => {
                    crowd.first_error.get_or_insert(e);
                }
            }
        }
        crowd
    }

    fn report(self, b: &Bench) -> Vec<String> {
        let bytes: u64 = self
            .drains
            .iter()
            .map(|d| d.bytes.load(Ordering::Relaxed))
            .sum();
        let dropped: Vec<f64> = self.drains.into_iter().filter_map(Drain::finish).collect();
        let line = format!(
            "bystanders: {} of {} joined, {} dropped by the server during the attack, {:.1} MB sent to them",
            self.joined,
            b.bystanders,
            dropped.len(),
            bytes as f64 / 1e6
        );
        let hurt = !dropped.is_empty() || self.joined < b.bystanders;
        let mut notes = vec![if hurt { harm(line) } else { line }];
        if let Some(e) = self.first_error {
            notes.push(harm(format!("a bystander could not join: {e}")));
        }
        notes
    }
}

/// Reads a socket to its end, counting bytes; notes when the server closed
/// it before the attack was over.
struct Drain {
    bytes: Arc<AtomicU64>,
    thread: JoinHandle<Option<f64>>,
    stream: TcpStream,
}

impl Drain {
    fn start(stream: TcpStream, b: &Bench) -> Drain {
        let bytes = Arc::new(AtomicU64::new(0));
        let (count, stop) = (bytes.clone(), b.stop.clone());
        let read = stream.try_clone();
        let begun = Instant::now();
        let thread = thread::spawn(move || {
            let Ok(mut read) = read else { return None };
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match read.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => count.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
            (!stop.load(Ordering::SeqCst)).then(|| begun.elapsed().as_secs_f64())
        });
        Drain {
            bytes,
            thread,
            stream,
        }
    }

    /// Like [`Drain::start`], but decodes every packet as a client program
    /// does, so it reads at a real client's pace; counts packets.
    fn start_decoding(joined: Joined, b: &Bench) -> Drain {
        let bytes = Arc::new(AtomicU64::new(0));
        let (count, stop) = (bytes.clone(), b.stop.clone());
        let begun = Instant::now();
        let Joined { stream, reader, .. } = joined;
        let mut reader = reader;
        let thread = thread::spawn(move || {
            while let Ok(Some(body)) = reader.read_frame() {
                if ServerPacket::decode(body).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            (!stop.load(Ordering::SeqCst)).then(|| begun.elapsed().as_secs_f64())
        });
        Drain {
            bytes,
            thread,
            stream,
        }
    }

    /// Closes the socket; when the server dropped it earlier, how many
    /// seconds after the drain began.
    fn finish(self) -> Option<f64> {
        // Read before closing: once we shut the socket ourselves, its end
        // says nothing about the server.
        let dropped_before = self.thread.is_finished();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let ended = self.thread.join().ok().flatten();
        ended.filter(|_| dropped_before)
    }
}

fn big_colour_info(name: &str) -> ClientPacket {
    info(name, &"a".repeat(BIG_COLOUR_BYTES), false)
}

/// Original clients with a 1 MB colour join beside the bystanders and
/// stay.
fn big_colour(b: &Bench) -> Vec<String> {
    let crowd = Bystanders::join(b, true);
    let mut attackers = Vec::new();
    let mut refusal = None;
    for i in 0..b.count {
        let name = format!("{}-big{i}", b.tag);
        match join(
            attacker(b, i),
            b.addr,
            &name,
            &big_colour_info(&name),
            Duration::from_secs(10),
        ) {
            Ok(j) => attackers.push(Drain::start(j.stream, b)),
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    let admitted = attackers.len();
    b.nap(Duration::from_secs(b.seconds));
    for d in attackers {
        let _ = d.finish();
    }
    let mut notes = vec![format!(
        "{admitted} of {} original clients with a 1 MB colour admitted{}",
        b.count,
        refusal
            .map(|e| format!(" (other: {e})"))
            .unwrap_or_default()
    )];
    notes.extend(crowd.report(b));
    notes
}

/// Original clients with a 1 MB colour join and leave, again and again,
/// spread over the attack.
fn join_leave(b: &Bench) -> Vec<String> {
    let crowd = Bystanders::join(b, true);
    let pause = Duration::from_secs_f64(b.seconds as f64 * 0.6 / b.count.max(1) as f64);
    let (mut admitted, mut cycles) = (0usize, 0usize);
    let mut refusal = None;
    for i in 0..b.count {
        if b.stopped() {
            break;
        }
        cycles += 1;
        let name = format!("{}-jl{i}", b.tag);
        match join(
            attacker(b, i),
            b.addr,
            &name,
            &big_colour_info(&name),
            Duration::from_secs(5),
        ) {
            Ok(mut j) => {
                admitted += 1;
                let _ = j.stream.write_all(&ClientPacket::Disconnect.encode());
                let _ = j.stream.shutdown(std::net::Shutdown::Both);
            }
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
        b.nap(pause);
    }
    b.nap(Duration::from_secs(b.seconds));
    let mut notes = vec![format!(
        "{cycles} join/leave cycles with a 1 MB colour, {admitted} admitted{}",
        refusal
            .map(|e| format!(" (other: {e})"))
            .unwrap_or_default()
    )];
    notes.extend(crowd.report(b));
    notes
}

/// Whom a flood is sent to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A normal user who reads everything.
    Victim,
    /// `client999999`, who is not there: only the server's log hears it.
    Nobody,
}

/// One original client sends small messages as fast as it can (or at
/// `count` a second) to one target.
fn flood(b: &Bench, target: Target) -> Vec<String> {
    let mut notes = Vec::new();
    let (to, victim) = match target {
        Target::Nobody => ("client999999".to_string(), None),
        Target::Victim => {
            let name = format!("{}-victim", b.tag);
            match join(
                Source::Bystander(0),
                b.addr,
                &name,
                &info(&name, "tan", false),
                Duration::from_secs(5),
            ) {
                Ok(j) => (j.id.clone(), Some(Drain::start_decoding(j, b))),
                Err(e) => return vec![format!("the victim could not join: {e}")],
            }
        }
    };
    let name = format!("{}-flooder", b.tag);
    let mut flooder = match join(
        attacker(b, 0),
        b.addr,
        &name,
        &info(&name, "red", false),
        Duration::from_secs(5),
    ) {
        Ok(j) => j,
        Err(e) => return vec![format!("the flooder could not join: {e}")],
    };
    let _ = flooder
        .stream
        .set_write_timeout(Some(Duration::from_secs(1)));
    let own = flooder.stream.try_clone().map(|s| Drain::start(s, b));
    let one = ClientPacket::Message {
        to: to.clone(),
        text: format!("{:<63}\n", "flood"),
    }
    .encode();
    let batch_len = 500usize;
    let batch: Vec<u8> = one.repeat(batch_len);
    let begun = Instant::now();
    let mut sent = 0u64;
    let mut blocked = None;
    while !b.stopped() {
        if let Err(e) = flooder.stream.write_all(&batch) {
            blocked = Some((begun.elapsed().as_secs_f64(), e.to_string()));
            break;
        }
        sent += batch_len as u64;
        if b.count > 0 {
            let due = begun + Duration::from_secs_f64(sent as f64 / b.count as f64);
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    let secs = begun.elapsed().as_secs_f64().max(1e-3);
    notes.push(format!(
        "the flooder sent {sent} messages to {to} in {secs:.1} s ({:.0} a second)",
        sent as f64 / secs
    ));
    match blocked {
        Some((at, e)) => notes.push(format!(
            "the flooder was slowed or cut off after {at:.1} s ({e})"
        )),
        None => notes.push("the flooder was never slowed".into()),
    }
    // The victim is judged over the whole attack, not only while the
    // flooder could write.
    b.nap(Duration::from_secs(b.seconds));
    if let Some(v) = victim {
        let got = v.bytes.load(Ordering::Relaxed);
        match v.finish() {
            Some(at) => notes.push(format!(
                "the VICTIM was dropped after {at:.1} s, having received about {got} messages"
            )),
            None => notes.push(format!(
                "the victim stayed, having received about {got} messages"
            )),
        }
    }
    if let Ok(d) = own {
        let _ = d.finish();
    }
    notes
}

/// Joins a HubChat client from an attacker address that records what the
/// server says to it.
fn hubchat_attacker(b: &Bench, i: usize, what: &str) -> Result<(Joined, Watch), String> {
    hubchat_client(b, attacker(b, i), &format!("{}-{what}{i}", b.tag))
}

/// Joins a HubChat client from `from` that records what the server says.
fn hubchat_client(b: &Bench, from: Source, name: &str) -> Result<(Joined, Watch), String> {
    let j = join(
        from,
        b.addr,
        name,
        &info(name, "purple", true),
        Duration::from_secs(5),
    )?;
    let reader = j
        .stream
        .try_clone()
        .map_err(|e| format!("cannot share the socket: {e}"))?;
    Ok((j, Watch::start(reader)))
}

/// Valid full-size pictures, `count` a second over four attacker
/// connections, to HubChat bystanders who get each one.
fn picture_flood(b: &Bench) -> Vec<String> {
    let crowd = Bystanders::join(b, true);
    let png = attack_png::full_size_avatar();
    let packet = ClientPacket::Picture { png: png.to_vec() }.encode();
    let mut senders = Vec::new();
    for i in 0..4 {
        match hubchat_attacker(b, i, "pic") {
            Ok(s) => senders.push(s),
            Err(e) => return vec![format!("a picture sender could not join: {e}")],
        }
    }
    let sent = send_pictures(b, &mut senders, &packet, b.count as f64);
    let refused: usize = senders
        .iter()
        .map(|(_, w)| w.count(|e| e == "ERROR picture_invalid"))
        .sum();
    let sent_bytes = sent * packet.len() as u64;
    let mut notes = vec![format!(
        "{sent} pictures of {} bytes sent ({:.1} MB); {refused} refused with picture_invalid",
        png.len(),
        sent_bytes as f64 / 1e6
    )];
    let out: u64 = crowd
        .drains
        .iter()
        .map(|d| d.bytes.load(Ordering::Relaxed))
        .sum();
    // Each bystander gets at most one picture per sender and session when
    // pictures are limited; the slack allows a few a minute.
    let per_bystander = out / (crowd.joined.max(1) as u64 * packet.len() as u64);
    let line = format!(
        "the server sent the bystanders {:.1} MB ({per_bystander} pictures each): {:.0}x what the attacker sent",
        out as f64 / 1e6,
        out as f64 / sent_bytes.max(1) as f64
    );
    notes.push(if per_bystander > 4 * 3 {
        harm(line)
    } else {
        line
    });
    notes.extend(crowd.report(b));
    notes
}

/// Sends `packet` round the senders at `rate` a second until the attack
/// ends; how many were sent.
fn send_pictures(b: &Bench, senders: &mut Vec<(Joined, Watch)>, packet: &[u8], rate: f64) -> u64 {
    let begun = Instant::now();
    let mut sent = 0u64;
    while !b.stopped() && !senders.is_empty() {
        let k = sent as usize % senders.len();
        if senders[k].0.stream.write_all(packet).is_err() {
            senders.remove(k);
            continue;
        }
        sent += 1;
        let due = begun + Duration::from_secs_f64(sent as f64 / rate.max(1.0));
        thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    sent
}

/// HubChat clients that join and never read again, while four others
/// send them 150 full-size pictures a second: what piles up for them.
fn stalled_readers(b: &Bench) -> Vec<String> {
    let mut stalled = Vec::new();
    let mut first_error = None;
    for i in 0..b.count {
        if b.stopped() {
            break;
        }
        let name = format!("{}-stall{i}", b.tag);
        let hello = info(&name, "gray", true);
        match join(
            attacker(b, 4 + i),
            b.addr,
            &name,
            &hello,
            Duration::from_secs(5),
        ) {
            Ok(j) => stalled.push(j),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let png = attack_png::full_size_avatar();
    let packet = ClientPacket::Picture { png: png.to_vec() }.encode();
    let mut senders = Vec::new();
    for i in 0..4 {
        match hubchat_attacker(b, i, "pic") {
            Ok(s) => senders.push(s),
            Err(e) => return vec![format!("a picture sender could not join: {e}")],
        }
    }
    let sent = send_pictures(b, &mut senders, &packet, 150.0);
    let mut notes = vec![format!(
        "{} of {} clients that never read joined; {sent} pictures of {} bytes sent to them all",
        stalled.len(),
        b.count,
        png.len()
    )];
    if let Some(e) = first_error {
        notes.push(format!("a client that never reads could not join: {e}"));
    }
    for j in &stalled {
        let _ = j.stream.shutdown(std::net::Shutdown::Both);
    }
    notes
}

/// Sends `png` as PICTURE `count` times (a second apart) while a HubChat
/// observer watches; says whether it was refused or forwarded.
fn bad_picture(b: &Bench, png: &[u8], what: &str) -> Vec<String> {
    let observer = match hubchat_client(b, Source::Bystander(0), &format!("{}-observer", b.tag)) {
        Ok(o) => o,
        Err(e) => return vec![format!("the observer could not join: {e}")],
    };
    let (mut sender, said) = match hubchat_attacker(b, 0, what) {
        Ok(s) => s,
        Err(e) => return vec![format!("the sender could not join: {e}")],
    };
    let packet = ClientPacket::Picture { png: png.to_vec() }.encode();
    for _ in 0..b.count.max(1) {
        let _ = sender.stream.write_all(&packet);
        b.nap(Duration::from_secs(1));
    }
    b.nap(Duration::from_secs(2));
    let forwarded = observer.1.count(|e| e == format!("PICTURE {}", sender.id));
    let refused = said.count(|e| e == "ERROR picture_invalid");
    let line = format!(
        "sent {} {what} PNG(s) of {} bytes; the observer received {forwarded} of them; {refused} refused with picture_invalid",
        b.count.max(1),
        png.len()
    );
    let mut notes = vec![if forwarded > 0 { harm(line) } else { line }];
    if what == "inflating" {
        notes.push(format!(
            "it inflates to {:.1} MB",
            attack_png::inflating().1 as f64 / 1e6
        ));
    }
    b.nap(Duration::from_secs(b.seconds));
    notes
}

/// The palette PNG that panics the decoder; then the sender leaves and the
/// others should hear so, and its name should be free again.
fn palette_panic(b: &Bench) -> Vec<String> {
    let observer = match hubchat_client(b, Source::Bystander(0), &format!("{}-observer", b.tag)) {
        Ok(o) => o,
        Err(e) => return vec![format!("the observer could not join: {e}")],
    };
    let name = format!("{}-ghost0", b.tag);
    let (mut sender, said) = match hubchat_attacker(b, 0, "ghost") {
        Ok(s) => s,
        Err(e) => return vec![format!("the sender could not join: {e}")],
    };
    let _ = sender.stream.write_all(
        &ClientPacket::Picture {
            png: attack_png::PALETTE_PANIC.to_vec(),
        }
        .encode(),
    );
    b.nap(Duration::from_secs(1));
    let refused = said.count(|e| e == "ERROR picture_invalid");
    let _ = sender.stream.shutdown(std::net::Shutdown::Both);
    let gone = format!("DISCONNECT {}", sender.id);
    let deadline = Instant::now() + Duration::from_secs(3);
    while observer.1.count(|e| e == gone) == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let announced = observer.1.count(|e| e == gone) > 0;
    let again = join(
        attacker(b, 1),
        b.addr,
        &name,
        &info(&name, "purple", true),
        Duration::from_secs(2),
    );
    let mut notes = vec![
        format!(
            "sent the {}-byte palette PNG; {}",
            attack_png::PALETTE_PANIC.len(),
            if refused > 0 {
                "refused with picture_invalid"
            } else {
                "no answer"
            }
        ),
        if announced {
            "after the sender closed, the others were told it left".into()
        } else {
            harm("after the sender closed, the others were never told it left (a ghost)")
        },
    ];
    notes.push(match again {
        Ok(_) => "its name was free again".into(),
        Err(e) => harm(format!("its name was not free again: {e}")),
    });
    b.nap(Duration::from_secs(b.seconds));
    notes
}

/// Names that look like "alice" beside a real alice. An accent ("alicé",
/// with U+0301) is not among them: it shows, and names with accents stay
/// allowed by design (issue 10).
pub const LOOK_ALIKES: [&str; 14] = [
    "Alice",
    "\u{430}lice",
    "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
    "alice\u{200b}",
    "alice\u{200d}",
    "alice\u{2060}",
    "alice\u{feff}",
    "ali\u{ad}ce",
    "\u{202e}ecila",
    "\u{200b}\u{200b}",
    "\u{301}\u{301}",
    "ali\u{2028}ce",
    "al\u{131}ce",
    "a\u{200c}lice",
];

/// Joins "alice", then tries each look-alike from another address.
fn look_alikes(b: &Bench) -> Vec<String> {
    let alice = join(
        Source::Bystander(0),
        b.addr,
        "alice",
        &info("alice", "blue", false),
        Duration::from_secs(5),
    );
    let mut notes = Vec::new();
    if let Err(e) = &alice {
        notes.push(format!(
            "\"alice\" could not join ({e}); look-alikes are tried all the same"
        ));
    }
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    for (i, name) in LOOK_ALIKES.iter().enumerate() {
        let shown = shown(name);
        match join(
            attacker(b, i),
            b.addr,
            name,
            &info(name, "red", true),
            Duration::from_secs(2),
        ) {
            Ok(mut j) => {
                let _ = j.stream.write_all(&ClientPacket::Disconnect.encode());
                accepted.push(shown);
            }
            Err(_) => refused.push(shown),
        }
    }
    let line = format!(
        "{} of {} look-alikes of \"alice\" accepted: {}",
        accepted.len(),
        LOOK_ALIKES.len(),
        accepted.join(" ")
    );
    notes.push(if accepted.is_empty() {
        line
    } else {
        harm(line)
    });
    notes.push(format!("refused: {}", refused.join(" ")));
    b.nap(Duration::from_secs(b.seconds));
    drop(alice);
    notes
}

/// What a watching client was told, as short words ("PICTURE client3",
/// "DISCONNECT client3", "ERROR picture_invalid"), kept for the attack.
struct Watch {
    seen: Arc<Mutex<Vec<String>>>,
    /// The watched socket, shut when the watch ends so its reader stops.
    stream: Option<TcpStream>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(s) = &self.stream {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Watch {
    fn start(stream: TcpStream) -> Watch {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let shut = stream.try_clone().ok();
        thread::spawn(move || {
            let mut reader = FrameReader::new(stream, 64 << 20);
            while let Ok(Some(body)) = reader.read_frame() {
                let word = match ServerPacket::decode(body) {
                    Ok(ServerPacket::Picture { id, .. }) => format!("PICTURE {id}"),
                    Ok(ServerPacket::Disconnect { id }) => format!("DISCONNECT {id}"),
                    Ok(ServerPacket::Error(e)) => {
                        let code = serde_json::to_value(e.code).unwrap_or_default();
                        format!("ERROR {}", code.as_str().unwrap_or("other"))
                    }
                    _ => continue,
                };
                log.lock().unwrap_or_else(|p| p.into_inner()).push(word);
            }
        });
        Watch { seen, stream: shut }
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|w| pred(w))
            .count()
    }
}
