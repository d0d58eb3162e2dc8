//! The wire format's framing, and nothing else.
//!
//! Every packet on the wire is a 10-byte header holding the body's length in
//! ASCII decimal, left-aligned and padded with spaces, followed by that many
//! bytes of JSON. This module turns bytes into frame bodies and back; what the
//! JSON means is [`crate::common::packet`]'s business.
//!
//! Parsing is two-phase, as in mini-redis: [`check`] looks at a borrowed
//! buffer and says whether a whole frame is there. "Not yet" is an answer, not
//! an error: it means "read more". A header that can never become a valid frame
//! is an error at once, so a peer cannot make us wait for 10 GB that we would
//! refuse anyway.

use std::fmt;

/// Length of the fixed header in front of every body.
pub const HEADER_LEN: usize = 10;

/// The default cap on a body's length: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Why a header cannot start a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header is not a decimal number padded with spaces.
    BadHeader { header: String },
    /// The header announces an empty body, which no packet can have.
    ZeroLength,
    /// The header announces a body longer than the receiver accepts.
    TooLarge { len: u64, max: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadHeader { header } => {
                write!(f, "packet header {header:?} is not a length in digits")
            }
            FrameError::ZeroLength => write!(f, "packet header announces an empty packet"),
            FrameError::TooLarge { len, max } => {
                write!(
                    f,
                    "packet of {len} bytes is larger than the limit of {max} bytes"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// What [`check`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// More bytes are needed; `needed` is the total the frame will take once
    /// the header is known, or just the header length before that.
    Incomplete { needed: usize },
    /// A whole frame: its body is `buf[HEADER_LEN..HEADER_LEN + body_len]`.
    Complete { body_len: usize },
}

/// Decides whether `buf` starts with a whole frame, without copying.
pub fn check(buf: &[u8], max_body: usize) -> Result<Check, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(Check::Incomplete { needed: HEADER_LEN });
    }
    let body_len = parse_header(&buf[..HEADER_LEN], max_body)?;
    let needed = HEADER_LEN + body_len;
    if buf.len() < needed {
        Ok(Check::Incomplete { needed })
    } else {
        Ok(Check::Complete { body_len })
    }
}

/// Reads the body length from a 10-byte header.
///
/// The original pads on the right; we also accept padding on the left, since
/// trimming costs nothing and some ports of it did that.
pub fn parse_header(header: &[u8], max_body: usize) -> Result<usize, FrameError> {
    let digits = header.trim_ascii_start().trim_ascii_end();
    let bad = || FrameError::BadHeader {
        header: String::from_utf8_lossy(header).into_owned(),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    // Ten digits always fit in a u64.
    let len: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    if len == 0 {
        return Err(FrameError::ZeroLength);
    }
    if len > max_body as u64 {
        return Err(FrameError::TooLarge { len, max: max_body });
    }
    Ok(len as usize)
}

/// Writes the header for a body of `body_len` bytes into `out`.
///
/// Panics only if `body_len` has more than ten digits, which no caller can
/// produce: bodies are capped far below that.
pub fn write_header(out: &mut [u8; HEADER_LEN], body_len: usize) {
    let digits = body_len.to_string();
    assert!(
        digits.len() <= HEADER_LEN,
        "body of {body_len} bytes cannot be framed"
    );
    out.fill(b' ');
    out[..digits.len()].copy_from_slice(digits.as_bytes());
}

/// Frames a body that is written straight after a reserved header.
///
/// `buf` must hold `HEADER_LEN` placeholder bytes followed by the body; this
/// fills in the header. Serialising into the same buffer saves a copy and lets
/// a frame go out in one write.
pub fn seal(buf: &mut [u8]) {
    let body_len = buf.len() - HEADER_LEN;
    let header: &mut [u8; HEADER_LEN] = (&mut buf[..HEADER_LEN])
        .try_into()
        .expect("slice has header length");
    write_header(header, body_len);
}

/// Frames `body` into a new buffer: header then body.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + body.len());
    buf.extend_from_slice(&[b' '; HEADER_LEN]);
    buf.extend_from_slice(body);
    seal(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_left_aligned_and_space_padded() {
        assert_eq!(encode(b"{}"), b"2         {}");
    }

    #[test]
    fn a_short_buffer_asks_for_the_header_first() {
        assert_eq!(check(b"12", 100), Ok(Check::Incomplete { needed: 10 }));
    }

    #[test]
    fn a_known_header_asks_for_the_whole_frame() {
        assert_eq!(
            check(b"5         ab", 100),
            Ok(Check::Incomplete { needed: 15 })
        );
        assert_eq!(
            check(b"5         abcdeXYZ", 100),
            Ok(Check::Complete { body_len: 5 })
        );
    }

    #[test]
    fn padding_on_either_side_is_accepted() {
        assert_eq!(parse_header(b"      1234", 10_000), Ok(1234));
        assert_eq!(parse_header(b"  77      ", 10_000), Ok(77));
    }

    #[test]
    fn headers_that_are_not_digits_are_refused() {
        for header in [
            &b"abc       "[..],
            b"12 3      ",
            b"-5        ",
            b"          ",
            b"0x10      ",
        ] {
            assert!(
                matches!(parse_header(header, 100), Err(FrameError::BadHeader { .. })),
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn zero_and_oversized_lengths_are_refused_before_any_body_is_read() {
        assert_eq!(
            parse_header(b"0         ", 100),
            Err(FrameError::ZeroLength)
        );
        assert_eq!(
            check(b"9999999999", DEFAULT_MAX_BODY),
            Err(FrameError::TooLarge {
                len: 9_999_999_999,
                max: DEFAULT_MAX_BODY
            })
        );
    }
}
