//! Reading whole frames from a byte stream, however TCP splits them.
//!
//! [`FrameReader`] wraps one socket's reading half (anything `Read`) with a
//! buffer. `read_frame` loops "take a frame from what is buffered, else read
//! more", so a frame that arrives a byte at a time and forty frames that
//! arrive in one segment are the same to its callers. Callers never see bytes
//! that are not a whole body.
//!
//! The buffer grows with the bytes that have arrived, never to the size a
//! header announces: a header is a promise anyone can make for free, and a
//! server that believed 8,000 of them once held 7.7 GB for 135 KB received.
//! On a socket, [`FrameReader::read_frame_by`] also keeps time: a frame that
//! has started must finish within the frame deadline, and the caller may
//! give an absolute deadline for the next frame (the handshake's).

use std::fmt;
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::frame::{self, Check, FrameError, HEADER_LEN};

/// The buffer a reader starts with. Small, because a server holds thousands
/// of readers and most packets are short; it grows for large ones.
const INITIAL_BUFFER: usize = 1024;
/// A reader whose buffer grew past this returns to `INITIAL_BUFFER` once it
/// is empty, so one large avatar does not pin memory for the session.
const KEEP_BUFFER: usize = 64 * 1024;
/// While reads keep filling the buffer (a burst of messages), it grows up
/// to this, so a burst is read in few calls; once a read leaves room (the
/// burst is over) and the buffer is empty, it is back to `INITIAL_BUFFER`.
const BULK_BUFFER: usize = 16 * 1024;
/// How far past its deadline a timed read may wake: the read timeout set
/// on the stream is only changed when it would overshoot by more, so a
/// frame arriving in many reads costs no system call per read to re-arm.
const SLACK: Duration = Duration::from_millis(100);
/// How long a timed reader without a frame time keeps a large buffer
/// while nothing arrives (see [`FrameReader::read_frame_by`]).
const IDLE_RELEASE: Duration = Duration::from_secs(30);

/// Why no frame could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed (reset, timed out, ...).
    Io(io::Error),
    /// The header cannot start a valid frame.
    Frame(FrameError),
    /// The stream ended in the middle of a frame.
    Truncated { buffered: usize },
    /// A frame started but did not finish within the frame deadline.
    Stalled { buffered: usize, limit: Duration },
    /// The caller's deadline passed before a whole frame arrived.
    Deadline,
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
            ReadError::Stalled { buffered, limit } => write!(
                f,
                "a packet did not finish arriving within {} seconds ({buffered} bytes of it arrived)",
                limit.as_secs_f64()
            ),
            ReadError::Deadline => write!(f, "no whole packet arrived in time"),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<FrameError> for ReadError {
    fn from(e: FrameError) -> Self {
        ReadError::Frame(e)
    }
}

/// A stream whose reads can be given a timeout: what lets a reader keep
/// deadlines that span many reads, where a plain read timeout restarts with
/// every byte.
pub trait ReadTimeout {
    /// As [`TcpStream::set_read_timeout`]; `None` waits for ever.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl ReadTimeout for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

impl ReadTimeout for SharedStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_read_timeout(timeout)
    }
}

/// Which deadline a read waits for, so that running out of time is
/// reported as the right error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Forever,
    Frame(Instant),
    Caller(Instant),
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
    /// How long a started frame may take to finish ([`Self::read_frame_by`]).
    frame_time: Option<Duration>,
    /// When the first buffered byte of the frame being read arrived (or no
    /// earlier than that): the frame deadline counts from here.
    began: Instant,
    /// When the last read returned bytes.
    last_read: Instant,
    /// The read timeout last set on the stream, to skip setting it again.
    timeout_set: Option<Duration>,
    /// The last read filled all the room there was: more is likely waiting.
    filled: bool,
    /// Reading with timeouts ([`Self::read_frame_by`]): a large buffer is
    /// then kept between frames until the stream goes quiet (a file's
    /// chunks come back to back), and handed back when a read between
    /// frames times out.
    timed: bool,
    /// A read between frames timed out: the stream is quiet.
    quiet: bool,
}

