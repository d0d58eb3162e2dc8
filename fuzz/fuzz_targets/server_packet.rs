//! What a client reads from any server (a server can be anyone's): any
//! frame body decodes to a packet or an error, never a panic, and a packet
//! that decodes says the same thing when encoded again.
#![no_main]

use hubchat::common::frame::HEADER_LEN;
use hubchat::common::packet::ServerPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(packet) = ServerPacket::decode(body) {
        let again = ServerPacket::decode(&packet.encode()[HEADER_LEN..]);
        assert_eq!(
            again.as_ref(),
            Ok(&packet),
            "re-encoding changed the packet"
        );
    }
});
