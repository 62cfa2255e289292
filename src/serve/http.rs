//! A bounded HTTP/1.1 server: one thread, one poll() loop, fixed limits.
//!
//! A router has 64 MB: stalled or hostile clients must not be able to grow
//! threads or memory. Every connection has a head-size cap and a deadline;
//! past `max_connections` new clients get an immediate 503. One request per
//! connection (`Connection: close`), which is all pollers need.

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// More header lines (name, value), after the standard ones.
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Response {
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: "application/json",
            body,
            headers: Vec::new(),
        }
    }

    /// Adds a header line.
    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Response {
        self.headers.push((name, value));
        self
    }

    /// A JSON error body: `{"error":"…"}`.
    pub fn error(status: u16, message: &str) -> Response {
        let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
            .unwrap_or_else(|_| b"{}".to_vec());
        Response::json(status, body)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
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
            let target = req.path.unwrap_or("/");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q.to_string())),
                None => (target, None),
            };
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
            };
            if header("content-length").is_some_and(|v| v.trim() != "0")
                || header("transfer-encoding").is_some()
            {
                return Parsed::Invalid(
                    413,
                    "request bodies are not accepted: the API is read-only",
                );
            }
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

enum State {
    Reading,
    Writing { out: Vec<u8>, done: usize },
}

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
                    State::Reading => PollFlags::POLLIN,
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
                        .write(&Response::error(408, "request timeout").to_bytes());
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
            // Accept what is queued, within the limit; the rest get a 503.
            while let Ok((stream, _)) = l.accept() {
                if conns.len() >= limits.max_connections {
                    let _ = stream.set_nonblocking(true);
                    let busy = Response::error(503, "too many connections; try again");
                    let _ = (&stream).write(&busy.to_bytes());
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

/// Moves one connection forward; false when it is finished or broken.
fn advance<H>(conn: &mut Connection, handler: &H, limits: Limits, scratch: &mut [u8]) -> bool
where
    H: Fn(&Request) -> Response,
{
    match &mut conn.state {
        State::Reading => {
            let room = limits.max_head_bytes.saturating_sub(conn.head.len()).max(1);
            let take = room.min(scratch.len());
            match conn.stream.read(&mut scratch[..take]) {
                Ok(0) => return false,
                Ok(n) => conn.head.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
            let response = match parse_request(&conn.head, limits.max_head_bytes) {
                Parsed::Partial => return true,
                Parsed::Invalid(status, why) => Response::error(status, why),
                Parsed::Complete(req) => handler(&req),
            };
            conn.head = Vec::new();
            conn.state = State::Writing {
                out: response.to_bytes(),
                done: 0,
            };
            // Try at once: most answers fit the socket buffer.
            advance(conn, handler, limits, scratch)
        }
        State::Writing { out, done } => loop {
            match conn.stream.write(&out[*done..]) {
                Ok(0) => return false,
                Ok(n) => *done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
            if *done == out.len() {
                let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                return false;
            }
        },
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
        let post = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        assert!(matches!(parse_request(post, 8192), Parsed::Invalid(413, _)));
    }

    #[test]
    fn added_headers_follow_the_standard_ones_before_the_body() {
        let r = Response::json(200, b"{}".to_vec()).with_header("X-Test", "yes");
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            text.ends_with("Cache-Control: no-store\r\nX-Test: yes\r\n\r\n{}"),
            "{text}"
        );
    }
}