impl<R: Read> FrameReader<R> {
    /// A reader that refuses bodies longer than `max_body` bytes.
    pub fn new(inner: R, max_body: usize) -> Self {
        let now = Instant::now();
        FrameReader {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_body,
            frame_time: None,
            began: now,
            last_read: now,
            timeout_set: None,
            filled: false,
            timed: false,
            quiet: false,
        }
    }

    /// The wrapped stream, e.g. to change its timeouts.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Changes the largest body accepted from the next frame on: a server
    /// accepts only small frames until a client has introduced itself.
    pub fn set_max_body(&mut self, max_body: usize) {
        self.max_body = max_body;
    }

    /// Gives every frame that has started `limit` to finish, in
    /// [`Self::read_frame_by`]; `None` lets a frame take for ever.
    pub fn set_frame_time(&mut self, limit: Option<Duration>) {
        self.frame_time = limit;
    }

    /// How many bytes have arrived beyond the frames read so far.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Whether a whole frame (or a header that can never start one) is
    /// buffered: then the next read returns without waiting.
    pub fn frame_ready(&self) -> bool {
        !matches!(
            frame::check(&self.buf[self.start..self.end], self.max_body),
            Ok(Check::Incomplete { .. })
        )
    }

    /// How many bytes the reader's buffer holds, used or not: what this
    /// reader costs in memory.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Reads the next frame's body.
    ///
    /// `Ok(None)` is a clean end of stream between frames. The returned body
    /// borrows the reader's buffer until the next call.
    pub fn read_frame(&mut self) -> Result<Option<&[u8]>, ReadError> {
        self.read_with(false, |_, _| Ok(()))
    }

    /// Takes a whole frame out of the buffer if one is there; otherwise
    /// says how many bytes the frame needs in all.
    fn take(&mut self) -> Result<Result<(usize, usize), usize>, FrameError> {
        match frame::check(&self.buf[self.start..self.end], self.max_body)? {
            Check::Complete { body_len } => {
                let body_start = self.start + HEADER_LEN;
                self.start = body_start + body_len;
                // What is left began arriving by the last read at the latest.
                self.began = self.last_read;
                Ok(Ok((body_start, self.start)))
            }
            Check::Incomplete { needed } => Ok(Err(needed)),
        }
    }

    /// The loop behind both read methods: `before_read` is told how many
    /// bytes of the frame are buffered, and may refuse to read. When `timed`,
    /// the timeouts are the reader's own: one that expires goes back to
    /// `before_read`, which names the deadline that passed.
    fn read_with(
        &mut self,
        timed: bool,
        mut before_read: impl FnMut(&mut Self, usize) -> Result<(), ReadError>,
    ) -> Result<Option<&[u8]>, ReadError> {
        self.timed = timed;
        loop {
            let needed = match self.take()? {
                Ok((body_start, body_end)) => return Ok(Some(&self.buf[body_start..body_end])),
                Err(needed) => needed,
            };
            self.make_room(needed);
            let buffered = self.end - self.start;
            before_read(self, buffered)?;
            let room = self.buf.len() - self.end;
            let n = match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.filled = n == room;
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if timed && is_timeout(&e) => {
                    self.quiet |= buffered == 0;
                    continue;
                }
                Err(e) => return Err(ReadError::Io(e)),
            };
            if n == 0 {
                return if buffered == 0 {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated { buffered })
                };
            }
            self.last_read = Instant::now();
            self.quiet = false;
            if buffered == 0 {
                self.began = self.last_read;
            }
            self.end += n;
        }
    }

    /// Makes sure there is free space after `end` to read into, growing the
    /// buffer only with what has arrived: at most doubling it, and never past
    /// what the frame being read needs (`needed` bytes in all).
    fn make_room(&mut self, needed: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // A timed reader keeps a large buffer until the stream is
            // quiet; growing it again for every chunk of a file took nine
            // reads a chunk.
            let bulk = self.timed && !self.quiet;
            if self.buf.len() > KEEP_BUFFER && needed <= INITIAL_BUFFER && !bulk {
                self.buf = Vec::new();
            } else if !self.filled
                && self.buf.len() > INITIAL_BUFFER
                && self.buf.len() <= BULK_BUFFER
                && needed <= INITIAL_BUFFER
            {
                self.buf.truncate(INITIAL_BUFFER);
                self.buf.shrink_to_fit();
            }
        }
        if self.filled && self.buf.len() < BULK_BUFFER {
            // A burst: read more of it at once.
            self.buf.resize((self.buf.len() * 2).min(BULK_BUFFER), 0);
        }
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            return;
        }
        let len = self.buf.len();
        let grown = (len * 2).clamp(INITIAL_BUFFER, needed.max(INITIAL_BUFFER));
        self.buf.resize(grown.max(len + 1), 0);
    }
}

