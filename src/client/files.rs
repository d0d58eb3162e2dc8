//! Files sent and received on a session, without any GUI.
//!
//! Sending: [`Files::offer`] announces a file (with a thumbnail for a
//! picture); each receiver that accepts gets its own thread, which reads
//! the file in chunks and sends no more than the receiver's window beyond
//! what it acknowledged, hashing as it goes, then says FILE DONE with the
//! SHA-256. Receiving: an accepted file is written by the session's reader
//! as its chunks arrive (see [`crate::common::incoming`]: under a partial
//! name, renamed only when the hash matches), acknowledged every
//! [`ACK_EVERY`] bytes so the sender may go on. Either side can cancel;
//! a lost connection fails every transfer with a sentence. What happens
//! reaches the window as [`FileEvent`]s through the session's sink.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ring::digest::{Context, SHA256};

use crate::common::file_packet::{
    describe_size, CancelReason, FileMsg, FilePacket, Offer, CHUNK, WINDOW,
};
use crate::common::filename;
use crate::common::incoming::Incoming;
use crate::common::packet::ClientPacket;
use crate::common::thumbnail;
use crate::common::transport::Link;

/// How many bytes a receiver writes between acknowledgements: a quarter of
/// its window, so the sender always has room to go on.
pub const ACK_EVERY: u64 = WINDOW / 4;

/// How often, at most, progress is reported for one transfer.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Which transfer an event is about: the id its sender made, the other
/// party's client id, and which way the file goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransferKey {
    pub transfer: String,
    pub peer: String,
    pub outgoing: bool,
}

/// What happens to files, for the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEvent {
    /// `from` offers a file (its name already made safe to save under).
    Offered {
        key: TransferKey,
        name: String,
        size: u64,
        /// A checked PNG thumbnail, for a picture.
        thumbnail: Option<Vec<u8>>,
        /// Offered to the Everyone room rather than to us alone.
        room: bool,
    },
    /// A receiver accepted one of our offers: sending starts.
    Accepted { key: TransferKey },
    /// `done` of `total` bytes have gone through (acknowledged by the
    /// receiver, for a file we send).
    Progress {
        key: TransferKey,
        done: u64,
        total: u64,
    },
    /// The file arrived whole and checked: saved at `path` (ours), or
    /// saved by the receiver (`None`, for a file we sent).
    Finished {
        key: TransferKey,
        path: Option<PathBuf>,
    },
    /// The transfer ended without the file: declined, cancelled or failed,
    /// said in a sentence.
    Ended {
        key: TransferKey,
        reason: CancelReason,
        message: String,
    },
    /// An offer of ours could not be made at all (the server refused it,
    /// or the file could not be read): `transfer` is its id.
    Refused { transfer: String, message: String },
    /// The thumbnail of a picture we offer, made as the offer went out
    /// (a PNG, as it travels).
    Thumbnail { transfer: String, png: Vec<u8> },
}

/// An offer made: its id, and the file's name and size as offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub transfer: String,
    pub name: String,
    pub size: u64,
}

/// Whom a file is offered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// The client with this id.
    Client(String),
    /// Everyone here who can receive files.
    Everyone,
}

/// Why an offer cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferError(pub String);

impl std::fmt::Display for OfferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Sink = Arc<dyn Fn(crate::client::session::SessionEvent) + Send + Sync>;

/// The files of one session.
#[derive(Clone)]
pub struct Files {
    shared: Arc<Shared>,
}

struct Shared {
    link: Link,
    /// Set once the session has ended: nothing more is sent.
    ended: Arc<AtomicBool>,
    sink: Sink,
    /// The largest file the server passes on.
    max_file: u64,
    /// Where accepted files go.
    downloads: Mutex<PathBuf>,
    state: Mutex<State>,
    /// Wakes sending threads when an acknowledgement (or a cancel, or the
    /// end of the session) arrives.
    credit: Condvar,
}

#[derive(Default)]
struct State {
    /// Our offers, by transfer id.
    outgoing: HashMap<String, Outgoing>,
    /// Offers to us and files arriving, by (sender id, transfer id).
    incoming: HashMap<(String, String), Arriving>,
    next: u64,
}

