//! A minimal telnet client (RFC 854) for router consoles: plain TCP, the
//! option negotiation answered and stripped, and every wait bounded by
//! the scrape's deadline.
//!
//! [`Parser`] is the pure part: bytes from the router in, clean text and
//! the replies to send out. It keeps its state between calls, so a
//! sequence split anywhere across reads parses the same.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Deadline, ScrapeError};

/// The most clean text held while waiting for a prompt: a router's
/// console answers are a few KiB.
pub const MAX_TEXT: usize = 1 << 20;
/// A subnegotiation longer than this is not one: the parser goes back to
/// reading text rather than swallowing the session.
const MAX_SUBNEGOTIATION: usize = 4096;

pub const IAC: u8 = 255;
pub const DONT: u8 = 254;
pub const DO: u8 = 253;
pub const WONT: u8 = 252;
pub const WILL: u8 = 251;
pub const SB: u8 = 250;
pub const SE: u8 = 240;
/// Suppress Go Ahead: the one option accepted, so a single key (the
/// pager's space) goes through without a line end.
pub const SGA: u8 = 3;
const CR: u8 = b'\r';
const LF: u8 = b'\n';

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Data,
    /// After a CR: LF makes a line end, NUL a bare carriage return.
    Cr,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes next.
    Verb(u8),
    /// Inside IAC SB … IAC SE, skipped.
    Sub,
    /// IAC inside a subnegotiation: SE ends it.
    SubIac,
}

/// The telnet stream parser: data bytes become text (`\n` for CR LF, `\r`
/// for CR NUL, one 0xFF for IAC IAC), commands are dropped, and option
/// requests are answered. Every option but SGA is refused, as Python's
/// telnetlib (which the public DrayTek clients use) refuses them all:
/// DO → WONT, WILL → DONT. Each option is answered once, so a router
/// that repeats a request cannot start a loop.
#[derive(Clone, Debug, Default)]
pub struct Parser {
    state: State,
    sub_len: usize,
    /// Options whose WILL (bit set) or DO has been answered.
    answered_will: [u8; 32],
    answered_do: [u8; 32],
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `input`, appending its text to `text` and the negotiation
    /// answers to `replies`.
    pub fn feed(&mut self, input: &[u8], text: &mut Vec<u8>, replies: &mut Vec<u8>) {
        for &b in input {
            self.state = match self.state {
                State::Data => match b {
                    IAC => State::Iac,
                    CR => State::Cr,
                    _ => {
                        text.push(b);
                        State::Data
                    }
                },
                State::Cr => match b {
                    LF => {
                        text.push(LF);
                        State::Data
                    }
                    0 => {
                        text.push(CR);
                        State::Data
                    }
                    CR => {
                        text.push(CR);
                        State::Cr
                    }
                    IAC => {
                        text.push(CR);
                        State::Iac
                    }
                    _ => {
                        // A bare CR (not RFC 854, but seen): keep both.
                        text.extend_from_slice(&[CR, b]);
                        State::Data
                    }
                },
                State::Iac => match b {
                    IAC => {
                        text.push(IAC);
                        State::Data
                    }
                    WILL | WONT | DO | DONT => State::Verb(b),
                    SB => {
                        self.sub_len = 0;
                        State::Sub
                    }
                    // NOP, GA, DM, AYT, a stray SE…: nothing to show.
                    _ => State::Data,
                },
                State::Verb(verb) => {
                    self.answer(verb, b, replies);
                    State::Data
                }
                State::Sub | State::SubIac if self.sub_len >= MAX_SUBNEGOTIATION => State::Data,
                State::Sub => {
                    self.sub_len += 1;
                    if b == IAC { State::SubIac } else { State::Sub }
                }
                State::SubIac => {
                    self.sub_len += 1;
                    if b == SE { State::Data } else { State::Sub }
                }
            };
        }
    }

    fn answer(&mut self, verb: u8, option: u8, replies: &mut Vec<u8>) {
        let (answered, reply) = match verb {
            WILL => (
                &mut self.answered_will,
                if option == SGA { DO } else { DONT },
            ),
            DO => (
                &mut self.answered_do,
                if option == SGA { WILL } else { WONT },
            ),
            // WONT/DONT: every option is off here already (SGA is harmless
            // either way), so there is nothing to confirm.
            _ => return,
        };
        let (byte, bit) = (usize::from(option / 8), 1u8 << (option % 8));
        if answered[byte] & bit == 0 {
            answered[byte] |= bit;
            replies.extend_from_slice(&[IAC, reply, option]);
        }
    }
}

