//! A small HTTP/1.1 client: plain TCP, one request per connection, every
//! wait bounded by a [`Deadline`]. The upstream slice reads routers with
//! it, the CLI asks its daemon (`serve::client`).
//!
//! Routers' web servers are small and sometimes odd, so the head is
//! parsed leniently (httparse), the body framing strictly (Content-Length,
//! chunked, or up to the close), and sizes are capped: an answer never
//! takes more than the caller's `max_body` plus [`MAX_HEAD`] of memory.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use super::{Deadline, NetError, connect};

/// The largest response head (status line and headers) accepted.
pub const MAX_HEAD: usize = 64 << 10;
/// Headers per response; routers send about ten.
const MAX_HEADERS: usize = 100;
/// A chunk-size line (size and extensions) longer than this is not HTTP.
const MAX_CHUNK_LINE: usize = 1024;

/// One request. Host, Connection: close and Content-Length are added by
/// [`send`]; a caller's own `Host` or `User-Agent` replaces the default.
#[derive(Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target: path and query, e.g. `/appGet.cgi?x=1`.
    pub path: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    pub fn get(path: &'a str) -> Self {
        Request {
            method: "GET",
            path,
            headers: Vec::new(),
            body: b"",
        }
    }

    pub fn post(path: &'a str, body: &'a [u8]) -> Self {
        Request {
            method: "POST",
            path,
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A complete answer, whatever its status: the protocol decides what a
/// 401 or 500 means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (any case); the last one if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text; routers' pages and JSON are UTF-8 (or ASCII).
    pub fn text(&self) -> Result<&str, NetError> {
        std::str::from_utf8(&self.body).map_err(|e| {
            NetError::Parse(format!(
                "the router's answer is not UTF-8 text (bad byte at offset {})",
                e.valid_up_to()
            ))
        })
    }
}

/// Sends `request` to `host` (a name, an IPv4 or an IPv6 address, with or
/// without brackets) and reads the whole answer, all before `deadline`; a
/// body over `max_body` bytes is refused.
pub fn send(
    host: &str,
    port: u16,
    request: &Request,
    max_body: usize,
    deadline: Deadline,
) -> Result<Response, NetError> {
    // Before connecting: a request that cannot be sent costs no connection.
    let bytes = encode_request(host, port, request)?;
    let stream = connect(host, port, deadline)?;
    exchange_bytes(stream, host, port, &bytes, request, max_body, deadline)
}

/// [`send`] over a connection the caller made (`host` and `port` name it
/// in the `Host` header).
pub fn exchange(
    stream: TcpStream,
    host: &str,
    port: u16,
    request: &Request,
    max_body: usize,
    deadline: Deadline,
) -> Result<Response, NetError> {
    let bytes = encode_request(host, port, request)?;
    exchange_bytes(stream, host, port, &bytes, request, max_body, deadline)
}

fn exchange_bytes(
    mut stream: TcpStream,
    host: &str,
    port: u16,
    bytes: &[u8],
    request: &Request,
    max_body: usize,
    deadline: Deadline,
) -> Result<Response, NetError> {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| format!("{host}:{port}"), |a| a.to_string());
    write_all(&mut stream, bytes, &peer, deadline)?;
    let mut input = Socket {
        stream,
        peer,
        deadline,
    };
    let head_request = request.method.eq_ignore_ascii_case("HEAD");
    read_response(&mut input, head_request, max_body)
}

/// An `http://` URL split for [`send`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path and query, `/` at least; no fragment.
    pub path: String,
}

