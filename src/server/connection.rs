//! One client connection, from accept to close, on its own threads.
//!
//! The connection's thread reads: it runs the handshake (with a deadline, so
//! a silent client delays no one but itself), then hands each packet to the
//! hub. What the client is sent goes through its [`Outbox`], straight into
//! its socket or, when it falls behind, through a writer thread of its own.
//! When the connection ends, for whatever reason, the reader removes the
//! client from the hub (which tells the others, once), tells the peer why if
//! it can, and waits for what is queued to be sent.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::avatar;
use crate::common::connection::{FrameReader, ReadError};
use crate::common::file_packet::{DataIn, FileMsg, FILE_VERSION};
use crate::common::frame::FrameError;
use crate::common::memory;
use crate::common::packet::{ClientPacket, ErrorCode, ErrorReport, ServerPacket, CHAT_VERSION};
use crate::common::tls::Fingerprint;
use crate::common::transport::{Link, UpgradeError};
use crate::server::budget::Budget;
use crate::server::capacity::Ticket;
use crate::server::event::{Events, LeaveReason, Party, ServerEvent};
use crate::server::handshake::{Action, Handshake, Policy};
use crate::server::hub::{Hub, Refusal};
use crate::server::limited::{Limit, LimitLog};
use crate::server::outbox::{Deferred, Outbox};
use crate::server::post::{Post, Writer};
use crate::server::rate::{MessageRate, Pacer};
use crate::server::trust::{Trust, Verdict};
use crate::server::ServerConfig;

/// Stack for a reader thread: JSON decoding nests a little.
pub const READER_STACK: usize = 256 * 1024;
/// How long to keep reading (and discarding) after telling a peer why it is
/// being closed, so that closing does not reset the connection before the
/// peer has read the reason.
const LINGER: Duration = Duration::from_secs(2);

/// Everything a connection thread needs from its server.
pub struct Context {
    pub hub: Arc<Hub>,
    pub events: Events,
    pub config: ServerConfig,
    /// Every byte queued for clients and the log, counted together.
    pub budget: Budget,
    /// The server's TLS settings (its certificate), for clients that offer
    /// to encrypt.
    pub tls: Arc<rustls::ServerConfig>,
    /// Bans, names that belong to someone, the password.
    pub trust: Arc<Trust>,
}

/// How a connection ended: why, and what to tell the peer.
struct End {
    reason: LeaveReason,
    refusal: Option<Refusal>,
}

impl End {
    fn quietly(reason: LeaveReason) -> Self {
        End {
            reason,
            refusal: None,
        }
    }

    fn refused(refusal: Refusal) -> Self {
        End {
            reason: refusal.reason(),
            refusal: Some(refusal),
        }
    }
}

/// Serves one accepted connection until it ends. Runs on its own thread.
/// `ticket` is the connection's place among those admitted; it gives up its
/// handshake slot once the client has joined.
pub fn serve(
    link: Link,
    addr: SocketAddr,
    outbox: Arc<Outbox>,
    ticket: &Ticket<Arc<Outbox>>,
    ctx: &Context,
) {
    let _ = outbox.push(&ServerPacket::InfoRequest.encode());

    // Small packets only, until the client has said who it is; and every
    // packet that has started must finish in time, before and after.
    let mut reader = FrameReader::new(link, ctx.config.handshake_max_packet);
    reader.set_frame_time(Some(ctx.config.packet_timeout));
    // A panic while serving (a bug here or in a dependency) ends only this
    // connection: the guard in `converse` announces the departure as it
    // unwinds, then the writer is finished and the thread returns as usual
    // (so the listener also forgets the connection).
    let served = panic::catch_unwind(AssertUnwindSafe(|| {
        converse(&mut reader, addr, &outbox, ticket, ctx)
    }));
    let (end, hubchat) = served.unwrap_or_else(|_| (End::quietly(broke_down()), false));

    if let Some(refusal) = &end.refusal {
        let _ = outbox.push(&refusal_frame(refusal, hubchat));
    }
    outbox.close();
    if end.refusal.is_some() {
        linger(reader.get_ref().stream());
    }
}

