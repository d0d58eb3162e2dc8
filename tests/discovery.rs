//! Finding servers on the LAN: real responders and real searches over
//! loopback (a broadcast to 127.255.255.255 stays on `lo`), and across two
//! network namespaces joined by a veth pair when run as root.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hubchat::common::discovery::{
    self, Answer, Found, Query, RateLimits, Responder, ResponderConfig, Search, Status,
    AMPLIFICATION, MAX_QUERY, MIN_QUERY, QUERY_MAGIC,
};
use hubchat::server::ServerEvent;
use support::TestServer;

const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);
/// How long to wait for an answer that should come.
const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// How long silence must last to count as "no answer" on loopback.
const SILENCE: Duration = Duration::from_millis(300);

/// A search of loopback only, on `ports`.
fn loopback_search(ports: &[u16]) -> Vec<Found> {
    let search = Search {
        ports: ports.to_vec(),
        targets: vec![LOOPBACK_BROADCAST],
        duration: Duration::from_millis(1200),
    };
    let mut found = Vec::new();
    discovery::search(&search, |f| found.push(f)).expect("a UDP socket");
    found.sort_by_key(|f| f.addr);
    found
}

/// A server on `bind` answering discovery as `name`; waits until it says
/// it answers.
fn discoverable(bind: &str, name: &str) -> TestServer {
    let mut server = TestServer::start_with(|c| {
        c.bind = bind.parse().unwrap();
        c.discovery = Some(name.into());
    });
    let port = server.addr.port();
    server.wait_for(
        "answering discovery",
        |e| matches!(e, ServerEvent::Discovery(Status::Answering { port: p }) if *p == port),
    );
    server
}

/// A socket that sends raw datagrams to loopback and reads what comes back.
fn prober(from: Ipv4Addr) -> UdpSocket {
    let socket = UdpSocket::bind((from, 0)).unwrap();
    socket.set_broadcast(true).unwrap();
    socket
}

/// Every datagram that arrives within `wait`.
fn answers(socket: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return got;
        }
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => got.push(buf[..n].to_vec()),
            Err(_) => return got,
        }
    }
}

fn query_bytes(json: &str, len: usize) -> Vec<u8> {
    let mut bytes = QUERY_MAGIC.to_vec();
    bytes.extend(json.as_bytes());
    bytes.resize(len.max(bytes.len()), b' ');
    bytes
}

#[test]
fn a_running_server_is_found_by_its_name_address_and_port() {
    let server = discoverable("127.0.0.1:0", "Office");
    let found = loopback_search(&[server.addr.port()]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, "Office");
    assert_eq!(found[0].addr, server.addr);
    assert_eq!(found[0].version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        found[0].label(),
        format!("Office - 127.0.0.1:{}", server.addr.port())
    );
}

#[test]
fn a_stopped_server_no_longer_answers() {
    let mut server = discoverable("127.0.0.1:0", "Office");
    let port = server.addr.port();
    server.stop();
    assert!(loopback_search(&[port]).is_empty());
}

#[test]
fn a_server_without_discovery_is_not_found() {
    let server = TestServer::start();
    assert!(loopback_search(&[server.addr.port()]).is_empty());
}

#[test]
fn two_servers_on_one_port_both_answer_one_query() {
    let first = discoverable("127.0.0.1:0", "First");
    let port = first.addr.port();
    // The same TCP port on another loopback address: both want UDP `port`.
    let second = discoverable(&format!("127.0.0.2:{port}"), "Second");
    let socket = prober(Ipv4Addr::LOCALHOST);
    let query = Query::new();
    socket
        .send_to(&query.encode(), (LOOPBACK_BROADCAST, port))
        .unwrap();
    let mut got: Vec<(String, Vec<IpAddr>)> = answers(&socket, Duration::from_millis(800))
        .iter()
        .filter_map(|b| Answer::decode(b))
        .filter(|a| a.nonce == query.nonce)
        .map(|a| (a.name, a.addresses))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("First".to_string(), vec![first.addr.ip()]),
            ("Second".to_string(), vec![second.addr.ip()])
        ]
    );
}