impl<R: Read + ReadTimeout> FrameReader<R> {
    /// Reads the next frame's body as [`Self::read_frame`] does, keeping
    /// time: a frame that has started must finish within the frame time
    /// (else [`ReadError::Stalled`]), and the whole frame must arrive by
    /// `deadline` when one is given (else [`ReadError::Deadline`]). Between
    /// frames, with no deadline, the reader waits for ever: an idle
    /// connection is not a fault.
    pub fn read_frame_by(&mut self, deadline: Option<Instant>) -> Result<Option<&[u8]>, ReadError> {
        self.read_with(true, |me, buffered| me.arm(buffered, deadline))
    }

    /// Sets the stream's read timeout for the wait ahead, or reports the
    /// deadline that has already passed.
    fn arm(&mut self, buffered: usize, deadline: Option<Instant>) -> Result<(), ReadError> {
        let frame = match self.frame_time {
            Some(limit) if buffered > 0 => Wait::Frame(self.began + limit),
            _ => Wait::Forever,
        };
        // Between frames with a large buffer, wake once after a while to
        // hand it back (the frame time: the timeout already set for the
        // frame just read, so nothing changes while chunks keep coming).
        let hold = (buffered == 0 && self.buf.len() > KEEP_BUFFER)
            .then(|| self.frame_time.unwrap_or(IDLE_RELEASE));
        let wait = match (frame, deadline) {
            (Wait::Frame(f), Some(d)) if d < f => Wait::Caller(d),
            (Wait::Forever, Some(d)) => Wait::Caller(d),
            (w, _) => w,
        };
        let timeout = match wait {
            Wait::Forever => hold,
            Wait::Frame(at) | Wait::Caller(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.late(wait, buffered));
                }
                Some(left)
            }
        };
        // The stream's timeout applies to each read from its start, so one
        // set for a whole frame stays right while the frame arrives; it is
        // changed only when a read could wake too late (or much too
        // early). A timeout left from a frame, while waiting between
        // frames, costs at most one wake-up, after which it is cleared.
        let change = match (self.timeout_set, timeout) {
            (None, None) => false,
            (Some(_), None) => self.quiet,
            (None, Some(_)) => true,
            (Some(set), Some(left)) => set > left + SLACK || set < left / 2,
        };
        if change {
            self.inner
                .set_read_timeout(timeout)
                .map_err(ReadError::Io)?;
            self.timeout_set = timeout;
        }
        Ok(())
    }

    fn late(&self, wait: Wait, buffered: usize) -> ReadError {
        match (wait, self.frame_time) {
            (Wait::Frame(_), Some(limit)) => ReadError::Stalled { buffered, limit },
            _ => ReadError::Deadline,
        }
    }
}

