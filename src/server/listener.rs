//! The running server: its listening socket, accept loop and shutdown.
//!
//! [`Server::start`] binds and spawns the accept thread; every accepted
//! connection gets its own threads (see [`crate::server::connection`]), so
//! the accept loop never waits on a client. [`Server::stop`] sends SERVER
//! CLOSE to every connection, waits for all threads, and frees the port, so
//! the same process can start a server again.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::discovery::{self, RateLimits, Responder, ResponderConfig, Status};
use crate::common::packet::{ErrorCode, ServerPacket, SERVER_CLOSE_TEXT};
use crate::common::tls::{Credentials, Fingerprint, TlsError};
use crate::common::transport::Link;
use crate::server::budget::{Budget, SHED_FRACTION};
use crate::server::capacity::{self, Admission, Ticket, Turned};
use crate::server::connection::{self, Context, READER_STACK};
use crate::server::event::{Events, LeaveReason, ServerEvent};
use crate::server::hub::Present;
use crate::server::hub::{Hub, HubLimits};
use crate::server::outbox::Outbox;
use crate::server::store::{Ban, BanTarget, Binding, StoreError};
use crate::server::trust::{banned_sentence, Trust, TrustError};
use crate::server::ServerConfig;

/// Connections allowed beyond `max_clients` and `max_handshaking` while
/// they close (a refused one lingers up to 2 s so it can read why); past
/// that, new connections are turned away at accept, as the system could not
/// give them threads. Smaller than the reserve `capacity` keeps for
/// everything else (250 connections' worth of mappings).
const CLOSING_SLACK: usize = 64;
/// How long stopping waits for clients to close after SERVER CLOSE before it
/// cuts the remaining connections.
const STOP_LINGER: Duration = Duration::from_secs(2);

/// Why the server could not start, in words for the person who started it.
#[derive(Debug)]
pub enum StartError {
    /// Another program listens on this port.
    PortInUse { addr: SocketAddr },
    /// This machine does not have the address.
    AddressNotAvailable { addr: SocketAddr },
    /// The port needs privileges the program does not have.
    PermissionDenied { addr: SocketAddr },
    /// Anything else the system reported.
    Other { addr: SocketAddr, source: io::Error },
    /// The server's identity (certificate) could not be made or read.
    Identity(TlsError),
    /// The database of names and bans, or the password, cannot be used.
    Trust(TrustError),
}

