//! The load tool's IRC side, so one run can measure an IRC server (ngIRCd)
//! with the same scenarios, stamps and counters as a HubChat server.
//!
//! Each load client registers (`NICK` + `USER`, then waits for `001`) and
//! joins one channel private to the run: the channel's member list is the
//! IRC equivalent of HubChat's roster. A client knows another once it saw
//! it in the channel's `NAMES` reply or saw it `JOIN`; it is told of a
//! departure by the `QUIT` (or `PART`) the server sends to the channel. So
//! "every client lists every other" means the same work in both protocols:
//! every join announced to everyone. Messages go as `PRIVMSG partner :text`
//! straight to the partner's nick, never through the channel; `PING` is
//! answered with `PONG`.
//!
//! Parsing is two-phase, as in [`crate::common::frame`]: [`Lines`] finds a
//! whole line in what was read (a partial line means "read more"), then
//! [`parse`] splits it into prefix, command and parameters without copying.

use std::borrow::Cow;
use std::io::{self, Read};

use super::{Heard, Inbound, Joined, Sender};

/// The longest line accepted: RFC 1459 allows 512 bytes, IRCv3 message tags
/// another 8,191; anything longer is not an IRC server talking.
const MAX_LINE: usize = 16 * 1024;

/// How much one `read` asks for: a burst of relayed messages in one call.
const READ_CHUNK: usize = 64 * 1024;

/// At most this many parameters (RFC 2812 allows 15).
const MAX_PARAMS: usize = 15;

/// One IRC line, split; every part borrows from the line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Who sent it (`nick!user@host` or a server name), if it says.
    pub prefix: Option<&'a str>,
    pub command: &'a str,
    params: [&'a str; MAX_PARAMS],
    count: usize,
}

impl<'a> Line<'a> {
    /// The parameters, the trailing one (after ` :`) included as the last.
    pub fn params(&self) -> &[&'a str] {
        &self.params[..self.count]
    }

    pub fn param(&self, i: usize) -> Option<&'a str> {
        self.params().get(i).copied()
    }

    /// The last parameter: a message's text, a numeric's sentence.
    pub fn last(&self) -> &'a str {
        self.params().last().copied().unwrap_or("")
    }

    /// The nick of the prefix (before `!`), if the line has one.
    pub fn nick(&self) -> Option<&'a str> {
        self.prefix.map(|p| p.split_once('!').map_or(p, |(n, _)| n))
    }

    /// A numeric reply's number (`001`, `433`), if the command is one.
    pub fn numeric(&self) -> Option<u16> {
        let c = self.command;
        (c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
            .then(|| c.parse().ok())
            .flatten()
    }
}

/// Splits one line (without its line end) into prefix, command and
/// parameters; `None` for an empty line. IRCv3 tags (`@...`) are skipped.
pub fn parse(line: &str) -> Option<Line<'_>> {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    if rest.starts_with('@') {
        rest = rest.split_once(' ').map_or("", |(_, r)| r);
    }
    rest = rest.trim_start_matches(' ');
    let mut prefix = None;
    if let Some(p) = rest.strip_prefix(':') {
        let (p, r) = p.split_once(' ').unwrap_or((p, ""));
        prefix = Some(p);
        rest = r.trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return None;
    }
    let mut params = [""; MAX_PARAMS];
    let mut count = 0;
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() || count == MAX_PARAMS {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params[count] = trailing;
            count += 1;
            break;
        }
        let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
        params[count] = p;
        count += 1;
        rest = r;
    }
    Some(Line {
        prefix,
        command,
        params,
        count,
    })
}

/// Reads lines from `R`, buffering what arrives beyond the current line.
pub struct Lines<R> {
    inner: R,
    buf: Box<[u8]>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl<R: Read> Lines<R> {
    pub fn new(inner: R) -> Self {
        Lines {
            inner,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next line, without its `\n` (a `\r` before it stays: [`parse`]
    /// drops it); `None` when the server closed the connection between
    /// lines.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                let line = self.start..self.start + i;
                self.start += i + 1;
                return Ok(Some(&self.buf[line]));
            }
            if unread.len() > MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the server sent a line longer than {MAX_LINE} bytes: not IRC"),
                ));
            }
            if !self.fill()? {
                return if self.start == self.end {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection in the middle of a line",
                    ))
                };
            }
        }
    }

    /// Moves the unread part to the front and reads more after it; false at
    /// the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A load client's nick: the run (this process's id) and the client's
