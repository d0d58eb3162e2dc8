//! Typed packets: what the JSON bodies of frames mean.
//!
//! Every body is `{"flag": FLAG, "data": DATA}`. The original protocol reuses
//! flags in both directions with different data (an INFO from the server is a
//! request, an INFO from a client is its profile), so packets are typed by
//! direction: [`ClientPacket`] is what a client sends, [`ServerPacket`] what a
//! server sends. Each decodes from a body and encodes to a whole frame.
//!
//! Decoding is two-phase: the envelope first, borrowing the data as raw JSON,
//! then the data for the flag found. A flag we do not know decodes to
//! `Unknown` so callers can skip it, as the original does; data of the wrong
//! shape for a known flag is a [`DecodeError`].
//!
//! Frames are written in the original's own JSON style (`", "` and `": "`
//! separators), so the examples in the protocol description match byte for
//! byte. HubChat's extensions are documented in `docs/protocol.md`.

use std::borrow::Cow;
use std::fmt;
use std::io;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::common::file_packet::{is_file_flag, Direction, FilePacket, FILE_DATA};
use crate::common::frame::{self, HEADER_LEN};

/// The version of HubChat's extensions to the original protocol.
/// 2 added encryption (STARTTLS), identities and the server password;
/// 3 added conversations that last: CHAT with message ids and the Everyone
/// room, RECEIPT, TYPING and PEOPLE (see `docs/protocol.md`).
/// 4 added sending files (FILE OFFER ... FILE CANCEL, see
/// [`crate::common::file_packet`]).
pub const PROTOCOL_VERSION: u32 = 4;

/// The first extension version that speaks CHAT, RECEIPT, TYPING and PEOPLE.
pub const CHAT_VERSION: u32 = 3;

/// The name of the room every connected client is in.
pub const EVERYONE: &str = "everyone";

/// The longest message id accepted: ids are made by clients, and a server
/// keeps them with messages for people who are away.
pub const MAX_MESSAGE_ID: usize = 64;

/// The text of the server's INFO request, as the original sends it.
pub const INFO_REQUEST_TEXT: &str = "Send your information!";
/// The text of a client's DISCONNECT request, as the original sends it.
pub const DISCONNECT_REQUEST_TEXT: &str = "Please disconnect me!!";
/// The message of the SERVER CLOSE packet sent when a server stops.
pub const SERVER_CLOSE_TEXT: &str = "Server is closing...";

const INFO: &str = "INFO";
const ALL_CLIENTS: &str = "ALL CLIENTS";
const MESSAGE: &str = "MESSAGE";
const DISCONNECT: &str = "DISCONNECT";
const SERVER_CLOSE: &str = "SERVER CLOSE";
const ERROR: &str = "ERROR";
const WELCOME: &str = "WELCOME";
const PICTURE: &str = "PICTURE";
const STARTTLS: &str = "STARTTLS";
const CHAT: &str = "CHAT";
const RECEIPT: &str = "RECEIPT";
const TYPING: &str = "TYPING";
const PEOPLE: &str = "PEOPLE";

/// The `k` of a `client<k>` id, the only form of id a server hands out.
pub fn client_number(id: &str) -> Option<u64> {
    super::canonical_number(id.strip_prefix("client")?)
}

/// How a client presents itself to others: the entries of a roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub color: String,
    pub image_name: String,
    /// The client can receive files (version 4): told only to HubChat
    /// peers, so rosters for original clients stay byte for byte the
    /// original's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub files: bool,
}

/// A client's answer to the INFO request.
///
/// `hubchat` is the extension by which a HubChat client says what it is; the
/// original client never sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub name: String,
    pub color: String,
    pub image_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubchat: Option<ClientHello>,
}

impl Info {
    /// The part of the answer that HubChat peers see: with the picture the
    /// client really chose, if it named one in its `hubchat` field.
    pub fn profile(&self) -> Profile {
        let image_name = self
            .hubchat
            .as_ref()
            .and_then(|h| h.image_name.clone())
            .unwrap_or_else(|| self.image_name.clone());
        Profile {
            name: self.name.clone(),
            color: self.color.clone(),
            image_name,
            files: self
                .hubchat
                .as_ref()
                .is_some_and(|h| h.version >= crate::common::file_packet::FILE_VERSION),
        }
    }
}

/// What a HubChat client tells a server about itself (extension).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    pub version: u32,
    /// The built-in picture the client really chose, when it is one the
    /// original does not have (26-30). INFO's own `image_name` then names
    /// an original stand-in, since an original server opens that file and
    /// dies on one it lacks; a HubChat server shows HubChat peers this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// The client can encrypt: a HubChat server answers STARTTLS and both
    /// switch to TLS before anything else (version 2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// The server's password, when the user gave one; only ever sent in
    /// the INFO repeated inside TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// What a HubChat server tells a HubChat client right after accepting its