/// `bytes` as telnet data: a 0xFF byte doubled.
pub fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    for &b in bytes {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

/// What [`Telnet::expect`] waits for.
#[derive(Clone, Copy, Debug)]
pub enum Pattern<'a> {
    /// This text anywhere in what arrived (the pager's marker).
    Anywhere(&'a str),
    /// The line being typed into ends with this text, ASCII case and
    /// trailing blanks ignored: `Password:`.
    LineEnd(&'a str),
    /// A command prompt on the line being typed into: a name and `> `
    /// (`DrayTek> `, `Vigor> `).
    Prompt,
}

/// The longest line a login or command prompt is looked for in: prompts
/// are short, and a bound keeps each look at the end of the text cheap.
const MAX_PROMPT_LINE: usize = 512;

/// Where `pattern` matches in `text`: (start, end) of the match, the end
/// being where consumption stops.
pub fn find(text: &[u8], pattern: Pattern) -> Option<(usize, usize)> {
    let line = || {
        let tail = text.len().saturating_sub(MAX_PROMPT_LINE);
        match text[tail..].iter().rposition(|&b| b == LF || b == CR) {
            Some(i) => Some(tail + i + 1),
            None => (tail == 0).then_some(0),
        }
        .map(|start| (start, &text[start..]))
    };
    match pattern {
        Pattern::Anywhere(needle) => {
            let needle = needle.as_bytes();
            if needle.is_empty() {
                return None;
            }
            text.windows(needle.len())
                .position(|w| w == needle)
                .map(|at| (at, at + needle.len()))
        }
        Pattern::LineEnd(end) => {
            let (start, line) = line()?;
            let trimmed = line.trim_ascii_end();
            let end = end.as_bytes();
            (trimmed.len() >= end.len()
                && trimmed[trimmed.len() - end.len()..].eq_ignore_ascii_case(end))
            .then_some((start, text.len()))
        }
        Pattern::Prompt => {
            let (start, line) = line()?;
            let trimmed = line.trim_ascii();
            let name = trimmed.strip_suffix(b">")?;
            let is_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            // The prompt waits after "> ": a '>' ending output text is not one.
            let blank_after = line.len() > line.trim_ascii_end().len();
            (is_name && blank_after).then_some((start, text.len()))
        }
    }
}

/// What [`Telnet::expect`] saw.
#[derive(Debug)]
pub struct Found {
    /// Which pattern matched; None when the router closed the connection.
    pub pattern: Option<usize>,
    /// The text before the match (everything, when closed).
    pub before: Vec<u8>,
}

/// A telnet connection to a router.
pub struct Telnet {
    stream: TcpStream,
    parser: Parser,
    /// Clean text received and not yet consumed.
    text: Vec<u8>,
    /// How much of `text` was searched without a match, so each read
    /// searches only what is new.
    searched: usize,
    peer: String,
}

impl Telnet {
    /// Connects (resolving a name first), within the deadline.
    pub fn connect(host: &str, port: u16, deadline: Deadline) -> Result<Self, ScrapeError> {
        let stream = crate::net::connect(host, port, deadline)?;
        let _ = stream.set_nodelay(true);
        Ok(Telnet {
            stream,
            parser: Parser::new(),
            text: Vec::new(),
            searched: 0,
            peer: format!("{host}:{port}"),
        })
    }

    /// Sends `line` and a line end (CR LF).
    pub fn send_line(&mut self, line: &[u8], deadline: Deadline) -> Result<(), ScrapeError> {
        let mut bytes = escape(line);
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes, deadline)
    }

    /// Sends `bytes` as they are (escaped), e.g. one key.
    pub fn send(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), ScrapeError> {
        self.write(&escape(bytes), deadline)
    }

    fn write(&mut self, mut bytes: &[u8], deadline: Deadline) -> Result<(), ScrapeError> {
        while !bytes.is_empty() {
            let left = deadline.remaining("write")?;
            self.stream
                .set_write_timeout(Some(left))
                .map_err(|e| ScrapeError::Local(format!("socket option: {e}")))?;
            match self.stream.write(bytes) {
                Ok(0) => return Err(self.broken("the connection closed while sending")),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ScrapeError::Timeout(format!(
                        "write: {} took nothing within the time limit",
                        self.peer
                    )));
                }
                Err(e) => return Err(self.broken(&format!("sending failed: {e}"))),
            }
        }
        Ok(())
    }

    fn broken(&self, what: &str) -> ScrapeError {
        ScrapeError::Connect(format!("{}: {what}", self.peer))
    }

    /// Reads until one of `patterns` matches (the first in the list wins
    /// when several do) or the router closes the connection; consumes the
    /// text through the match. `waiting_for` names it in a timeout.
    pub fn expect(
        &mut self,
        patterns: &[Pattern],
        waiting_for: &str,
        deadline: Deadline,
    ) -> Result<Found, ScrapeError> {
        let mut buf = [0u8; 4096];
        loop {
            // Text already searched is searched again only as far back as
            // a needle (a few dozen bytes) could reach into it.
            let from = self.searched.saturating_sub(64);
            let matched = patterns.iter().enumerate().find_map(|(i, &p)| {
                let m = match p {
                    Pattern::Anywhere(_) => {
                        find(&self.text[from..], p).map(|(s, e)| (s + from, e + from))
                    }
                    _ => find(&self.text, p),
                };
                m.map(|m| (i, m))
            });
            self.searched = self.text.len();
            if let Some((i, (start, end))) = matched {
                let before = self.text[..start].to_vec();
                self.text.drain(..end);
                self.searched = 0;
                return Ok(Found {
                    pattern: Some(i),
                    before,
                });
            }
            if self.text.len() > MAX_TEXT {
                return Err(ScrapeError::Protocol(format!(
                    "{} sent over {} KiB without {waiting_for}: is this a DrayTek's telnet console?",
                    self.peer,
                    MAX_TEXT >> 10
                )));
            }
            let timeout = || {
                ScrapeError::Timeout(format!(
                    "read: {} did not send {waiting_for} within the time limit",
                    self.peer
                ))
            };
            let left = deadline.remaining("read").map_err(|_| timeout())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(|e| ScrapeError::Local(format!("socket option: {e}")))?;
            let n = match self.stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(timeout());
                }
                // A reset after the router said goodbye reads as a close.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(self.broken(&format!("reading failed: {e}"))),
            };
            if n == 0 {
                self.searched = 0;
                return Ok(Found {
                    pattern: None,
                    before: std::mem::take(&mut self.text),
                });
            }
            let mut replies = Vec::new();
            self.parser.feed(&buf[..n], &mut self.text, &mut replies);
            if !replies.is_empty() {
                self.write(&replies, deadline)?;
            }
        }
    }

    /// Says `line` (e.g. `exit`) without waiting for anything, briefly
    /// even when the scrape's time is up; for ending a session.
    pub fn say_goodbye(&mut self, line: &[u8]) {
        let _ = self
            .stream
            .set_write_timeout(Some(Duration::from_millis(200)));
        let mut bytes = escape(line);
        bytes.extend_from_slice(b"\r\n");
        let _ = self.stream.write_all(&bytes);
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut text, mut replies) = (Vec::new(), Vec::new());
        Parser::new().feed(input, &mut text, &mut replies);
        (text, replies)
    }

    #[test]
    fn negotiation_is_answered_and_stripped() {
        // What a telnetd sends at connect: WILL ECHO, WILL SGA, DO TTYPE, DO NAWS.
        let (text, replies) =
            parse(b"\xff\xfb\x01\xff\xfb\x03\xff\xfd\x18\xff\xfd\x1f\r\nAccount:");
        assert_eq!(text, b"\nAccount:");
        assert_eq!(
            replies, b"\xff\xfe\x01\xff\xfd\x03\xff\xfc\x18\xff\xfc\x1f",
            "DONT ECHO, DO SGA, WONT TTYPE, WONT NAWS"
        );
    }

    #[test]
    fn each_option_is_answered_once_and_wont_dont_not_at_all() {
        let (text, replies) =
            parse(b"\xff\xfb\x01\xff\xfb\x01\xff\xfd\x01\xff\xfc\x01\xff\xfe\x01ok");
        assert_eq!(text, b"ok");
        assert_eq!(replies, b"\xff\xfe\x01\xff\xfc\x01");
    }

    #[test]
    fn iac_iac_is_a_literal_ff_and_other_commands_vanish() {
        // IAC NOP, IAC GA, IAC AYT, a stray IAC SE.
        let (text, replies) = parse(b"a\xff\xffb\xff\xf1c\xff\xf9d\xff\xf6e\xff\xf0f");
        assert_eq!(text, b"a\xffbcdef");
        assert!(replies.is_empty());
    }

    #[test]
    fn subnegotiation_is_skipped_with_escaped_iac_inside() {
        let (text, replies) = parse(b"x\xff\xfa\x18\x01\xff\xff\x02\xff\xf0y");
        assert_eq!(text, b"xy");
        assert!(replies.is_empty());
    }

    #[test]
    fn an_endless_subnegotiation_gives_the_stream_back() {
        let mut input = b"\xff\xfa\x18".to_vec();
        input.extend(std::iter::repeat_n(b'z', MAX_SUBNEGOTIATION + 10));
        input.extend_from_slice(b"\r\nDrayTek> ");
        let (text, _) = parse(&input);
        // What is past the limit reads as text again.
        assert_eq!(text, b"zzzzzzzzzz\nDrayTek> ");
    }

    #[test]
    fn line_ends_cr_lf_cr_nul_and_bare_cr() {
        let (text, _) = parse(b"a\r\nb\r\0c\rd\r\r\ne");
        assert_eq!(text, b"a\nb\rc\rd\r\ne");
    }

    #[test]
    fn split_anywhere_parses_the_same() {
        let input: &[u8] =
            b"\xff\xfb\x01ab\r\ncd\xff\xff\xff\xfa\x18\x01\xff\xff\xff\xf0e\r\0f\xff\xfd\x03\r";
        let whole = parse(input);
        for cut in 0..=input.len() {
            let mut parser = Parser::new();
            let (mut text, mut replies) = (Vec::new(), Vec::new());
            parser.feed(&input[..cut], &mut text, &mut replies);
            parser.feed(&input[cut..], &mut text, &mut replies);
            assert_eq!((text, replies), whole, "cut at {cut}");
        }
    }

    #[test]
    fn escape_doubles_ff() {
        assert_eq!(escape(b"a\xffb"), b"a\xff\xffb");
    }

    #[test]
    fn prompts_are_found_on_the_line_being_typed_into() {
        let prompt = |t: &[u8]| find(t, Pattern::Prompt);
        assert_eq!(
            prompt(b"\r\nType ? for command help\n\nDrayTek> "),
            Some((27, 36))
        );
        assert!(prompt(b"Vigor> ").is_some());
        assert!(prompt(b"x\nvigor-2862> ").is_some());
        assert!(prompt(b"DrayTek>").is_none(), "the prompt ends in a blank");
        assert!(prompt(b"value > ").is_none());
        assert!(prompt(b"DrayTek> vdsl status").is_none());
        assert!(prompt(b"DrayTek> \nmore").is_none());
        assert!(prompt(b"> ").is_none());

        let line_end = |t: &[u8], p| find(t, Pattern::LineEnd(p));
        assert_eq!(line_end(b"\n\nAccount:", "Account:"), Some((2, 10)));
        assert!(line_end(b"Password: ", "password:").is_some());
        assert!(line_end(b"Password: x", "Password:").is_none());
        assert!(line_end(b"Password:\r\n", "Password:").is_none());

        let mut long = vec![b'x'; MAX_PROMPT_LINE];
        long.extend_from_slice(b"DrayTek> ");
        assert!(prompt(&long).is_none(), "no prompt ends a line this long");
        let mut text = vec![b'x'; 2 * MAX_PROMPT_LINE];
        text.extend_from_slice(b"\nDrayTek> ");
        assert_eq!(prompt(&text), Some((text.len() - 9, text.len())));

        let more = b"a\n--- MORE ---   ['q': Quit";
        assert_eq!(find(more, Pattern::Anywhere("--- MORE ---")), Some((2, 14)));
        assert_eq!(find(more, Pattern::Anywhere("")), None);
    }
}
