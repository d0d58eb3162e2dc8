//! The FILE packets (version 4): a file offered, accepted, sent in chunks
//! with flow control end to end, checked and saved, or given up.
//!
//! Every FILE packet names its transfer (an id the sender made) and the
//! other party: a client writes `to` (a client id), the server stamps
//! `from` instead, so nobody can speak for someone else. Only HubChat
//! peers of version 4 ever send or receive them (see `docs/protocol.md`).
//!
//! A chunk's bytes travel raw, right after the JSON object in the same
//! frame body: base64 would cost a third more on the wire and an encode
//! and decode at each end, and the peers that see FILE DATA have agreed to
//! it. The frame header counts the JSON and the bytes together.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::common::packet::{is_message_id, EVERYONE, MAX_MESSAGE_ID};

/// The first extension version that sends files.
pub const FILE_VERSION: u32 = 4;

/// The largest file a server lets through unless its owner says otherwise:
/// 2 GiB.
pub const DEFAULT_MAX_FILE: u64 = 2 << 30;

/// How many bytes of a file a sender may have sent that the receiver has
/// not acknowledged, at most: the server refuses more, so what it holds
/// for one transfer never exceeds this (plus one chunk being read).
pub const MAX_WINDOW: u64 = 1 << 20;

/// The window a HubChat receiver gives: three chunks, within the most the
/// server allows. (With 128 KiB chunks in a 512 KiB window the relay
/// moved 0.47 of a bare socket pair's speed, median of three runs; with
/// these 0.62: fewer, larger frames cost the server's one thread per
/// sender fewer wake-ups and system calls. README, Figures.)
pub const WINDOW: u64 = 768 << 10;

/// The size of the chunks a HubChat sender reads and sends.
pub const CHUNK: usize = 256 << 10;

/// The longest file name an offer may carry, in bytes of UTF-8 (names are
/// made safe by the receiver; this only bounds what the server relays).
pub const MAX_OFFER_NAME: usize = 1024;

/// The largest thumbnail an offer may carry: a PNG of at most 96x96
/// pixels in at most 16 KiB.
pub const MAX_THUMBNAIL: usize = 16 << 10;

/// The largest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 96;

pub(crate) const FILE_OFFER: &str = "FILE OFFER";
pub(crate) const FILE_ACCEPT: &str = "FILE ACCEPT";
pub(crate) const FILE_DATA: &str = "FILE DATA";
pub(crate) const FILE_ACK: &str = "FILE ACK";
pub(crate) const FILE_DONE: &str = "FILE DONE";
pub(crate) const FILE_SAVED: &str = "FILE SAVED";
pub(crate) const FILE_CANCEL: &str = "FILE CANCEL";

/// Whether `flag` is one of the FILE flags.
pub fn is_file_flag(flag: &str) -> bool {
    [
        FILE_OFFER,
        FILE_ACCEPT,
        FILE_DATA,
        FILE_ACK,
        FILE_DONE,
        FILE_SAVED,
        FILE_CANCEL,
    ]
    .contains(&flag)
}

/// A FILE packet: which transfer, with whom, and what about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePacket {
    /// Made by the sender of the file, unique among its transfers.
    pub transfer: String,
    /// The other party's client id: `to` from a client, `from` from the
    /// server. `None` only in an offer to the room, and in a cancel that
    /// concerns every receiver of an offer (or, from the server, in the
    /// refusal of an offer).
    pub peer: Option<String>,
    pub what: FileMsg,
}

/// What a FILE packet says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMsg {
    /// The sender offers a file (sender to receivers).
    Offer(Offer),
    /// The receiver wants it, and lets the sender have `window` bytes
    /// unacknowledged (receiver to sender).
    Accept { window: u64 },
    /// The next bytes of the file, starting at `offset` (sender to
    /// receiver).
    Data { offset: u64, bytes: Vec<u8> },
    /// The receiver has written `received` bytes (receiver to sender).
    Ack { received: u64 },
    /// All bytes are sent; their SHA-256 (sender to receiver).
    Done { sha256: [u8; 32] },
    /// The file is checked and saved (receiver to sender).
    Saved,
    /// Either side gives up: declined, cancelled or failed, with a
    /// sentence for people.
    Cancel {
        reason: CancelReason,
        message: Option<String>,
    },
}