/// INFO, before any roster (extension). The original server never sends it,
/// so its absence tells a client which kind of server it joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: u32,
    /// The id the server gave this client.
    pub id: String,
    /// The largest packet body the server accepts, in bytes.
    pub max_packet: usize,
    /// The longest message text the server relays, in bytes of UTF-8
    /// (`None` from servers that do not say). Older clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message: Option<usize>,
    /// The largest file the server passes on, in bytes (version 4; `None`
    /// from servers that send no files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file: Option<u64>,
}

/// The clients a roster packet lists, in the order they are sent.
///
/// On the wire a roster is a JSON object keyed by client id; a `Vec` keeps
/// the server's join order, which a map would lose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster(pub Vec<(String, Profile)>);

impl Serialize for Roster {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, profile) in &self.0 {
            map.serialize_entry(id, profile)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Roster {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RosterVisitor;
        impl<'de> Visitor<'de> for RosterVisitor {
            type Value = Roster;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping client ids to profiles")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Roster, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Roster(entries))
            }
        }
        deserializer.deserialize_map(RosterVisitor)
    }
}

/// An ALL CLIENTS frame listing `entries` (id, profile) in order, encoded
/// from borrowed profiles: byte for byte what
/// `ServerPacket::AllClients(Roster(..)).encode()` makes, without copying
/// every profile first (a newcomer's roster names everyone in).
pub fn encode_all_clients(entries: &[(&str, &Profile)]) -> Vec<u8> {
    struct Borrowed<'a, 'b>(&'b [(&'a str, &'a Profile)]);
    impl Serialize for Borrowed<'_, '_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(self.0.len()))?;
            for (id, profile) in self.0 {
                map.serialize_entry(id, profile)?;
            }
            map.end()
        }
    }
    encode_frame(ALL_CLIENTS, Borrowed(entries))
}

/// How every ALL CLIENTS frame's body begins and ends around its entries.
const ALL_CLIENTS_HEAD: &[u8] = br#"{"flag": "ALL CLIENTS", "data": {"#;
const ALL_CLIENTS_TAIL: &[u8] = b"}}";

/// The entries of an ALL CLIENTS frame made by [`encode_all_clients`]
/// (`"client5": {...}, "client6": {...}`), without the frame around them;
/// `None` for any other frame.
pub fn all_clients_entries(frame: &[u8]) -> Option<&[u8]> {
    frame
        .get(HEADER_LEN..)?
        .strip_prefix(ALL_CLIENTS_HEAD)?
        .strip_suffix(ALL_CLIENTS_TAIL)
}

/// An ALL CLIENTS frame listing the entries of each of `lists` (as
/// [`all_clients_entries`] gives them), in order: byte for byte what
/// [`encode_all_clients`] makes for the same entries.
pub fn all_clients_from_entries(lists: &[&[u8]]) -> Vec<u8> {
    let total: usize = lists.iter().map(|l| l.len() + 2).sum();
    let mut frame = Vec::with_capacity(HEADER_LEN + ALL_CLIENTS_HEAD.len() + total + 2);
    frame.extend_from_slice(&[b' '; HEADER_LEN]);
    frame.extend_from_slice(ALL_CLIENTS_HEAD);
    let mut first = true;
    for entries in lists.iter().filter(|l| !l.is_empty()) {
        if !first {
            frame.extend_from_slice(b", ");
        }
        first = false;
        frame.extend_from_slice(entries);
    }
    frame.extend_from_slice(ALL_CLIENTS_TAIL);
    frame::seal(&mut frame);
    frame
}

/// Several ALL CLIENTS frames made by [`encode_all_clients`] as one, listing
/// all their entries in order: byte for byte what [`encode_all_clients`]
/// makes for all the entries at once, without decoding anything. A join
/// storm's one-entry rosters go out this way. Anything that is not such a
/// frame is kept as it is, after the merged one.
pub fn merge_all_clients(frames: &[impl AsRef<[u8]>]) -> Vec<u8> {
    let mut lists = Vec::with_capacity(frames.len());
    let mut others = Vec::new();
    for frame in frames {
        match all_clients_entries(frame.as_ref()) {
            Some(entries) => lists.push(entries),
            None => others.extend_from_slice(frame.as_ref()),
        }
    }
    let mut merged = all_clients_from_entries(&lists);
    merged.extend_from_slice(&others);
    merged
}

