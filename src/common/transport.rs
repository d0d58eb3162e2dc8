//! One connection's bytes, plain or encrypted: the seam under the protocol.
//!
//! A [`Link`] is what readers read frames from and writers write frames
//! into, on either side. It starts plain (the original protocol) and can be
//! upgraded once to TLS on the same socket (see docs/protocol.md, STARTTLS).
//! Clones share the socket and the TLS state, so a connection's reader and
//! writer threads (and, later, a sender writing straight into a receiver's
//! socket) each hold one.
//!
//! rustls needs `&mut` for both directions, so the TLS state sits in a
//! mutex, and that lock is never held across a blocking socket call: a
//! reader reads raw bytes outside it and feeds them in under it; a writer
//! seals under it and sends outside it. TLS records must reach the socket
//! in the order they were sealed, so writers (and a reader answering with
//! TLS bytes of its own) take a send lock first, seal, and send while still
//! holding it. Lock order: send, then state.

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
}

struct Tls {
    state: Mutex<TlsState>,
    /// Held while sealing and sending, so records leave in order.
    send: Mutex<()>,
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
            send: Mutex::new(()),
            peer,
        };
        self.tls
            .set(tls)
            .map_err(|_| UpgradeError::Io(io::Error::other("the link is already encrypted")))
    }

    /// Sends all of `bytes` (sealed first, when encrypted).
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        match self.tls.get() {
            None => (&*self.stream).write_all(bytes),
            Some(tls) => {
                let _order = lock(&tls.send);
                let sealed = {
                    let mut state = lock(&tls.state);
                    state.conn.writer().write_all(bytes)?;
                    take_tls(&mut state.conn)?
                };
                (&*self.stream).write_all(&sealed)
            }
        }
    }

    /// Ends the connection in both directions (unblocking its threads).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Says "no more from this side": a TLS close_notify, then the socket's
    /// write half.
    pub fn finish(&self) {
        if let Some(tls) = self.tls.get() {
            let _order = lock(&tls.send);
            let sealed = {
                let mut state = lock(&tls.state);
                state.conn.send_close_notify();
                take_tls(&mut state.conn)
            };
            if let Ok(sealed) = sealed {
                let _ = (&*self.stream).write_all(&sealed);
            }
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }

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
        let _order = lock(&tls.send);
        let sealed = take_tls(&mut lock(&tls.state).conn)?;
        (&*self.stream).write_all(&sealed)
    }
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
