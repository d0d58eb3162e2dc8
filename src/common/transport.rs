//! One connection's bytes, plain or encrypted: the seam under the protocol.
//!
//! A [`Link`] is what readers read frames from and writers write frames
//! into, on either side. It starts plain (the original protocol) and can be
//! upgraded once to TLS on the same socket (see docs/protocol.md, STARTTLS).
//! Clones share the socket and the TLS state, so a connection's reader, its
//! writer, and a sender writing straight into a receiver's socket
//! ([`Link::try_send`]) each hold one.
//!
//! rustls needs `&mut` for both directions, so the TLS state sits in a
//! mutex, and that lock is never held across a blocking socket call: a
//! reader reads raw bytes outside it and feeds them in under it; a writer
//! seals under it and sends outside it. Bytes must reach the socket in the
//! order they were sealed, so whoever sends (a writer, a sender trying
//! without blocking, a reader answering with TLS bytes of its own) takes the
//! send lock first, seals, and sends while still holding it. What a send
//! that must not block could not hand to the socket waits under that lock,
//! sealed, and goes out before anything else. Lock order: send, then state.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::common::connection::ReadTimeout;
use crate::common::tls::Fingerprint;

/// Raw bytes read from the socket at a time, on the reading thread's stack
/// (a server holds thousands of links: no per-link heap buffer for this).
const RAW_CHUNK: usize = 8 * 1024;

/// A connection's socket, plain until [`Link::upgrade`].
#[derive(Clone)]
pub struct Link {
    stream: Arc<TcpStream>,
    tls: Arc<OnceLock<Tls>>,
    /// Held while sealing and sending, so bytes leave in order.
    send: Arc<Mutex<Outgoing>>,
}

/// What the send lock guards.
#[derive(Default)]
struct Outgoing {
    /// What [`Link::try_send`] left over: bytes ready for the socket
    /// (sealed, when encrypted) that go out before anything else.
    held: Vec<u8>,
    /// The TLS close_notify has been sealed: it is said once.
    said_goodbye: bool,
}

/// What [`Link::try_send`] managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Everything is in the socket.
    All,
    /// The socket took only part; `held` bytes wait in the link for
    /// [`Link::flush`] (or the next [`Link::send`]), which may block.
    Partly { held: usize },
}

/// Whether [`Link::try_send`] can hand bytes to the socket without
/// blocking on this system. Where it cannot, it holds everything it is
/// given, and a sender should queue frames for a writer thread instead.
pub const SENDS_WITHOUT_BLOCKING: bool = cfg!(target_os = "linux");

struct Tls {
    state: Mutex<TlsState>,
    peer: Option<Fingerprint>,
}

struct TlsState {
    conn: rustls::Connection,
    /// Raw bytes read but not yet taken by rustls (it takes no more while
    /// its plaintext buffer is full); empty nearly always.
    unread: Vec<u8>,
}

impl Link {
    /// A plain link over `stream`.
    pub fn plain(stream: Arc<TcpStream>) -> Self {
        Link {
            stream,
            tls: Arc::new(OnceLock::new()),
            send: Arc::new(Mutex::new(Outgoing::default())),
        }
    }

    /// The socket underneath (to shut down, or to ask its address).
    pub fn stream(&self) -> &Arc<TcpStream> {
        &self.stream
    }