/// Why a client left whose connection's thread broke down (panicked).
fn broke_down() -> LeaveReason {
    LeaveReason::ConnectionLost {
        detail: "the server broke down serving it".into(),
    }
}

/// Removes a joined client from the hub when dropped, which tells the
/// others once: on the normal way out with the reason found, and on any
/// other (a panic unwinding the reader) as [`broke_down`], so a client can
/// never stay listed, and keep its name, after its thread is gone.
struct Departure<'a> {
    hub: &'a Hub,
    id: Arc<str>,
    reason: Option<LeaveReason>,
}

impl<'a> Departure<'a> {
    fn new(hub: &'a Hub, me: &Party) -> Self {
        Departure {
            hub,
            id: me.id.clone(),
            reason: None,
        }
    }

    fn announce(mut self, reason: LeaveReason) {
        self.reason = Some(reason);
    }
}

impl Drop for Departure<'_> {
    fn drop(&mut self) {
        let reason = self.reason.take().unwrap_or_else(broke_down);
        self.hub.remove(&self.id, reason);
    }
}

/// The handshake, then the relay: everything between accepting a client and
/// knowing how it ended.
fn converse(
    reader: &mut FrameReader<Link>,
    addr: SocketAddr,
    outbox: &Arc<Outbox>,
    ticket: &Ticket<Arc<Outbox>>,
    ctx: &Context,
) -> (End, bool) {
    match handshake(reader, addr, outbox, ctx) {
        Ok(joined) => {
            let Joined {
                me,
                hubchat,
                chat,
                files,
                identity,
                color,
                image_name,
            } = joined;
            ticket.handshake_done();
            reader.set_max_body(ctx.config.max_packet);
            // The handshake went deep; the relay stays shallow.
            memory::release_unused_stack();
            let post = ctx.trust.post(&ctx.hub);
            let writer = Writer {
                me: &me,
                identity,
                chat,
                outbox,
            };
            post.joined(&writer);
            let departure = Departure::new(&ctx.hub, &me);
            let mut sender = Sender {
                me: &me,
                hubchat,
                files,
                outbox,
                ctx,
                limits: LimitLog::new(me.clone()),
                post: &post,
                writer: &writer,
                deferred: Deferred::default(),
            };
            let end = relay_loop(reader, &mut sender);
            sender.deferred.send_all();
            for event in sender.limits.finish() {
                ctx.events.emit(event);
            }
            departure.announce(end.reason.clone());
            post.left(&me, identity, &color, &image_name);
            (end, hubchat)
        }
        Err(failed) => {
            // Connections cut short by the server stopping are not news.
            if !ctx.hub.is_closed() {
                ctx.events.emit(ServerEvent::Refused {
                    addr,
                    name: failed.name,
                    reason: failed.end.reason.clone(),
                });
            }
            (failed.end, failed.hubchat)
        }
    }
}

/// A client that has joined, as the relay and the post office know it.
struct Joined {
    me: Party,
    hubchat: bool,
    /// It speaks CHAT (version 3).
    chat: bool,
    /// It sends and receives files (version 4).
    files: bool,
    identity: Option<Fingerprint>,
    /// Its colour and picture as HubChat peers see them, for the list of
    /// people who are away once it leaves.
    color: String,
    image_name: String,
}

/// A handshake that did not end in a join.
struct Failed {
    end: End,
    /// The name the client asked for, if it got that far.
    name: Option<String>,
    /// Whether the client said it is HubChat, so it is told in ERROR form.
    hubchat: bool,
}

impl From<End> for Failed {
    fn from(end: End) -> Self {
        Failed {
            end,
            name: None,
            hubchat: false,
        }
    }
}