/// Splits `http://HOST[:PORT][/PATH]`. Only plain http: these are LAN
/// routers, and TLS is not built in.
pub fn parse_url(url: &str) -> Result<Url, NetError> {
    let bad = |why: &str| NetError::Parse(format!("URL '{url}': {why}"));
    let rest = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
        _ if url.contains("://") => {
            return Err(bad("only http:// URLs are supported (no TLS)"));
        }
        _ => return Err(bad("expected http://HOST[:PORT]/PATH")),
    };
    let rest = rest.split('#').next().unwrap_or("");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if authority.contains('@') {
        // Never quote it: it would show the password.
        return Err(NetError::Parse(
            "a URL with user:password@ is not supported: set option username and option password"
                .into(),
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (ip, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("'[' without ']'"))?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("junk after ']'"))?,
            ),
        };
        (ip, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
    };
    let bracketed = authority.starts_with('[');
    let host_ok = bracketed
        || (!host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !host_ok {
        return Err(bad(
            "no valid host name or address (IPv6 addresses go in brackets)",
        ));
    }
    if !is_request_target(path) {
        return Err(bad("the path holds spaces or control characters"));
    }
    let path = match path.as_bytes().first() {
        None => "/".to_owned(),
        Some(b'?') => format!("/{path}"),
        Some(_) => path.to_owned(),
    };
    Ok(Url {
        host: host.to_owned(),
        port,
        path,
    })
}

/// Reads one response from `bytes`, as if the server wrote them and closed
/// the connection: what [`send`] does with the socket, for tests and fuzzing.
pub fn parse_response(bytes: &[u8], max_body: usize) -> Result<Response, NetError> {
    read_response(&mut Slice { rest: bytes }, false, max_body)
}

