//! How a load client joins encrypted: as the HubChat client does.
//!
//! The client offers TLS in its plain INFO, waits for the server's
//! STARTTLS, runs a TLS 1.3 handshake on the same socket through the same
//! [`Link`] and [`Credentials::client_config`] the real client uses (see
//! `src/client/session.rs`), and says INFO again inside TLS. A server that
//! lets the client in without STARTTLS fails the join with a sentence: a
//! `--tls` run never measures plain text by mistake.
//!
//! Each load client shows a certificate of its own, since the server binds
//! each name to the identity that first used it. Making 1,000 Ed25519
//! certificates is work the real client does once in its life, not per
//! connection, so [`identities`] makes them before the clock starts, on
//! every core, and says how long it took.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::connection::FrameReader;
use crate::common::packet::{ClientPacket, ServerPacket};
use crate::common::tls::{self, Credentials, Fingerprint};
use crate::common::transport::{Link, UpgradeError};

/// How long a load client's TLS handshake may take (the server allows 10 s
/// for the whole join).
const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(10);

/// `n` new identities, one per load client, made on all cores; and the
/// milliseconds that took.
pub fn identities(n: usize) -> io::Result<(Vec<Credentials>, f64)> {
    let begun = Instant::now();
    let cores = thread::available_parallelism().map_or(1, |c| c.get());
    let per = n.div_ceil(cores.max(1)).max(1);
    let made: Vec<io::Result<Vec<Credentials>>> = thread::scope(|s| {
        let workers: Vec<_> = (0..n)
            .step_by(per)
            .map(|first| {
                s.spawn(move || {
                    (first..(first + per).min(n))
                        .map(|idx| {
                            Credentials::generate(&format!("hubchat-load client {idx}"))
                                .map_err(io::Error::other)
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a certificate maker panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(n);
    for chunk in made {
        all.extend(chunk?);
    }
    Ok((all, begun.elapsed().as_secs_f64() * 1000.0))
}

/// Reads the server's answer to an INFO that offered TLS: STARTTLS, after
/// the INFO request. Anything that lets the client in (or turns it away)
/// instead is an error saying so.
pub fn await_start_tls(reader: &mut FrameReader<Link>) -> io::Result<()> {
    loop {
        let body = match reader.read_frame() {
            Ok(Some(body)) => body,
            Ok(None) => return Err(refused("the server closed the connection before STARTTLS")),
            Err(e) => return Err(io::Error::other(e.to_string())),
        };
        let packet = ServerPacket::decode(body)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        match packet {
            ServerPacket::InfoRequest => continue,
            ServerPacket::StartTls => return Ok(()),
            ServerPacket::Error(report) => return Err(refused(&report.message)),
            ServerPacket::ServerClose { message } => return Err(refused(&message)),
            ServerPacket::Welcome(_) | ServerPacket::AllClients(_) => {
                // It let us in in plain text: leave properly, so no one
                // keeps listing us, and say why the run cannot count this.
                let _ = reader.get_ref().send(&ClientPacket::Disconnect.encode());
                return Err(not_encrypted());
            }
            _ => return Err(not_encrypted()),
        }
    }
}

/// Runs the TLS handshake after STARTTLS with `identity`'s certificate,
/// trusting the server's on first use as the client does; returns the
/// server's fingerprint. Leaves the socket with a read timeout of
/// `read_timeout` for the rest of the join.
pub fn encrypt(
    link: &Link,
    reader: &FrameReader<Link>,
    identity: &Credentials,
    read_timeout: Duration,
) -> io::Result<Fingerprint> {
    if reader.buffered() > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the server sent more after STARTTLS, before the TLS handshake",
        ));
    }
    let (config, seen) = identity.client_config(None).map_err(io::Error::other)?;
    let conn = rustls::ClientConnection::new(config, tls::server_name())
        .map_err(|e| io::Error::other(format!("could not start TLS: {e}")))?;
    link.upgrade(conn, Instant::now() + HANDSHAKE_PATIENCE)
        .map_err(|e: UpgradeError| io::Error::other(e.to_string()))?;
    link.stream().set_read_timeout(Some(read_timeout))?;
    seen.get()
        .filter(|_| link.is_encrypted())
        .ok_or_else(|| io::Error::other("the server showed no certificate"))
}

fn refused(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, message.to_string())
}

fn not_encrypted() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "the server did not encrypt: it answered the offer of TLS without STARTTLS \
         (an original server, or HubChat before version 2)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_gets_an_identity_of_its_own() {
        let (made, ms) = identities(5).unwrap();
        assert_eq!(made.len(), 5);
        let mut prints: Vec<_> = made.iter().map(Credentials::fingerprint).collect();
        prints.sort();
        prints.dedup();
        assert_eq!(prints.len(), 5, "no two clients share a certificate");
        assert!(ms >= 0.0);
        assert!(identities(0).unwrap().0.is_empty());
    }
}