struct Outgoing {
    path: PathBuf,
    name: String,
    size: u64,
    /// Receivers that accepted, by client id.
    legs: HashMap<String, Leg>,
    /// The offer is still open to receivers that have not answered.
    open: bool,
    /// Offered to the room: any number may answer. An offer to one client
    /// closes with that client's answer.
    room: bool,
}

#[derive(Default)]
struct Leg {
    window: u64,
    acked: u64,
    /// Stop sending (cancelled by either side, or failed).
    stopped: bool,
}

enum Arriving {
    Offered { name: String, size: u64 },
    Receiving(Box<Receiving>),
}

struct Receiving {
    file: Incoming,
    acked: u64,
    reported: Instant,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Files {
    pub(crate) fn new(
        link: Link,
        ended: Arc<AtomicBool>,
        sink: Sink,
        max_file: u64,
        downloads: PathBuf,
    ) -> Files {
        Files {
            shared: Arc::new(Shared {
                link,
                ended,
                sink,
                max_file,
                downloads: Mutex::new(downloads),
                state: Mutex::new(State::default()),
                credit: Condvar::new(),
            }),
        }
    }

    /// The largest file the server passes on, in bytes.
    pub fn max_file(&self) -> u64 {
        self.shared.max_file
    }

    /// Where accepted files are saved.
    pub fn downloads(&self) -> PathBuf {
        self.shared
            .downloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Saves accepted files in `dir` from now on.
    pub fn set_downloads(&self, dir: PathBuf) {
        *self
            .shared
            .downloads
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = dir;
    }

    /// Offers the file at `path` to `to`. The file must exist, be a plain
    /// file and fit the server's limit. A picture's thumbnail is made on a
    /// thread of its own, which then sends the offer (and reports the
    /// thumbnail), so the caller (the window) never waits on a large file.
    pub fn offer(&self, to: Recipient, path: &Path) -> Result<Offered, OfferError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| OfferError(format!("{} cannot be read: {e}.", path.display())))?;
        if !meta.is_file() {
            return Err(OfferError(format!(
                "{} is not a file (folders cannot be sent).",
                path.display()
            )));
        }
        let size = meta.len();
        let max = self.shared.max_file;
        if size > max {
            return Err(OfferError(format!(
                "{} is {}; this server passes on files of at most {}.",
                display_name(path),
                describe_size(size),
                describe_size(max)
            )));
        }
        let name = display_name(path);
        let transfer = {
            let mut state = lock(&self.shared.state);
            state.next += 1;
            let transfer = format!("{}-{}", random_id(), state.next);
            state.outgoing.insert(
                transfer.clone(),
                Outgoing {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    size,
                    legs: HashMap::new(),
                    open: true,
                    room: to == Recipient::Everyone,
                },
            );
            transfer
        };
        let shared = self.shared.clone();
        let (id, path, offered) = (transfer.clone(), path.to_path_buf(), name.clone());
        let sent = thread::Builder::new()
            .name("file offer".into())
            .spawn(move || {
                let thumbnail = thumbnail::make(&path);
                if let Some(png) = &thumbnail {
                    shared.emit(FileEvent::Thumbnail {
                        transfer: id.clone(),
                        png: png.clone(),
                    });
                }
                let (peer, room) = match to {
                    Recipient::Client(id) => (Some(id), false),
                    Recipient::Everyone => (None, true),
                };
                shared.send(FilePacket {
                    transfer: id,
                    peer,
                    what: FileMsg::Offer(Offer {
                        name: offered,
                        size,
                        thumbnail,
                        room,
                    }),
                });
            });
        if sent.is_err() {
            lock(&self.shared.state).outgoing.remove(&transfer);
            return Err(OfferError("The offer could not be started.".into()));
        }
        Ok(Offered {
            transfer,
            name,
            size,
        })
    }

