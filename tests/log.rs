//! The headless server's log under a flood: bounded in memory whatever reads
//! it, bounded on disk, and never in the way of stopping.
//!
//! The flood is what one hostile user on the LAN can send: an original
//! client writing, as fast as loopback allows, messages to `client999999`,
//! a client that is not connected. Each of them used to be one log line.

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hubchat::common::packet::ClientPacket;
use support::Peer;

const EXE: &str = env!("CARGO_BIN_EXE_hubchat-server");

/// How long each flood lasts.
const FLOOD: Duration = Duration::from_secs(4);

/// The most resident memory the server may reach under the flood. It idles
/// at about 10 MB; the flood used to add 56 MB a second.
const MAX_RSS_KB: u64 = 64 * 1024;

/// The server process, killed if a test fails before it exits.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn headless(stdout: Stdio, test: &str) -> Server {
    // Its key and database go to a folder of the test's own, never the
    // settings of whoever runs the tests, nor those of the other test
    // running beside it (two servers making one key at once could not
    // both start).
    let settings = std::env::temp_dir().join(format!(
        "hubchat-log-{}-{test}-settings",
        std::process::id()
    ));
    Server(
        Command::new(EXE)
            .env("HUBCHAT_CONFIG_DIR", settings)
            // The log must hold whatever reaches it: the per-sender rate
            // limit (which would slow this one flooder) is off here.
            .args([
                "--headless",
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--message-rate",
                "0",
            ])
            .stdout(stdout)
            .spawn()
            .expect("start hubchat-server"),
    )
}

/// The address in a `... listening on 127.0.0.1:PORT` line.
fn listening_addr(line: &str) -> SocketAddr {
    assert!(line.contains(" listening on 127.0.0.1:"), "{line}");
    line.rsplit(' ')
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected 'listening on 127.0.0.1:PORT', got {line}"))
}

/// Joins as an original client named mallory and sends messages to an id
/// no one has for [`FLOOD`], calling `watch` between bursts.
fn flood_unknown_recipient(addr: SocketAddr, mut watch: impl FnMut()) -> Peer {
    let mut mallory = Peer::join_original(addr, "mallory");
    let frame = ClientPacket::Message {
        to: "client999999".into(),
        text: "are you there?\n".into(),
    }
    .encode();
    let burst: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 500)
        .collect();
    let until = Instant::now() + FLOOD;
    while Instant::now() < until {
        mallory.send_raw(&burst);
        watch();
    }
    mallory
}

/// The process's resident memory in kB, from /proc.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Waits for the process to exit, up to `limit`; how long it took.
fn exit_within(child: &mut Child, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the server") {
            assert!(status.success(), "exit status 0, got {status}");
            return start.elapsed();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not exit within {limit:?} of SIGTERM");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `from` at about 1 MB/s (a slow terminal) until `stop` is set, then
/// stops reading altogether, keeping the pipe open and full.
fn read_slowly(mut from: impl Read + Send + 'static, stop: Arc<AtomicBool>) {
    thread::spawn(move || {
        let mut chunk = vec![0; 16 * 1024];
        while !stop.load(Ordering::SeqCst) {
            if from.read(&mut chunk).unwrap_or(0) == 0 {
                return;
            }
            thread::sleep(Duration::from_millis(16));
        }
        thread::sleep(Duration::from_secs(60));
        drop(from);
    });
}

#[test]
fn a_flood_into_a_slow_terminal_keeps_memory_bounded_and_sigterm_stops_within_2_s() {
    let mut server = headless(Stdio::piped(), "terminal");
    let mut out = BufReader::new(server.0.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("a first log line");
    let addr = listening_addr(&first);
    let stop_reading = Arc::new(AtomicBool::new(false));
    read_slowly(out, stop_reading.clone());

    let pid = server.0.id();
    let mut peak = 0;
    let _mallory = flood_unknown_recipient(addr, || peak = peak.max(rss_kb(pid)));
    assert!(
        peak < MAX_RSS_KB,
        "the server reached {peak} kB under the flood (at most {MAX_RSS_KB} kB)"
    );

    // Nothing reads the log any more: the printer is stuck in a write.
    stop_reading.store(true, Ordering::SeqCst);
    thread::sleep(Duration::from_millis(500));
    sigterm(&server.0);
    let took = exit_within(&mut server.0, Duration::from_secs(5));
    assert!(
        took < Duration::from_secs(2),
        "exited {took:?} after SIGTERM"
    );
}

#[test]
fn a_flood_logged_to_a_file_is_summed_up_per_second() {
    let dir = std::env::temp_dir().join(format!("hubchat-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.log");
    let mut server = headless(Stdio::from(File::create(&path).unwrap()), "file");
    let addr = listening_addr(&wait_for_first_line(&path));

    let _mallory = flood_unknown_recipient(addr, || {});
    sigterm(&server.0);
    exit_within(&mut server.0, Duration::from_secs(5));

    let log = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        log.len() < 64 * 1024,
        "{} bytes of log for {FLOOD:?} of flood (at most 64 KiB); it starts:\n{}",
        log.len(),
        &log[..log.len().min(2000)]
    );
    let summed = log.lines().filter(|l| {
        l.contains(" mallory (client0): ")
            && l.contains(" more messages to unknown clients in the last second")
    });
    assert!(summed.count() >= 2, "a summary each second:\n{log}");
    assert!(
        log.lines().last().unwrap_or("").contains(" stopped"),
        "{log}"
    );
}

fn wait_for_first_line(path: &Path) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some((line, _)) = text.split_once('\n') {
            return line.to_string();
        }
        assert!(Instant::now() < until, "no log line within 10 s");
        thread::sleep(Duration::from_millis(20));
    }
}
