//! A small HTTP/1.1 client for the routers on the LAN: plain TCP, one
//! request per connection, every wait bounded by the scrape's deadline.
//!
//! Routers' web servers are small and sometimes odd, so the head is
//! parsed leniently (httparse), the body framing strictly (Content-Length,
//! chunked, or up to the close), and sizes are capped: an answer never
//! takes more than [`MAX_BODY`] plus [`MAX_HEAD`] of memory.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, Thread};

use super::{Deadline, ScrapeError, md5};
use crate::config::Secret;

/// The largest body accepted: router pages and SOAP answers are far smaller.
pub const MAX_BODY: usize = 4 << 20;
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
    pub fn text(&self) -> Result<&str, ScrapeError> {
        std::str::from_utf8(&self.body).map_err(|e| {
            ScrapeError::Parse(format!(
                "the router's answer is not UTF-8 text (bad byte at offset {})",
                e.valid_up_to()
            ))
        })
    }
}

/// Sends `request` to `host` (a name, an IPv4 or an IPv6 address, with or
/// without brackets) and reads the whole answer, all before `deadline`.
pub fn send(
    host: &str,
    port: u16,
    request: &Request,
    deadline: Deadline,
) -> Result<Response, ScrapeError> {
    let bytes = encode_request(host, port, request)?;
    let mut stream = connect(host, port, deadline)?;
    let peer = stream
        .peer_addr()
        .map_or_else(|_| format!("{host}:{port}"), |a| a.to_string());
    write_all(&mut stream, &bytes, &peer, deadline)?;
    let mut input = Socket {
        stream,
        peer,
        deadline,
    };
    read_response(&mut input, request.method.eq_ignore_ascii_case("HEAD"))
}

/// [`send`], answering a Digest challenge (RFC 7616, MD5, qop=auth) once.
/// A 401 that is not a Digest challenge we can answer, or a second 401
/// (wrong credentials), comes back as the Response.
pub fn send_digest(
    host: &str,
    port: u16,
    request: &Request,
    username: &str,
    password: &Secret,
    deadline: Deadline,
) -> Result<Response, ScrapeError> {
    let first = send(host, port, request, deadline)?;
    if first.status != 401 {
        return Ok(first);
    }
    let challenge = first
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
        .find_map(|(_, value)| parse_digest_challenge(value));
    let Some(challenge) = challenge else {
        return Ok(first);
    };
    let authorization = digest_authorization(
        &challenge,
        username,
        password,
        request.method,
        request.path,
        &cnonce(),
    );
    let retry = request.clone().header("Authorization", authorization);
    send(host, port, &retry, deadline)
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
pub fn parse_url(url: &str) -> Result<Url, ScrapeError> {
    let bad = |why: &str| ScrapeError::Parse(format!("URL '{url}': {why}"));
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
        return Err(ScrapeError::Parse(
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
pub fn parse_response(bytes: &[u8]) -> Result<Response, ScrapeError> {
    read_response(&mut Slice { rest: bytes }, false)
}

/// A `WWW-Authenticate: Digest …` challenge we can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// qop=auth offered; without it, the RFC 2069 form is used.
    pub qop_auth: bool,
    /// MD5-sess rather than MD5.
    pub session: bool,
}

/// The Digest challenge in one `WWW-Authenticate` value, if it has one
/// with MD5 (or no algorithm) and qop "auth" (or no qop). Other schemes,
/// algorithms (SHA-256) and qop=auth-int only give None.
pub fn parse_digest_challenge(value: &str) -> Option<DigestChallenge> {
    // Challenges are `Scheme param=value, param="value", Scheme2 …`.
    let mut rest = value.trim_start();
    let mut in_digest = false;
    let (mut realm, mut nonce, mut opaque, mut qop, mut algorithm) = (None, None, None, None, None);
    loop {
        // Whitespace of any kind: the token below then is never empty, so
        // every turn consumes input.
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            break;
        }
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (token, after) = rest.split_at(token_end);
        let after_ws = after.trim_start();
        if let Some(value_text) = after_ws.strip_prefix('=') {
            // A token68 (`Basic abc==`) ends in '=' with nothing after it;
            // treat what follows as a parameter value either way.
            let (value, remaining) = param_value(value_text.trim_start())?;
            rest = remaining;
            if in_digest {
                let slot = match token.to_ascii_lowercase().as_str() {
                    "realm" => &mut realm,
                    "nonce" => &mut nonce,
                    "opaque" => &mut opaque,
                    "qop" => &mut qop,
                    "algorithm" => &mut algorithm,
                    _ => continue,
                };
                slot.get_or_insert(value);
            }
        } else {
            // A new scheme starts: stop after the Digest one.
            if in_digest {
                break;
            }
            in_digest = token.eq_ignore_ascii_case("digest");
            rest = after;
        }
    }
    let session = match algorithm.as_deref() {
        None => false,
        Some(a) if a.eq_ignore_ascii_case("md5") => false,
        Some(a) if a.eq_ignore_ascii_case("md5-sess") => true,
        Some(_) => return None,
    };
    let qop_auth = match &qop {
        None => false,
        Some(list) => {
            if !list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                return None;
            }
            true
        }
    };
    Some(DigestChallenge {
        realm: realm?,
        nonce: nonce?,
        opaque,
        qop_auth,
        session,
    })
}

/// A parameter value (token or quoted string) and what follows it.
fn param_value(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((value, &quoted[i + 1..])),
                '\\' => value.push(chars.next()?.1),
                _ => value.push(c),
            }
        }
        None // unterminated
    } else {
        let end = text
            .find(|c: char| c == ',' || c.is_ascii_whitespace())
            .unwrap_or(text.len());
        Some((text[..end].to_owned(), &text[end..]))
    }
}

