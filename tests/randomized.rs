//! The fuzz targets' promises, checked on stable Rust in every test run:
//! random inputs (and random damage to real ones) through the same four
//! entry points the coverage-guided fuzzers drive (fuzz/fuzz_targets/):
//! the frame reader, the packet decoders, the picture checks and the
//! server's handshake. The fuzzers search far deeper, but need nightly and
//! minutes; these take a few seconds and run wherever `cargo test` does.
//!
//! A failure prints the smallest input proptest could shrink it to; add it
//! to the fuzz target's seeds (fuzz/seeds/) when fixing it.

mod support;

use std::io::{self, Read};

use hubchat::common::avatar::{self, check_wire_picture, decode_picture, SIDE};
use hubchat::common::connection::FrameReader;
use hubchat::common::frame::{self, HEADER_LEN};
use hubchat::common::packet::{ClientHello, ClientPacket, ErrorCode, Info, ServerPacket};
use hubchat::server::handshake::{Action, Handshake, Policy};
use proptest::collection::vec;
use proptest::prelude::*;

#[path = "../fuzz/drivers/handshake.rs"]
mod handshake_driver;

/// The input that made `png` panic (tests/fuzz-cases/README.md); damaged
/// copies of it keep exploring near that bug.
const PALETTE_PANIC: &[u8] = include_bytes!("fuzz-cases/png-palette-panic.png");

const MAX_BODY: usize = 4096;

/// A stream that hands out its bytes in the given chunk sizes, as a
/// socket does, so frames arrive split anywhere.
struct Trickle {
    bytes: Vec<u8>,
    pos: usize,
    chunks: Vec<usize>,
    next: usize,
}

