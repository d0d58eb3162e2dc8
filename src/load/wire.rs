//! What the load tool reads from a server, decoded only as far as it needs.
//!
//! While 1,000 clients join, the tool's clients receive half a million roster
//! entries; decoding each into a full profile (four strings) made the tool
//! as costly as the server it measures. The tool needs only the ids (and,
//! while joining, names) in a roster, the text of a message and the id in a departure, so this module
//! reads the envelope, borrows those and skips everything else. The wire
//! format itself stays [`crate::common::packet`]'s business: the tests below
//! decode frames that module encodes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A server packet, as far as the load tool cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen<'a> {
    /// ALL CLIENTS: the ids it lists with their names, in order.
    Roster(Vec<(Cow<'a, str>, Cow<'a, str>)>),
    /// MESSAGE: its text.
    Message(Cow<'a, str>),
    /// DISCONNECT: the id of the client that left.
    Departure(Cow<'a, str>),
    /// SERVER CLOSE (or ERROR): the server's sentence.
    Closed(Cow<'a, str>),
    /// Anything else (INFO request, WELCOME, newer flags).
    Other,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    flag: Cow<'a, str>,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct Text<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
}

/// Of a profile, only the name; other fields are skipped unread.
#[derive(Deserialize)]
struct Name<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// A roster's ids and names.
struct Ids<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de> Deserialize<'de> for Ids<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdsVisitor;
        impl<'de> Visitor<'de> for IdsVisitor {
            type Value = Ids<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping client ids to profiles")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ids<'de>, A::Error> {
                let mut ids = Vec::with_capacity(map.size_hint().unwrap_or(1).min(1024));
                while let Some(id) = map.next_key::<Cow<'de, str>>()? {
                    ids.push((id, map.next_value::<Name>()?.name));
                }
                Ok(Ids(ids))
            }
        }
        deserializer.deserialize_map(IdsVisitor)
    }
}

/// Decodes one frame body.
pub fn decode(body: &[u8]) -> Result<Seen<'_>, serde_json::Error> {
    let env: Envelope = serde_json::from_slice(body)?;
    let data = env.data.get();
    Ok(match env.flag.as_ref() {
        "ALL CLIENTS" => Seen::Roster(serde_json::from_str::<Ids>(data)?.0),
        "MESSAGE" => Seen::Message(serde_json::from_str::<Text>(data)?.message),
        "DISCONNECT" => Seen::Departure(serde_json::from_str(data)?),
        "SERVER CLOSE" | "ERROR" => Seen::Closed(serde_json::from_str::<Text>(data)?.message),
        _ => Seen::Other,
    })
}

/// What was received, in words, for error messages.
impl fmt::Display for Seen<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Roster(ids) => write!(f, "a roster of {}", ids.len()),
            Seen::Message(_) => write!(f, "a message"),
            Seen::Departure(id) => write!(f, "the departure of {id}"),
            Seen::Closed(why) => write!(f, "a close: {why}"),
            Seen::Other => write!(f, "another packet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::frame::HEADER_LEN;
    use crate::common::packet::{
        encode_message, ErrorCode, ErrorReport, Profile, Roster, ServerPacket,
    };

    fn body(packet: &ServerPacket) -> Vec<u8> {
        packet.encode()[HEADER_LEN..].to_vec()
    }

    fn profile(name: &str) -> Profile {
        Profile {
            name: name.into(),
            color: "red".into(),
            image_name: "image_1.png".into(),
        }
    }

    #[test]
    fn a_roster_gives_its_ids_and_names_in_order() {
        let roster = ServerPacket::AllClients(Roster(vec![
            ("client3".into(), profile("Zoë \"z\" {x}")),
            ("client10".into(), profile("b")),
        ]));
        let b = body(&roster);
        assert_eq!(
            decode(&b).unwrap(),
            Seen::Roster(vec![
                ("client3".into(), "Zoë \"z\" {x}".into()),
                ("client10".into(), "b".into())
            ])
        );
    }

    #[test]
    fn a_message_gives_its_text_and_a_departure_its_id() {
        let m = encode_message("client1", "client2", "7 3 99 xx\n");
        assert_eq!(
            decode(&m[HEADER_LEN..]).unwrap(),
            Seen::Message("7 3 99 xx\n".into())
        );
        let d = body(&ServerPacket::Disconnect {
            id: "client9".into(),
        });
        assert_eq!(decode(&d).unwrap(), Seen::Departure("client9".into()));
    }

    #[test]
    fn closes_and_refusals_give_the_servers_sentence() {
        let c = body(&ServerPacket::ServerClose {
            message: "full".into(),
        });
        assert_eq!(decode(&c).unwrap(), Seen::Closed("full".into()));
        let e = body(&ServerPacket::Error(ErrorReport {
            code: ErrorCode::ServerFull,
            message: "busy".into(),
        }));
        assert_eq!(decode(&e).unwrap(), Seen::Closed("busy".into()));
        assert_eq!(
            decode(&body(&ServerPacket::InfoRequest)).unwrap(),
            Seen::Other
        );
    }

    #[test]
    fn a_body_that_is_not_a_packet_is_an_error() {
        assert!(decode(b"{\"flag\": \"MESSAGE\"}").is_err());
        assert!(decode(b"not json").is_err());
    }
}