    /// Whether what goes through this link is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.tls.get().is_some()
    }

    /// The fingerprint of the certificate the peer showed, once encrypted.
    pub fn peer_identity(&self) -> Option<Fingerprint> {
        self.tls.get().and_then(|tls| tls.peer)
    }

    /// Runs a TLS handshake over the socket, to finish by `deadline`, and
    /// from then on encrypts everything that goes through this link and its
    /// clones. Nothing else may use the socket meanwhile (the protocol
    /// sends nothing between STARTTLS and the handshake). A link is
    /// upgraded at most once.
    pub fn upgrade(
        &self,
        conn: impl Into<rustls::Connection>,
        deadline: Instant,
    ) -> Result<(), UpgradeError> {
        let mut conn: rustls::Connection = conn.into();
        conn.set_buffer_limit(None);
        handshake(&self.stream, &mut conn, deadline)?;
        let peer = conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|cert| Fingerprint::of(cert));
        let tls = Tls {
            state: Mutex::new(TlsState {
                conn,
                unread: Vec::new(),
            }),
            peer,
        };
        self.tls
            .set(tls)
            .map_err(|_| UpgradeError::Io(io::Error::other("the link is already encrypted")))
    }

    /// Sends all of `bytes` (sealed first, when encrypted), after whatever
    /// an earlier [`Link::try_send`] left over. Blocks until the socket has
    /// taken it all (or its write timeout passes).
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = lock(&self.send);
        self.write_held(&mut out)?;
        match self.tls.get() {
            None => (&*self.stream).write_all(bytes),
            Some(tls) => {
                let sealed = seal(tls, bytes)?;
                (&*self.stream).write_all(&sealed)
            }
        }
    }

    /// Sends `bytes` (sealed first, when encrypted) as far as the socket
    /// takes them now, without blocking; the rest is held in the link, in
    /// order before anything sent later. Where the system cannot send
    /// without blocking (see [`SENDS_WITHOUT_BLOCKING`]) everything is held.
    pub fn try_send(&self, bytes: &[u8]) -> io::Result<Sent> {
        let mut out = lock(&self.send);
        let sealed;
        let bytes = match self.tls.get() {
            None => bytes,
            Some(tls) => {
                sealed = seal(tls, bytes)?;
                &sealed[..]
            }
        };
        self.send_or_hold(&mut out, bytes)
    }

    /// Hands `bytes` to the socket as far as it takes them without
    /// blocking, after what is held; holds the rest.
    fn send_or_hold(&self, out: &mut Outgoing, bytes: &[u8]) -> io::Result<Sent> {
        let sent = if out.held.is_empty() {
            send_now(&self.stream, bytes)?
        } else {
            0
        };
        if sent == bytes.len() {
            return Ok(Sent::All);
        }
        out.held.extend_from_slice(&bytes[sent..]);
        Ok(Sent::Partly {
            held: out.held.len(),
        })
    }

    /// Sends what [`Link::try_send`] left over, blocking until the socket
    /// has taken it (or its write timeout passes).
    pub fn flush(&self) -> io::Result<()> {
        self.write_held(&mut lock(&self.send))
    }

    fn write_held(&self, out: &mut Outgoing) -> io::Result<()> {
        if out.held.is_empty() {
            return Ok(());
        }
        (&*self.stream).write_all(&out.held)?;
        // A burst's leftovers do not stay allocated for the link's life.
        out.held = Vec::new();
        Ok(())
    }

    /// Ends the connection in both directions (unblocking its threads).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Says "no more from this side": what is held, a TLS close_notify,
    /// then the socket's write half. May block (within the socket's write
    /// timeout).
    pub fn finish(&self) {
        {
            let mut out = lock(&self.send);
            if self.write_held(&mut out).is_err() {
                let _ = self.stream.shutdown(Shutdown::Write);
                return;
            }
            if let Some(sealed) = self.goodbye(&mut out) {
                let _ = (&*self.stream).write_all(&sealed);
            }
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Says "no more from this side" as [`Link::finish`] does, if that
    /// can be done without blocking; false if something is left held for
    /// [`Link::finish`] to send.
    pub fn finish_now(&self) -> bool {
        let mut out = lock(&self.send);
        if !SENDS_WITHOUT_BLOCKING || !out.held.is_empty() {
            return false;
        }
        if let Some(sealed) = self.goodbye(&mut out) {
            if !matches!(self.send_or_hold(&mut out, &sealed), Ok(Sent::All)) {
                return false;
            }
        }
        drop(out);
        let _ = self.stream.shutdown(Shutdown::Write);
        true
    }

    /// The TLS close_notify, sealed, the first time it is asked for.
    fn goodbye(&self, out: &mut Outgoing) -> Option<Vec<u8>> {
        let tls = self.tls.get()?;
        if out.said_goodbye {
            return None;
        }
        out.said_goodbye = true;
        let mut state = lock(&tls.state);
        state.conn.send_close_notify();
        take_tls(&mut state.conn).ok()
    }

    #[inline(never)]
    fn read_tls(&self, tls: &Tls, buf: &mut [u8]) -> io::Result<usize> {
        let mut raw = [0u8; RAW_CHUNK];
        loop {
            let (answer, read) = {
                let mut state = lock(&tls.state);
                match state.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    // The peer closed without saying close_notify: to the
                    // frame reader that is an end like any other, and a
                    // frame cut short by it is still caught there.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                // Bytes rustls could not take last time go in first.
                if !state.unread.is_empty() {
                    let unread = std::mem::take(&mut state.unread);
                    if feed(&mut state, &unread)? == 0 {
                        // Nothing taken and nothing to read: it never will be.
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the encrypted stream could not be decoded",
                        ));
                    }
                    (state.conn.wants_write(), true)
                } else {
                    (false, false)
                }
            };
            if answer {
                self.answer(tls)?;
            }
            if read {
                continue;
            }
            let n = (&*self.stream).read(&mut raw)?;
            let answer = {
                let mut state = lock(&tls.state);
                if n == 0 {
                    // End of stream: let rustls see it, so the next
                    // reader().read reports the close.
                    let _ = state.conn.read_tls(&mut &[][..]);
                    let _ = state.conn.process_new_packets();
                    match state.conn.reader().read(buf) {
                        Ok(n) => return Ok(n),
                        Err(_) => return Ok(0),
                    }
                }
                feed(&mut state, &raw[..n])?;
                state.conn.wants_write()
            };
            if answer {
                self.answer(tls)?;
            }
        }
    }

    /// Sends what rustls has to say of its own accord (alerts, key
    /// updates, tickets), in order with everything else sent.
    fn answer(&self, tls: &Tls) -> io::Result<()> {
        let mut out = lock(&self.send);
        self.write_held(&mut out)?;
        let sealed = take_tls(&mut lock(&tls.state).conn)?;
        (&*self.stream).write_all(&sealed)
    }
}