impl Read for Trickle {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let chunk = self.chunks.get(self.next).copied().unwrap_or(usize::MAX);
        self.next += 1;
        let n = chunk.max(1).min(out.len()).min(self.bytes.len() - self.pos);
        out[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Some bytes with a few of them overwritten, cut short or lengthened.
fn damaged(original: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let edits = vec((any::<prop::sample::Index>(), any::<u8>()), 1..8);
    (edits, any::<prop::sample::Index>(), any::<bool>()).prop_map(move |(edits, cut, cut_it)| {
        let mut bytes = original.to_vec();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if cut_it {
            bytes.truncate(cut.index(bytes.len()));
        }
        bytes
    })
}

/// Recomputes every chunk's CRC-32 after damage, so a PNG decoder reads
/// the damaged data instead of stopping at the first checksum.
fn fix_png_crcs(png: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e + 4 <= png.len()) else {
            return;
        };
        let crc = support::crc32(&png[at + 4..end]);
        png[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn info() -> impl Strategy<Value = Info> {
    let hello = (
        0u32..4,
        prop::option::of(text()),
        any::<bool>(),
        prop::option::of(text()),
    )
        .prop_map(|(version, image_name, tls, password)| ClientHello {
            version,
            image_name,
            tls,
            password,
        });
    (text(), text(), text(), prop::option::of(hello)).prop_map(
        |(name, color, image_name, hubchat)| Info {
            name,
            color,
            image_name,
            hubchat,
        },
    )
}

/// Every packet a client can send that means something (an unknown flag
/// is read back as whatever flag it names).
fn client_packet() -> impl Strategy<Value = ClientPacket> {
    prop_oneof![
        info().prop_map(ClientPacket::Info),
        (text(), text()).prop_map(|(to, text)| ClientPacket::Message { to, text }),
        Just(ClientPacket::Disconnect),
        vec(any::<u8>(), 0..64).prop_map(|png| ClientPacket::Picture { png }),
    ]
}

/// A handshake script (fuzz/drivers/handshake.rs): a policy, then steps,
/// each a real frame of a packet or one of the driver's one-byte steps.
fn handshake_script() -> impl Strategy<Value = Vec<u8>> {
    let step = prop_oneof![
        client_packet().prop_map(|p| [vec![0], p.encode()].concat()),
        (1u8..8, any::<u8>()).prop_map(|(op, arg)| vec![op, arg]),
    ];
    (0u8..4, vec(step, 0..8)).prop_map(|(policy, steps)| [vec![policy], steps.concat()].concat())
}

fn check_frames(stream: Vec<u8>, chunks: Vec<usize>) {
    let len = stream.len();
    let trickle = Trickle {
        bytes: stream,
        pos: 0,
        chunks,
        next: 0,
    };
    let mut reader = FrameReader::new(trickle, MAX_BODY);
    let mut seen = 0;
    while let Ok(Some(body)) = reader.read_frame() {
        assert!(body.len() <= MAX_BODY, "a body over the limit");
        seen += body.len();
        assert!(seen <= len, "more bytes out than in");
    }
}

fn check_pictures(bytes: &[u8]) {
    let whole = (SIDE * SIDE * 4) as usize;
    if let Ok(p) = check_wire_picture(bytes) {
        assert_eq!(p.rgba.len(), whole, "a wire picture that is not 48x48");
    }
    if let Ok(p) = decode_picture(bytes) {
        assert_eq!(p.rgba.len(), whole, "a picked picture not made 48x48");
    }
}

/// Found by the `handshake` fuzz target: a password answer that nobody
/// asked for (here "wrong", before any INFO) ended the handshake without a
/// word, so the client's INFO that followed was never answered and it
/// waited for the handshake's deadline. Now it changes nothing. (The
/// server's thread only answers checks it was asked for; the handshake is
/// a public type and must not depend on that.)
#[test]
fn a_password_answer_nobody_asked_for_changes_nothing() {
    let policy = Policy {
        allow_original: true,
        password: false,
    };
    let mut handshake = Handshake::new(policy);
    assert_eq!(handshake.password_checked(false), Action::ReadOn);
    assert_eq!(handshake.password_checked(true), Action::ReadOn);
    let info = Info {
        name: "ann".into(),
        color: "blue".into(),
        image_name: "image_1.png".into(),
        hubchat: None,
    };
    let action = handshake.packet(ClientPacket::Info(info.clone()));
    assert_eq!(
        action,
        Action::Join {
            info,
            encrypted: false
        }
    );
    // The fuzzer's own input, through the driver and its rules.
    handshake_driver::run(include_bytes!(
        "../fuzz/seeds/handshake/unasked-password-answer"
    ));
}

/// The rules hold for the real orders of events too: a wrong password
/// after TLS is refused as wrong, a right one joins, encrypted.
#[test]
fn a_password_is_checked_inside_tls_only() {
    let policy = Policy {
        allow_original: true,
        password: true,
    };
    let hello = |password: Option<&str>| {
        ClientPacket::Info(Info {
            name: "ann".into(),
            color: "blue".into(),
            image_name: "image_1.png".into(),
            hubchat: Some(ClientHello {
                version: 2,
                image_name: None,
                tls: true,
                password: password.map(str::to_string),
            }),
        })
    };
    for right in [false, true] {
        let mut handshake = Handshake::new(policy);
        assert_eq!(handshake.packet(hello(Some("sesame"))), Action::StartTls);
        assert_eq!(handshake.encrypted(), Action::ReadOn);
        assert_eq!(
            handshake.packet(hello(Some("sesame"))),
            Action::CheckPassword("sesame".into())
        );
        match handshake.password_checked(right) {
            Action::Join { info, encrypted } => {
                assert!(right && encrypted);
                assert_eq!(info.hubchat.and_then(|h| h.password), None);
            }
            Action::Refuse(refusal) => {
                assert!(!right);
                assert_eq!(refusal.code, ErrorCode::PasswordWrong);
            }
            other => panic!("{other:?} after a password check"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// Any bytes, cut anywhere: the reader yields bodies within its limit
    /// and never more bytes than arrived; it stops with an error, never a
    /// panic.
    #[test]
    fn the_frame_reader_survives_any_stream(
        stream in vec(any::<u8>(), 0..256),
        chunks in vec(0usize..40, 0..16),
    ) {
        check_frames(stream, chunks);
    }

    /// Frames sent whole come back whole and in order, however the bytes
    /// are split on the way.
    #[test]
    fn frames_arrive_as_sent_however_split(
        bodies in vec(vec(any::<u8>(), 1..300), 1..6),
        chunks in vec(1usize..50, 0..40),
    ) {
        let stream: Vec<u8> = bodies.iter().flat_map(|b| frame::encode(b)).collect();
        let trickle = Trickle { bytes: stream, pos: 0, chunks, next: 0 };
        let mut reader = FrameReader::new(trickle, MAX_BODY);
        for body in &bodies {
            let got = reader.read_frame().expect("a whole frame").expect("not the end");
            prop_assert_eq!(got, body.as_slice());
        }
        prop_assert!(matches!(reader.read_frame(), Ok(None)), "bytes after the last frame");
    }

    /// Damaged real frames: headers with stray digits, spaces or lengths.
    #[test]
    fn the_frame_reader_survives_damaged_frames(
        stream in damaged(b"25        {\"flag\": \"DISCONNECT\"}20        {\"flag\": \"INFO\", \"d\"}"),
        chunks in vec(0usize..40, 0..16),
    ) {
        check_frames(stream, chunks);
    }

    /// Any body decodes to a packet or an error, in both directions, and a
    /// packet that decodes says the same when encoded again.
    #[test]
    fn any_body_decodes_or_is_refused(body in vec(any::<u8>(), 0..200)) {
        if let Ok(packet) = ClientPacket::decode(&body) {
            let again = ClientPacket::decode(&packet.encode()[HEADER_LEN..]);
            prop_assert_eq!(again, Ok(packet));
        }
        if let Ok(packet) = ServerPacket::decode(&body) {
            let again = ServerPacket::decode(&packet.encode()[HEADER_LEN..]);
            prop_assert_eq!(again, Ok(packet));
        }
    }

    /// Every client packet, with any text in it, survives its encoding.
    #[test]
    fn client_packets_survive_encoding(packet in client_packet()) {
        let decoded = ClientPacket::decode(&packet.encode()[HEADER_LEN..]);
        prop_assert_eq!(decoded, Ok(packet));
    }

    /// Damaged real packets decode or are refused, never panic.
    #[test]
    fn damaged_packets_decode_or_are_refused(
        body in damaged(br#"{"flag": "INFO", "data": {"name": "alice", "color": "blue", "image_name": "image_3.png", "hubchat": {"version": 2, "tls": true, "password": "x"}}}"#),
    ) {
        if let Ok(packet) = ClientPacket::decode(&body) {
            let again = ClientPacket::decode(&packet.encode()[HEADER_LEN..]);
            prop_assert_eq!(again, Ok(packet));
        }
    }

    /// The server's handshake, from random steps and from real packets in
    /// random order: the rules in fuzz/drivers/handshake.rs hold.
    #[test]
    fn the_handshake_keeps_its_rules_for_any_bytes(script in vec(any::<u8>(), 0..64)) {
        handshake_driver::run(&script);
    }

    #[test]
    fn the_handshake_keeps_its_rules_for_any_packets(script in handshake_script()) {
        handshake_driver::run(&script);
    }
}

proptest! {
    // Pictures decode slowly next to packets: fewer cases.
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Any bytes are a 48x48 picture or "not a picture HubChat can read".
    #[test]
    fn any_bytes_are_a_picture_or_refused(bytes in vec(any::<u8>(), 0..300)) {
        check_pictures(&bytes);
    }

    /// A built-in avatar with a few bytes changed and its checksums made
    /// right again, so the PNG decoder itself meets the damage.
    #[test]
    fn damaged_avatars_are_pictures_or_refused(
        number in 1u32..=25,
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut png = avatar::builtin(number).expect("a built-in avatar").png.to_vec();
        for (at, b) in edits {
            let i = at.index(png.len());
            png[i] = b;
        }
        fix_png_crcs(&mut png);
        check_pictures(&png);
    }

    /// The input that once panicked a decoder, damaged further.
    #[test]
    fn damaged_palette_panics_stay_refusals(png in damaged(PALETTE_PANIC)) {
        let mut fixed = png.clone();
        fix_png_crcs(&mut fixed);
        check_pictures(&png);
        check_pictures(&fixed);
    }
}
