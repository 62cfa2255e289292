//! A bounded HTTP/1.1 server: one thread, one poll() loop, fixed limits.
//!
//! A router has 64 MB: stalled or hostile clients must not be able to grow
//! threads or memory. Every connection has a head-size cap and a deadline.
//! At `max_connections` a new client takes the slot of the oldest one that
//! has not finished sending its request (that one gets a 503), so clients
//! that connect and stall cannot lock everyone else out; only when every
//! slot is busy answering does the newcomer get the 503. One request per
//! connection (`Connection: close`), which is all pollers need.
//!
//! The limits: 32 connections, 8 KiB request heads (431), a 5 s deadline
//! per connection (408), bodies refused (413), HTTP/1.1 without `Host` and
//! malformed heads 400, HEAD answered without the body. A shed connection is
//! read once more first, so a request that has arrived is answered. After an
//! answer the connection is shut down for writing and drained (up to 64 KiB,
//! until the client closes or the deadline), so unread input never turns the
//! close into a reset that could destroy the answer. `parse_request` is pure
//! (fuzzed).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Limits of the server; the defaults suit a 64 MB router.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_head_bytes: usize,
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 32,
            max_head_bytes: 8 * 1024,
            deadline: Duration::from_secs(5),
        }
    }
}

/// The parts of a request the routes look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
}

impl Request {
    /// The query string's `name=value` pairs in order, percent- and
    /// `+`-decoded; an error says what is malformed (answer 400 with it).
    pub fn query_pairs(&self) -> Result<Vec<(String, String)>, String> {
        let Some(query) = &self.query else {
            return Ok(Vec::new());
        };
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                Ok((decode_component(name)?, decode_component(value)?))
            })
            .collect()
    }
}

/// `%XX` and `+` decoding of one query component; UTF-8 required.
pub fn decode_component(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("malformed query string: '%' must be followed by two hex digits")?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "malformed query string: not UTF-8 once decoded".into())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Further header lines, such as `WWW-Authenticate` on a 401.
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Vec<u8>,
}

/// Every error answer's body; the CLI reads the message back with it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// The methods every route answers: the API is read-only.
pub const ALLOW: (&str, &str) = ("Allow", "GET, HEAD");

impl Response {
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            headers: &[],
            body,
        }
    }

    pub fn with_headers(self, headers: &'static [(&'static str, &'static str)]) -> Response {
        Response { headers, ..self }
    }

    /// A JSON error body: `{"error":"…"}`.
    pub fn error(status: u16, message: &str) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error: message.to_owned(),
        })
        .unwrap_or_else(|_| b"{}".to_vec());
        Response::json(status, body)
    }

    /// The bytes on the wire; `head_only` for a HEAD request (the same
    /// headers, Content-Length included, and no body).
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// What the bytes received so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Complete(Request),
    /// More bytes are needed.
    Partial,
    /// Answer with this error and close.
    Invalid(u16, &'static str),
}

/// Parses a request head; pure, so it is unit-tested and fuzzed alone.
pub fn parse_request(buf: &[u8], max_head: usize) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
            };
            let length = header("content-length").map(|v| v.trim().parse::<u64>());
            if let Some(Err(_)) = length {
                return Parsed::Invalid(400, "malformed Content-Length");
            }
            if matches!(length, Some(Ok(n)) if n > 0) || header("transfer-encoding").is_some() {
                return Parsed::Invalid(
                    413,
                    "request bodies are not accepted: the API is read-only",
                );
            }
            if req.version == Some(1) && header("host").is_none() {
                return Parsed::Invalid(400, "an HTTP/1.1 request needs a Host header");
            }
            let Some(target) = origin_form(req.path.unwrap_or("")) else {
                return Parsed::Invalid(
                    400,
                    "the request target must be a path such as /api/v1/status",
                );
            };
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q.to_string())),
                None => (target, None),
            };
            Parsed::Complete(Request {
                method: req.method.unwrap_or("").to_string(),
                path: path.to_string(),
                query,
                authorization: header("authorization"),
            })
        }
        Ok(httparse::Status::Partial) if buf.len() >= max_head => {
            Parsed::Invalid(431, "request head too large")
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::Invalid(431, "too many request headers"),
        Err(_) => Parsed::Invalid(400, "malformed HTTP request"),
    }
}

/// The path-and-query part of a request target: `/…` as it is, or the
/// absolute form `http://host/…` a proxy sends. None for anything else.
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => Some(&rest[i..]),
        Some(_) => None,
        None => Some("/"),
    }
}

enum State {
    Reading,
    Writing {
        out: Vec<u8>,
        done: usize,
    },
    /// Answered and shut down for writing: what the client still sends is
    /// read and dropped until it closes. Closing with unread bytes would
    /// reset the connection, which can destroy the answer (a 431 or 413
    /// above all) before the client has read it.
    Draining {
        dropped: usize,
    },
}

/// Bytes read and dropped after an answer before the connection is closed
/// anyway.
const DRAIN_LIMIT: usize = 64 * 1024;

