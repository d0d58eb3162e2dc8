//! Reading whole frames from a byte stream, however TCP splits them.
//!
//! [`FrameReader`] wraps one socket's reading half (anything `Read`) with a
//! buffer. `read_frame` loops "take a frame from what is buffered, else read
//! more", so a frame that arrives a byte at a time and forty frames that
//! arrive in one segment are the same to its callers. Callers never see bytes
//! that are not a whole body.

use std::fmt;
use std::io::{self, Read};

use crate::common::frame::{self, Check, FrameError, HEADER_LEN};

/// The buffer a reader starts with. Small, because a server holds thousands
/// of readers and most packets are short; it grows for large ones.
const INITIAL_BUFFER: usize = 1024;
/// A reader whose buffer grew past this returns to `INITIAL_BUFFER` once it
/// is empty, so one large avatar does not pin memory for the session.
const KEEP_BUFFER: usize = 64 * 1024;

/// Why no frame could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed (reset, timed out, ...).
    Io(io::Error),
    /// The header cannot start a valid frame.
    Frame(FrameError),
    /// The stream ended in the middle of a frame.
    Truncated { buffered: usize },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Frame(e) => write!(f, "{e}"),
            ReadError::Truncated { buffered } => {
                write!(
                    f,
                    "connection ended in the middle of a packet ({buffered} bytes of it arrived)"
                )
            }
        }
    }
}

impl std::error::Error for ReadError {}

impl From<FrameError> for ReadError {
    fn from(e: FrameError) -> Self {
        ReadError::Frame(e)
    }
}

/// Reads frames from `R`, buffering what arrives beyond the current frame.
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    start: usize,
    /// End of received bytes in `buf`.
    end: usize,
    max_body: usize,
}

impl<R: Read> FrameReader<R> {
    /// A reader that refuses bodies longer than `max_body` bytes.
    pub fn new(inner: R, max_body: usize) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_body,
        }
    }

    /// The wrapped stream, e.g. to change its timeouts.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads the next frame's body.
    ///
    /// `Ok(None)` is a clean end of stream between frames. The returned body
    /// borrows the reader's buffer until the next call.
    pub fn read_frame(&mut self) -> Result<Option<&[u8]>, ReadError> {
        loop {
            match frame::check(&self.buf[self.start..self.end], self.max_body)? {
                Check::Complete { body_len } => {
                    let body_start = self.start + HEADER_LEN;
                    self.start = body_start + body_len;
                    return Ok(Some(&self.buf[body_start..self.start]));
                }
                Check::Incomplete { needed } => {
                    self.make_room(needed);
                    let n = match self.inner.read(&mut self.buf[self.end..]) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(ReadError::Io(e)),
                    };
                    if n == 0 {
                        let buffered = self.end - self.start;
                        return if buffered == 0 {
                            Ok(None)
                        } else {
                            Err(ReadError::Truncated { buffered })
                        };
                    }
                    self.end += n;
                }
            }
        }
    }

    /// Makes sure `buf[start..]` can hold `needed` bytes and that there is
    /// free space after `end` to read into.
    fn make_room(&mut self, needed: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_BUFFER && needed <= INITIAL_BUFFER {
                self.buf = Vec::new();
            }
        }
        let want = needed.max(INITIAL_BUFFER);
        if self.buf.len() - self.start < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        } else if self.end == self.buf.len() {
            // Full of partial frames that are not the one we wait for: a
            // burst of small ones. Grow to read more per call.
            let len = self.buf.len();
            self.buf.resize(len * 2, 0);
        }
    }
}

/// One socket shared by the threads that read and write it, without a
/// duplicated descriptor per thread: a server with 10,000 clients then needs
/// 10,000 open files, not 30,000. Reads and writes go through `&TcpStream`,
/// which the system allows from two threads at once.
#[derive(Debug, Clone)]
pub struct SharedStream(pub std::sync::Arc<std::net::TcpStream>);

impl std::ops::Deref for SharedStream {
    type Target = std::net::TcpStream;
    fn deref(&self) -> &std::net::TcpStream {
        &self.0
    }
}

impl Read for SharedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl io::Write for SharedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes in chunks of at most `step`.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn reader(data: Vec<u8>, step: usize) -> FrameReader<Trickle> {
        FrameReader::new(Trickle { data, pos: 0, step }, 1 << 20)
    }

    fn frames(bodies: &[&[u8]]) -> Vec<u8> {
        bodies.iter().flat_map(|b| frame::encode(b)).collect()
    }

    #[test]
    fn frames_arriving_a_byte_at_a_time_are_reassembled() {
        let mut r = reader(frames(&[b"{\"a\": 1}", b"{\"b\": 2}"]), 1);
        assert_eq!(r.read_frame().unwrap(), Some(&b"{\"a\": 1}"[..]));
        assert_eq!(r.read_frame().unwrap(), Some(&b"{\"b\": 2}"[..]));
        assert_eq!(r.read_frame().unwrap(), None);
    }

    #[test]
    fn many_frames_in_one_read_come_out_one_by_one() {
        let bodies: Vec<Vec<u8>> = (0..500)
            .map(|i| format!("{{\"n\": {i}}}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let mut r = reader(frames(&refs), usize::MAX);
        for body in &bodies {
            assert_eq!(r.read_frame().unwrap(), Some(body.as_slice()));
        }
        assert_eq!(r.read_frame().unwrap(), None);
    }

    #[test]
    fn a_frame_larger_than_the_buffer_is_read_whole() {
        let big = vec![b'x'; 200_000];
        let mut r = reader(frame::encode(&big), 7_777);
        assert_eq!(r.read_frame().unwrap(), Some(big.as_slice()));
    }

    #[test]
    fn end_of_stream_inside_a_frame_is_an_error() {
        let mut data = frame::encode(b"{\"abc\": 1}");
        data.truncate(14);
        let mut r = reader(data, 3);
        assert!(matches!(
            r.read_frame(),
            Err(ReadError::Truncated { buffered: 14 })
        ));
    }

    #[test]
    fn an_oversized_header_is_refused_without_reading_the_body() {
        let mut r = FrameReader::new(
            Trickle {
                data: b"2000      ".to_vec(),
                pos: 0,
                step: 10,
            },
            1000,
        );
        assert!(matches!(
            r.read_frame(),
            Err(ReadError::Frame(FrameError::TooLarge {
                len: 2000,
                max: 1000
            }))
        ));
    }
}