    /// Accepts an offer: the file is created in the Downloads folder (under
    /// a partial name) and the sender may start.
    pub fn accept(&self, from: &str, transfer: &str) -> Result<(), String> {
        let key = (from.to_string(), transfer.to_string());
        let mut state = lock(&self.shared.state);
        let Some(Arriving::Offered { name, size }) = state.incoming.get(&key) else {
            return Err("This offer is no longer open.".into());
        };
        let dir = self.downloads();
        let file = Incoming::start(&dir, name, *size)
            .map_err(|e| format!("The file cannot be saved in {}: {e}.", dir.display()))?;
        state.incoming.insert(
            key,
            Arriving::Receiving(Box::new(Receiving {
                file,
                acked: 0,
                reported: Instant::now(),
            })),
        );
        drop(state);
        self.shared.send(FilePacket {
            transfer: transfer.to_string(),
            peer: Some(from.to_string()),
            what: FileMsg::Accept { window: WINDOW },
        });
        Ok(())
    }

    /// Declines an offer; the sender is told.
    pub fn decline(&self, from: &str, transfer: &str) {
        let key = (from.to_string(), transfer.to_string());
        if lock(&self.shared.state).incoming.remove(&key).is_some() {
            self.shared.send(cancel_packet(
                transfer,
                Some(from),
                CancelReason::Declined,
                None,
            ));
        }
    }

    /// Stops a transfer in either direction (for an offer of ours with no
    /// `peer`, to everyone it went to); the other side is told, a partial
    /// file is deleted.
    pub fn cancel(&self, key: &TransferKey) {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        let mut also = Vec::new();
        let found = if key.outgoing {
            match state.outgoing.get_mut(&key.transfer) {
                Some(offer) if key.peer.is_empty() => {
                    offer.open = false;
                    also.extend(
                        offer
                            .legs
                            .drain()
                            .map(|(peer, _)| out_key(&key.transfer, &peer)),
                    );
                    true
                }
                Some(offer) => {
                    if !offer.room {
                        offer.open = false;
                    }
                    offer.legs.remove(&key.peer).is_some() || !offer.room
                }
                None => false,
            }
        } else {
            state
                .incoming
                .remove(&(key.peer.clone(), key.transfer.clone()))
                .is_some()
        };
        if key.outgoing {
            state.forget_if_over(&key.transfer);
        }
        drop(state);
        shared.credit.notify_all();
        if found {
            let peer = Some(key.peer.as_str()).filter(|p| !p.is_empty());
            let message = if key.outgoing {
                "The sender cancelled the transfer."
            } else {
                "The receiver cancelled the transfer."
            };
            shared.send(cancel_packet(
                &key.transfer,
                peer,
                CancelReason::Cancelled,
                Some(message.into()),
            ));
            for key in std::iter::once(key.clone()).chain(also) {
                shared.emit(FileEvent::Ended {
                    key,
                    reason: CancelReason::Cancelled,
                    message: "Cancelled.".into(),
                });
            }
        }
    }

    /// Handles a FILE packet from the server (on the session's reader).
    pub(crate) fn handle(&self, packet: FilePacket) {
        let shared = &self.shared;
        let transfer = packet.transfer;
        let peer = packet.peer.unwrap_or_default();
        match packet.what {
            FileMsg::Offer(offer) => shared.offered(transfer, peer, offer),
            FileMsg::Accept { window } => shared.accepted(transfer, peer, window),
            FileMsg::Ack { received } => {
                let mut state = lock(&shared.state);
                if let Some(leg) = state
                    .outgoing
                    .get_mut(&transfer)
                    .and_then(|o| o.legs.get_mut(&peer))
                {
                    leg.acked = leg.acked.max(received);
                }
                drop(state);
                shared.credit.notify_all();
            }
            FileMsg::Data { offset, bytes } => shared.arrived(transfer, peer, offset, &bytes),
            FileMsg::Done { sha256 } => shared.done(transfer, peer, sha256),
            FileMsg::Saved => {
                let mut state = lock(&shared.state);
                let known = state
                    .outgoing
                    .get_mut(&transfer)
                    .and_then(|o| {
                        o.open &= o.room;
                        o.legs.remove(&peer)
                    })
                    .is_some();
                state.forget_if_over(&transfer);
                drop(state);
                if known {
                    shared.emit(FileEvent::Finished {
                        key: out_key(&transfer, &peer),
                        path: None,
                    });
                }
            }
            FileMsg::Cancel { reason, message } => {
                shared.cancelled(transfer, peer, reason, message)
            }
        }
    }