/// Runs the handshake (see [`crate::server::handshake`]) within its
/// deadline, and joins the client.
///
/// The deadline is one instant for the whole handshake, TLS included, not a
/// timeout per read: a client sending a byte every few seconds is still
/// dropped on time.
#[inline(never)]
fn handshake(
    reader: &mut FrameReader<Link>,
    addr: SocketAddr,
    outbox: &Arc<Outbox>,
    ctx: &Context,
) -> Result<Joined, Failed> {
    let deadline = Instant::now() + ctx.config.handshake_timeout;
    let mut hs = Handshake::new(Policy {
        allow_original: ctx.config.allow_original,
        password: ctx.trust.password_required(),
    });
    let mut name = None;
    let mut action = Action::ReadOn;
    loop {
        action = match action {
            Action::ReadOn => match read_handshake_packet(reader, deadline, outbox) {
                Ok(packet) => {
                    if let ClientPacket::Info(info) = &packet {
                        name = Some(info.name.clone());
                    }
                    hs.packet(packet)
                }
                Err(end) => return Err(failed(end, name, hs.hubchat())),
            },
            Action::StartTls => match start_tls(reader, outbox, deadline, ctx) {
                Ok(()) => hs.encrypted(),
                Err(end) => return Err(failed(end, name, hs.hubchat())),
            },
            Action::CheckPassword(password) => {
                match ctx.trust.check_password(addr.ip(), &password, deadline) {
                    Verdict::Right => hs.password_checked(true),
                    Verdict::Wrong => hs.password_checked(false),
                    Verdict::TooMany { wait } => Action::Refuse(Refusal::new(
                        ErrorCode::PasswordWrong,
                        format!(
                            "Too many wrong passwords from your address. Try again in {} \
                             seconds.",
                            wait.as_secs().max(1)
                        ),
                    )),
                }
            }
            Action::Join { info, encrypted } => {
                let identity = encrypted
                    .then(|| reader.get_ref().peer_identity())
                    .flatten();
                let hubchat = info.hubchat.is_some();
                if let Err(refusal) = ctx.trust.admit(&info.name, identity, addr.ip()) {
                    return Err(failed(End::refused(refusal), name, hubchat));
                }
                return match ctx.hub.join(&info, addr, outbox.clone(), identity) {
                    Ok(me) => {
                        let profile = info.profile();
                        Ok(Joined {
                            me,
                            hubchat,
                            chat: info
                                .hubchat
                                .as_ref()
                                .is_some_and(|h| h.version >= CHAT_VERSION),
                            files: info
                                .hubchat
                                .as_ref()
                                .is_some_and(|h| h.version >= FILE_VERSION),
                            identity,
                            color: profile.color,
                            image_name: profile.image_name,
                        })
                    }
                    Err(refusal) => Err(failed(End::refused(refusal), name, hubchat)),
                };
            }
            Action::Refuse(refusal) => {
                return Err(failed(End::refused(refusal), name, hs.hubchat()))
            }
            Action::Leave => {
                return Err(failed(
                    End::quietly(LeaveReason::SaidGoodbye),
                    name,
                    hs.hubchat(),
                ))
            }
        };
    }
}

fn failed(end: End, name: Option<String>, hubchat: bool) -> Failed {
    Failed { end, name, hubchat }
}

/// The next packet of a joining client, by the handshake's deadline.
fn read_handshake_packet(
    reader: &mut FrameReader<Link>,
    deadline: Instant,
    outbox: &Arc<Outbox>,
) -> Result<ClientPacket, End> {
    match reader.read_frame_by(Some(deadline)) {
        Ok(Some(body)) => ClientPacket::decode(body).map_err(malformed),
        // Closed by the client, or by the server to make room.
        Ok(None) => {
            let reason = outbox.failure().unwrap_or(LeaveReason::ClosedConnection);
            Err(End::quietly(reason))
        }
        Err(ReadError::Deadline) => Err(handshake_timeout()),
        Err(e) => Err(end_from_read_error(e, outbox)),
    }
}

