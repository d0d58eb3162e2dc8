//! The server's handshake with a joining client, packet in, action out:
//! whatever a client sends (as frames, or as INFO packets of every kind)
//! and however the TLS upgrade and the password check turn out, it never
//! panics, never lets anybody in past the owner's policy or the password,
//! never asks for a password in plain, and decides nothing after the end.
//! The script's format and the rules are in `fuzz/drivers/handshake.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../drivers/handshake.rs"]
mod driver;

fuzz_target!(|script: &[u8]| driver::run(script));