struct Connection {
    stream: TcpStream,
    head: Vec<u8>,
    state: State,
    deadline: Instant,
}

/// Serves until `stop` is set (checked at least every 500 ms).
pub fn serve<H>(listeners: Vec<TcpListener>, limits: Limits, handler: H, stop: Arc<AtomicBool>)
where
    H: Fn(&Request) -> Response,
{
    for l in &listeners {
        let _ = l.set_nonblocking(true);
    }
    let mut conns: Vec<Connection> = Vec::new();
    let mut scratch = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = conns
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_millis(500))
            .min(Duration::from_millis(500));
        let (listen_ready, conn_ready) = {
            let mut fds: Vec<PollFd> = listeners
                .iter()
                .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
                .collect();
            for c in &conns {
                let ev = match c.state {
                    State::Reading | State::Draining { .. } => PollFlags::POLLIN,
                    State::Writing { .. } => PollFlags::POLLOUT,
                };
                fds.push(PollFd::new(c.stream.as_fd(), ev));
            }
            let timeout =
                PollTimeout::try_from(wait.as_millis() as i32 + 1).unwrap_or(PollTimeout::MAX);
            if poll(&mut fds, timeout).is_err() {
                continue; // EINTR
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            let l: Vec<bool> = fds[..listeners.len()].iter().map(ready).collect();
            let c: Vec<bool> = fds[listeners.len()..].iter().map(ready).collect();
            (l, c)
        };

        let mut closed = vec![false; conns.len()];
        for (i, conn) in conns.iter_mut().enumerate() {
            if conn_ready[i] {
                closed[i] = !advance(conn, &handler, limits, &mut scratch);
            }
        }
        let now = Instant::now();
        for (i, conn) in conns.iter_mut().enumerate() {
            if !closed[i] && now >= conn.deadline {
                // Best effort: a client too slow to send its head gets told so.
                if matches!(conn.state, State::Reading) {
                    let _ = conn
                        .stream
                        .write(&Response::error(408, "request timeout").to_bytes(false));
                }
                closed[i] = true;
            }
        }
        let mut i = 0;
        conns.retain(|_| {
            i += 1;
            !closed[i - 1]
        });

        for (l, ready) in listeners.iter().zip(listen_ready) {
            if !ready {
                continue;
            }
            while let Ok((stream, _)) = l.accept() {
                if conns.len() >= limits.max_connections
                    && !shed(&mut conns, &handler, limits, &mut scratch)
                {
                    // Every slot is busy answering: the newcomer may retry.
                    // What it already sent is read first, so that closing
                    // does not reset the connection and lose the 503.
                    let _ = stream.set_nonblocking(true);
                    let _ = (&stream).read(&mut scratch);
                    let _ = (&stream).write(&busy().to_bytes(false));
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    continue;
                }
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                let _ = stream.set_nodelay(true);
                conns.push(Connection {
                    stream,
                    head: Vec::with_capacity(512),
                    state: State::Reading,
                    deadline: Instant::now() + limits.deadline,
                });
            }
        }
    }
}

fn busy() -> Response {
    Response::error(503, "too many connections; try again")
}

/// Frees one slot for a new client: the oldest connection that is already
/// answered and only draining, else the oldest one that has not sent a
/// whole request yet, which gets a 503. That one is read once more first,
/// so a request that has arrived is answered rather than dropped. False
/// when every connection is busy writing an answer.
///
/// Connections sit in `conns` in the order they were accepted.
fn shed<H>(conns: &mut Vec<Connection>, handler: &H, limits: Limits, scratch: &mut [u8]) -> bool
where
    H: Fn(&Request) -> Response,
{
    if let Some(i) = conns
        .iter()
        .position(|c| matches!(c.state, State::Draining { .. }))
    {
        conns.remove(i);
        return true;
    }
    let mut i = 0;
    while i < conns.len() {
        if !matches!(conns[i].state, State::Reading) {
            i += 1;
            continue;
        }
        let conn = &mut conns[i];
        if advance(conn, handler, limits, scratch) {
            match conn.state {
                State::Writing { .. } => {
                    i += 1;
                    continue;
                }
                State::Reading => {
                    let _ = conn.stream.write(&busy().to_bytes(false));
                }
                State::Draining { .. } => {}
            }
        }
        conns.remove(i);
        return true;
    }
    false
}