/// Says STARTTLS (through the writer, in plain) and runs the TLS handshake
/// as the server, on this thread, by the handshake's deadline. The client
/// sends nothing between its INFO and its TLS hello, and waits for STARTTLS
/// before that hello: so once the hello arrives the writer has sent
/// STARTTLS, and nothing else is queued for a client that has not joined.
#[inline(never)]
fn start_tls(
    reader: &mut FrameReader<Link>,
    outbox: &Arc<Outbox>,
    deadline: Instant,
    ctx: &Context,
) -> Result<(), End> {
    if reader.buffered() > 0 {
        return Err(malformed(
            "it sent more after offering to encrypt, before the server answered",
        ));
    }
    let conn = rustls::ServerConnection::new(ctx.tls.clone()).map_err(|e| {
        End::refused(Refusal::new(
            ErrorCode::MalformedPacket,
            format!("The server could not start encryption: {e}."),
        ))
    })?;
    if outbox.push(&ServerPacket::StartTls.encode()).is_err() {
        return Err(End::quietly(LeaveReason::StoppedReading));
    }
    match reader.get_ref().upgrade(conn, deadline) {
        Ok(()) => Ok(()),
        Err(UpgradeError::TimedOut) => Err(End::quietly(LeaveReason::Refused {
            code: ErrorCode::HandshakeTimeout,
            detail: "The encryption handshake did not finish in time.".into(),
        })),
        Err(e) => Err(End::quietly(outbox.failure().unwrap_or(
            LeaveReason::ConnectionLost {
                detail: e.to_string(),
            },
        ))),
    }
}

/// One joined client as the relay sees it: who it is, where its replies
/// go, and the limits it was held to, for the log.
struct Sender<'a> {
    me: &'a Party,
    hubchat: bool,
    /// It sends and receives files (version 4).
    files: bool,
    outbox: &'a Arc<Outbox>,
    ctx: &'a Context,
    limits: LimitLog,
    post: &'a Post<'a>,
    writer: &'a Writer<'a>,
    /// Messages relayed from what arrived in one read, queued for their
    /// receivers and written before the next read waits.
    deferred: Deferred,
}

impl Sender<'_> {
    /// Logs that `limit` applied, if this client's throttle for it allows a
    /// line now (it counts the rest).
    fn held(&mut self, limit: Limit) {
        if let Some(event) = self.limits.note(limit, Instant::now()) {
            self.ctx.events.emit(event);
        }
    }

    /// Whether to keep serving: not once the server is stopping or the
    /// connection failed, when the connection ends rather than wait on.
    fn going_on(&self) -> bool {
        !self.ctx.hub.is_closed() && self.outbox.failure().is_none()
    }

    /// How the connection ends when a wait is cut short.
    fn cut_short(&self) -> End {
        End::quietly(self.outbox.failure().unwrap_or(LeaveReason::ServerStopping))
    }
}