/// A file offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The file's name as the sender has it (the receiver sanitises it).
    pub name: String,
    pub size: u64,
    /// For a picture: a small PNG to show in the offer.
    pub thumbnail: Option<Vec<u8>>,
    /// Offered to everyone in the room rather than one client.
    pub room: bool,
}

/// Why a transfer ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The receiver said no to the offer.
    Declined,
    /// A person stopped it.
    Cancelled,
    /// Something went wrong (the message says what).
    Failed,
    /// A reason from a newer program.
    #[serde(other)]
    Other,
}

/// The JSON part of every FILE packet; which fields it has depends on the
/// flag.
#[derive(Serialize, Deserialize, Default)]
struct Head<'a> {
    #[serde(borrow)]
    transfer: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    to: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    from: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    room: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    thumbnail: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received: Option<u64>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    sha256: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<CancelReason>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    message: Option<Cow<'a, str>>,
}

/// Who the peer field names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Client to server: `to`.
    ToServer,
    /// Server to client: `from`.
    ToClient,
}

/// What is wrong with a FILE packet's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileShapeError(pub String);

impl fmt::Display for FileShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn wrong(detail: impl Into<String>) -> FileShapeError {
    FileShapeError(detail.into())
}

fn need<T>(field: Option<T>, name: &str) -> Result<T, FileShapeError> {
    field.ok_or_else(|| wrong(format!("missing field `{name}`")))
}

impl FilePacket {
    /// Decodes a FILE packet's data (`raw`, a JSON object) and, for FILE
    /// DATA, the bytes after it (`payload`; empty for every other flag).
    pub(crate) fn decode(
        flag: &str,
        raw: &str,
        payload: &[u8],
        direction: Direction,
    ) -> Result<FilePacket, FileShapeError> {
        if !raw.starts_with('{') {
            return Err(wrong("its data is not an object"));
        }
        let head: Head = serde_json::from_str(raw).map_err(|e| wrong(e.to_string()))?;
        if !is_message_id(&head.transfer) {
            return Err(wrong(format!(
                "its transfer is not 1 to {MAX_MESSAGE_ID} letters, digits and dashes"
            )));
        }
        let peer = match direction {
            Direction::ToServer => head.to.clone(),
            Direction::ToClient => head.from.clone(),
        }
        .map(Cow::into_owned);
        let what = match flag {
            FILE_OFFER => {
                let room = match head.room.as_deref() {
                    None => false,
                    Some(EVERYONE) => true,
                    Some(_) => return Err(wrong("it names a room that does not exist")),
                };
                if direction == Direction::ToServer && room == head.to.is_some() {
                    return Err(wrong("it needs exactly one of `to` and `room`"));
                }
                let thumbnail = match head.thumbnail {
                    Some(t) => Some(
                        BASE64
                            .decode(t.as_bytes())
                            .map_err(|e| wrong(format!("its thumbnail is not base64 ({e})")))?,
                    ),
                    None => None,
                };
                FileMsg::Offer(Offer {
                    name: need(head.name, "name")?.into_owned(),
                    size: need(head.size, "size")?,
                    thumbnail,
                    room,
                })
            }
            FILE_ACCEPT => FileMsg::Accept {
                window: need(head.window, "window")?,
            },
            FILE_DATA => FileMsg::Data {
                offset: need(head.offset, "offset")?,
                bytes: payload.to_vec(),
            },
            FILE_ACK => FileMsg::Ack {
                received: need(head.received, "received")?,
            },
            FILE_DONE => FileMsg::Done {
                sha256: parse_sha256(&need(head.sha256, "sha256")?)
                    .ok_or_else(|| wrong("its sha256 is not 64 hex digits"))?,
            },
            FILE_SAVED => FileMsg::Saved,
            FILE_CANCEL => FileMsg::Cancel {
                reason: need(head.reason, "reason")?,
                message: head.message.map(Cow::into_owned),
            },
            other => return Err(wrong(format!("{other} is not a FILE flag"))),
        };
        if !matches!(what, FileMsg::Data { .. }) && !payload.is_empty() {
            return Err(wrong("only FILE DATA carries bytes after its data"));
        }
        Ok(FilePacket {
            transfer: head.transfer.into_owned(),
            peer,
            what,
        })
    }