/// index, so runs sharing a server never collide and a nick tells whose it
/// is. ngIRCd needs `MaxNickLength` above its default of 9 for these.
pub fn nick(run: u32, idx: usize) -> String {
    format!("ld{run}-{idx}")
}

/// The channel whose members are a run's roster.
pub fn channel(run: u32) -> String {
    format!("#hubchat-load-{run}")
}

/// The index of a load client of run `run` from its nick, ignoring the
/// channel-status marks (`@`, `+`, ...) a `NAMES` reply puts before it.
pub fn number(run: u32, nick: &str) -> Option<usize> {
    let nick = nick.trim_start_matches(['~', '&', '@', '%', '+', '!']);
    let rest = nick.strip_prefix("ld")?;
    let (r, idx) = rest.split_once('-')?;
    if r.parse::<u32>().ok()? != run {
        return None;
    }
    crate::common::canonical_number(idx).and_then(|n| usize::try_from(n).ok())
}

/// A message to `to` carrying `text` (a load stamp). IRC lines end in
/// `\r\n` and cannot hold a line break, so the stamp's closing newline is
/// left to the line end.
pub fn encode_message(to: &str, text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"PRIVMSG ");
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(b" :");
    out.extend_from_slice(text.trim_end_matches(['\r', '\n']).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// What a client says to leave; the server answers with `ERROR` and closes.
pub const BYE: &[u8] = b"QUIT :load run over\r\n";

/// One load client's incoming side: lines in, what the tool counts out.
pub struct Irc<R> {
    lines: Lines<R>,
    run: u32,
    /// For `PONG`, in whole writes shared with the client's writer.
    send: Sender,
}

impl<R: Read + Send + 'static> Inbound for Irc<R> {
    fn next(&mut self) -> io::Result<Heard<'_>> {
        let (run, send) = (self.run, &self.send);
        let bytes = self.lines.next_line()?.ok_or_else(closed)?;
        // Load stamps are ASCII; a line that is not UTF-8 is nothing counted.
        let Some(line) = std::str::from_utf8(bytes).ok().and_then(parse) else {
            return Ok(Heard::Other);
        };
        Ok(match line.command {
            "PRIVMSG" => Heard::Message(Cow::Borrowed(line.last())),
            "JOIN" => Heard::Listed(
                line.nick()
                    .and_then(|n| number(run, n))
                    .into_iter()
                    .collect(),
            ),
            "QUIT" | "PART" => Heard::Left(line.nick().and_then(|n| number(run, n))),
            "353" => Heard::Listed(names(run, &line)),
            "PING" => {
                pong(send, &line)?;
                Heard::Other
            }
            "ERROR" => Heard::Closed(Cow::Borrowed(line.last())),
            _ => Heard::Other,
        })
    }
}

/// The load clients a `353` (`NAMES`) reply lists.
fn names(run: u32, line: &Line) -> Vec<usize> {
    line.last()
        .split(' ')
        .filter_map(|n| number(run, n))
        .collect()
}

fn pong(send: &Sender, ping: &Line) -> io::Result<()> {
    send.send(format!("PONG :{}\r\n", ping.last()).as_bytes())
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
}