/// `bytes` sealed into TLS records (call with the send lock held).
fn seal(tls: &Tls, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut state = lock(&tls.state);
    state.conn.writer().write_all(bytes)?;
    take_tls(&mut state.conn)
}

/// Hands `bytes` to the socket as far as it takes them without blocking;
/// says how many it took (0 when its buffer is full).
#[cfg(target_os = "linux")]
fn send_now(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut sent = 0;
    while sent < bytes.len() {
        let rest = &bytes[sent..];
        // SAFETY: the pointer and length describe `rest`, a live slice, and
        // the descriptor belongs to `stream`, open for as long as it lives.
        let n = unsafe {
            libc::send(
                stream.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => break,
                io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            }
        }
        sent += n as usize;
    }
    Ok(sent)
}

/// Elsewhere a socket cannot be written without blocking while another
/// thread blocks reading it: everything is left to the writer.
#[cfg(not(target_os = "linux"))]
fn send_now(_stream: &TcpStream, _bytes: &[u8]) -> io::Result<usize> {
    Ok(0)
}

/// Hands raw bytes to rustls and decrypts them; what it cannot take yet
/// (its plaintext buffer is full) waits in `unread`. Says how many bytes
/// rustls took.
fn feed(state: &mut TlsState, mut raw: &[u8]) -> io::Result<usize> {
    let mut taken = 0;
    while !raw.is_empty() {
        match state.conn.read_tls(&mut raw) {
            Ok(0) => break,
            Ok(n) => taken += n,
            Err(_) => {
                // Full: decrypting what it has is still to do below; the
                // rest waits.
                state.unread.extend_from_slice(raw);
                break;
            }
        }
        state
            .conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
    Ok(taken)
}

/// Everything rustls has sealed and not yet sent.
fn take_tls(conn: &mut rustls::Connection) -> io::Result<Vec<u8>> {
    let mut sealed = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut sealed)?;
    }
    Ok(sealed)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a TLS handshake did not finish.
#[derive(Debug)]
pub enum UpgradeError {
    /// The peer's certificate or handshake was refused by TLS.
    Tls(rustls::Error),
    /// The deadline passed first.
    TimedOut,
    /// The socket failed or closed.
    Io(io::Error),
}

impl std::fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpgradeError::Tls(e) => write!(f, "the encryption handshake failed: {e}"),
            UpgradeError::TimedOut => write!(f, "the encryption handshake did not finish in time"),
            UpgradeError::Io(e) => write!(
                f,
                "the connection failed during the encryption handshake: {e}"
            ),
        }
    }
}

impl std::error::Error for UpgradeError {}

/// Drives a handshake to its end over a blocking socket, keeping one
/// deadline for all of it (a peer trickling a byte at a time is still cut
/// off on time). Leaves the socket without a read timeout.
#[inline(never)]
fn handshake(
    stream: &TcpStream,
    conn: &mut rustls::Connection,
    deadline: Instant,
) -> Result<(), UpgradeError> {
    let mut raw = [0u8; RAW_CHUNK];
    let result = (|| {
        while conn.is_handshaking() {
            while conn.wants_write() {
                let sealed = take_tls(conn).map_err(UpgradeError::Io)?;
                let mut s = stream;
                s.write_all(&sealed).map_err(UpgradeError::Io)?;
            }
            if !conn.is_handshaking() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(UpgradeError::TimedOut);
            }
            stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(UpgradeError::Io)?;
            let n = match (&*stream).read(&mut raw) {
                Ok(0) => {
                    return Err(UpgradeError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(UpgradeError::TimedOut)
                }
                Err(e) => return Err(UpgradeError::Io(e)),
            };
            let mut slice = &raw[..n];
            while !slice.is_empty() {
                conn.read_tls(&mut slice).map_err(UpgradeError::Io)?;
                if let Err(e) = conn.process_new_packets() {
                    // Tell the peer why (an alert) before giving up.
                    if let Ok(sealed) = take_tls(conn) {
                        let mut s = stream;
                        let _ = s.write_all(&sealed);
                    }
                    return Err(UpgradeError::Tls(e));
                }
            }
        }
        // The last flight (the client's Finished, the server's tickets).
        let sealed = take_tls(conn).map_err(UpgradeError::Io)?;
        let mut s = stream;
        s.write_all(&sealed).map_err(UpgradeError::Io)
    })();
    let _ = stream.set_read_timeout(None);
    result
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tls.get() {
            None => (&*self.stream).read(buf),
            Some(tls) => self.read_tls(tls, buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ReadTimeout for Link {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }
}
