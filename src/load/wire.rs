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

use serde::de::{Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
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

/// A packet read in one pass: servers write the flag before the data, so
/// the data is decoded as what the flag says while it is read (a 10,000
/// client roster is 850 kB: reading it twice cost the tool as much as the
/// server). Data before its flag is kept raw and decoded after.
struct OnePass<'a>(Seen<'a>);

impl<'de> Deserialize<'de> for OnePass<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PacketVisitor;
        impl<'de> Visitor<'de> for PacketVisitor {
            type Value = OnePass<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a packet with a flag and data")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OnePass<'de>, A::Error> {
                let mut flag: Option<Cow<'de, str>> = None;
                let mut early: Option<&'de RawValue> = None;
                let mut seen = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match (key.as_ref(), flag.as_deref()) {
                        ("flag", _) => flag = Some(map.next_value()?),
                        ("data", Some(flag)) => seen = Some(data(flag, &mut map)?),
                        ("data", None) => early = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let flag = flag.ok_or_else(|| A::Error::missing_field("flag"))?;
                match (seen, early) {
                    (Some(seen), _) => Ok(OnePass(seen)),
                    (None, Some(raw)) => from_raw(&flag, raw.get())
                        .map(OnePass)
                        .map_err(A::Error::custom),
                    (None, None) => Err(A::Error::missing_field("data")),
                }
            }
        }
        deserializer.deserialize_map(PacketVisitor)
    }
}

/// The data of a packet with `flag`, read from `map` as what it is.
fn data<'de, A: MapAccess<'de>>(flag: &str, map: &mut A) -> Result<Seen<'de>, A::Error> {
    Ok(match flag {
        "ALL CLIENTS" => Seen::Roster(map.next_value::<Ids>()?.0),
        "MESSAGE" => Seen::Message(map.next_value::<Text>()?.message),
        "DISCONNECT" => Seen::Departure(map.next_value()?),
        "SERVER CLOSE" | "ERROR" => Seen::Closed(map.next_value::<Text>()?.message),
        _ => {
            map.next_value::<IgnoredAny>()?;
            Seen::Other
        }
    })
}

/// The data of a packet with `flag`, from its raw JSON.
fn from_raw<'a>(flag: &str, data: &'a str) -> Result<Seen<'a>, serde_json::Error> {
    Ok(match flag {
        "ALL CLIENTS" => Seen::Roster(serde_json::from_str::<Ids>(data)?.0),
        "MESSAGE" => Seen::Message(serde_json::from_str::<Text>(data)?.message),
        "DISCONNECT" => Seen::Departure(serde_json::from_str(data)?),
        "SERVER CLOSE" | "ERROR" => Seen::Closed(serde_json::from_str::<Text>(data)?.message),
        _ => Seen::Other,
    })
}

/// Decodes one frame body.
pub fn decode(body: &[u8]) -> Result<Seen<'_>, serde_json::Error> {
    Ok(serde_json::from_slice::<OnePass>(body)?.0)
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
            files: false,
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
    fn data_before_its_flag_and_fields_unknown_are_read_too() {
        let body = br#"{"data": {"client4": {"name": "ann", "color": "red"}}, "extra": [1, {"a": 2}], "flag": "ALL CLIENTS"}"#;
        assert_eq!(
            decode(body).unwrap(),
            Seen::Roster(vec![("client4".into(), "ann".into())])
        );
        let body = br#"{"flag": "MESSAGE", "extra": null, "data": {"message": "hi\n", "partner_name": "client1"}}"#;
        assert_eq!(decode(body).unwrap(), Seen::Message("hi\n".into()));
    }

    #[test]
    fn a_body_that_is_not_a_packet_is_an_error() {
        assert!(decode(b"{\"flag\": \"MESSAGE\"}").is_err());
        assert!(decode(b"not json").is_err());
    }
}