/// The `Authorization` value answering `challenge` (RFC 7616 §3.4).
pub fn digest_authorization(
    challenge: &DigestChallenge,
    username: &str,
    password: &Secret,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let DigestChallenge {
        realm,
        nonce,
        opaque,
        qop_auth,
        session,
    } = challenge;
    let mut ha1 = md5::hex(format!("{username}:{realm}:{}", password.expose()).as_bytes());
    if *session {
        ha1 = md5::hex(format!("{ha1}:{nonce}:{cnonce}").as_bytes());
    }
    let ha2 = md5::hex(format!("{method}:{uri}").as_bytes());
    let nc = "00000001";
    let response = if *qop_auth {
        md5::hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes())
    } else {
        md5::hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
    };
    let algorithm = if *session { "MD5-sess" } else { "MD5" };
    let mut value = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, algorithm={algorithm}, response=\"{response}\"",
        quote(username),
        quote(realm),
        quote(nonce),
        quote(uri),
    );
    if *qop_auth {
        value.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quote(cnonce)));
    }
    if let Some(opaque) = opaque {
        value.push_str(&format!(", opaque={}", quote(opaque)));
    }
    value
}

/// A quoted-string: `"` and `\` escaped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A client nonce nobody can predict from outside: 8 bytes of the
/// kernel's randomness, or of the clock if /dev/urandom is unreadable.
fn cnonce() -> String {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mixed = now.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
        bytes = mixed.to_le_bytes();
    }
    md5::hex(&bytes)[..16].to_owned()
}