    /// Encodes this packet as a whole frame, its peer written as `to` or
    /// `from` as `direction` says.
    pub(crate) fn encode(&self, direction: Direction) -> Vec<u8> {
        let peer = self.peer.as_deref().map(Cow::Borrowed);
        let mut head = Head {
            transfer: Cow::Borrowed(&self.transfer),
            ..Head::default()
        };
        match direction {
            Direction::ToServer => head.to = peer,
            Direction::ToClient => head.from = peer,
        }
        let (flag, payload): (&str, &[u8]) = match &self.what {
            FileMsg::Offer(offer) => {
                head.name = Some(Cow::Borrowed(&offer.name));
                head.size = Some(offer.size);
                head.thumbnail = offer.thumbnail.as_ref().map(|t| BASE64.encode(t).into());
                if offer.room {
                    head.room = Some(Cow::Borrowed(EVERYONE));
                }
                (FILE_OFFER, &[])
            }
            FileMsg::Accept { window } => {
                head.window = Some(*window);
                (FILE_ACCEPT, &[])
            }
            FileMsg::Data { offset, bytes } => {
                head.offset = Some(*offset);
                (FILE_DATA, bytes)
            }
            FileMsg::Ack { received } => {
                head.received = Some(*received);
                (FILE_ACK, &[])
            }
            FileMsg::Done { sha256 } => {
                head.sha256 = Some(hex(sha256).into());
                (FILE_DONE, &[])
            }
            FileMsg::Saved => (FILE_SAVED, &[]),
            FileMsg::Cancel { reason, message } => {
                head.reason = Some(*reason);
                head.message = message.as_deref().map(Cow::Borrowed);
                (FILE_CANCEL, &[])
            }
        };
        let mut frame = crate::common::packet::encode_frame_for(flag, &head);
        if !payload.is_empty() {
            frame.extend_from_slice(payload);
            crate::common::frame::seal(&mut frame);
        }
        frame
    }
}

/// A FILE DATA frame from the server: the head and then the chunk's bytes,
/// written straight into one buffer (the relay's hot path: one copy of the
/// bytes, no packet built).
pub fn encode_data_from(transfer: &str, from: &str, offset: u64, bytes: &[u8]) -> Vec<u8> {
    let head = Head {
        transfer: Cow::Borrowed(transfer),
        from: Some(Cow::Borrowed(from)),
        offset: Some(offset),
        ..Head::default()
    };
    let mut frame = crate::common::packet::encode_frame_for(FILE_DATA, &head);
    frame.reserve_exact(bytes.len());
    frame.extend_from_slice(bytes);
    crate::common::frame::seal(&mut frame);
    frame
}

/// A FILE DATA packet from a client, read where it lies: the server's
/// relay passes a chunk on without first copying its bytes out of the
/// buffer they were read into.
#[derive(Debug, PartialEq, Eq)]
pub struct DataIn<'a> {
    pub transfer: Cow<'a, str>,
    pub to: Cow<'a, str>,
    pub offset: u64,
    pub bytes: &'a [u8],
}

/// How every FILE DATA body a HubChat client writes begins.
const DATA_HEAD: &[u8] = br#"{"flag": "FILE DATA", "data": {"#;