/// Whether a read failed only because its timeout expired.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
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
    fn a_burst_is_read_in_growing_gulps_and_the_buffer_shrinks_after() {
        let body = format!("{{\"message\": \"{}\"}}", "x".repeat(130));
        let burst = frames(&vec![body.as_bytes(); 200]);
        // All of it waiting at once, as when a sender writes 200 messages.
        let mut r = reader(burst.clone(), usize::MAX);
        let mut reads_at = Vec::new();
        for _ in 0..200 {
            assert_eq!(r.read_frame().unwrap(), Some(body.as_bytes()));
            reads_at.push(r.inner.pos);
        }
        reads_at.dedup();
        assert!(
            reads_at.len() <= 6,
            "{} bytes took {} reads",
            burst.len(),
            reads_at.len()
        );
        assert!(
            r.buffer_capacity() >= BULK_BUFFER / 2,
            "it grew for the burst"
        );
        // Quiet again: a short read, and the buffer is small once more.
        r.inner.data.extend_from_slice(&frames(&[b"{}"]));
        assert_eq!(r.read_frame().unwrap(), Some(&b"{}"[..]));
        assert_eq!(r.read_frame().unwrap(), None);
        assert!(
            r.buffer_capacity() <= INITIAL_BUFFER,
            "back to its idle size"
        );
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

    #[test]
    fn a_header_announcing_a_megabyte_costs_only_the_bytes_that_arrived() {
        let mut data = b"1000000   ".to_vec();
        data.extend_from_slice(&[b'x'; 3000]);
        let mut r = reader(data, 100);
        assert!(matches!(
            r.read_frame(),
            Err(ReadError::Truncated { buffered: 3010 })
        ));
        assert!(
            r.buffer_capacity() <= 8 * 1024,
            "holds {} bytes for 3,010 received",
            r.buffer_capacity()
        );
    }

    #[test]
    fn a_smaller_limit_applies_from_the_next_frame() {
        let mut r = reader(frames(&[&[b'a'; 100], &[b'b'; 100]]), 1000);
        r.set_max_body(50);
        assert!(matches!(
            r.read_frame(),
            Err(ReadError::Frame(FrameError::TooLarge { len: 100, max: 50 }))
        ));
        let mut r = reader(frames(&[&[b'a'; 40], &[b'b'; 100]]), 1000);
        r.set_max_body(50);
        assert_eq!(r.read_frame().unwrap(), Some(&[b'a'; 40][..]));
        r.set_max_body(1000);
        assert_eq!(r.read_frame().unwrap(), Some(&[b'b'; 100][..]));
    }

    /// A socket that counts the reads and timeout changes made on it.
    struct Counted {
        stream: std::net::TcpStream,
        reads: std::cell::Cell<usize>,
        timeouts: std::cell::Cell<usize>,
    }

    impl Read for Counted {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.reads.set(self.reads.get() + 1);
            (&self.stream).read(out)
        }
    }

    impl ReadTimeout for Counted {
        fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.timeouts.set(self.timeouts.get() + 1);
            self.stream.set_read_timeout(timeout)
        }
    }

    /// A counted reader on one end of a loopback connection; the other end.
    fn counted(frame_time: Duration) -> (FrameReader<Counted>, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let writer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let mut r = FrameReader::new(
            Counted {
                stream,
                reads: 0.into(),
                timeouts: 0.into(),
            },
            1 << 20,
        );
        r.set_frame_time(Some(frame_time));
        (r, writer)
    }

    #[test]
    fn large_frames_back_to_back_keep_the_buffer_and_the_timeout() {
        use std::io::Write;
        let (mut r, mut writer) = counted(Duration::from_secs(30));
        let chunk = vec![b'c'; 128 << 10];
        let sending = std::thread::spawn(move || {
            for _ in 0..32 {
                writer.write_all(&frame::encode(&chunk)).unwrap();
            }
            writer
        });
        for _ in 0..32 {
            assert_eq!(
                r.read_frame_by(None).unwrap().map(<[u8]>::len),
                Some(128 << 10)
            );
        }
        drop(sending.join().unwrap());
        let (reads, timeouts) = (r.inner.reads.get(), r.inner.timeouts.get());
        assert!(timeouts <= 2, "{timeouts} timeout changes for 32 frames");
        // Growing from 1 KiB again for every frame took about nine reads
        // a frame; a kept buffer takes what the socket holds.
        assert!(reads <= 32 * 4, "{reads} reads for 32 frames");
    }

    #[test]
    fn a_quiet_timed_reader_hands_its_large_buffer_back() {
        use std::io::Write;
        let (mut r, mut writer) = counted(Duration::from_millis(200));
        writer
            .write_all(&frame::encode(&vec![b'x'; 200_000]))
            .unwrap();
        assert!(r.read_frame_by(None).unwrap().is_some());
        assert!(r.buffer_capacity() >= 200_000);
        let later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            writer.write_all(&frame::encode(b"{}")).unwrap();
            writer
        });
        // Nothing for a while: the reader wakes once, lets the buffer go,
        // and waits on.
        assert_eq!(r.read_frame_by(None).unwrap(), Some(&b"{}"[..]));
        assert!(
            r.buffer_capacity() <= INITIAL_BUFFER,
            "still holds {} bytes",
            r.buffer_capacity()
        );
        drop(later.join().unwrap());
    }
}