/// Machine-readable reasons carried by the ERROR extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Another client already uses this name (ignoring case).
    NameTaken,
    /// The name is empty, too long or holds control characters.
    NameInvalid,
    /// A MESSAGE named a client id that is not connected.
    UnknownPartner,
    /// A packet was larger than the server accepts.
    PacketTooLarge,
    /// A packet could not be read as the protocol says.
    MalformedPacket,
    /// The server holds as many clients as it is allowed to.
    ServerFull,
    /// The client did not send its information in time.
    HandshakeTimeout,
    /// A PICTURE was not a 48x48 PNG within the size limit; it was ignored.
    PictureInvalid,
    /// A PICTURE after one was accepted in this session; it was ignored.
    PictureRepeated,
    /// The colour or picture name in INFO is too long or of the wrong form.
    ProfileInvalid,
    /// A MESSAGE's text was longer than WELCOME's `max_message`; it was
    /// not delivered.
    MessageTooLong,
    /// The client sends messages faster than the server relays them for one
    /// sender; they are delivered, more slowly.
    RateLimited,
    /// The server asks for a password and none was given.
    PasswordRequired,
    /// The password given is not the server's.
    PasswordWrong,
    /// The name belongs to another identity (another computer).
    NameOwned,
    /// The owner banned this identity or address.
    Banned,
    /// The owner removed this client (the message may give a reason).
    Kicked,
    /// The server accepts only encrypted connections.
    EncryptionRequired,
    /// A code from a newer server that this program does not know.
    #[serde(other)]
    Other,
}

/// The data of an ERROR packet: a code for programs, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub code: ErrorCode,
    pub message: String,
}

/// What a client sends to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPacket {
    /// The answer to the INFO request.
    Info(Info),
    /// A message for the client with id `to`.
    Message { to: String, text: String },
    /// The client is leaving.
    Disconnect,
    /// The client's own avatar picture, PNG bytes (extension).
    Picture { png: Vec<u8> },
    /// A message with an id, to a person by name or to a room (version 3).
    Chat(ChatOut),
    /// The client's program received or showed a message (version 3).
    Receipt(ReceiptOut),
    /// The user is typing to someone, or stopped (version 3).
    Typing { to_name: String, active: bool },
    /// A file offered, sent, answered or given up (version 4); `peer` is
    /// the client it goes to.
    File(FilePacket),
    /// A flag this program does not know; skip it.
    Unknown { flag: String },
}

/// Where a client's CHAT goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTarget {
    /// The person with this name, here or away.
    Person(String),
    /// Everyone connected.
    Everyone,
}

/// A CHAT as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOut {
    /// Made by the sender, unique among its messages: the same message sent
    /// again (after a lost connection) carries the same id, so nobody gets
    /// it twice.
    pub id: String,
    pub to: ChatTarget,
    pub text: String,
}

/// A CHAT as a server delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatIn {
    pub id: String,
    /// The sender's id while it is connected; absent for a message kept
    /// while its sender has since left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The sender's name when it wrote.
    pub name: String,
    pub text: String,
    /// When the sender's message reached the server, unix milliseconds.
    pub time: i64,
    /// `everyone` for a room message; absent for a message to the receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

/// How far a message has got, as a RECEIPT tells its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Handed to a program that cannot confirm (an original client), or
    /// relayed to everyone in the room.
    Sent,
    /// The recipient is away: the server keeps it for them.
    Kept,
    /// In the recipient's program.
    Delivered,
    /// Its window had the focus in the recipient's program.
    Read,
    /// It cannot be delivered; `message` says why.
    Failed,
    /// A state from a newer program.
    #[serde(other)]
    Other,
}

/// A RECEIPT as a client sends it: about a message it received from
/// `to_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptOut {
    pub id: String,
    pub to_name: String,
    pub state: Delivery,
}

/// A RECEIPT as a server sends it: about a message the receiver sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptIn {
    pub id: String,
    pub state: Delivery,
    /// Whose program it is about (the recipient), when one person's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why it failed, as a sentence for the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Someone who has been here before and is away (in PEOPLE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub color: String,
    pub image_name: String,
    /// When they were last here, unix milliseconds.
    pub last_seen: i64,
}

/// What a server sends to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerPacket {
    /// "Send your information!"
    InfoRequest,
    /// The server is HubChat and has let this client in (extension).
    Welcome(Welcome),
    /// Clients to add to the receiver's list (all of them, or just new ones).
    AllClients(Roster),
    /// A message from `from` to `to` (the receiver).
    Message {
        from: String,
        to: String,
        text: String,
    },
    /// The client with this id has left.
    Disconnect { id: String },
    /// The server is closing this connection; `message` says why.
    ServerClose { message: String },
    /// Something the client did was refused (extension).
    Error(ErrorReport),
    /// The avatar picture of the client `id`, PNG bytes (extension).
    Picture { id: String, png: Vec<u8> },
    /// The server accepts the client's offer to encrypt: the next bytes in
    /// both directions are a TLS handshake (extension, version 2).
    StartTls,
    /// A message with an id (version 3).
    Chat(ChatIn),
    /// How far a message the receiver sent has got (version 3).
    Receipt(ReceiptIn),
    /// `name` is typing to the receiver, or stopped (version 3).
    Typing { name: String, active: bool },
    /// People who have been here and are away: shown greyed, and messages
    /// to them are kept (version 3).
    People(Vec<Person>),
    /// A file offered, sent, answered or given up (version 4); `peer` is
    /// the client it comes from.
    File(FilePacket),
    /// A flag this program does not know; skip it.
    Unknown { flag: String },
}