    /// The session ended: every transfer fails with `reason`, partial
    /// files are deleted and sending threads stop.
    pub(crate) fn lost(&self, reason: &str) {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        let mut ended = Vec::new();
        for (transfer, offer) in state.outgoing.drain() {
            for (peer, _) in offer.legs {
                ended.push(out_key(&transfer, &peer));
            }
            if offer.open {
                ended.push(out_key(&transfer, ""));
            }
        }
        for ((peer, transfer), _) in state.incoming.drain() {
            ended.push(TransferKey {
                transfer,
                peer,
                outgoing: false,
            });
        }
        drop(state);
        shared.credit.notify_all();
        for key in ended {
            shared.emit(FileEvent::Ended {
                key,
                reason: CancelReason::Failed,
                message: format!("The transfer stopped: {reason}"),
            });
        }
    }
}

impl State {
    fn forget_if_over(&mut self, transfer: &str) {
        if self
            .outgoing
            .get(transfer)
            .is_some_and(|o| !o.open && o.legs.is_empty())
        {
            self.outgoing.remove(transfer);
        }
    }
}

fn out_key(transfer: &str, peer: &str) -> TransferKey {
    TransferKey {
        transfer: transfer.to_string(),
        peer: peer.to_string(),
        outgoing: true,
    }
}

fn in_key(transfer: &str, peer: &str) -> TransferKey {
    TransferKey {
        transfer: transfer.to_string(),
        peer: peer.to_string(),
        outgoing: false,
    }
}

fn cancel_packet(
    transfer: &str,
    peer: Option<&str>,
    reason: CancelReason,
    message: Option<String>,
) -> FilePacket {
    FilePacket {
        transfer: transfer.to_string(),
        peer: peer.map(String::from),
        what: FileMsg::Cancel { reason, message },
    }
}

/// The name a file is offered under: its own, without the folder.
fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