impl StartError {
    fn from_bind(addr: SocketAddr, e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::AddrInUse => StartError::PortInUse { addr },
            io::ErrorKind::AddrNotAvailable => StartError::AddressNotAvailable { addr },
            io::ErrorKind::PermissionDenied => StartError::PermissionDenied { addr },
            _ => StartError::Other { addr, source: e },
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::PortInUse { addr } => write!(
                f,
                "Port {} is already used by another program. Choose another port, or stop that program.",
                addr.port()
            ),
            StartError::AddressNotAvailable { addr } => write!(
                f,
                "This machine has no address {}. Choose one of its own addresses, or all interfaces.",
                addr.ip()
            ),
            StartError::PermissionDenied { addr } if addr.port() < 1024 => write!(
                f,
                "Port {} needs administrator rights. Choose a port from 1024 to 65535.",
                addr.port()
            ),
            StartError::PermissionDenied { addr } => {
                write!(f, "The system does not allow listening on {addr}.")
            }
            StartError::Other { addr, source } => write!(f, "Could not listen on {addr}: {source}."),
            StartError::Identity(e) => write!(f, "{e}"),
            StartError::Trust(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Other { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A running hub server. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    fingerprint: Fingerprint,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    /// Answers LAN discovery while the server runs, if asked to and able.
    discovery: Option<Responder>,
}

/// What closes a connection that loses its handshake slot.
type Admitted = Admission<Arc<Outbox>>;

struct Shared {
    ctx: Context,
    admission: Arc<Admitted>,
    stopping: AtomicBool,
    conns: Mutex<Conns>,
}

#[derive(Default)]
struct Conns {
    next: u64,
    open: HashMap<u64, Conn>,
}

struct Conn {
    outbox: Arc<Outbox>,
    thread: JoinHandle<()>,
}

impl Server {
    /// Binds `config.bind` and starts accepting clients. Events go to
    /// `events`, starting with [`ServerEvent::Listening`].
    pub fn start(config: ServerConfig, events: Events) -> Result<Server, StartError> {
        let credentials = match &config.credentials {
            Some(c) => c.clone(),
            None => Credentials::generate("HubChat server").map_err(StartError::Identity)?,
        };
        let tls = credentials.server_config().map_err(StartError::Identity)?;
        let trust = Trust::open(
            config.database.as_ref(),
            config.password.as_deref(),
            events.clone(),
        )
        .map_err(StartError::Trust)?;
        let bind = config.bind;
        let listener = TcpListener::bind(bind).map_err(|e| StartError::from_bind(bind, e))?;
        let addr = listener.local_addr().map_err(|e| StartError::Other {
            addr: bind,
            source: e,
        })?;
        // Never more connections than the system can give threads to: past
        // that, starting a thread aborts the process (see `capacity`).
        let mut config = config;
        config.max_handshaking = config.max_handshaking.max(1);
        if let Some(limit) = capacity::system_limit() {
            // Closing connections come out of the reserve `capacity` keeps.
            let room = config.max_handshaking;
            config.max_clients = config.max_clients.min(limit.saturating_sub(room).max(1));
        }
        let admission = Arc::new(Admission::new(
            config.max_per_address,
            config.max_handshaking,
        ));
        let budget = Budget::new(config.max_queued);
        events.count_in(&budget);
        let hub = Hub::new(
            events.clone(),
            HubLimits {
                max_clients: config.max_clients,
                max_packet: config.max_packet,
                max_message: config.max_message,
                max_file: config.max_file,
                budget: budget.clone(),
                shed_after: config.queue.grace / SHED_FRACTION,
            },
        );
        let shared = Arc::new(Shared {
            ctx: Context {
                hub: Arc::new(hub),
                events: events.clone(),
                config,
                budget,
                tls,
                trust: Arc::new(trust),
            },
            admission,
            stopping: AtomicBool::new(false),
            conns: Mutex::new(Conns::default()),
        });
        let accept = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("accept".into())
                .spawn(move || accept_loop(&listener, &shared))
                .map_err(|e| StartError::Other {
                    addr: bind,
                    source: e,
                })?
        };
        events.emit(ServerEvent::Listening {
            addr,
            fingerprint: credentials.fingerprint(),
        });
        let discovery = shared
            .ctx
            .config
            .discovery
            .as_ref()
            .and_then(|name| answer_discovery(name, addr, &events));
        Ok(Server {
            addr,
            fingerprint: credentials.fingerprint(),
            shared,
            accept: Some(accept),
            discovery,
        })
    }

    /// The fingerprint of the server's certificate, which clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Removes a joined client, telling it why (with the owner's reason,
    /// if given). Says whether it was there.
    pub fn kick(&self, id: &str, reason: &str) -> bool {
        let Some(present) = self.shared.ctx.hub.present(id) else {
            return false;
        };
        let message = with_reason("The server's owner removed you from the server.", reason);
        let kicked = self.shared.ctx.hub.kick(id, ErrorCode::Kicked, &message);
        if kicked {
            let why = if reason.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", reason.trim())
            };
            self.shared.ctx.trust.owner_did(format!(
                "kicked {} ({}){why}",
                present.who.name, present.who.id
            ));
        }
        kicked
    }

    /// Bans the joined client `id` by its identity (its certificate; only
    /// encrypted clients have one) or by its address, removes it and every
    /// other client the ban covers, and keeps the ban for later starts.
    pub fn ban(&self, id: &str, by: BanBy, reason: &str) -> Result<BanTarget, BanError> {
        let present = self.shared.ctx.hub.present(id).ok_or(BanError::Gone)?;
        let target = match by {
            BanBy::Identity => {
                BanTarget::Identity(present.identity.ok_or(BanError::NoIdentity)?.hex())
            }
            BanBy::Address => BanTarget::Address(present.addr.ip()),
        };
        self.ban_target(&target, &present.who.name, reason)?;
        Ok(target)
    }

    /// Bans `target` outright (from the list of bans, or the command line)
    /// and removes the joined clients it covers.
    pub fn ban_target(&self, target: &BanTarget, name: &str, reason: &str) -> Result<(), BanError> {
        let ctx = &self.shared.ctx;
        ctx.trust
            .ban(target, name, reason.trim())
            .map_err(BanError::Store)?;
        let ban = Ban {
            target: target.clone(),
            name: name.to_string(),
            reason: reason.trim().to_string(),
            banned_at: 0,
        };
        let sentence = banned_sentence(&ban);
        for p in ctx.hub.present_where(|p| covers(target, p)) {
            ctx.hub.kick(&p.who.id, ErrorCode::Banned, &sentence);
        }
        Ok(())
    }

    /// Lifts a ban; says whether there was one.
    pub fn lift_ban(&self, target: &BanTarget) -> Result<bool, StoreError> {
        self.shared.ctx.trust.lift(target)
    }

    /// Every ban, for the owner's list.
    pub fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        self.shared.ctx.trust.bans()
    }

