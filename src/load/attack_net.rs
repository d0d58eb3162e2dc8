//! The attack mode's plumbing: loopback addresses only, connections from a
//! chosen loopback address, the server process it may start, and the
//! server's memory read from `/proc`.
//!
//! Every address the attack mode touches is checked here: a target that is
//! not loopback is refused before any socket exists, and the source
//! addresses it binds are all in 127.0.0.0/8. Attackers, bystanders, the
//! chatting pair and the newcomer each come from addresses of their own (see
//! [`Source`]), so a server that limits connections per address is measured
//! as a LAN would see it.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a connection attempt may take before it counts as refused.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolves `server` and refuses anything that is not loopback (127.0.0.0/8
/// or ::1), before any socket exists, so the load tool's `mode` (attack,
/// files) can never send a byte to another machine.
pub fn loopback_target(server: &str, mode: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = server
        .to_socket_addrs()
        .map_err(|e| format!("cannot read the server address \"{server}\": {e}"))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| format!("the server address \"{server}\" has no address"))?;
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "{mode} runs only against this machine's loopback (127.0.0.1 or ::1); \
             {} is not loopback, so nothing was sent",
            bad.ip()
        ));
    }
    Ok(first)
}

/// Who a connection stands for; each kind has its own source addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Attacker connection `i` of attackers spread over `spread` addresses
    /// (1: all from 127.0.0.1).
    Attacker { i: usize, spread: usize },
    /// The newcomer that checks whether others can still join.
    Newcomer,
    /// One of the chatting pair (0 or 1).
    Pair(u8),
    /// Bystander `i`: a normal user, each on an address of its own.
    Bystander(usize),
}

impl Source {
    /// The loopback address this source connects from.
    pub fn address(self) -> Ipv4Addr {
        let spaced = |base: u8, i: usize| {
            let i = i % (250 * 50);
            Ipv4Addr::new(127, base + (i / 250) as u8, 0, 1 + (i % 250) as u8)
        };
        match self {
            Source::Attacker { spread, .. } if spread <= 1 => Ipv4Addr::new(127, 0, 0, 1),
            Source::Attacker { i, spread } => spaced(200, i % spread),
            Source::Newcomer => Ipv4Addr::new(127, 0, 0, 2),
            Source::Pair(k) => Ipv4Addr::new(127, 0, 0, 3 + k),
            Source::Bystander(i) => spaced(100, i),
        }
    }
}

/// Connects to `to` (loopback) from `from`'s address. An IPv6 target has
/// only one loopback address, so every source then shares `::1`.
pub fn connect_from(from: Source, to: SocketAddr) -> io::Result<TcpStream> {
    let stream = match to {
        SocketAddr::V4(v4) => bound_connect(from.address(), v4.ip(), v4.port())?,
        SocketAddr::V6(_) => TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// std cannot bind a socket before connecting it; libc can.
#[cfg(unix)]
fn bound_connect(source: Ipv4Addr, ip: &Ipv4Addr, port: u16) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let timeout = libc::timeval {
        tv_sec: CONNECT_TIMEOUT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: a fresh socket is owned by the TcpStream at once (closed on
    // every error path by its drop); bind, connect and setsockopt only read
    // the structs passed, which live on this stack frame.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        // A blocking connect honours the send timeout: a server whose
        // backlog is full makes it fail instead of hanging.
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &timeout as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let from = sockaddr(source, 0);
        if libc::bind(fd, &from as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let to = sockaddr(*ip, port);
        if libc::connect(fd, &to as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        stream.set_write_timeout(None)?;
        Ok(stream)
    }
}

#[cfg(not(unix))]
fn bound_connect(_source: Ipv4Addr, ip: &Ipv4Addr, port: u16) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(*ip), port), CONNECT_TIMEOUT)
}

/// A server's memory in KiB: the current resident size and the peak the
/// kernel recorded (`VmHWM`), from `/proc/PID/status` (Linux only).
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The `hubchat-server` executable beside this program.
pub fn server_beside_me() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| {
        format!("cannot find where hubchat-load is ({e}); pass -s and --server-pid")
    })?;
    let exe = me.with_file_name(format!("hubchat-server{}", std::env::consts::EXE_SUFFIX));
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "no hubchat-server beside hubchat-load ({}); build it, or pass -s and --server-pid",
            exe.display()
        ))
    }
}