/// The request's bytes. Refuses line breaks in the target or header
/// values, which would let a router-chosen token inject headers.
fn encode_request(host: &str, port: u16, request: &Request) -> Result<Vec<u8>, NetError> {
    let Request {
        method,
        path,
        headers,
        body,
    } = request;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(NetError::Local(format!(
            "HTTP method '{method}' is not valid"
        )));
    }
    if !path.starts_with('/') || !is_request_target(path) {
        return Err(NetError::Local(
            "HTTP request path must start with '/' and hold no spaces or control characters".into(),
        ));
    }
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        match port {
            80 => head.push_str(&format!("Host: {host}\r\n")),
            _ => head.push_str(&format!("Host: {host}:{port}\r\n")),
        }
    }
    if !has("user-agent") {
        head.push_str(concat!(
            "User-Agent: netmeter/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    head.push_str("Connection: close\r\n");
    if !body.is_empty() || !matches!(*method, "GET" | "HEAD") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        let framing = ["connection", "content-length", "transfer-encoding"];
        if framing.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            continue;
        }
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !name_ok || value.contains(['\r', '\n', '\0']) {
            // The value is not quoted: it may be a session token.
            return Err(NetError::Protocol(format!(
                "cannot send header '{name}': a line break or invalid character in it"
            )));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    Ok(bytes)
}

/// Visible ASCII and UTF-8 bytes only: no spaces, no controls.
fn is_request_target(path: &str) -> bool {
    path.bytes().all(|b| b > b' ' && b != 0x7f)
}

fn write_all(
    stream: &mut TcpStream,
    mut bytes: &[u8],
    peer: &str,
    deadline: Deadline,
) -> Result<(), NetError> {
    while !bytes.is_empty() {
        let left = deadline.remaining("write")?;
        stream
            .set_write_timeout(Some(left))
            .map_err(|e| NetError::Local(format!("socket option: {e}")))?;
        match stream.write(bytes) {
            Ok(0) => {
                return Err(NetError::Connect(format!(
                    "{peer}: the connection closed while sending the request"
                )));
            }
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(NetError::Timeout(format!(
                    "write: {peer} did not take the request within the time limit"
                )));
            }
            Err(e) => {
                return Err(NetError::Connect(format!(
                    "{peer}: sending the request failed: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Where the answer's bytes come from.
trait Input {
    /// Reads into `into`; 0 at the end of the stream.
    fn read_some(&mut self, into: &mut [u8]) -> Result<usize, NetError>;
}

/// The socket: each read waits at most until the deadline, so a server
/// trickling one byte at a time still ends there.
struct Socket {
    stream: TcpStream,
    peer: String,
    deadline: Deadline,
}

impl Input for Socket {
    fn read_some(&mut self, into: &mut [u8]) -> Result<usize, NetError> {
        loop {
            let left = self.deadline.remaining("read")?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| NetError::Local(format!("socket option: {e}")))?;
            match self.stream.read(into) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(NetError::Timeout(format!(
                        "read: {} did not finish its answer within the time limit",
                        self.peer
                    )));
                }
                Err(e) => {
                    return Err(NetError::Connect(format!(
                        "{}: the connection broke while reading the answer: {e}",
                        self.peer
                    )));
                }
            }
        }
    }
}

/// Bytes in memory, read in small pieces so the framing code meets the
/// same partial reads a socket gives.
struct Slice<'a> {
    rest: &'a [u8],
}

impl Input for Slice<'_> {
    fn read_some(&mut self, into: &mut [u8]) -> Result<usize, NetError> {
        let n = self.rest.len().min(into.len()).min(4096);
        into[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// Buffered reading over an [`Input`]: `buf[start..]` is unread.
struct Reader<'a> {
    input: &'a mut dyn Input,
    buf: Vec<u8>,
    start: usize,
}

impl Reader<'_> {
    fn unread(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Reads more; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, NetError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + 16 * 1024, 0);
        let read = self.input.read_some(&mut self.buf[len..]);
        self.buf.truncate(len + *read.as_ref().unwrap_or(&0));
        Ok(read? > 0)
    }

    /// One line without its CRLF (or bare LF); None at the end of the
    /// stream, a Protocol error past `max` bytes.
    fn line(&mut self, max: usize, what: &str) -> Result<Option<Vec<u8>>, NetError> {
        loop {
            if let Some(at) = self.unread().iter().position(|&b| b == b'\n') {
                let mut line = self.unread()[..at].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(at + 1);
                return Ok(Some(line));
            }
            if self.unread().len() > max {
                return Err(NetError::Protocol(format!(
                    "{what}: a line longer than {max} bytes"
                )));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Appends the next `length` bytes to `body`; false if the stream
    /// ends first.
    fn read_exact_into(&mut self, body: &mut Vec<u8>, length: usize) -> Result<bool, NetError> {
        let mut left = length;
        while left > 0 {
            if self.unread().is_empty() && !self.fill()? {
                return Ok(false);
            }
            let take = self.unread().len().min(left);
            body.extend_from_slice(&self.unread()[..take]);
            self.consume(take);
            left -= take;
        }
        Ok(true)
    }
}

fn truncated(what: &str) -> NetError {
    NetError::Protocol(format!(
        "the router closed the connection in the middle of the {what}"
    ))
}

fn too_large(max_body: usize) -> NetError {
    NetError::Protocol(format!(
        "the router's answer is too large (over {} MiB): is this the right address and path?",
        max_body >> 20
    ))
}

/// How the body ends (RFC 9112 §6.3).
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

fn read_response(
    input: &mut dyn Input,
    head_request: bool,
    max_body: usize,
) -> Result<Response, NetError> {
    let mut reader = Reader {
        input,
        buf: Vec::new(),
        start: 0,
    };
    let (status, headers) = read_head(&mut reader)?;
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let framing = if head_request || status == 204 || status == 304 {
        Framing::None
    } else {
        framing(&response, max_body)?
    };
    response.body = match framing {
        Framing::None => Vec::new(),
        Framing::Length(n) => read_exact_body(&mut reader, n)?,
        Framing::Chunked => read_chunked_body(&mut reader, max_body)?,
        Framing::UntilClose => read_body_until_close(&mut reader, max_body)?,
    };
    Ok(response)
}

/// Status and headers of the final response, skipping 1xx interim ones.
fn read_head(reader: &mut Reader) -> Result<(u16, Vec<(String, String)>), NetError> {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true);
    let mut head_bytes = 0;
    // Where the search for the blank line ending the head resumes, so a
    // trickled head is not parsed again from the start for every byte.
    let mut scanned: usize = 0;
    let mut ended = false;
    loop {
        let unread = reader.unread();
        let from = scanned.saturating_sub(3);
        let has_end = unread[from..]
            .windows(2)
            .any(|w| w == b"\n\n" || w == b"\n\r");
        scanned = unread.len();
        if has_end || ended || unread.len() > MAX_HEAD {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut slots);
            match config.parse_response(&mut parsed, unread) {
                Ok(httparse::Status::Complete(n)) => {
                    head_bytes += n;
                    if head_bytes > MAX_HEAD {
                        break;
                    }
                    let status = parsed.code.unwrap_or(0);
                    let headers = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value);
                            (h.name.to_owned(), value.trim().to_owned())
                        })
                        .collect();
                    reader.consume(n);
                    scanned = 0;
                    // Interim answers (100 Continue) precede the real one.
                    if (100..200).contains(&status) && status != 101 {
                        continue;
                    }
                    return Ok((status, headers));
                }
                Ok(httparse::Status::Partial) if ended => return Err(truncated("response head")),
                Ok(httparse::Status::Partial) if unread.len() > MAX_HEAD => break,
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(NetError::Protocol(format!(
                        "the router's answer has more than {MAX_HEADERS} headers"
                    )));
                }
                Err(e) => {
                    return Err(NetError::Protocol(format!(
                        "the answer is not HTTP ({e}): is this port the router's web or SOAP server?"
                    )));
                }
            }
        }
        if ended {
            return Err(truncated("response head"));
        }
        if !reader.fill()? {
            if reader.unread().is_empty() && head_bytes == 0 {
                return Err(NetError::Protocol(
                    "the router closed the connection without answering".into(),
                ));
            }
            ended = true;
        }
    }
    Err(NetError::Protocol(format!(
        "the router's response head is larger than {} KiB",
        MAX_HEAD >> 10
    )))
}