/// Why a frame body is not a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The body is not JSON at all (or not UTF-8).
    NotJson { detail: String },
    /// The body is JSON, but not `{"flag": ..., "data": ...}`.
    NoEnvelope { detail: String },
    /// The data does not have the shape the flag calls for.
    WrongShape { flag: String, detail: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotJson { detail } => write!(f, "packet is not valid JSON ({detail})"),
            DecodeError::NoEnvelope { detail } => {
                write!(f, "packet is not a flag with data ({detail})")
            }
            DecodeError::WrongShape { flag, detail } => {
                write!(f, "{flag} packet has the wrong shape ({detail})")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The outer object of every body, with the data left as raw JSON.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    flag: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

impl<'a> RawEnvelope<'a> {
    /// Reads the envelope at the start of `body`. Only FILE DATA carries
    /// bytes after it (the chunk, returned with it); after any other
    /// packet only white space may follow, as ever.
    fn parse(body: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let classify = |e: serde_json::Error| {
            let detail = e.to_string();
            if e.is_data() {
                DecodeError::NoEnvelope { detail }
            } else {
                DecodeError::NotJson { detail }
            }
        };
        let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<RawEnvelope>();
        let env = match stream.next() {
            Some(Ok(env)) => env,
            Some(Err(e)) => return Err(classify(e)),
            None => {
                return Err(DecodeError::NotJson {
                    detail: "EOF while parsing a value at line 1 column 0".into(),
                })
            }
        };
        let rest = &body[stream.byte_offset()..];
        if env.flag == FILE_DATA || rest.iter().all(u8::is_ascii_whitespace) {
            let payload = if env.flag == FILE_DATA { rest } else { &[] };
            Ok((env, payload))
        } else {
            Err(DecodeError::NotJson {
                detail: format!("trailing characters at byte {}", stream.byte_offset()),
            })
        }
    }

    /// Decodes a FILE packet's data (and chunk) for this envelope's flag.
    fn file(&self, payload: &[u8], direction: Direction) -> Result<FilePacket, DecodeError> {
        let raw = self
            .data
            .ok_or_else(|| self.wrong_shape("it has no data"))?;
        FilePacket::decode(&self.flag, raw.get(), payload, direction)
            .map_err(|e| self.wrong_shape(e))
    }

    /// Decodes the data for this envelope's flag.
    fn data<T: Deserialize<'a>>(&self) -> Result<T, DecodeError> {
        let raw = self
            .data
            .ok_or_else(|| self.wrong_shape("it has no data"))?;
        serde_json::from_str(raw.get()).map_err(|e| self.wrong_shape(e))
    }

    /// Decodes data that must be a JSON object. serde would also fill a
    /// struct from an array of its fields in order, which no peer sends and
    /// the original would choke on, so that is refused here.
    fn object<T: Deserialize<'a>>(&self) -> Result<T, DecodeError> {
        match self.data {
            Some(raw) if !raw.get().starts_with('{') => {
                Err(self.wrong_shape("its data is not an object"))
            }
            _ => self.data(),
        }
    }

    fn wrong_shape(&self, detail: impl fmt::Display) -> DecodeError {
        DecodeError::WrongShape {
            flag: self.flag.to_string(),
            detail: detail.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow)]
    partner_name: Cow<'a, str>,
    #[serde(borrow, default)]
    source_client: Option<Cow<'a, str>>,
}

/// The data of a PICTURE packet. A client sends only `picture`; the server
/// adds whose picture it is.
#[derive(Serialize, Deserialize)]
struct PictureData<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    picture: Cow<'a, str>,
}

impl<'a> PictureData<'a> {
    fn png(&self, env: &RawEnvelope) -> Result<Vec<u8>, DecodeError> {
        BASE64
            .decode(self.picture.as_bytes())
            .map_err(|e| env.wrong_shape(format!("its picture is not base64 ({e})")))
    }
}

#[derive(Deserialize)]
struct ServerCloseData {
    message: String,
}

/// A client's CHAT on the wire: `to_name` or `room`, never both.
#[derive(Serialize, Deserialize)]
struct ChatData<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    to_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    room: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
struct TypingOut<'a> {
    #[serde(borrow)]
    to_name: Cow<'a, str>,
    active: bool,
}

#[derive(Serialize, Deserialize)]
struct TypingIn<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    active: bool,
}

#[derive(Serialize, Deserialize)]
struct PeopleData {
    people: Vec<Person>,
}

/// Whether `id` is a message id as HubChat makes them: 1 to
/// [`MAX_MESSAGE_ID`] ASCII letters, digits and dashes. Ids are kept in
/// databases and shown in logs, so nothing else is let through.
pub fn is_message_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MESSAGE_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn check_id(env: &RawEnvelope, id: &str) -> Result<(), DecodeError> {
    if is_message_id(id) {
        Ok(())
    } else {
        Err(env.wrong_shape(format!(
            "its id is not 1 to {MAX_MESSAGE_ID} letters, digits and dashes"
        )))
    }
}