/// Hands each packet of a joined client to the hub until the connection ends.
fn relay_loop(reader: &mut FrameReader<Link>, sender: &mut Sender) -> End {
    let mut pictured = false;
    let mut throttle = sender.ctx.config.message_rate.map(Throttle::new);
    // Receipts and typing are small and come in runs (a client confirms
    // every message kept for it at once), so they have a bucket of their
    // own, ten times the messages' rate with 40 times the burst; they still
    // cannot flood anyone.
    let mut signals = sender.ctx.config.message_rate.map(|r| {
        Throttle::new(MessageRate {
            per_second: r.per_second * 10.0,
            burst: r.burst * 40.0,
            ..r
        })
    });
    loop {
        if !reader.frame_ready() {
            // All that arrived is relayed: write it before waiting for more.
            sender.deferred.send_all();
        }
        let packet = match reader.read_frame_by(None) {
            Ok(Some(body)) => {
                // A file's chunk goes on from the read buffer, uncopied;
                // held only by its receiver's window (see Hub::file_data).
                if let Some(chunk) = DataIn::read(body).filter(|_| sender.files) {
                    if !wait_for_room(sender) {
                        return sender.cut_short();
                    }
                    sender.ctx.hub.file_data(sender.me, &chunk);
                    continue;
                }
                ClientPacket::decode(body)
            }
            Ok(None) => {
                let reason = sender.outbox.failure();
                return End::quietly(reason.unwrap_or(LeaveReason::ClosedConnection));
            }
            Err(e) => return end_from_read_error(e, sender.outbox),
        };
        match packet {
            Ok(ClientPacket::Message { to, text }) => {
                fault::strike(&text);
                let paced = throttle.as_mut().is_none_or(|t| t.pace(text.len(), sender));
                if !paced || !wait_for_room(sender) {
                    return sender.cut_short();
                }
                deliver(sender, &to, text);
            }
            Ok(ClientPacket::Chat(chat)) if sender.hubchat => {
                fault::strike(&chat.text);
                let paced = throttle
                    .as_mut()
                    .is_none_or(|t| t.pace(chat.text.len(), sender));
                if !paced || !wait_for_room(sender) {
                    return sender.cut_short();
                }
                if fits(sender, chat.text.len()) {
                    sender.post.chat(sender.writer, chat);
                }
            }
            Ok(ClientPacket::Receipt(receipt)) if sender.hubchat => {
                if !signals.as_mut().is_none_or(|t| t.pace(0, sender)) {
                    return sender.cut_short();
                }
                sender.post.receipt(sender.writer, receipt);
            }
            Ok(ClientPacket::Typing { to_name, active }) if sender.hubchat => {
                if !signals.as_mut().is_none_or(|t| t.pace(0, sender)) {
                    return sender.cut_short();
                }
                sender.post.typing(sender.writer, &to_name, active);
            }
            // From a client that did not say it is HubChat: skipped, like
            // any flag it could not know.
            Ok(ClientPacket::Chat(_) | ClientPacket::Receipt(_) | ClientPacket::Typing { .. }) => {
                continue
            }
            Ok(ClientPacket::Disconnect) => return End::quietly(LeaveReason::SaidGoodbye),
            // An original client cannot have sent it: skip it like any flag
            // it does not know.
            Ok(ClientPacket::Picture { png }) if sender.hubchat => {
                if !wait_for_room(sender) {
                    return sender.cut_short();
                }
                pictured |= take_picture(png, pictured, sender)
            }
            Ok(ClientPacket::Picture { .. }) => continue,
            Ok(ClientPacket::File(file)) if sender.files => {
                // An offer is paced like a message of its name and picture
                // (it goes to everyone, for a room); answers like receipts.
                // Chunks and their acknowledgements are held by the
                // receiver's window instead: a chunk beyond it ends the
                // transfer, an acknowledgement that is not news goes nowhere.
                let paced = match &file.what {
                    FileMsg::Offer(offer) => {
                        let bytes = offer.name.len() + offer.thumbnail.as_ref().map_or(0, Vec::len);
                        throttle.as_mut().is_none_or(|t| t.pace(bytes, sender))
                    }
                    FileMsg::Data { .. } | FileMsg::Ack { .. } => true,
                    _ => signals.as_mut().is_none_or(|t| t.pace(0, sender)),
                };
                if !paced || !wait_for_room(sender) {
                    return sender.cut_short();
                }
                sender.ctx.hub.file(sender.me, file);
            }
            Ok(ClientPacket::File(_)) => continue,
            // A second INFO (HubChat does not change profiles mid-session)
            // and flags from newer programs are skipped, as the original does.
            Ok(ClientPacket::Info(_)) | Ok(ClientPacket::Unknown { .. }) => continue,
            Err(e) => return malformed(e),
        }
    }
}

/// How long a sender waiting for room in the budget sleeps between checks
/// that the server is still running and the connection still open (room
/// itself wakes it at once).
const ROOM_SLICE: Duration = Duration::from_millis(200);

/// Waits, reading nothing further from this sender, while the server's
/// budget is full (see [`crate::server::budget`]), dropping clients that
/// hold bytes they do not read; says whether to go on.
fn wait_for_room(sender: &mut Sender) -> bool {
    let ctx = sender.ctx;
    if !ctx.budget.is_full() {
        return true;
    }
    sender.deferred.send_all();
    sender.held(Limit::Busy);
    loop {
        if !sender.going_on() {
            return false;
        }
        ctx.hub.relieve();
        if ctx.budget.wait_for_room(ROOM_SLICE) {
            return true;
        }
    }
}

