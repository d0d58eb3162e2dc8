//! What both programs share: the wire protocol and the rules it carries.

/// A whole number written the one canonical way: ASCII digits only, no
/// sign, no leading zero. Ids and picture names on the wire use it, so
/// "client01" and "client+1" name no one.
pub(crate) fn canonical_number(digits: &str) -> Option<u64> {
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 1 || !digits.starts_with('0'));
    if canonical {
        digits.parse().ok()
    } else {
        None
    }
}

pub mod avatar;
pub mod color;
pub mod connection;
pub mod console;
pub mod desktop;
pub mod discovery;
pub mod downloads;
pub mod fdlimit;
pub mod file_packet;
pub mod filename;
pub mod frame;
pub mod incoming;
pub mod memory;
pub mod netaddr;
pub mod packet;
pub mod profile;
pub mod settings;
pub mod sqlite;
pub mod thumbnail;
pub mod tls;
pub mod transport;