fn framing(response: &Response, max_body: usize) -> Result<Framing, NetError> {
    if let Some(coding) = response.header("transfer-encoding") {
        // Chunked must be last; we ask for no other coding (no TE header).
        let last = coding.rsplit(',').next().unwrap_or("").trim();
        return if last.eq_ignore_ascii_case("chunked") {
            if coding.contains(',') {
                Err(NetError::Protocol(format!(
                    "unsupported Transfer-Encoding '{coding}'"
                )))
            } else {
                Ok(Framing::Chunked)
            }
        } else if last.eq_ignore_ascii_case("identity") {
            Ok(Framing::UntilClose)
        } else {
            Err(NetError::Protocol(format!(
                "unsupported Transfer-Encoding '{coding}'"
            )))
        };
    }
    let mut length = None;
    for (_, value) in response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        // `Content-Length: 5, 5` and repeated equal headers are allowed.
        for part in value.split(',') {
            let part = part.trim();
            let n = (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| NetError::Protocol(format!("invalid Content-Length '{value}'")))?;
            if length.is_some_and(|l| l != n) {
                return Err(NetError::Protocol(
                    "conflicting Content-Length headers".into(),
                ));
            }
            length = Some(n);
        }
    }
    match length {
        Some(n) if n > max_body as u64 => Err(too_large(max_body)),
        Some(n) => Ok(Framing::Length(n as usize)),
        None => Ok(Framing::UntilClose),
    }
}

fn read_exact_body(reader: &mut Reader, length: usize) -> Result<Vec<u8>, NetError> {
    let mut body = Vec::with_capacity(length.min(64 * 1024));
    if !reader.read_exact_into(&mut body, length)? {
        return Err(NetError::Protocol(format!(
            "the router closed the connection after {} of {length} body bytes",
            body.len()
        )));
    }
    Ok(body)
}

fn read_body_until_close(reader: &mut Reader, max_body: usize) -> Result<Vec<u8>, NetError> {
    let mut body = Vec::new();
    loop {
        let unread = reader.unread();
        if unread.len() > max_body - body.len() {
            return Err(too_large(max_body));
        }
        body.extend_from_slice(unread);
        let n = unread.len();
        reader.consume(n);
        if !reader.fill()? {
            return Ok(body);
        }
    }
}