/// Registers load client `idx` of run `run`, joins the run's channel and
/// reads until the channel's member list is complete (`366`): the IRC
/// counterpart of a HubChat client receiving its first roster.
pub fn join<R: Read + Send + 'static>(
    inner: R,
    send: Sender,
    run: u32,
    idx: usize,
) -> io::Result<Joined<Irc<R>>> {
    let me = nick(run, idx);
    let room = channel(run);
    send.send(format!("NICK {me}\r\nUSER {me} 0 * :{me}\r\n").as_bytes())?;
    let mut lines = Lines::new(inner);
    let mut listed = Vec::new();
    let mut registered = false;
    loop {
        let bytes = lines.next_line()?.ok_or_else(closed)?;
        let Some(line) = std::str::from_utf8(bytes).ok().and_then(parse) else {
            continue;
        };
        match (line.command, line.numeric()) {
            ("PING", _) => pong(&send, &line)?,
            ("ERROR", _) => return Err(refused(format!("the server closed: {}", line.last()))),
            (_, Some(1)) if !registered => {
                registered = true;
                send.send(format!("JOIN {room}\r\n").as_bytes())?;
            }
            (_, Some(353)) => listed.extend(names(run, &line)),
            ("JOIN", _) => listed.extend(line.nick().and_then(|n| number(run, n))),
            (_, Some(366)) if line.param(1).is_some_and(|c| c.eq_ignore_ascii_case(&room)) => break,
            (_, Some(400..=599)) => {
                return Err(refused(format!(
                    "the server refused {me} ({} {}): {}",
                    line.command,
                    line.params()[1..line.params().len().saturating_sub(1)].join(" "),
                    line.last()
                )))
            }
            _ => {}
        }
    }
    Ok(Joined {
        id: me,
        inbound: Irc { lines, run, send },
        listed,
    })
}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_message_gives_its_sender_target_and_text() {
        let l = parse(":ld7-3!~ld7-3@127.0.0.1 PRIVMSG ld7-2 :3 41 99 x:x y\r\n").unwrap();
        assert_eq!(l.prefix, Some("ld7-3!~ld7-3@127.0.0.1"));
        assert_eq!(l.nick(), Some("ld7-3"));
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(l.params(), ["ld7-2", "3 41 99 x:x y"]);
        assert_eq!(l.last(), "3 41 99 x:x y");
        assert_eq!(l.numeric(), None);
    }

    #[test]
    fn numerics_pings_tags_and_bare_commands_split_the_same_way() {
        let l = parse(":bench.local 433 * ld7-1 :Nickname already in use").unwrap();
        assert_eq!((l.numeric(), l.nick()), (Some(433), Some("bench.local")));
        assert_eq!(l.params(), ["*", "ld7-1", "Nickname already in use"]);
        let l = parse("PING :bench.local").unwrap();
        assert_eq!(
            (l.prefix, l.command, l.last()),
            (None, "PING", "bench.local")
        );
        let l = parse("@time=2026-12-01T08:00:00Z :a!b@c QUIT").unwrap();
        assert_eq!(
            (l.nick(), l.command, l.params().len()),
            (Some("a"), "QUIT", 0)
        );
        let l = parse("ERROR :Closing connection").unwrap();
        assert_eq!(l.last(), "Closing connection");
        assert_eq!(parse(""), None);
        assert_eq!(parse("\r\n"), None);
        assert_eq!(parse(":only.a.prefix"), None);
    }

    #[test]
    fn parameters_beyond_fifteen_are_dropped_not_overrun() {
        let many = format!("CMD {}", vec!["p"; 20].join(" "));
        assert_eq!(parse(&many).unwrap().params().len(), MAX_PARAMS);
    }

    #[test]
    fn a_nick_names_its_run_and_client_and_names_marks_are_ignored() {
        assert_eq!(nick(4242, 17), "ld4242-17");
        assert_eq!(number(4242, "ld4242-17"), Some(17));
        assert_eq!(number(4242, "@ld4242-0"), Some(0));
        assert_eq!(number(4242, "+ld4242-3"), Some(3));
        assert_eq!(number(4243, "ld4242-17"), None, "another run's client");
        assert_eq!(number(4242, "ld4242-017"), None);
        assert_eq!(number(4242, "alice"), None);
        assert_eq!(number(4242, "ld4242-"), None);
    }

    #[test]
    fn a_stamp_goes_out_as_one_privmsg_line_without_its_newline() {
        let mut out = Vec::new();
        encode_message("ld1-2", "0 5 77 xx\n", &mut out);
        encode_message("ld1-3", "1 0 9 \n", &mut out);
        assert_eq!(
            out,
            b"PRIVMSG ld1-2 :0 5 77 xx\r\nPRIVMSG ld1-3 :1 0 9 \r\n".to_vec()
        );
        let back = parse("PRIVMSG ld1-2 :0 5 77 xx").unwrap();
        assert_eq!(super::super::stamp::parse(back.last()), Some((0, 5, 77)));
    }

    /// Hands out its bytes in chunks of at most `step`.
    struct Trickle(Vec<u8>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn lines_come_whole_however_the_bytes_arrive() {
        let data = b"PING :a\r\n:x PRIVMSG y :hello\r\nbare\n\r\n".to_vec();
        for step in [1, 2, 5, 100] {
            let mut lines = Lines::new(Trickle(data.clone(), step));
            let mut got = Vec::new();
            while let Some(l) = lines.next_line().unwrap() {
                got.push(String::from_utf8(l.to_vec()).unwrap());
            }
            assert_eq!(got, ["PING :a\r", ":x PRIVMSG y :hello\r", "bare", "\r"]);
        }
    }

    #[test]
    fn a_close_inside_a_line_or_an_endless_line_is_an_error() {
        let mut lines = Lines::new(Trickle(b"PING :a\r\nPRIV".to_vec(), 3));
        assert!(lines.next_line().unwrap().is_some());
        let e = lines.next_line().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut lines = Lines::new(Trickle(vec![b'x'; MAX_LINE * 3], 4096));
        let e = lines.next_line().unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
    }
}