impl ClientPacket {
    /// Decodes a frame body sent by a client.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let (env, payload) = RawEnvelope::parse(body)?;
        Ok(match env.flag.as_ref() {
            INFO => ClientPacket::Info(env.object()?),
            MESSAGE => {
                let m: MessageIn = env.object()?;
                ClientPacket::Message {
                    to: m.partner_name.into_owned(),
                    text: m.message.into_owned(),
                }
            }
            // The original sends a fixed sentence; its content does not matter.
            DISCONNECT => ClientPacket::Disconnect,
            PICTURE => {
                let p: PictureData = env.object()?;
                ClientPacket::Picture { png: p.png(&env)? }
            }
            CHAT => {
                let c: ChatData = env.object()?;
                check_id(&env, &c.id)?;
                let to = match (c.to_name, c.room) {
                    (Some(name), None) => ChatTarget::Person(name.into_owned()),
                    (None, Some(room)) if room == EVERYONE => ChatTarget::Everyone,
                    (None, Some(_)) => {
                        return Err(env.wrong_shape("it names a room that does not exist"))
                    }
                    _ => {
                        return Err(env.wrong_shape("it needs exactly one of `to_name` and `room`"))
                    }
                };
                ClientPacket::Chat(ChatOut {
                    id: c.id.into_owned(),
                    to,
                    text: c.text.into_owned(),
                })
            }
            RECEIPT => {
                let r: ReceiptOut = env.object()?;
                check_id(&env, &r.id)?;
                ClientPacket::Receipt(r)
            }
            TYPING => {
                let t: TypingOut = env.object()?;
                ClientPacket::Typing {
                    to_name: t.to_name.into_owned(),
                    active: t.active,
                }
            }
            flag if is_file_flag(flag) => {
                ClientPacket::File(env.file(payload, Direction::ToServer)?)
            }
            other => ClientPacket::Unknown {
                flag: other.to_string(),
            },
        })
    }

    /// Encodes this packet as a whole frame.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ClientPacket::Info(info) => encode_frame(INFO, info),
            ClientPacket::Message { to, text } => encode_frame(
                MESSAGE,
                MessageOut {
                    message: text,
                    partner_name: to,
                    source_client: None,
                },
            ),
            ClientPacket::Disconnect => encode_frame(DISCONNECT, DISCONNECT_REQUEST_TEXT),
            ClientPacket::Picture { png } => encode_frame(
                PICTURE,
                PictureData {
                    id: None,
                    picture: BASE64.encode(png).into(),
                },
            ),
            ClientPacket::Chat(chat) => {
                let (to_name, room) = match &chat.to {
                    ChatTarget::Person(name) => (Some(name.as_str().into()), None),
                    ChatTarget::Everyone => (None, Some(EVERYONE.into())),
                };
                encode_frame(
                    CHAT,
                    ChatData {
                        id: chat.id.as_str().into(),
                        to_name,
                        room,
                        text: chat.text.as_str().into(),
                    },
                )
            }
            ClientPacket::Receipt(receipt) => encode_frame(RECEIPT, receipt),
            ClientPacket::Typing { to_name, active } => encode_frame(
                TYPING,
                TypingOut {
                    to_name: to_name.as_str().into(),
                    active: *active,
                },
            ),
            ClientPacket::File(file) => file.encode(Direction::ToServer),
            ClientPacket::Unknown { flag } => encode_frame(flag, ()),
        }
    }
}