/// The request's bytes. Refuses line breaks in the target or header
/// values, which would let a router-chosen token inject headers.
fn encode_request(host: &str, port: u16, request: &Request) -> Result<Vec<u8>, ScrapeError> {
    let Request {
        method,
        path,
        headers,
        body,
    } = request;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ScrapeError::Local(format!(
            "HTTP method '{method}' is not valid"
        )));
    }
    if !path.starts_with('/') || !is_request_target(path) {
        return Err(ScrapeError::Local(
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
            return Err(ScrapeError::Protocol(format!(
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

/// Resolves (when a name) and connects, within the deadline.
pub(super) fn connect(host: &str, port: u16, deadline: Deadline) -> Result<TcpStream, ScrapeError> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => resolve(host, port, deadline)?,
    };
    let mut last = None;
    for addr in addrs {
        let left = deadline.remaining("connect")?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(connect_error(addr, e)),
        }
    }
    Err(last.unwrap_or_else(|| ScrapeError::Dns(format!("cannot resolve '{host}': no address"))))
}

fn connect_error(addr: SocketAddr, e: std::io::Error) -> ScrapeError {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => ScrapeError::Timeout(format!(
            "connect: {addr} did not accept a connection within the time limit: \
             is the router at this address?"
        )),
        ErrorKind::ConnectionRefused => ScrapeError::Connect(format!(
            "{addr}: connection refused: is the router at this address, and the port right?"
        )),
        _ => ScrapeError::Connect(format!("{addr}: {e}: is the router at this address?")),
    }
}

/// Looks `host` up on a short-lived thread, so a resolver that hangs
/// cannot hold the scrape past its deadline (the thread ends on its own).
/// Parking rather than a channel: it is already in the binary.
pub(super) fn resolve(
    host: &str,
    port: u16,
    deadline: Deadline,
) -> Result<Vec<SocketAddr>, ScrapeError> {
    type Found = std::io::Result<Vec<SocketAddr>>;
    deadline.remaining("dns")?;
    // The answer, and the thread to wake when it is in.
    let slot: Arc<(Mutex<Option<Found>>, Thread)> = Arc::new((Mutex::new(None), thread::current()));
    let (theirs, name) = (Arc::clone(&slot), host.to_owned());
    thread::Builder::new()
        .name("netmeter-dns".into())
        .spawn(move || {
            let found = (name.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect());
            *theirs.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(found);
            theirs.1.unpark();
        })
        .map_err(|e| ScrapeError::Local(format!("cannot start a DNS lookup: {e}")))?;
    let found = loop {
        if let Some(found) = slot.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            break found;
        }
        let Ok(left) = deadline.remaining("dns") else {
            return Err(ScrapeError::Timeout(format!(
                "dns: '{host}' did not resolve within the time limit"
            )));
        };
        // Returns early on unpark, or spuriously: the loop checks again.
        thread::park_timeout(left);
    };
    match found {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(ScrapeError::Dns(format!(
            "cannot resolve '{host}': no address"
        ))),
        Err(e) => Err(ScrapeError::Dns(format!("cannot resolve '{host}': {e}"))),
    }
}

fn write_all(
    stream: &mut TcpStream,
    mut bytes: &[u8],
    peer: &str,
    deadline: Deadline,
) -> Result<(), ScrapeError> {
    while !bytes.is_empty() {
        let left = deadline.remaining("write")?;
        stream
            .set_write_timeout(Some(left))
            .map_err(|e| ScrapeError::Local(format!("socket option: {e}")))?;
        match stream.write(bytes) {
            Ok(0) => {
                return Err(ScrapeError::Connect(format!(
                    "{peer}: the connection closed while sending the request"
                )));
            }
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(ScrapeError::Timeout(format!(
                    "write: {peer} did not take the request within the time limit"
                )));
            }
            Err(e) => {
                return Err(ScrapeError::Connect(format!(
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
    fn read_some(&mut self, into: &mut [u8]) -> Result<usize, ScrapeError>;
}

/// The socket: each read waits at most until the deadline, so a server
/// trickling one byte at a time still ends there.
struct Socket {
    stream: TcpStream,
    peer: String,
    deadline: Deadline,
}

impl Input for Socket {
    fn read_some(&mut self, into: &mut [u8]) -> Result<usize, ScrapeError> {
        loop {
            let left = self.deadline.remaining("read")?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| ScrapeError::Local(format!("socket option: {e}")))?;
            match self.stream.read(into) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ScrapeError::Timeout(format!(
                        "read: {} did not finish its answer within the time limit",
                        self.peer
                    )));
                }
                Err(e) => {
                    return Err(ScrapeError::Connect(format!(
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
    fn read_some(&mut self, into: &mut [u8]) -> Result<usize, ScrapeError> {
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
    fn fill(&mut self) -> Result<bool, ScrapeError> {
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
    fn line(&mut self, max: usize, what: &str) -> Result<Option<Vec<u8>>, ScrapeError> {
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
                return Err(ScrapeError::Protocol(format!(
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
    fn read_exact_into(&mut self, body: &mut Vec<u8>, length: usize) -> Result<bool, ScrapeError> {
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

fn truncated(what: &str) -> ScrapeError {
    ScrapeError::Protocol(format!(
        "the router closed the connection in the middle of the {what}"
    ))
}

fn too_large() -> ScrapeError {
    ScrapeError::Protocol(format!(
        "the router's answer is too large (over {} MiB): is this the right address and path?",
        MAX_BODY >> 20
    ))
}

/// How the body ends (RFC 9112 §6.3).
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

fn read_response(input: &mut dyn Input, head_request: bool) -> Result<Response, ScrapeError> {
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
        framing(&response)?
    };
    response.body = match framing {
        Framing::None => Vec::new(),
        Framing::Length(n) => read_exact_body(&mut reader, n)?,
        Framing::Chunked => read_chunked_body(&mut reader)?,
        Framing::UntilClose => read_body_until_close(&mut reader)?,
    };
    Ok(response)
}

/// Status and headers of the final response, skipping 1xx interim ones.
fn read_head(reader: &mut Reader) -> Result<(u16, Vec<(String, String)>), ScrapeError> {
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
                    return Err(ScrapeError::Protocol(format!(
                        "the router's answer has more than {MAX_HEADERS} headers"
                    )));
                }
                Err(e) => {
                    return Err(ScrapeError::Protocol(format!(
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
                return Err(ScrapeError::Protocol(
                    "the router closed the connection without answering".into(),
                ));
            }
            ended = true;
        }
    }
    Err(ScrapeError::Protocol(format!(
        "the router's response head is larger than {} KiB",
        MAX_HEAD >> 10
    )))
}

fn framing(response: &Response) -> Result<Framing, ScrapeError> {
    if let Some(coding) = response.header("transfer-encoding") {
        // Chunked must be last; we ask for no other coding (no TE header).
        let last = coding.rsplit(',').next().unwrap_or("").trim();
        return if last.eq_ignore_ascii_case("chunked") {
            if coding.contains(',') {
                Err(ScrapeError::Protocol(format!(
                    "unsupported Transfer-Encoding '{coding}'"
                )))
            } else {
                Ok(Framing::Chunked)
            }
        } else if last.eq_ignore_ascii_case("identity") {
            Ok(Framing::UntilClose)
        } else {
            Err(ScrapeError::Protocol(format!(
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
                .ok_or_else(|| {
                    ScrapeError::Protocol(format!("invalid Content-Length '{value}'"))
                })?;
            if length.is_some_and(|l| l != n) {
                return Err(ScrapeError::Protocol(
                    "conflicting Content-Length headers".into(),
                ));
            }
            length = Some(n);
        }
    }
    match length {
        Some(n) if n > MAX_BODY as u64 => Err(too_large()),
        Some(n) => Ok(Framing::Length(n as usize)),
        None => Ok(Framing::UntilClose),
    }
}

fn read_exact_body(reader: &mut Reader, length: usize) -> Result<Vec<u8>, ScrapeError> {
    let mut body = Vec::with_capacity(length.min(64 * 1024));
    if !reader.read_exact_into(&mut body, length)? {
        return Err(ScrapeError::Protocol(format!(
            "the router closed the connection after {} of {length} body bytes",
            body.len()
        )));
    }
    Ok(body)
}

fn read_body_until_close(reader: &mut Reader) -> Result<Vec<u8>, ScrapeError> {
    let mut body = Vec::new();
    loop {
        let unread = reader.unread();
        if unread.len() > MAX_BODY - body.len() {
            return Err(too_large());
        }
        body.extend_from_slice(unread);
        let n = unread.len();
        reader.consume(n);
        if !reader.fill()? {
            return Ok(body);
        }
    }
}

fn read_chunked_body(reader: &mut Reader) -> Result<Vec<u8>, ScrapeError> {
    const WHAT: &str = "chunked body";
    let mut body = Vec::new();
    loop {
        let line = reader
            .line(MAX_CHUNK_LINE, WHAT)?
            .ok_or_else(|| truncated(WHAT))?;
        let size = chunk_size(&line).ok_or_else(|| {
            ScrapeError::Protocol(format!(
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
                    return Err(ScrapeError::Protocol(
                        "the chunked trailers are too large".into(),
                    ));
                }
            }
            return Ok(body);
        }
        if size > MAX_BODY - body.len() {
            return Err(too_large());
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
                return Err(ScrapeError::Protocol(
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

/// Base64 (RFC 4648) for the credentials routers take in forms and
/// cookies (ASUS, TP-Link).
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("admin:p@ss w0rd", "YWRtaW46cEBzcyB3MHJk"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    fn parse(bytes: &[u8]) -> Result<Response, ScrapeError> {
        parse_response(bytes)
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
                matches!(got, Err(ScrapeError::Protocol(_))),
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
        assert_eq!(parse(big.as_bytes()), Err(too_large()));
        let mut until_close = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        until_close.resize(until_close.len() + MAX_BODY + 1, b'x');
        assert_eq!(parse(&until_close), Err(too_large()));
        let mut exactly = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        exactly.resize(exactly.len() + MAX_BODY, b'x');
        assert_eq!(parse(&exactly).unwrap().body.len(), MAX_BODY);
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..=MAX_BODY / 0x100000 {
            chunked.extend_from_slice(b"100000\r\n");
            chunked.resize(chunked.len() + 0x100000, b'x');
            chunked.extend_from_slice(b"\r\n");
        }
        assert_eq!(parse(&chunked), Err(too_large()));
        let mut long_head = b"HTTP/1.1 200 OK\r\nX-Filler: ".to_vec();
        long_head.resize(MAX_HEAD + 1, b'x');
        long_head.extend_from_slice(b"\r\n\r\n");
        let got = parse(&long_head);
        assert!(
            matches!(got, Err(ScrapeError::Protocol(ref m)) if m.contains("KiB")),
            "{got:?}"
        );
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&many), Err(ScrapeError::Protocol(_))));
    }

    #[test]
    fn text_must_be_utf8() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\xff\xfe").unwrap();
        assert!(matches!(r.text(), Err(ScrapeError::Parse(_))));
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
            Err(ScrapeError::Protocol(m)) if !m.contains("Evil")
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
            assert!(
                matches!(parse_url(bad), Err(ScrapeError::Parse(_))),
                "{bad}"
            );
        }
        let Err(e) = parse_url("http://admin:hunter2@router/") else {
            panic!()
        };
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }

    /// What a FRITZ!Box sends on TR-064's first, unauthenticated POST.
    const FRITZ_CHALLENGE: &str = r#"Digest realm="F!Box SOAP-Auth", nonce="3E1D5C7B9A0F2846", qop="auth", charset="utf-8", algorithm="MD5""#;

    #[test]
    fn digest_challenges() {
        let c = parse_digest_challenge(FRITZ_CHALLENGE).unwrap();
        assert_eq!(
            c,
            DigestChallenge {
                realm: "F!Box SOAP-Auth".into(),
                nonce: "3E1D5C7B9A0F2846".into(),
                opaque: None,
                qop_auth: true,
                session: false
            }
        );
        let rfc = parse_digest_challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(
            rfc.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        // After a Basic challenge in the same header; escapes; no qop.
        let both = parse_digest_challenge(
            r#"Basic realm="x", DIGEST realm="a\"b", nonce=abc, algorithm=MD5-sess"#,
        )
        .unwrap();
        assert_eq!((both.realm.as_str(), both.nonce.as_str()), ("a\"b", "abc"));
        assert!(both.session && !both.qop_auth);
        // Stops at the next scheme: its parameters are not Digest's.
        let next = parse_digest_challenge(r#"Digest realm="r", nonce="n", Bearer realm="other""#);
        assert_eq!(next.unwrap().realm, "r");
        let folded = parse_digest_challenge("Digest\r\n realm=r,\r\n\tnonce=\"n\"\r\n").unwrap();
        assert_eq!((folded.realm.as_str(), folded.nonce.as_str()), ("r", "n"));
        for unusable in [
            r#"Basic realm="router""#,
            r#"Digest realm="r", nonce="n", algorithm=SHA-256"#,
            r#"Digest realm="r", nonce="n", qop="auth-int""#,
            r#"Digest realm="r""#,
            r#"Digest realm="r", nonce="n"#,
            r#"Bearer realm="r", nonce="n""#,
            "Basic\r\n\x0bx\x0c=",
            "",
            "Digest",
        ] {
            assert_eq!(parse_digest_challenge(unusable), None, "{unusable}");
        }
    }

    #[test]
    fn digest_responses_match_the_rfc_examples() {
        let password = |p| Secret::password(p).unwrap();
        // RFC 2617 §3.5.
        let c = DigestChallenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            qop_auth: true,
            session: false,
        };
        let value = digest_authorization(
            &c,
            "Mufasa",
            &password("Circle Of Life"),
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert_eq!(
            value,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             algorithm=MD5, response=\"6629fae49393a05397450978507c4ef1\", qop=auth, \
             nc=00000001, cnonce=\"0a4f113b\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
        // RFC 7616 §3.9.1, MD5.
        let c = DigestChallenge {
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            opaque: None,
            qop_auth: true,
            session: false,
        };
        let value = digest_authorization(
            &c,
            "Mufasa",
            &password("Circle of Life"),
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert!(
            value.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""),
            "{value}"
        );
        assert!(!value.contains("Circle"));
    }

    #[test]
    fn names_resolve_on_a_thread_within_the_deadline() {
        let soon = Deadline::after(std::time::Duration::from_secs(5));
        let addrs = resolve("localhost", 8080, soon).unwrap();
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{addrs:?}"
        );
        // Out of time before the lookup or the connection: nothing is sent.
        let past = Deadline::at(std::time::Instant::now());
        let got = send("localhost", 80, &Request::get("/"), past);
        assert!(
            matches!(got, Err(ScrapeError::Timeout(ref m)) if m.starts_with("dns")),
            "{got:?}"
        );
        let got = send("127.0.0.1", 80, &Request::get("/"), past);
        assert!(
            matches!(got, Err(ScrapeError::Timeout(ref m)) if m.starts_with("connect")),
            "{got:?}"
        );
    }

    #[test]
    fn cnonces_differ() {
        let (a, b) = (cnonce(), cnonce());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