/// A headless server this tool started on a free loopback port, with its
/// log read at a chosen pace (a slow terminal) and counted.
pub struct OwnServer {
    child: Child,
    pub addr: SocketAddr,
    pub log_bytes: Arc<AtomicU64>,
    /// Lines on its standard error that report a panic.
    pub panics: Arc<AtomicU64>,
    readers: Vec<JoinHandle<()>>,
    /// Its settings folder (key, database), the tool's own and removed
    /// afterwards: an attack run never touches the owner's settings.
    settings: PathBuf,
}

/// How a server took SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopped {
    pub seconds: f64,
    /// False if it was still running after the patience and was killed.
    pub honoured: bool,
}

impl OwnServer {
    /// Starts `exe --headless` on 127.0.0.1 with a free port; `log_rate` is
    /// how many bytes a second of its log are read (0: as fast as it comes).
    pub fn start(
        exe: &Path,
        max_clients: usize,
        extra: &[String],
        log_rate: u64,
    ) -> Result<OwnServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?
            .port();
        let settings =
            std::env::temp_dir().join(format!("hubchat-attack-{}-{port}", std::process::id()));
        let mut child = Command::new(exe)
            .env("HUBCHAT_CONFIG_DIR", &settings)
            .args(["--headless", "--bind", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--max-clients")
            .arg(max_clients.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let log_bytes = Arc::new(AtomicU64::new(0));
        let panics = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let count = log_bytes.clone();
            readers.push(thread::spawn(move || read_slowly(out, log_rate, &count)));
        }
        if let Some(err) = child.stderr.take() {
            let count = panics.clone();
            readers.push(thread::spawn(move || count_panics(err, &count)));
        }
        let mut server = OwnServer {
            child,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            log_bytes,
            panics,
            readers,
            settings,
        };
        server.wait_listening()?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the server exited at once ({status}); see its options"
                ));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        Err("the server did not listen within 10 s".into())
    }

    /// Sends SIGTERM and times the exit; kills it after `patience`.
    pub fn stop(mut self, patience: Duration) -> Stopped {
        let begun = Instant::now();
        terminate(self.child.id());
        let mut honoured = false;
        while begun.elapsed() < patience {
            if let Ok(Some(_)) = self.child.try_wait() {
                honoured = true;
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let seconds = begun.elapsed().as_secs_f64();
        if !honoured {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Stopped { seconds, honoured }
    }
}

impl Drop for OwnServer {
    /// A server left running by an early return would outlive the tool.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.settings);
    }
}

#[cfg(unix)]
fn terminate(pid: u32) {
    // SAFETY: kill only sends a signal to our own child's process id.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn terminate(_pid: u32) {}

/// Reads `from` to its end at about `rate` bytes a second (0: at once),
/// counting the bytes: a terminal that shows the log slowly.
fn read_slowly(mut from: impl Read, rate: u64, count: &AtomicU64) {
    let begun = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let chunk = if rate == 0 {
        buf.len()
    } else {
        (rate as usize / 20).clamp(1, buf.len())
    };
    let mut total = 0u64;
    loop {
        match from.read(&mut buf[..chunk]) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n as u64,
        }
        count.store(total, Ordering::Relaxed);
        if rate > 0 {
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            thread::sleep(due.saturating_sub(begun.elapsed()));
        }
    }
}

fn count_panics(from: impl Read, count: &AtomicU64) {
    for line in BufReader::new(from).lines().map_while(Result::ok) {
        if line.contains("panicked") {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(loopback_target("127.0.0.1:5050", "attack").is_ok());
        assert!(loopback_target("[::1]:5050", "files").is_ok());
        let e = loopback_target("192.0.2.7:5050", "files").unwrap_err();
        assert!(e.starts_with("files runs only"), "{e}");
        assert!(e.contains("not loopback, so nothing was sent"), "{e}");
        assert!(loopback_target("0.0.0.0:5050", "attack").is_err());
        assert!(loopback_target("[::ffff:127.0.0.1]:5050", "attack").is_err());
    }

    #[test]
    fn each_kind_of_user_comes_from_its_own_loopback_address() {
        let a = Source::Attacker { i: 5, spread: 1 }.address();
        let n = Source::Newcomer.address();
        let p = [Source::Pair(0).address(), Source::Pair(1).address()];
        let b: Vec<_> = (0..600).map(|i| Source::Bystander(i).address()).collect();
        let spread: Vec<_> = (0..40)
            .map(|i| Source::Attacker { i, spread: 20 }.address())
            .collect();
        let mut all = vec![a, n, p[0], p[1]];
        all.extend(&b);
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        assert!(all.iter().chain(&spread).all(|ip| ip.is_loopback()));
        let spread_set: std::collections::HashSet<_> = spread.iter().collect();
        assert_eq!(spread_set.len(), 20);
        assert!(!spread_set.contains(&n));
    }
}