/// Relays one message, unless its text is longer than the server passes on:
/// then a HubChat sender is told and an original one (which has no way to
/// hear why) is not; either way the connection stays, and the log says so.
fn deliver(sender: &mut Sender, to: &str, text: String) {
    if !fits(sender, text.len()) {
        return;
    }
    let (me, hubchat, outbox, ctx) = (sender.me, sender.hubchat, sender.outbox, sender.ctx);
    if ctx
        .hub
        .relay(me, to, text, Some(&mut sender.deferred))
        .is_err()
        && hubchat
    {
        report(
            outbox,
            ErrorCode::UnknownPartner,
            format!("No client {to} is connected; the message was not delivered."),
        );
    }
}

/// Whether a message text of `bytes` bytes is short enough to pass on;
/// if not, a HubChat sender is told and the log says so.
fn fits(sender: &mut Sender, bytes: usize) -> bool {
    let max = sender.ctx.config.max_message;
    if bytes <= max {
        return true;
    }
    sender.held(Limit::TooLong { bytes, max });
    if sender.hubchat {
        report(
            sender.outbox,
            ErrorCode::MessageTooLong,
            format!(
                "Your message of {bytes} bytes was not delivered: the server passes on messages \
                 of at most {max} bytes ({} KiB). Split it into shorter ones.",
                max / 1024
            ),
        );
    }
    false
}

/// How long a pacing wait sleeps between checks that the server is still
/// running and the connection still open.
const PACE_SLICE: Duration = Duration::from_millis(50);
/// How often, at most, a HubChat client is told it is being slowed.
const RATE_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// Keeps one sender within its [`MessageRate`] by not reading from it for a
/// while (see [`crate::server::rate`]).
struct Throttle {
    rate: MessageRate,
    pacer: Pacer,
    /// When the sender was last told it is being slowed.
    told: Option<Instant>,
}

impl Throttle {
    fn new(rate: MessageRate) -> Self {
        Throttle {
            rate,
            pacer: Pacer::new(rate, Instant::now()),
            told: None,
        }
    }

    /// Counts a message of `bytes` bytes of text and waits, without reading,
    /// as long as the sender's rate asks. A HubChat sender is told, now and
    /// then, that it is being slowed, and the log says so. Says whether to
    /// go on (see [`Sender::going_on`]): a connection ends rather than read
    /// on from a sender that may never stop.
    fn pace(&mut self, bytes: usize, sender: &mut Sender) -> bool {
        let now = Instant::now();
        let (wait, over) = self.pacer.delay_why(now, bytes);
        if wait.is_zero() {
            return true;
        }
        sender.deferred.send_all();
        sender.held(self.rate.limit(over));
        if sender.hubchat
            && self
                .told
                .is_none_or(|t| now.duration_since(t) >= RATE_NOTICE_EVERY)
        {
            self.told = Some(now);
            report(sender.outbox, ErrorCode::RateLimited, self.notice());
        }
        let until = now + wait;
        loop {
            if !sender.going_on() {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            thread::sleep(left.min(PACE_SLICE));
        }
    }

    fn notice(&self) -> String {
        format!(
            "You are sending messages faster than the server passes them on for one sender \
             ({} a second, {} KiB of text a second, after a burst of {}); \
             they are delivered more slowly, none is lost.",
            self.rate.per_second,
            (self.rate.bytes_per_second / 1024.0).round(),
            self.rate.burst
        )
    }
}

/// Checks a client's PICTURE and, if it is good and the session has no
/// picture yet, keeps it and passes it on; says whether it was kept. One
/// kept per session: each one is copied to every HubChat peer, so a client
/// resending its picture would make the server send out hundreds of times
/// what it receives. A refused picture goes nowhere and its check costs a
/// few microseconds, so a client may try again after one. Refusals are
/// logged.
fn take_picture(png: Vec<u8>, pictured: bool, sender: &mut Sender) -> bool {
    let outbox = sender.outbox;
    if pictured {
        sender.held(Limit::PictureRepeated);
        report(
            outbox,
            ErrorCode::PictureRepeated,
            "Your avatar was already sent in this session; it is sent once. Reconnect to change it."
                .into(),
        );
        return false;
    }
    match avatar::check_wire_picture(&png) {
        Ok(_) => {
            sender.ctx.hub.set_picture(sender.me, png);
            true
        }
        Err(e) => {
            sender.held(Limit::PictureRefused {
                detail: e.to_string(),
            });
            report(
                outbox,
                ErrorCode::PictureInvalid,
                format!("Your avatar was not accepted: {e}"),
            );
            false
        }
    }
}

/// Fault injection for tests, which must show that a reader thread that
/// panics still announces its client's departure once all panics we know of
/// are fixed. A real server never arms it; unarmed, it costs one relaxed
/// atomic load per message.
#[doc(hidden)]
pub mod fault {
    use std::sync::atomic::{AtomicBool, Ordering};

