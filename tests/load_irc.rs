//! The load tool speaking IRC (`--proto irc`): against a tiny scripted IRC
//! relay in this file, and against a real ngIRCd where one is installed.
//! The counting must be the same as against HubChat, so that
//! `scripts/bench.sh` compares the two servers and not two tools.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hubchat::load::{self, LoadOptions, Proto, Storm, StormKind};

/// A minimal IRC server, enough for the load tool: registration answered
/// only after the client returned a `PING` (as ngIRCd's `RequireAuthPing`
/// does), one channel with `JOIN`, `NAMES` and `QUIT`, `PRIVMSG` to a nick.
/// Everything happens under one lock, so every member sees joins, quits and
/// messages in one order, as a single-threaded server sends them.
struct Relay {
    addr: SocketAddr,
}

#[derive(Default)]
struct State {
    /// Registered clients by nick.
    nicks: HashMap<String, TcpStream>,
    /// The channel's members, in the order they joined.
    members: Vec<String>,
    /// How many registrations so far; `refuse` says which to turn down.
    registered: usize,
}

impl Relay {
    /// `refuse(k)`: whether the k-th client to register (from 0) is told
    /// its nick is in use.
    fn start(refuse: fn(usize) -> bool) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State::default()));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                thread::spawn(move || serve(stream, &state, refuse));
            }
        });
        Relay { addr }
    }
}

fn send(to: &mut TcpStream, line: &str) {
    let _ = to.write_all(format!("{line}\r\n").as_bytes());
}

/// Sends `line` to every member of the channel.
fn broadcast(state: &mut State, line: &str) {
    let State { nicks, members, .. } = state;
    for m in members.iter() {
        if let Some(s) = nicks.get_mut(m) {
            send(s, line);
        }
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, refuse: fn(usize) -> bool) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut nick = String::new();
    let mut registered = false;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let (command, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let trailing = rest.split_once(':').map_or(rest, |(_, t)| t);
        let mut st = state.lock().unwrap();
        match command {
            "NICK" => nick = rest.to_string(),
            "USER" => send(&mut out, &format!("PING :check-{nick}")),
            "PONG" if !registered && trailing == format!("check-{nick}") => {
                let k = st.registered;
                st.registered += 1;
                if refuse(k) {
                    send(
                        &mut out,
                        &format!(":relay 433 * {nick} :Nickname is already in use"),
                    );
                    continue;
                }
                registered = true;
                st.nicks.insert(nick.clone(), out.try_clone().unwrap());
                send(&mut out, &format!(":relay 001 {nick} :Welcome {nick}"));
                send(&mut out, &format!(":relay 376 {nick} :End of MOTD"));
            }
            "JOIN" if registered => {
                st.members.push(nick.clone());
                broadcast(&mut st, &format!(":{nick}!u@127.0.0.1 JOIN :{rest}"));
                // Several 353 lines, and channel-operator marks, as servers send.
                let names: Vec<String> = st
                    .members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| if i == 0 { format!("@{m}") } else { m.clone() })
                    .collect();
                for chunk in names.chunks(7) {
                    let line = format!(":relay 353 {nick} = {rest} :{}", chunk.join(" "));
                    send(&mut out, &line);
                }
                send(
                    &mut out,
                    &format!(":relay 366 {nick} {rest} :End of NAMES list"),
                );
            }
            "PRIVMSG" if registered => {
                let to = rest.split(' ').next().unwrap_or("");
                let line = format!(":{nick}!u@127.0.0.1 PRIVMSG {to} :{trailing}");
                match st.nicks.get_mut(to) {
                    Some(s) => send(s, &line),
                    None => send(&mut out, &format!(":relay 401 {nick} {to} :No such nick")),
                }
            }
            "QUIT" => {
                leave(&mut st, &nick, trailing);
                send(&mut out, "ERROR :Closing connection");
                return;
            }
            _ => {}
        }
    }
    let mut st = state.lock().unwrap();
    leave(&mut st, &nick, "connection lost");
}

/// Forgets `nick` and tells the channel, once.
fn leave(st: &mut State, nick: &str, why: &str) {
    if st.nicks.remove(nick).is_some() {
        st.members.retain(|m| m != nick);
        broadcast(st, &format!(":{nick}!u@127.0.0.1 QUIT :{why}"));
    }
}

fn options(addr: SocketAddr) -> LoadOptions {
    LoadOptions {
        server: addr.to_string(),
        proto: Proto::Irc,
        progress: false,
        ..LoadOptions::default()
    }
}