fn read_chunked_body(reader: &mut Reader, max_body: usize) -> Result<Vec<u8>, NetError> {
    const WHAT: &str = "chunked body";
    let mut body = Vec::new();
    loop {
        let line = reader
            .line(MAX_CHUNK_LINE, WHAT)?
            .ok_or_else(|| truncated(WHAT))?;
        let size = chunk_size(&line).ok_or_else(|| {
            NetError::Protocol(format!(
                "invalid chunk size '{}'",
                String::from_utf8_lossy(&line[..line.len().min(40)])
            ))
        })?;
        if size == 0 {
            // Trailers up to the blank line; a close right after the last
            // chunk is taken as the end too.
            let mut trailer_bytes = 0;
            while let Some(line) = reader.line(MAX_HEAD, "trailers")? {
                if line.is_empty() {
                    break;
                }
                trailer_bytes += line.len() + 2;
                if trailer_bytes > MAX_HEAD {
                    return Err(NetError::Protocol(
                        "the chunked trailers are too large".into(),
                    ));
                }
            }
            return Ok(body);
        }
        if size > max_body - body.len() {
            return Err(too_large(max_body));
        }
        if !reader.read_exact_into(&mut body, size)? {
            return Err(truncated(WHAT));
        }
        // CRLF (or a bare LF) must follow the chunk's data.
        while reader.unread().len() < 2 && !reader.unread().contains(&b'\n') {
            if !reader.fill()? {
                return Err(truncated(WHAT));
            }
        }
        match reader.unread() {
            [b'\n', ..] => reader.consume(1),
            [b'\r', b'\n', ..] => reader.consume(2),
            _ => {
                return Err(NetError::Protocol(
                    "a chunk is longer than its size says".into(),
                ));
            }
        }
    }
}