#[test]
fn a_search_on_two_ports_finds_the_servers_on_both() {
    let office = discoverable("127.0.0.1:0", "Office");
    let lab = discoverable("127.0.0.1:0", "Lab");
    let found = loopback_search(&[office.addr.port(), lab.addr.port()]);
    let mut names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Lab", "Office"]);
}

#[test]
fn malformed_truncated_oversized_and_wrong_magic_queries_get_no_answer_and_do_no_harm() {
    let server = discoverable("127.0.0.1:0", "Office");
    let to = (Ipv4Addr::LOCALHOST, server.addr.port());
    let socket = prober(Ipv4Addr::LOCALHOST);
    let good = Query::new().encode();
    let mut wrong_magic = good.clone();
    wrong_magic[..8].copy_from_slice(b"HUBCHAT!");
    let mut not_utf8 = query_bytes(r#"{"v":1,"nonce":"ab"}"#, MIN_QUERY);
    not_utf8[20] = 0xff;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("wrong magic", wrong_magic),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("one byte short", good[..MIN_QUERY - 1].to_vec()),
        (
            "oversized",
            query_bytes(r#"{"v":1,"nonce":"ab"}"#, MAX_QUERY + 1),
        ),
        (
            "far oversized",
            query_bytes(r#"{"v":1,"nonce":"ab"}"#, 60_000),
        ),
        ("not JSON", query_bytes("\u{0}\u{1}{{{", MIN_QUERY)),
        ("a JSON array", query_bytes("[1,2]", MIN_QUERY)),
        ("no nonce", query_bytes(r#"{"v":1}"#, MIN_QUERY)),
        (
            "a nonce too long",
            query_bytes(
                &format!(r#"{{"v":1,"nonce":"{}"}}"#, "a".repeat(33)),
                MIN_QUERY,
            ),
        ),
        (
            "version 0",
            query_bytes(r#"{"v":0,"nonce":"ab"}"#, MIN_QUERY),
        ),
        ("not UTF-8", not_utf8),
    ];
    for (what, bytes) in &bad {
        socket.send_to(bytes, to).unwrap();
        assert!(answers(&socket, SILENCE).is_empty(), "{what} was answered");
    }
    // Still answering.
    socket.send_to(&good, to).unwrap();
    assert_eq!(
        answers(&socket, ANSWER_WAIT).len(),
        1,
        "a sound query after them"
    );
}

#[test]
fn an_answer_is_never_longer_than_the_query_times_the_factor() {
    // The longest name there is, and a query of every length allowed.
    let server = discoverable("127.0.0.1:0", &"Ω".repeat(200));
    let to = (Ipv4Addr::LOCALHOST, server.addr.port());
    let socket = prober(Ipv4Addr::LOCALHOST);
    for len in [MIN_QUERY, MIN_QUERY + 1, 700, MAX_QUERY] {
        let mut query = Query::new().encode();
        query.resize(len, b' ');
        socket.send_to(&query, to).unwrap();
        let got = answers(&socket, SILENCE * 2);
        assert_eq!(got.len(), 1, "query of {len} bytes");
        assert!(
            got[0].len() <= len * AMPLIFICATION,
            "{} bytes answered to {len}",
            got[0].len()
        );
        let answer = Answer::decode(&got[0]).expect("a sound answer");
        assert_eq!(answer.name.chars().count(), discovery::MAX_NAME);
    }
    // A short query, sound otherwise, is not worth an answer.
    let short = query_bytes(r#"{"v":1,"nonce":"ab"}"#, 0);
    socket.send_to(&short, to).unwrap();
    assert!(answers(&socket, SILENCE).is_empty());
}

#[test]
fn a_stop_wakes_the_sleeping_responder_at_once_even_beside_another_on_its_port() {
    // An idle responder sleeps in its receive with no timer to speak of;
    // stopping it must not wait for one. Another responder on the same port
    // (two servers on one machine) must not swallow the wake-up.
    let first = limited(5, 100);
    let port = first.port();
    let second = Responder::start(ResponderConfig {
        port,
        name: "Lab".into(),
        addresses: Vec::new(),
        limits: RateLimits::DEFAULT,
    })
    .unwrap();
    for responder in [first, second] {
        let began = Instant::now();
        responder.stop();
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "a stop took {:?}: it waited for the fallback check",
            began.elapsed()
        );
    }
}

/// A responder on a free UDP port with the given limits, for ten seconds'
/// worth of counting (so the test's queries fall in one window).
fn limited(per_source: u32, total: u32) -> Responder {
    Responder::start(ResponderConfig {
        port: 0,
        name: "Office".into(),
        addresses: Vec::new(),
        limits: RateLimits {
            per_source,
            total,
            window: Duration::from_secs(10),
        },
    })
    .unwrap()
}

fn answered(from: Ipv4Addr, port: u16, queries: usize) -> usize {
    let socket = prober(from);
    for _ in 0..queries {
        let query = Query::new().encode();
        socket.send_to(&query, (Ipv4Addr::LOCALHOST, port)).unwrap();
    }
    answers(&socket, SILENCE * 2).len()
}

#[test]
fn answers_to_one_address_are_rate_limited() {
    let responder = limited(3, 100);
    assert_eq!(answered(Ipv4Addr::LOCALHOST, responder.port(), 20), 3);
    assert_eq!(
        answered(Ipv4Addr::new(127, 0, 0, 2), responder.port(), 2),
        2,
        "another address still gets its answers"
    );
}

#[test]
fn answers_to_everyone_together_are_rate_limited() {
    let responder = limited(5, 7);
    assert_eq!(answered(Ipv4Addr::LOCALHOST, responder.port(), 10), 5);
    assert_eq!(
        answered(Ipv4Addr::new(127, 0, 0, 2), responder.port(), 10),
        2
    );
    assert_eq!(
        answered(Ipv4Addr::new(127, 0, 0, 3), responder.port(), 10),
        0
    );
}

const SERVER_EXE: &str = env!("CARGO_BIN_EXE_hubchat-server");
const LOAD_EXE: &str = env!("CARGO_BIN_EXE_hubchat-load");

/// The headless server with `options`, and its log lines up to the one
/// about discovery (or the second line, if it logs none).
struct Headless {
    child: Child,
    port: u16,
    lines: Vec<String>,
}

impl Headless {
    fn start(prefix: &[&str], options: &[&str]) -> Headless {
        let (program, pre) = match prefix.split_first() {
            Some((p, rest)) => (*p, rest),
            None => (SERVER_EXE, &[][..]),
        };
        let settings =
            std::env::temp_dir().join(format!("hubchat-discovery-{}", std::process::id()));
        let mut command = Command::new(program);
        command
            .env("HUBCHAT_CONFIG_DIR", settings)
            .args(pre)
            .args(["--headless", "--port", "0"])
            .args(options);
        let (child, port, first, mut out) = support::spawn_headless(command);
        let mut lines = vec![first];
        if !options.contains(&"--no-discovery") {
            lines.push(out.next().expect("a second log line").expect("UTF-8"));
        }
        Headless { child, port, lines }
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_headless_server_answers_as_named_and_says_so() {
    let server = Headless::start(&[], &["--bind", "127.0.0.1", "--name", "Front desk"]);
    assert!(
        server.lines[1].ends_with(&format!(" answering discovery on UDP {}", server.port)),
        "{:?}",
        server.lines
    );
    let found = loopback_search(&[server.port]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, "Front desk");
    assert_eq!(
        found[0].addr,
        SocketAddr::from((Ipv4Addr::LOCALHOST, server.port))
    );
}

#[test]
fn the_headless_server_with_no_discovery_stays_unseen() {
    let server = Headless::start(&[], &["--bind", "127.0.0.1", "--no-discovery"]);
    assert!(loopback_search(&[server.port]).is_empty());
}

#[test]
fn a_taken_udp_port_is_explained_and_the_server_still_serves() {
    // A socket without SO_REUSEADDR holds the UDP port the server wants.
    let taken = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut server = TestServer::start_with(|c| {
        c.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        c.discovery = Some("Office".into());
    });
    let said = server.wait_for("discovery unavailable", |e| {
        matches!(e, ServerEvent::Discovery(Status::Unavailable { .. }))
    });
    let ServerEvent::Discovery(status) = said else {
        unreachable!()
    };
    assert!(
        status.to_string().starts_with(&format!(
            "clients cannot find this server by itself: UDP port {port} is not available"
        )),
        "{status}"
    );
    // Kept alive until the count is read: a dropped peer may already be gone.
    let _alice = support::Peer::join_original(server.addr, "alice");
    server.wait_for_count(1);
}

/// Two network namespaces joined by a veth pair, deleted when dropped
/// (also when the test fails).
struct Namespaces {
    server: String,
    client: String,
}

impl Namespaces {
    const SERVER_IP: &'static str = "10.231.77.1";
    const CLIENT_IP: &'static str = "10.231.77.2";

    fn create() -> Namespaces {
        let tag = std::process::id();
        let ns = Namespaces {
            server: format!("hcds{tag}"),
            client: format!("hcdc{tag}"),
        };
        let (vs, vc) = (format!("hcvs{tag}"), format!("hcvc{tag}"));
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.server.clone()],
            vec!["netns".into(), "add".into(), ns.client.clone()],
            words(&format!("link add {vs} type veth peer name {vc}")),
            words(&format!("link set {vs} netns {}", ns.server)),
            words(&format!("link set {vc} netns {}", ns.client)),
            words(&format!(
                "-n {} addr add {}/24 broadcast 10.231.77.255 dev {vs}",
                ns.server,
                Self::SERVER_IP
            )),
            words(&format!(
                "-n {} addr add {}/24 broadcast 10.231.77.255 dev {vc}",
                ns.client,
                Self::CLIENT_IP
            )),
            words(&format!("-n {} link set {vs} up", ns.server)),
            words(&format!("-n {} link set {vc} up", ns.client)),
            words(&format!("-n {} link set lo up", ns.server)),
            words(&format!("-n {} link set lo up", ns.client)),
            // 255.255.255.255 needs a route out of the client's namespace.
            words(&format!("-n {} route add default dev {vc}", ns.client)),
        ];
        for step in steps {
            let status = Command::new("ip").args(&step).status().expect("run ip");
            assert!(status.success(), "ip {}", step.join(" "));
        }
        ns
    }
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_search_in_one_namespace_finds_the_server_in_another_over_a_veth_pair() {
    if !is_root() {
        println!("skipped: creating network namespaces needs root");
        return;
    }
    let ns = Namespaces::create();
    let server = Headless::start(
        &["ip", "netns", "exec", &ns.server, SERVER_EXE],
        &["--name", "Next door"],
    );
    assert!(
        server.lines[1].ends_with(&format!(" answering discovery on UDP {}", server.port)),
        "{:?}",
        server.lines
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.client, LOAD_EXE, "discover"])
        .args(["--port", &server.port.to_string(), "--seconds", "2"])
        .output()
        .expect("run hubchat-load discover");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}");
    let expected = format!(
        "found Next door - {}:{} (version {})",
        Namespaces::SERVER_IP,
        server.port,
        env!("CARGO_PKG_VERSION")
    );
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines, [expected.as_str(), "1 found"], "{printed}");
}
