//! A byte stream cut into frames: whatever arrives, the reader yields
//! bodies no longer than its limit and stops with an error, never a panic,
//! and never holds more than the bytes that arrived plus one read.
#![no_main]

use std::io::Cursor;

use hubchat::common::connection::FrameReader;
use libfuzzer_sys::fuzz_target;

const MAX_BODY: usize = 4096;

fuzz_target!(|stream: &[u8]| {
    let mut reader = FrameReader::new(Cursor::new(stream), MAX_BODY);
    let mut seen = 0;
    while let Ok(Some(body)) = reader.read_frame() {
        assert!(body.len() <= MAX_BODY, "a body over the limit");
        seen += body.len();
        assert!(seen <= stream.len(), "more bytes out than in");
    }
});