impl<'a> DataIn<'a> {
    /// The chunk in `body`, if it is a FILE DATA written as HubChat writes
    /// it; `None` for anything else, which the caller decodes the usual
    /// way (and which says what is wrong with it, if anything is).
    pub fn read(body: &'a [u8]) -> Option<DataIn<'a>> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            flag: Cow<'a, str>,
            #[serde(borrow)]
            data: Head<'a>,
        }
        if !body.starts_with(DATA_HEAD) {
            return None;
        }
        let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Envelope>();
        let envelope = stream.next()?.ok()?;
        let head = envelope.data;
        if envelope.flag != FILE_DATA || !is_message_id(&head.transfer) {
            return None;
        }
        Some(DataIn {
            transfer: head.transfer,
            to: head.to?,
            offset: head.offset?,
            bytes: &body[stream.byte_offset()..],
        })
    }
}

/// A SHA-256 as 64 lower-case hex digits.
pub fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits (either case) as a SHA-256.
pub fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A size in bytes as people read it: "812 bytes", "2.4 MB", "1.5 GB"
/// (powers of 1024, as file managers on the platforms HubChat runs on
/// mostly show them).
pub fn describe_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::frame::HEADER_LEN;
    use crate::common::packet::{ClientPacket, ServerPacket};

    fn packet(peer: Option<&str>, what: FileMsg) -> FilePacket {
        FilePacket {
            transfer: "t1".into(),
            peer: peer.map(String::from),
            what,
        }
    }

    fn every_kind() -> Vec<FilePacket> {
        vec![
            packet(
                Some("client3"),
                FileMsg::Offer(Offer {
                    name: "photo é.png".into(),
                    size: 1234,
                    thumbnail: Some(vec![137, 80, 78, 71]),
                    room: false,
                }),
            ),
            packet(
                None,
                FileMsg::Offer(Offer {
                    name: "all.txt".into(),
                    size: 0,
                    thumbnail: None,
                    room: true,
                }),
            ),
            packet(Some("client3"), FileMsg::Accept { window: WINDOW }),
            packet(
                Some("client3"),
                FileMsg::Data {
                    offset: 4096,
                    bytes: (0..=255u8).cycle().take(5000).collect(),
                },
            ),
            packet(Some("client3"), FileMsg::Ack { received: 4096 }),
            packet(Some("client3"), FileMsg::Done { sha256: [0xab; 32] }),
            packet(Some("client3"), FileMsg::Saved),
            packet(
                Some("client3"),
                FileMsg::Cancel {
                    reason: CancelReason::Declined,
                    message: Some("no thanks".into()),
                },
            ),
            packet(
                None,
                FileMsg::Cancel {
                    reason: CancelReason::Cancelled,
                    message: None,
                },
            ),
        ]
    }

    #[test]
    fn every_file_packet_survives_the_trip_in_both_directions() {
        for p in every_kind() {
            let up = ClientPacket::File(p.clone());
            assert_eq!(ClientPacket::decode(&up.encode()[HEADER_LEN..]), Ok(up));
            if let FileMsg::Offer(o) = &p.what {
                if o.room {
                    continue; // from the server an offer always names its sender
                }
            }
            let down = ServerPacket::File(p.clone());
            assert_eq!(ServerPacket::decode(&down.encode()[HEADER_LEN..]), Ok(down));
        }
    }

    #[test]
    fn a_chunk_travels_raw_after_its_json() {
        let bytes = b"\x00\x01{}\xff raw".to_vec();
        let frame = ClientPacket::File(packet(
            Some("client2"),
            FileMsg::Data {
                offset: 0,
                bytes: bytes.clone(),
            },
        ))
        .encode();
        let body = &frame[HEADER_LEN..];
        assert!(body.ends_with(&bytes));
        assert!(body.starts_with(
            br#"{"flag": "FILE DATA", "data": {"transfer": "t1", "to": "client2", "offset": 0}}"#
        ));
        let relayed = encode_data_from("t1", "client7", 0, &bytes);
        assert_eq!(
            ServerPacket::decode(&relayed[HEADER_LEN..]),
            Ok(ServerPacket::File(FilePacket {
                transfer: "t1".into(),
                peer: Some("client7".into()),
                what: FileMsg::Data { offset: 0, bytes },
            }))
        );
    }

    #[test]
    fn a_chunk_is_read_in_place_as_the_full_decoder_reads_it() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let frame = ClientPacket::File(packet(
            Some("client2"),
            FileMsg::Data {
                offset: 77,
                bytes: bytes.clone(),
            },
        ))
        .encode();
        let body = &frame[HEADER_LEN..];
        assert_eq!(
            DataIn::read(body),
            Some(DataIn {
                transfer: "t1".into(),
                to: "client2".into(),
                offset: 77,
                bytes: &bytes,
            })
        );
        // Anything else goes the usual way.
        for other in [
            &ClientPacket::File(packet(Some("c"), FileMsg::Saved)).encode()[HEADER_LEN..],
            br#"{"flag": "FILE DATA", "data": {"transfer": "no/slash", "to": "c", "offset": 0}}"#,
            br#"{"flag": "FILE DATA", "data": {"transfer": "t", "offset": 0}}"#,
            br#"{"flag":"FILE DATA","data":{"transfer":"t","to":"c","offset":0}}"#,
        ] {
            assert_eq!(
                DataIn::read(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn bytes_after_the_json_of_any_other_packet_are_malformed() {
        let mut frame = ClientPacket::File(packet(Some("c"), FileMsg::Saved)).encode();
        frame.extend_from_slice(b"xx");
        assert!(ClientPacket::decode(&frame[HEADER_LEN..]).is_err());
        let mut chat = ClientPacket::Disconnect.encode();
        chat.extend_from_slice(b"{}");
        assert!(ClientPacket::decode(&chat[HEADER_LEN..]).is_err());
        // Trailing white space was always allowed, and still is.
        let mut spaced = ClientPacket::Disconnect.encode();
        spaced.extend_from_slice(b" \n");
        assert_eq!(
            ClientPacket::decode(&spaced[HEADER_LEN..]),
            Ok(ClientPacket::Disconnect)
        );
    }

    #[test]
    fn malformed_file_packets_are_refused() {
        for body in [
            r#"{"flag": "FILE OFFER", "data": {"transfer": "t", "name": "a", "size": 1}}"#,
            r#"{"flag": "FILE OFFER", "data": {"transfer": "t", "to": "client1", "room": "everyone", "name": "a", "size": 1}}"#,
            r#"{"flag": "FILE OFFER", "data": {"transfer": "t", "room": "lobby", "name": "a", "size": 1}}"#,
            r#"{"flag": "FILE OFFER", "data": {"transfer": "t", "to": "client1", "name": "a", "size": -1}}"#,
            r#"{"flag": "FILE OFFER", "data": {"transfer": "t", "to": "client1", "name": "a", "size": 1, "thumbnail": "%%"}}"#,
            r#"{"flag": "FILE ACCEPT", "data": {"transfer": "t/../x", "to": "client1", "window": 1}}"#,
            r#"{"flag": "FILE ACCEPT", "data": {"transfer": "t", "to": "client1"}}"#,
            r#"{"flag": "FILE DONE", "data": {"transfer": "t", "to": "client1", "sha256": "abc"}}"#,
            r#"{"flag": "FILE ACK", "data": ["t", "client1", 5]}"#,
            r#"{"flag": "FILE CANCEL", "data": {"transfer": "t", "to": "client1"}}"#,
        ] {
            assert!(
                ClientPacket::decode(body.as_bytes()).is_err(),
                "accepted {body}"
            );
        }
    }

    #[test]
    fn sizes_read_as_people_expect() {
        assert_eq!(describe_size(812), "812 bytes");
        assert_eq!(describe_size(2_500_000), "2.4 MB");
        assert_eq!(describe_size(DEFAULT_MAX_FILE), "2.0 GB");
        assert_eq!(describe_size(150 << 20), "150 MB");
    }

    #[test]
    fn hashes_read_back_as_written() {
        let h: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        assert_eq!(parse_sha256(&hex(&h)), Some(h));
        assert_eq!(parse_sha256(&hex(&h).to_uppercase()), Some(h));
        assert_eq!(parse_sha256(&"g".repeat(64)), None);
        assert_eq!(parse_sha256("é".repeat(32).as_str()), None);
    }
}