impl ServerPacket {
    /// Decodes a frame body sent by a server.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let (env, payload) = RawEnvelope::parse(body)?;
        Ok(match env.flag.as_ref() {
            // The original client ignores the request's data, and so do we.
            INFO => ServerPacket::InfoRequest,
            WELCOME => ServerPacket::Welcome(env.object()?),
            ALL_CLIENTS => ServerPacket::AllClients(env.data()?),
            MESSAGE => {
                let m: MessageIn = env.object()?;
                let from = m
                    .source_client
                    .ok_or_else(|| env.wrong_shape("missing field `source_client`"))?;
                ServerPacket::Message {
                    from: from.into_owned(),
                    to: m.partner_name.into_owned(),
                    text: m.message.into_owned(),
                }
            }
            DISCONNECT => ServerPacket::Disconnect { id: env.data()? },
            SERVER_CLOSE => {
                let data: ServerCloseData = env.object()?;
                ServerPacket::ServerClose {
                    message: data.message,
                }
            }
            ERROR => ServerPacket::Error(env.object()?),
            STARTTLS => ServerPacket::StartTls,
            PICTURE => {
                let p: PictureData = env.object()?;
                let png = p.png(&env)?;
                let id = p.id.ok_or_else(|| env.wrong_shape("missing field `id`"))?;
                ServerPacket::Picture {
                    id: id.into_owned(),
                    png,
                }
            }
            CHAT => {
                let c: ChatIn = env.object()?;
                check_id(&env, &c.id)?;
                ServerPacket::Chat(c)
            }
            RECEIPT => {
                let r: ReceiptIn = env.object()?;
                check_id(&env, &r.id)?;
                ServerPacket::Receipt(r)
            }
            TYPING => {
                let t: TypingIn = env.object()?;
                ServerPacket::Typing {
                    name: t.name.into_owned(),
                    active: t.active,
                }
            }
            PEOPLE => {
                let p: PeopleData = env.object()?;
                ServerPacket::People(p.people)
            }
            flag if is_file_flag(flag) => {
                ServerPacket::File(env.file(payload, Direction::ToClient)?)
            }
            other => ServerPacket::Unknown {
                flag: other.to_string(),
            },
        })
    }

    /// Encodes this packet as a whole frame.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ServerPacket::InfoRequest => encode_frame(INFO, INFO_REQUEST_TEXT),
            ServerPacket::Welcome(welcome) => encode_frame(WELCOME, welcome),
            ServerPacket::AllClients(roster) => encode_frame(ALL_CLIENTS, roster),
            ServerPacket::Message { from, to, text } => encode_message(from, to, text),
            ServerPacket::Disconnect { id } => encode_frame(DISCONNECT, id),
            ServerPacket::ServerClose { message } => {
                encode_frame(SERVER_CLOSE, ServerCloseOut { message })
            }
            ServerPacket::Error(report) => encode_frame(ERROR, report),
            ServerPacket::Picture { id, png } => encode_frame(
                PICTURE,
                PictureData {
                    id: Some(id.as_str().into()),
                    picture: BASE64.encode(png).into(),
                },
            ),
            ServerPacket::StartTls => encode_frame(
                STARTTLS,
                StartTlsOut {
                    version: PROTOCOL_VERSION,
                },
            ),
            ServerPacket::Chat(chat) => encode_frame(CHAT, chat),
            ServerPacket::Receipt(receipt) => encode_frame(RECEIPT, receipt),
            ServerPacket::Typing { name, active } => encode_frame(
                TYPING,
                TypingIn {
                    name: name.as_str().into(),
                    active: *active,
                },
            ),
            ServerPacket::People(people) => encode_people(people),
            ServerPacket::File(file) => file.encode(Direction::ToClient),
            ServerPacket::Unknown { flag } => encode_frame(flag, ()),
        }
    }
}

/// A PEOPLE frame listing `people` (version 3).
pub fn encode_people(people: &[Person]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        people: &'a [Person],
    }
    encode_frame(PEOPLE, Borrowed { people })
}

#[derive(Serialize)]
struct StartTlsOut {
    version: u32,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    message: &'a str,
    partner_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_client: Option<&'a str>,
}

#[derive(Serialize)]
struct ServerCloseOut<'a> {
    message: &'a str,
}

/// Encodes a relayed MESSAGE frame without building a [`ServerPacket`]: the
/// relay's hot path borrows everything it sends.
pub fn encode_message(from: &str, to: &str, text: &str) -> Vec<u8> {
    encode_frame(
        MESSAGE,
        MessageOut {
            message: text,
            partner_name: to,
            source_client: Some(from),
        },
    )
}

#[derive(Serialize)]
struct Envelope<'a, D> {
    flag: &'a str,
    data: D,
}

/// A frame for `flag` with `data`, for the packet modules beside this one.
pub(crate) fn encode_frame_for<D: Serialize>(flag: &str, data: D) -> Vec<u8> {
    encode_frame(flag, data)
}

/// Serialises an envelope straight after a reserved header, then fills the
/// header in: one allocation, one buffer, ready for one write.
fn encode_frame<D: Serialize>(flag: &str, data: D) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&[b' '; HEADER_LEN]);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, PythonStyle);
    Envelope { flag, data }
        .serialize(&mut ser)
        .expect("packets serialise to memory without error: all keys are strings");
    frame::seal(&mut buf);
    buf
}

/// JSON as Python's `json.dumps` writes it by default: `", "` and `": "`
/// separators, and every non-ASCII character escaped (`\u00e9`, surrogate
/// pairs above U+FFFF). The original counts characters for its header, which
/// only equals the byte count when the JSON is ASCII, so escaping keeps even
/// a sloppy old peer in step, and keeps our frames identical to the
/// original's.
struct PythonStyle;