/// The hex size at the start of a chunk-size line (extensions after `;`
/// ignored); None if invalid or beyond 32 bits.
fn chunk_size(line: &[u8]) -> Option<usize> {
    let text = line.split(|&b| b == b';').next()?.trim_ascii();
    let digits = match text.iter().position(|&b| b != b'0') {
        Some(first) => &text[first..],
        None if !text.is_empty() => b"0",
        None => return None,
    };
    if digits.len() > 8 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    usize::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upstream slice's cap, which these cases were written for.
    const MAX_BODY: usize = 4 << 20;

    fn parse(bytes: &[u8]) -> Result<Response, NetError> {
        parse_response(bytes, MAX_BODY)
    }

    #[test]
    fn content_length_body_and_headers() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n\
              Content-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhelloEXTRA",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(
            r.header("content-type"),
            Some("text/xml; charset=\"utf-8\"")
        );
        assert_eq!(r.header("X-A"), Some("2"), "the last one wins");
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.text().unwrap(), "hello");
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              4;name=x\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: y\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"Wikipedia in\r\n\r\nchunks.");
        // A close right after the last chunk is accepted too.
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
            .unwrap();
        assert_eq!(r.body, b"ok");
        assert_eq!(chunk_size(b"000000010 ; ext"), Some(16));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b"ffffffff"), Some(0xffff_ffff));
        for bad in [&b""[..], b" ", b"-1", b"+1", b"0x10", b"1 2", b"100000000"] {
            assert_eq!(chunk_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn body_until_close_and_http_1_0() {
        let r = parse(b"HTTP/1.0 200 OK\r\nServer: httpd\r\n\r\nall of it").unwrap();
        assert_eq!(r.body, b"all of it");
        // Bare LF line ends, as some embedded servers write.
        let r = parse(b"HTTP/1.0 200 OK\nContent-Length: 2\n\nok").unwrap();
        assert_eq!(r.body, b"ok");
    }

    #[test]
    fn interim_answers_and_bodyless_statuses() {
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
        let r = parse(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(r.status, 401);
    }

    #[test]
    fn bad_framing_is_a_protocol_error() {
        let cases: [&[u8]; 12] = [
            b"",
            b"SSH-2.0-dropbear\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Len",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000000\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n",
        ];
        for case in cases {
            let got = parse(case);
            assert!(
                matches!(got, Err(NetError::Protocol(_))),
                "{:?} gave {got:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn sizes_are_capped() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(parse(big.as_bytes()), Err(too_large(MAX_BODY)));
        let mut until_close = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        until_close.resize(until_close.len() + MAX_BODY + 1, b'x');
        assert_eq!(parse(&until_close), Err(too_large(MAX_BODY)));
        let mut exactly = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        exactly.resize(exactly.len() + MAX_BODY, b'x');
        assert_eq!(parse(&exactly).unwrap().body.len(), MAX_BODY);
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..=MAX_BODY / 0x100000 {
            chunked.extend_from_slice(b"100000\r\n");
            chunked.resize(chunked.len() + 0x100000, b'x');
            chunked.extend_from_slice(b"\r\n");
        }
        assert_eq!(parse(&chunked), Err(too_large(MAX_BODY)));
        let mut long_head = b"HTTP/1.1 200 OK\r\nX-Filler: ".to_vec();
        long_head.resize(MAX_HEAD + 1, b'x');
        long_head.extend_from_slice(b"\r\n\r\n");
        let got = parse(&long_head);
        assert!(
            matches!(got, Err(NetError::Protocol(ref m)) if m.contains("KiB")),
            "{got:?}"
        );
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&many), Err(NetError::Protocol(_))));
    }

    #[test]
    fn text_must_be_utf8() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\xff\xfe").unwrap();
        assert!(matches!(r.text(), Err(NetError::Parse(_))));
    }

    #[test]
    fn requests_carry_host_agent_close_and_length() {
        let get = Request::get("/igddesc.xml").header("SOAPAction", "x#y");
        let text =
            String::from_utf8(encode_request("192.168.178.1", 49000, &get).unwrap()).unwrap();
        assert_eq!(
            text,
            format!(
                "GET /igddesc.xml HTTP/1.1\r\nHost: 192.168.178.1:49000\r\n\
                 User-Agent: netmeter/{}\r\nConnection: close\r\nSOAPAction: x#y\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        let post = Request::post("/login.cgi", b"a=b").header("user-agent", "asusrouter--DUTUtil-");
        let text = String::from_utf8(encode_request("fe80::1", 80, &post).unwrap()).unwrap();
        assert_eq!(
            text,
            "POST /login.cgi HTTP/1.1\r\nHost: [fe80::1]\r\nConnection: close\r\n\
             Content-Length: 3\r\nuser-agent: asusrouter--DUTUtil-\r\n\r\na=b"
        );
        let injected = Request::get("/").header("Cookie", "a=b\r\nX-Evil: 1");
        assert!(matches!(
            encode_request("h", 80, &injected),
            Err(NetError::Protocol(m)) if !m.contains("Evil")
        ));
        assert!(encode_request("h", 80, &Request::get("/a b")).is_err());
        assert!(encode_request("h", 80, &Request::get("a")).is_err());
    }

    #[test]
    fn urls() {
        let url = |s| parse_url(s).unwrap();
        assert_eq!(
            url("http://192.168.1.1:9100/metrics"),
            Url {
                host: "192.168.1.1".into(),
                port: 9100,
                path: "/metrics".into()
            }
        );
        assert_eq!(url("HTTP://fritz.box").path, "/");
        assert_eq!(url("http://fritz.box").port, 80);
        assert_eq!(url("http://h?x=1#frag").path, "/?x=1");
        assert_eq!(
            url("http://h/cgi-bin/vnstat.cgi?json=1#f").path,
            "/cgi-bin/vnstat.cgi?json=1"
        );
        let v6 = url("http://[fd00::1]:8080/x");
        assert_eq!((v6.host.as_str(), v6.port), ("fd00::1", 8080));
        assert_eq!(url("http://[::1]").port, 80);
        for bad in [
            "https://router/",
            "router/metrics",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://[::1/",
            "http://[nope]/",
            "http://[::1]x/",
            "http://h h/",
            "http://h/a b",
            "http://fd00::1/",
        ] {
            assert!(matches!(parse_url(bad), Err(NetError::Parse(_))), "{bad}");
        }
        let Err(e) = parse_url("http://admin:hunter2@router/") else {
            panic!()
        };
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
}