/// Moves one connection forward as far as it goes without blocking; false
/// when it is finished or broken.
fn advance<H>(conn: &mut Connection, handler: &H, limits: Limits, scratch: &mut [u8]) -> bool
where
    H: Fn(&Request) -> Response,
{
    loop {
        match &mut conn.state {
            State::Reading => {
                let room = limits.max_head_bytes.saturating_sub(conn.head.len()).max(1);
                let take = room.min(scratch.len());
                match conn.stream.read(&mut scratch[..take]) {
                    Ok(0) => return false,
                    Ok(n) => conn.head.extend_from_slice(&scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
                let (response, head_only) = match parse_request(&conn.head, limits.max_head_bytes) {
                    Parsed::Partial => continue,
                    Parsed::Invalid(status, why) => (Response::error(status, why), false),
                    Parsed::Complete(req) => (handler(&req), req.method == "HEAD"),
                };
                conn.head = Vec::new();
                conn.state = State::Writing {
                    out: response.to_bytes(head_only),
                    done: 0,
                };
            }
            State::Writing { out, done } => {
                match conn.stream.write(&out[*done..]) {
                    Ok(0) => return false,
                    Ok(n) => *done += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
                if *done == out.len() {
                    if conn.stream.shutdown(std::net::Shutdown::Write).is_err() {
                        return false;
                    }
                    conn.state = State::Draining { dropped: 0 };
                }
            }
            State::Draining { dropped } => match conn.stream.read(scratch) {
                Ok(0) => return false,
                Ok(n) => {
                    *dropped += n;
                    if *dropped > DRAIN_LIMIT {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_get_splits_path_and_query_and_keeps_the_authorization() {
        let p = parse_request(
            b"GET /api/v1/history?interface=wan HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n",
            8192,
        );
        assert_eq!(
            p,
            Parsed::Complete(Request {
                method: "GET".into(),
                path: "/api/v1/history".into(),
                query: Some("interface=wan".into()),
                authorization: Some("Bearer t".into()),
            })
        );
    }

    #[test]
    fn a_head_that_is_still_incomplete_at_the_limit_is_431() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nX: y", 8192),
            Parsed::Partial
        );
        let big = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(9000));
        assert!(matches!(
            parse_request(big.as_bytes(), 8192),
            Parsed::Invalid(431, _)
        ));
    }

    #[test]
    fn garbage_is_400_and_a_request_body_is_413() {
        assert!(matches!(
            parse_request(b"\x00\x01 nonsense\r\n\r\n", 8192),
            Parsed::Invalid(400, _)
        ));
        let post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        assert!(matches!(parse_request(post, 8192), Parsed::Invalid(413, _)));
        let chunked = b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            parse_request(chunked, 8192),
            Parsed::Invalid(413, _)
        ));
        let odd_length = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n";
        assert!(matches!(
            parse_request(odd_length, 8192),
            Parsed::Invalid(400, _)
        ));
        let empty_body = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            parse_request(empty_body, 8192),
            Parsed::Complete(_)
        ));
    }

    #[test]
    fn http_1_1_needs_a_host_and_1_0_does_not() {
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\n\r\n", 8192),
            Parsed::Invalid(400, "an HTTP/1.1 request needs a Host header")
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.0\r\n\r\n", 8192),
            Parsed::Complete(_)
        ));
    }

    #[test]
    fn targets_are_paths_or_absolute_urls() {
        let path = |target: &str| match parse_request(
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            8192,
        ) {
            Parsed::Complete(r) => Ok((r.path, r.query)),
            Parsed::Invalid(status, _) => Err(status),
            Parsed::Partial => Err(0),
        };
        assert_eq!(path("/metrics"), Ok(("/metrics".into(), None)));
        assert_eq!(
            path("http://router:9750/api/v1/status?x=1"),
            Ok(("/api/v1/status".into(), Some("x=1".into())))
        );
        assert_eq!(path("http://router:9750"), Ok(("/".into(), None)));
        assert_eq!(path("*"), Err(400));
        assert_eq!(path("api/v1/status"), Err(400));
        assert_eq!(path("http://router?x"), Err(400));
    }

    #[test]
    fn query_strings_decode_or_say_what_is_wrong() {
        let req = |q: &str| Request {
            method: "GET".into(),
            path: "/".into(),
            query: Some(q.into()),
            authorization: None,
        };
        assert_eq!(
            req("a=1&b=x%20y+z&&c").query_pairs().unwrap(),
            [
                ("a".to_string(), "1".to_string()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into())
            ]
        );
        assert_eq!(req("").query_pairs().unwrap(), []);
        assert_eq!(
            req("name=%C3%BC").query_pairs().unwrap()[0].1,
            "\u{fc}".to_string()
        );
        for bad in ["a=%", "a=%4", "a=%zz", "%ff=1", "a=%c3"] {
            assert!(req(bad).query_pairs().is_err(), "{bad}");
        }
    }

    #[test]
    fn head_answers_carry_the_length_but_no_body_and_extra_headers_are_sent() {
        let r = Response::error(405, "no").with_headers(&[ALLOW]);
        let get = String::from_utf8(r.to_bytes(false)).unwrap();
        let head = String::from_utf8(r.to_bytes(true)).unwrap();
        assert!(
            get.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{get}"
        );
        assert!(get.contains("\r\nAllow: GET, HEAD\r\n"), "{get}");
        assert!(get.ends_with("\r\n\r\n{\"error\":\"no\"}"), "{get}");
        assert!(head.contains("\r\nContent-Length: 14\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        assert_eq!(get.len(), head.len() + 14);
    }
}