    /// Every name that belongs to someone, for the owner's list.
    pub fn bindings(&self) -> Result<Vec<Binding>, StoreError> {
        self.shared.ctx.trust.bindings()
    }

    /// Frees a name for anyone to take; says whether it was bound.
    pub fn release_name(&self, name: &str) -> Result<bool, StoreError> {
        self.shared.ctx.trust.release(name)
    }

    /// The joined client with this id, as the owner sees it.
    pub fn present(&self, id: &str) -> Option<Present> {
        self.shared.ctx.hub.present(id)
    }

    /// The address the server listens on (with the real port when started
    /// on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many clients have joined and not left.
    pub fn client_count(&self) -> usize {
        self.shared.ctx.hub.client_count()
    }

    /// How many bytes wait to be sent in all: every client's queue and the
    /// events not yet taken, as the server's budget counts them.
    pub fn queued_bytes(&self) -> usize {
        self.shared.ctx.budget.queued()
    }

    /// Sends SERVER CLOSE to everyone, waits for every thread and frees the
    /// port. Clients get [`STOP_LINGER`] to close their end before the
    /// server cuts them off.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(responder) = self.discovery.take() {
            responder.stop();
        }
        wake_accept(self.addr);
        let _ = accept.join();

        self.shared.ctx.hub.close();
        let conns: Vec<Conn> = self
            .shared
            .lock_conns()
            .open
            .drain()
            .map(|(_, c)| c)
            .collect();
        let bye = ServerPacket::ServerClose {
            message: SERVER_CLOSE_TEXT.to_string(),
        }
        .encode();
        for conn in &conns {
            if conn.outbox.push(&bye).is_err() {
                conn.outbox.abort(LeaveReason::ServerStopping);
            }
            conn.outbox.finish();
        }
        let deadline = Instant::now() + STOP_LINGER;
        while Instant::now() < deadline && conns.iter().any(|c| !c.thread.is_finished()) {
            thread::sleep(Duration::from_millis(5));
        }
        for conn in conns {
            if !conn.thread.is_finished() {
                conn.outbox.abort(LeaveReason::ServerStopping);
            }
            let _ = conn.thread.join();
        }
        self.shared.ctx.events.emit(ServerEvent::Stopped);
    }
}

/// What to ban a client by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanBy {
    /// Its certificate: that one installation, wherever it connects from.
    Identity,
    /// Its address: everyone connecting from there.
    Address,
}

/// Why a ban could not be made.
#[derive(Debug)]
pub enum BanError {
    /// The client has left.
    Gone,
    /// The client has no identity to ban (an original or unencrypted
    /// client): ban its address instead.
    NoIdentity,
    /// The database failed.
    Store(StoreError),
}

impl fmt::Display for BanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanError::Gone => write!(f, "That client has already left."),
            BanError::NoIdentity => write!(
                f,
                "That client is not encrypted, so it has no identity to ban. Ban its address \
                 instead."
            ),
            BanError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BanError {}

fn covers(target: &BanTarget, p: &Present) -> bool {
    match target {
        BanTarget::Identity(hex) => p.identity.is_some_and(|f| f.hex() == *hex),
        BanTarget::Address(ip) => p.addr.ip().to_canonical() == ip.to_canonical(),
    }
}

/// `sentence`, then the owner's reason if there is one.
fn with_reason(sentence: &str, reason: &str) -> String {
    match reason.trim() {
        "" => sentence.to_string(),
        reason => format!("{sentence} Reason: {reason}"),
    }
}