#[test]
fn irc_clients_register_answer_ping_join_and_exchange_messages_without_loss() {
    let relay = Relay::start(|_| false);
    let opts = LoadOptions {
        clients: 20,
        messages: 50,
        ..options(relay.addr)
    };
    let report = load::run(&opts).unwrap();
    assert!(report.clean(), "{report:?}");
    assert_eq!(
        (
            report.sent,
            report.delivered,
            report.lost,
            report.duplicated
        ),
        (1000, 1000, 0, 0)
    );
    assert!(report.connect_ms <= report.join_ms, "{report:?}");
    assert!(report.latency_us[0] > 0.0);
}

#[test]
fn irc_clients_leaving_at_once_are_each_announced_once_by_their_quit() {
    for kind in [StormKind::Disconnect, StormKind::Kill] {
        let relay = Relay::start(|_| false);
        let opts = LoadOptions {
            clients: 20,
            messages: 10,
            storm: Some(Storm { kind, count: 8 }),
            ..options(relay.addr)
        };
        let report = load::run(&opts).unwrap();
        assert!(report.clean(), "{kind:?}: {report:?}");
        let storm = report.storm.unwrap();
        assert_eq!((storm.announced, storm.expected), (96, 96), "{kind:?}");
        assert_eq!(report.told_twice, 0);
        // The 12 who stayed and the fresh client then talk without loss.
        assert_eq!((report.sent, report.delivered), (130, 130), "{kind:?}");
    }
}

#[test]
fn a_nick_the_irc_server_refuses_fails_that_client_with_the_servers_words() {
    let relay = Relay::start(|k| k == 2);
    let opts = LoadOptions {
        clients: 4,
        messages: 1,
        patience: Duration::from_secs(1),
        ..options(relay.addr)
    };
    let report = load::run(&opts).unwrap();
    assert!(!report.clean());
    assert_eq!((report.connected, report.failed), (3, 1));
    let error = report.first_error.unwrap();
    assert!(
        error.contains("433") && error.contains("already in use"),
        "{error}"
    );
}

/// An ngIRCd on a free loopback port with the bench's settings, stopped
/// when dropped.
struct Ngircd {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Ngircd {
    fn start(binary: &Path) -> Ngircd {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!("hubchat-load-irc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("include")).unwrap();
        let config = format!(
            "[Global]\nName = test.hubchat.local\nInfo = load test\n\
             AdminInfo1 = test\nAdminInfo2 = test\nAdminEMail = test@localhost\n\
             Listen = 127.0.0.1\nPorts = {port}\n\
             [Limits]\nMaxConnections = 0\nMaxConnectionsIP = 0\nMaxNickLength = 30\n\
             MaxPenaltyTime = 0\nPingTimeout = 600\nPongTimeout = 600\n\
             [Options]\nDNS = no\nIdent = no\nPAM = no\nIncludeDir = {}\n",
            dir.join("include").display()
        );
        let file = dir.join("ngircd.conf");
        std::fs::write(&file, config).unwrap();
        // Started as root, ngIRCd runs as nobody: it must read all of this.
        #[cfg(unix)]
        for p in [&dir, &dir.join("include")] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let child = Command::new(binary)
            .arg("-n")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ngircd starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "ngircd did not listen on {addr}");
            thread::sleep(Duration::from_millis(20));
        }
        Ngircd { child, dir, addr }
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ngircd_binary() -> Option<PathBuf> {
    [
        "/usr/sbin/ngircd",
        "/usr/bin/ngircd",
        "/usr/local/sbin/ngircd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn a_real_ngircd_relays_every_message_once_and_announces_every_quit_once() {
    let Some(binary) = ngircd_binary() else {
        println!("skipped: ngircd is not installed (scripts/install-deps.sh --bench installs it)");
        return;
    };
    let server = Ngircd::start(&binary);
    let opts = LoadOptions {
        clients: 40,
        messages: 100,
        // ngIRCd listens with a backlog of 10.
        connect_concurrency: 8,
        storm: Some(Storm {
            kind: StormKind::Kill,
            count: 10,
        }),
        ..options(server.addr)
    };
    let report = load::run(&opts).unwrap();
    assert!(report.clean(), "{report:?}");
    let storm = report.storm.unwrap();
    assert_eq!((storm.announced, storm.expected), (300, 300));
    assert_eq!((report.sent, report.delivered), (3100, 3100));
}