impl serde_json::ser::Formatter for PythonStyle {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &[u8]) -> &[u8] {
        &frame[HEADER_LEN..]
    }

    #[test]
    fn a_roster_from_borrowed_profiles_is_the_same_frame() {
        let alice = Profile {
            name: "alice é".into(),
            color: "#12ab34".into(),
            image_name: "image_9.png".into(),
            files: false,
        };
        let bob = Profile {
            name: "bob".into(),
            color: "plum".into(),
            image_name: "image_1.png".into(),
            files: false,
        };
        let owned = ServerPacket::AllClients(Roster(vec![
            ("client3".into(), alice.clone()),
            ("client10".into(), bob.clone()),
        ]));
        assert_eq!(
            encode_all_clients(&[("client3", &alice), ("client10", &bob)]),
            owned.encode()
        );
        assert_eq!(
            encode_all_clients(&[]),
            ServerPacket::AllClients(Roster(vec![])).encode()
        );
    }

    #[test]
    fn rosters_merge_into_the_frame_that_lists_all_their_entries() {
        let people = [
            ("client3", "alice", "blue"),
            ("client10", "zoë 🦊", "#12ab34"),
            ("client11", "bob", "plum"),
        ];
        let profiles: Vec<Profile> = people
            .iter()
            .map(|(_, name, color)| Profile {
                name: (*name).into(),
                color: (*color).into(),
                image_name: "image_1.png".into(),
                files: false,
            })
            .collect();
        let entries: Vec<(&str, &Profile)> = people
            .iter()
            .zip(&profiles)
            .map(|((id, _, _), p)| (*id, p))
            .collect();
        let one_each: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| encode_all_clients(std::slice::from_ref(e)))
            .collect();
        assert_eq!(merge_all_clients(&one_each), encode_all_clients(&entries));
        assert_eq!(merge_all_clients(&one_each[..1]), one_each[0]);
        // Read back, the merged frame lists all three, in order.
        let merged = merge_all_clients(&one_each);
        let Ok(ServerPacket::AllClients(Roster(listed))) =
            ServerPacket::decode(&merged[HEADER_LEN..])
        else {
            panic!("the merged frame is an ALL CLIENTS frame");
        };
        let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["client3", "client10", "client11"]);
        // Empty rosters add nothing; other frames are kept after it.
        let bye = ServerPacket::Disconnect {
            id: "client3".into(),
        }
        .encode();
        let mixed = [encode_all_clients(&[]), one_each[1].clone(), bye.clone()];
        let mut expected = one_each[1].clone();
        expected.extend_from_slice(&bye);
        assert_eq!(merge_all_clients(&mixed), expected);
    }

    #[test]
    fn every_server_packet_survives_a_round_trip() {
        let packets = vec![
            ServerPacket::InfoRequest,
            ServerPacket::Welcome(Welcome {
                version: 1,
                id: "client4".into(),
                max_packet: 1024,
                max_message: Some(512),
                max_file: None,
            }),
            ServerPacket::AllClients(Roster(vec![
                (
                    "client3".into(),
                    Profile {
                        name: "zoë 🦊".into(),
                        color: "#12ab34".into(),
                        image_name: "image_9.png".into(),
                        files: false,
                    },
                ),
                (
                    "client10".into(),
                    Profile {
                        name: "bob".into(),
                        color: "plum".into(),
                        image_name: "image_1.png".into(),
                        files: false,
                    },
                ),
            ])),
            ServerPacket::Message {
                from: "client0".into(),
                to: "client1".into(),
                text: "line one\n\"quoted\"\ttab\n".into(),
            },
            ServerPacket::Disconnect {
                id: "client7".into(),
            },
            ServerPacket::ServerClose {
                message: "bye".into(),
            },
            ServerPacket::Error(ErrorReport {
                code: ErrorCode::NameTaken,
                message: "taken".into(),
            }),
        ];
        for packet in packets {
            let frame = packet.encode();
            assert_eq!(ServerPacket::decode(body(&frame)), Ok(packet));
        }
    }

    #[test]
    fn every_client_packet_survives_a_round_trip() {
        let packets = vec![
            ClientPacket::Info(Info {
                name: "alice".into(),
                color: "blue".into(),
                image_name: "image_3.png".into(),
                hubchat: Some(ClientHello {
                    version: 1,
                    image_name: Some("image_28.png".into()),
                    ..Default::default()
                }),
            }),
            ClientPacket::Message {
                to: "client1".into(),
                text: "héllo\n".into(),
            },
            ClientPacket::Disconnect,
            ClientPacket::Picture {
                png: b"\x89PNG\r\n\x1a\n bytes of any value \x00\xff".to_vec(),
            },
        ];
        for packet in packets {
            let frame = packet.encode();
            assert_eq!(ClientPacket::decode(body(&frame)), Ok(packet));
        }
    }

    #[test]
    fn a_picture_travels_as_base64_and_must_decode() {
        let frame = ServerPacket::Picture {
            id: "client2".into(),
            png: b"PNG".to_vec(),
        }
        .encode();
        assert_eq!(
            body(&frame),
            br#"{"flag": "PICTURE", "data": {"id": "client2", "picture": "UE5H"}}"#
        );
        assert!(matches!(
            ClientPacket::decode(br#"{"flag": "PICTURE", "data": {"picture": "not base64!"}}"#),
            Err(DecodeError::WrongShape { .. })
        ));
        assert!(
            matches!(
                ServerPacket::decode(br#"{"flag": "PICTURE", "data": {"picture": "UE5H"}}"#),
                Err(DecodeError::WrongShape { .. })
            ),
            "the server names whose picture it is"
        );
    }

    #[test]
    fn non_ascii_text_is_escaped_as_python_does() {
        let frame = ClientPacket::Message {
            to: "client1".into(),
            text: "é 你 🦊\n".into(),
        }
        .encode();
        assert_eq!(
            String::from_utf8(body(&frame).to_vec()).unwrap(),
            r#"{"flag": "MESSAGE", "data": {"message": "\u00e9 \u4f60 \ud83e\udd8a\n", "partner_name": "client1"}}"#
        );
    }

    #[test]
    fn unknown_flags_decode_to_a_value_callers_skip() {
        assert_eq!(
            ClientPacket::decode(br#"{"flag": "WAVE", "data": {"x": 1}}"#),
            Ok(ClientPacket::Unknown {
                flag: "WAVE".into()
            })
        );
        assert_eq!(
            ServerPacket::decode(br#"{"flag": "PING"}"#),
            Ok(ServerPacket::Unknown {
                flag: "PING".into()
            })
        );
    }

    #[test]
    fn unknown_error_codes_from_newer_servers_still_decode() {
        let decoded = ServerPacket::decode(
            br#"{"flag": "ERROR", "data": {"code": "slow_down", "message": "m"}}"#,
        );
        assert_eq!(
            decoded,
            Ok(ServerPacket::Error(ErrorReport {
                code: ErrorCode::Other,
                message: "m".into()
            }))
        );
    }

    #[test]
    fn welcome_tolerates_fields_it_does_not_know_and_ones_it_lacks() {
        // A newer server's extra fields are ignored, as older clients
        // ignored `max_message`; an older server's WELCOME lacks it.
        let newer = ServerPacket::decode(
            br#"{"flag": "WELCOME", "data": {"version": 1, "id": "client3", "max_packet": 99, "max_message": 7, "later": [1]}}"#,
        );
        let older = ServerPacket::decode(
            br#"{"flag": "WELCOME", "data": {"version": 1, "id": "client3", "max_packet": 99}}"#,
        );
        let welcome = |max_message| {
            Ok(ServerPacket::Welcome(Welcome {
                version: 1,
                id: "client3".into(),
                max_packet: 99,
                max_message,
                max_file: None,
            }))
        };
        assert_eq!(newer, welcome(Some(7)));
        assert_eq!(older, welcome(None));
    }

    #[test]
    fn message_limits_have_their_wire_names() {
        let wire = |code| serde_json::to_string(&code).unwrap();
        assert_eq!(wire(ErrorCode::MessageTooLong), r#""message_too_long""#);
        assert_eq!(wire(ErrorCode::RateLimited), r#""rate_limited""#);
    }

    #[test]
    fn bodies_that_are_not_json_are_typed_errors() {
        for body in [
            &b"{not json"[..],
            b"",
            b"\xff\xfe",
            b"{\"flag\": \"INFO\"} trailing",
        ] {
            assert!(
                matches!(ClientPacket::decode(body), Err(DecodeError::NotJson { .. })),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn json_without_a_flag_is_a_typed_error() {
        for body in [
            &b"[1, 2]"[..],
            b"\"INFO\"",
            b"{\"data\": 1}",
            b"{\"flag\": 5}",
        ] {
            assert!(
                matches!(
                    ClientPacket::decode(body),
                    Err(DecodeError::NoEnvelope { .. })
                ),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn data_of_the_wrong_shape_is_a_typed_error_naming_the_flag() {
        let cases: [&[u8]; 5] = [
            br#"{"flag": "INFO", "data": "alice"}"#,
            br#"{"flag": "INFO", "data": {"name": "alice"}}"#,
            br#"{"flag": "INFO"}"#,
            br#"{"flag": "MESSAGE", "data": {"message": 5, "partner_name": "client1"}}"#,
            br#"{"flag": "MESSAGE", "data": ["hello", "client1"]}"#,
        ];
        for body in cases {
            let err = ClientPacket::decode(body).unwrap_err();
            assert!(
                matches!(&err, DecodeError::WrongShape { flag, .. } if flag == "INFO" || flag == "MESSAGE"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn roster_keeps_the_order_it_was_sent_in() {
        let roster: Roster = serde_json::from_str(
            r#"{"client10": {"name": "b", "color": "red", "image_name": "image_1.png"},
                "client2": {"name": "a", "color": "red", "image_name": "image_1.png"}}"#,
        )
        .unwrap();
        let ids: Vec<&str> = roster.0.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["client10", "client2"]);
    }

    #[test]
    fn only_canonical_client_ids_name_a_client() {
        assert_eq!(client_number("client0"), Some(0));
        assert_eq!(client_number("client42"), Some(42));
        for bad in [
            "client", "client01", "client+1", "client-1", "Client1", "client1 ", "bob",
        ] {
            assert_eq!(client_number(bad), None, "{bad}");
        }
    }
}