/// Starts answering discovery as `name` on the UDP port equal to the TCP
/// port, and says in the log whether that worked. A server that cannot be
/// found still serves whoever types its address.
fn answer_discovery(name: &str, addr: SocketAddr, events: &Events) -> Option<Responder> {
    let port = addr.port();
    let config = ResponderConfig {
        port,
        name: name.to_string(),
        addresses: discovery::addresses_for(addr.ip()),
        limits: RateLimits::DEFAULT,
    };
    match Responder::start(config) {
        Ok(responder) => {
            events.emit(ServerEvent::Discovery(Status::Answering { port }));
            Some(responder)
        }
        Err(e) => {
            let reason = e.to_string();
            events.emit(ServerEvent::Discovery(Status::Unavailable { port, reason }));
            None
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    /// The connection table is only ever inserted into and removed from
    /// whole, so it is consistent even after a panic elsewhere.
    fn lock_conns(&self) -> MutexGuard<'_, Conns> {
        self.conns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match stream {
            Ok(stream) => open_connection(stream, shared),
            // The client gave up between connecting and our accept.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => {
                shared.ctx.events.emit(ServerEvent::Error {
                    message: accept_error_message(&e),
                });
                // Out of file descriptors or memory: give the system a
                // moment rather than spin on the same error.
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn accept_error_message(e: &io::Error) -> String {
    if e.raw_os_error() == Some(24) {
        // EMFILE on Unix.
        "Could not accept a connection: too many open files. Raise the limit (ulimit -n) to serve more clients.".into()
    } else {
        format!("Could not accept a connection: {e}")
    }
}

fn open_connection(stream: TcpStream, shared: &Arc<Shared>) {
    let Ok(addr) = stream.peer_addr() else {
        return; // Already gone.
    };
    let config = &shared.ctx.config;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.queue.grace));

    if let Some(ban) = shared.ctx.trust.banned_address(addr.ip()) {
        turn_away(&stream, addr, &banned_sentence(&ban), shared);
        return;
    }
    let mut conns = shared.lock_conns();
    if conns.open.len() >= config.max_clients + config.max_handshaking + CLOSING_SLACK {
        drop(conns);
        turn_away(&stream, addr, FULL, shared);
        return;
    }
    // One descriptor per client, shared by its reader, writer and outbox.
    let link = Link::plain(Arc::new(stream));
    let outbox = Arc::new(Outbox::new(
        link.clone(),
        config.queue,
        shared.ctx.budget.clone(),
    ));
    let ticket = match admit(shared, addr, &outbox) {
        Ok(ticket) => ticket,
        Err(turned) => {
            drop(conns);
            turn_away(link.stream(), addr, &turned.to_string(), shared);
            return;
        }
    };
    let key = conns.next;
    conns.next += 1;
    let spawned = {
        let shared = shared.clone();
        let outbox = outbox.clone();
        thread::Builder::new()
            .name(format!("read {addr}"))
            .stack_size(READER_STACK)
            .spawn(move || {
                connection::serve(link, addr, outbox, &ticket, &shared.ctx);
                forget(ticket, &shared, key);
            })
    };
    // The table stays locked until the handle is in it, so a connection that
    // ends at once still finds its own entry to remove.
    match spawned {
        Ok(thread) => {
            conns.open.insert(key, Conn { outbox, thread });
        }
        Err(e) => {
            drop(conns);
            shared.ctx.events.emit(ServerEvent::Error {
                message: format!("Could not serve {addr}: {e}"),
            });
        }
    }
}

/// Forgets a connection that has ended. Kept out of the thread's first
/// frame, which stays on the stack for the connection's whole life: what
/// is done once at the end should not make every connection's stack
/// deeper (a page of it is 40 MB at 10,000 clients).
#[inline(never)]
fn forget(ticket: Ticket<Arc<Outbox>>, shared: &Shared, key: u64) {
    drop(ticket);
    shared.lock_conns().open.remove(&key);
}

/// Counts a new connection in, closing the handshake it displaces if any.
fn admit(
    shared: &Shared,
    addr: SocketAddr,
    outbox: &Arc<Outbox>,
) -> Result<Ticket<Arc<Outbox>>, Turned> {
    let (ticket, evicted) = shared.admission.admit(addr.ip(), outbox.clone())?;
    if let Some(evicted) = evicted {
        evicted.abort(LeaveReason::Refused {
            code: ErrorCode::HandshakeTimeout,
            detail: "Another address needed its place among the connections still starting.".into(),
        });
    }
    Ok(ticket)
}

/// Why a connection is turned away when the system has no threads to spare.
const FULL: &str = "The server is full. Try again later.";

/// Refuses a connection at accept, without spending threads on it: one
/// SERVER CLOSE (understood by every client, and shown by HubChat clients)
/// written without blocking.
fn turn_away(mut stream: &TcpStream, addr: SocketAddr, message: &str, shared: &Shared) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(
        &ServerPacket::ServerClose {
            message: message.into(),
        }
        .encode(),
    );
    shared.ctx.events.emit(ServerEvent::Refused {
        addr,
        name: None,
        reason: LeaveReason::Refused {
            code: ErrorCode::ServerFull,
            detail: message.into(),
        },
    });
}

/// Unblocks the accept loop by connecting to it, so it sees the stop flag.
/// An unspecified bind address is reached through loopback.
fn wake_accept(addr: SocketAddr) {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let _ = TcpStream::connect_timeout(&SocketAddr::new(ip, addr.port()), Duration::from_secs(1));
}
