//! What a server reads from anybody: any frame body decodes to a packet or
//! an error, never a panic, and a packet that decodes says the same thing
//! when encoded again.
#![no_main]

use hubchat::common::frame::HEADER_LEN;
use hubchat::common::packet::ClientPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(packet) = ClientPacket::decode(body) {
        let again = ClientPacket::decode(&packet.encode()[HEADER_LEN..]);
        assert_eq!(
            again.as_ref(),
            Ok(&packet),
            "re-encoding changed the packet"
        );
    }
});