    static ARMED: AtomicBool = AtomicBool::new(false);

    /// The message text that panics its sender's reader thread, once armed.
    pub const TRIGGER: &str = "hubchat test fault: panic the reader of this message's sender";

    /// Arms the trigger for every server in this process.
    pub fn arm() {
        ARMED.store(true, Ordering::Relaxed);
    }

    pub(super) fn strike(text: &str) {
        if ARMED.load(Ordering::Relaxed) && text == TRIGGER {
            panic!("test fault: a reader thread panics on purpose");
        }
    }
}

/// Tells a HubChat client that something it sent was refused; the
/// connection stays open unless the client has stopped reading.
fn report(outbox: &Arc<Outbox>, code: ErrorCode, message: String) {
    let packet = ServerPacket::Error(ErrorReport { code, message });
    if outbox.push(&packet.encode()).is_err() {
        outbox.abort(LeaveReason::StoppedReading);
    }
}

/// Reads and discards what the peer still sends, for a short while, so the
/// reason we just sent is not lost to a reset when the socket closes.
#[inline(never)]
fn linger(mut stream: &TcpStream) {
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// The packet that tells a peer why it is being closed: the ERROR extension
/// for HubChat clients, SERVER CLOSE (which every client understands) for
/// original ones and for anyone who has not said what it is.
fn refusal_frame(refusal: &Refusal, hubchat: bool) -> Vec<u8> {
    if hubchat {
        ServerPacket::Error(ErrorReport {
            code: refusal.code,
            message: refusal.message.clone(),
        })
        .encode()
    } else {
        ServerPacket::ServerClose {
            message: refusal.message.clone(),
        }
        .encode()
    }
}

fn handshake_timeout() -> End {
    End::refused(Refusal::new(
        ErrorCode::HandshakeTimeout,
        "The client did not send its name, colour and picture in time.",
    ))
}

fn malformed(e: impl std::fmt::Display) -> End {
    End::refused(Refusal::new(
        ErrorCode::MalformedPacket,
        format!("The client sent a packet the server cannot read: {e}."),
    ))
}

fn end_from_read_error(e: ReadError, outbox: &Arc<Outbox>) -> End {
    // A read that fails because another thread aborted the connection (an
    // overflow, a failed write) ends for the reason recorded there.
    if let Some(reason) = outbox.failure() {
        return End::quietly(reason);
    }
    match e {
        ReadError::Io(e) => End::quietly(LeaveReason::ConnectionLost {
            detail: e.to_string(),
        }),
        ReadError::Frame(FrameError::TooLarge { len, max }) => End::refused(Refusal::new(
            ErrorCode::PacketTooLarge,
            format!("The client sent a packet of {len} bytes; the server accepts at most {max}."),
        )),
        ReadError::Frame(e) => malformed(e),
        ReadError::Truncated { .. } => malformed(e),
        ReadError::Stalled { limit, .. } => End::refused(Refusal::new(
            ErrorCode::MalformedPacket,
            format!(
                "The client started a packet and did not finish it within {} seconds.",
                limit.as_secs()
            ),
        )),
        ReadError::Deadline => handshake_timeout(),
    }
}
