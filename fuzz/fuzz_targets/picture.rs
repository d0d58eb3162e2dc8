//! Avatars from the network and from files the user picks: any bytes are a
//! 48x48 picture or "not a picture HubChat can read", never a panic that
//! escapes, even when a decoder inside panics (those are caught, so the
//! harness's abort-on-panic hook is replaced by a silent one; a panic that
//! escapes still aborts the run).
#![no_main]

use hubchat::common::avatar::{check_wire_picture, decode_picture, SIDE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|_| {}));
    },
    |bytes: &[u8]| {
        let whole = (SIDE * SIDE * 4) as usize;
        if let Ok(p) = check_wire_picture(bytes) {
            assert_eq!(p.rgba.len(), whole, "a wire picture that is not 48x48");
        }
        if let Ok(p) = decode_picture(bytes) {
            assert_eq!(p.rgba.len(), whole, "a picked picture not made 48x48");
        }
    }
);