/// 16 random hex digits, so transfer ids from two runs never meet.
fn random_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Shared {
    fn send(&self, packet: FilePacket) {
        if !self.ended.load(Ordering::SeqCst) {
            let _ = self.link.send(&ClientPacket::File(packet).encode());
        }
    }

    fn emit(&self, event: FileEvent) {
        (self.sink)(crate::client::session::SessionEvent::File(event));
    }

    fn offered(&self, transfer: String, from: String, offer: Offer) {
        if from.is_empty() {
            return;
        }
        let name = filename::sanitize(&offer.name);
        let thumbnail = offer.thumbnail.filter(|png| thumbnail::check(png).is_ok());
        let key = (from.clone(), transfer.clone());
        {
            let mut state = lock(&self.state);
            if state.incoming.contains_key(&key) {
                return;
            }
            state.incoming.insert(
                key,
                Arriving::Offered {
                    name: name.clone(),
                    size: offer.size,
                },
            );
        }
        self.emit(FileEvent::Offered {
            key: in_key(&transfer, &from),
            name,
            size: offer.size,
            thumbnail,
            room: offer.room,
        });
    }

    fn accepted(self: &Arc<Self>, transfer: String, receiver: String, window: u64) {
        let path = {
            let mut state = lock(&self.state);
            let Some(offer) = state.outgoing.get_mut(&transfer) else {
                return;
            };
            if !offer.open || offer.legs.contains_key(&receiver) {
                return;
            }
            offer.legs.insert(
                receiver.clone(),
                Leg {
                    window,
                    ..Leg::default()
                },
            );
            offer.path.clone()
        };
        let key = out_key(&transfer, &receiver);
        self.emit(FileEvent::Accepted { key: key.clone() });
        let shared = self.clone();
        let started = thread::Builder::new()
            .name("file sender".into())
            .spawn(move || shared.send_file(&key, &path));
        if started.is_err() {
            self.fail_leg(
                &transfer,
                &receiver,
                "The transfer could not be started.".into(),
            );
        }
    }

    /// Sends the file to one receiver, within its window; then FILE DONE.
    fn send_file(&self, key: &TransferKey, path: &Path) {
        let fail = |why: String| self.fail_leg(&key.transfer, &key.peer, why);
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) => return fail(format!("{} cannot be read: {e}.", path.display())),
        };
        let size = match lock(&self.state).outgoing.get(&key.transfer) {
            Some(o) => o.size,
            None => return,
        };
        let mut digest = Context::new(&SHA256);
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        let mut reported = Instant::now();
        while sent < size {
            let Some((room, acked)) = self.wait_for_room(key, sent) else {
                return;
            };
            let want = room.min(CHUNK as u64).min(size - sent) as usize;
            let n = match read_full(&mut file, &mut buf[..want]) {
                Ok(n) => n,
                Err(e) => return fail(format!("{} cannot be read: {e}.", path.display())),
            };
            if n < want {
                return fail(format!(
                    "{} got shorter while it was being sent.",
                    display_name(path)
                ));
            }
            digest.update(&buf[..n]);
            let frame = ClientPacket::File(FilePacket {
                transfer: key.transfer.clone(),
                peer: Some(key.peer.clone()),
                what: FileMsg::Data {
                    offset: sent,
                    bytes: buf[..n].to_vec(),
                },
            })
            .encode();
            if self.ended.load(Ordering::SeqCst) || self.link.send(&frame).is_err() {
                return; // the session's end reports it
            }
            sent += n as u64;
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = Instant::now();
                self.emit(FileEvent::Progress {
                    key: key.clone(),
                    done: acked,
                    total: size,
                });
            }
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(digest.finish().as_ref());
        self.send(FilePacket {
            transfer: key.transfer.clone(),
            peer: Some(key.peer.clone()),
            what: FileMsg::Done { sha256 },
        });
        self.emit(FileEvent::Progress {
            key: key.clone(),
            done: size,
            total: size,
        });
    }

    /// Waits until the receiver's window has room beyond `sent`; returns
    /// the room and what is acknowledged, or `None` once the transfer or
    /// the session is over.
    fn wait_for_room(&self, key: &TransferKey, sent: u64) -> Option<(u64, u64)> {
        let mut state = lock(&self.state);
        loop {
            if self.ended.load(Ordering::SeqCst) {
                return None;
            }
            let leg = state.outgoing.get(&key.transfer)?.legs.get(&key.peer)?;
            if leg.stopped {
                return None;
            }
            let room = (leg.acked + leg.window).saturating_sub(sent);
            if room > 0 {
                return Some((room, leg.acked));
            }
            // The timeout only guards against a wake-up lost to a bug.
            state = self
                .credit
                .wait_timeout(state, Duration::from_secs(1))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// One receiver's transfer failed here: it is told, and so is the user.
    fn fail_leg(&self, transfer: &str, receiver: &str, why: String) {
        let mut state = lock(&self.state);
        let known = state
            .outgoing
            .get_mut(transfer)
            .and_then(|o| o.legs.remove(receiver))
            .is_some();
        state.forget_if_over(transfer);
        drop(state);
        if known {
            self.fail(out_key(transfer, receiver), why);
        }
    }

    /// A chunk for a file we accepted: written, acknowledged now and then.
    fn arrived(&self, transfer: String, from: String, offset: u64, bytes: &[u8]) {
        let key = (from.clone(), transfer.clone());
        let mut state = lock(&self.state);
        let Some(Arriving::Receiving(r)) = state.incoming.get_mut(&key) else {
            return; // cancelled here: chunks already on their way are dropped
        };
        let failure = if offset != r.file.received() {
            Some("Parts of the file arrived out of order; the partial file was deleted.".into())
        } else {
            r.file
                .write(bytes)
                .err()
                .map(|e| format!("The transfer failed: {e}."))
        };
        if let Some(why) = failure {
            state.incoming.remove(&key);
            drop(state);
            return self.fail_incoming(&transfer, &from, why);
        }
        let received = r.file.received();
        let ack = received - r.acked >= ACK_EVERY || received == r.file.announced();
        if ack {
            r.acked = received;
        }
        let report = r.reported.elapsed() >= PROGRESS_EVERY;
        if report {
            r.reported = Instant::now();
        }
        let total = r.file.announced();
        drop(state);
        if ack {
            self.send(FilePacket {
                transfer: transfer.clone(),
                peer: Some(from.clone()),
                what: FileMsg::Ack { received },
            });
        }
        if report {
            self.emit(FileEvent::Progress {
                key: in_key(&transfer, &from),
                done: received,
                total,
            });
        }
    }

    /// The sender sent everything: the file is checked and kept, or
    /// deleted with the reason; the sender is told either way.
    fn done(self: &Arc<Self>, transfer: String, from: String, sha256: [u8; 32]) {
        let key = (from.clone(), transfer.clone());
        let Some(Arriving::Receiving(r)) = lock(&self.state).incoming.remove(&key) else {
            return;
        };
        // Checking and syncing a large file takes a while: not on the
        // reader, which would hold every message behind it.
        let shared = self.clone();
        let checked = thread::Builder::new()
            .name("file check".into())
            .spawn(move || shared.keep(transfer, from, *r, &sha256));
        if checked.is_err() {
            // The file went with the closure (deleted); say so.
            let (from, transfer) = key;
            let why = "The file could not be checked; the partial file was deleted.";
            self.fail_incoming(&transfer, &from, why.into());
        }
    }

    /// A file we were receiving failed here (see [`Self::fail`]).
    fn fail_incoming(&self, transfer: &str, from: &str, why: String) {
        self.fail(in_key(transfer, from), why);
    }

    /// A transfer failed here: the other side is told why, and so is the
    /// user.
    fn fail(&self, key: TransferKey, why: String) {
        self.send(cancel_packet(
            &key.transfer,
            Some(&key.peer),
            CancelReason::Failed,
            Some(why.clone()),
        ));
        self.emit(FileEvent::Ended {
            key,
            reason: CancelReason::Failed,
            message: why,
        });
    }

    /// Checks a whole file against the sender's hash and keeps or deletes
    /// it; the sender and the user are told.
    fn keep(&self, transfer: String, from: String, r: Receiving, sha256: &[u8; 32]) {
        let total = r.file.announced();
        match r.file.finish(sha256) {
            Ok(path) => {
                self.send(FilePacket {
                    transfer: transfer.clone(),
                    peer: Some(from.clone()),
                    what: FileMsg::Saved,
                });
                self.emit(FileEvent::Progress {
                    key: in_key(&transfer, &from),
                    done: total,
                    total,
                });
                self.emit(FileEvent::Finished {
                    key: in_key(&transfer, &from),
                    path: Some(path),
                });
            }
            Err(e) => {
                let why = format!("{}.", capitalised(&e.to_string()));
                self.fail_incoming(&transfer, &from, why);
            }
        }
    }

    /// The other side (or the server) gave up.
    fn cancelled(
        &self,
        transfer: String,
        peer: String,
        reason: CancelReason,
        message: Option<String>,
    ) {
        let mut state = lock(&self.state);
        let mut keys = Vec::new();
        // About a file we offer?
        if let Some(offer) = state.outgoing.get_mut(&transfer) {
            if peer.is_empty() {
                // The server refused the offer itself.
                offer.open = false;
                for leg in offer.legs.values_mut() {
                    leg.stopped = true;
                }
                state.outgoing.remove(&transfer);
                drop(state);
                self.credit.notify_all();
                self.emit(FileEvent::Refused {
                    transfer,
                    message: message.unwrap_or_else(|| "The server refused the file.".into()),
                });
                return;
            }
            let name = offer.name.clone();
            offer.legs.remove(&peer);
            offer.open &= offer.room;
            state.forget_if_over(&transfer);
            keys.push((out_key(&transfer, &peer), name));
        }
        // About a file offered to us?
        if let Some(arriving) = state.incoming.remove(&(peer.clone(), transfer.clone())) {
            let name = match arriving {
                Arriving::Offered { name, .. } => name,
                Arriving::Receiving(r) => {
                    drop(r); // deletes the partial file
                    String::new()
                }
            };
            keys.push((in_key(&transfer, &peer), name));
        }
        drop(state);
        self.credit.notify_all();
        for (key, _) in keys {
            let message = message.clone().unwrap_or_else(|| match reason {
                CancelReason::Declined => "Declined.".into(),
                CancelReason::Cancelled => "Cancelled by the other side.".into(),
                _ => "The transfer failed on the other side.".into(),
            });
            self.emit(FileEvent::Ended {
                key,
                reason,
                message,
            });
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
