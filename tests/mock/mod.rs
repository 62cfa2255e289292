//! An HTTP server on 127.0.0.1 (a random port) for the upstream
//! protocols' tests: each test file does `mod mock;`, starts a
//! [`MockHttp`] with a handler that answers like the router, and checks
//! what the client sent in [`MockHttp::requests`]. One thread per
//! connection, one request per connection (the client sends
//! `Connection: close`); everything stops when the MockHttp is dropped.

#![allow(dead_code)] // each test file uses its own part

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use netmeter::upstream::sources::md5;

/// A request as the mock received it.
#[derive(Clone, Debug)]
pub struct MockRequest {
    pub method: String,
    /// The request target: path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Every byte received, head and body: to assert a secret is absent.
    pub raw: Vec<u8>,
}

impl MockRequest {
    /// Header `name` in any case; the last one if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether `text` appears anywhere in what was received.
    pub fn contains(&self, text: &str) -> bool {
        self.raw
            .windows(text.len().max(1))
            .any(|w| w == text.as_bytes())
    }
}

/// What the mock does with a request.
pub struct Reply(Action);

enum Action {
    Write(Vec<u8>),
    Hang,
    Trickle(Vec<u8>, Duration),
    Close,
}

impl Reply {
    /// 200 with this body and Content-Type.
    pub fn ok(content_type: &str, body: impl AsRef<[u8]>) -> Reply {
        Reply::status(200, &[("Content-Type", content_type)], body)
    }

    /// Any status with these headers; Content-Length is added unless the
    /// headers set it or Transfer-Encoding.
    pub fn status(code: u16, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Reply {
        let body = body.as_ref();
        let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let framed = headers.iter().any(|(n, _)| {
            n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
        });
        if !framed {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Reply(Action::Write(bytes))
    }

    /// 200 with a chunked body, one chunk per piece.
    pub fn chunked(content_type: &str, pieces: &[&[u8]]) -> Reply {
        let mut bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for piece in pieces.iter().filter(|p| !p.is_empty()) {
            bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            bytes.extend_from_slice(piece);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        Reply(Action::Write(bytes))
    }

    /// These bytes verbatim, then close: malformed or truncated answers.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply(Action::Write(bytes.into()))
    }

    /// Never answer; the connection stays open until the mock is dropped.
    pub fn hang() -> Reply {
        Reply(Action::Hang)
    }

    /// These bytes one at a time, `per_byte` apart, then close.
    pub fn trickle(bytes: impl Into<Vec<u8>>, per_byte: Duration) -> Reply {
        Reply(Action::Trickle(bytes.into(), per_byte))
    }

    /// Close the connection without a byte of answer.
    pub fn close() -> Reply {
        Reply(Action::Close)
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

type Handler = dyn Fn(&MockRequest) -> Reply + Send + Sync;

struct Shared {
    stop: AtomicBool,
    log: Mutex<Vec<MockRequest>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// The running server; stops (and joins its threads) on drop.
pub struct MockHttp {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl MockHttp {
    /// Serves every request with `handler` (called on the connection's
    /// thread: keep state in a Mutex or atomics).
    pub fn start<F>(handler: F) -> MockHttp
    where
        F: Fn(&MockRequest) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        });
        let handler: Arc<Handler> = Arc::new(handler);
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if acceptor_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (shared, handler) = (Arc::clone(&acceptor_shared), Arc::clone(&handler));
                let worker = thread::spawn(move || serve(stream, &shared, &*handler));
                acceptor_shared.workers.lock().unwrap().push(worker);
            }
        });
        MockHttp {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` followed by `path`, for `option url`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything received so far, in order of arrival.
    pub fn requests(&self) -> Vec<MockRequest> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for MockHttp {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the stop flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = std::mem::take(&mut *self.shared.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// Waits `time` in small steps; false if the mock was stopped meanwhile.
fn pause(shared: &Shared, time: Duration) -> bool {
    let end = Instant::now() + time;
    while Instant::now() < end {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_millis(5).min(end - Instant::now()));
    }
    !shared.stop.load(Ordering::SeqCst)
}

fn serve(mut stream: TcpStream, shared: &Shared, handler: &Handler) {
    let Some(request) = read_request(&mut stream, shared) else {
        return;
    };
    shared.log.lock().unwrap().push(request.clone());
    match handler(&request).0 {
        Action::Write(bytes) => {
            let _ = stream.write_all(&bytes);
            finish(stream);
        }
        Action::Hang => while pause(shared, Duration::from_millis(50)) {},
        Action::Trickle(bytes, per_byte) => {
            for byte in bytes {
                if stream.write_all(&[byte]).is_err() || !pause(shared, per_byte) {
                    return;
                }
            }
            finish(stream);
        }
        Action::Close => {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Closes our side and lets the client read to the end before the socket
/// goes, so the answer is not cut by a reset.
fn finish(stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 1024];
    let mut stream = stream;
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// Reads one request (head, then a Content-Length body); None if the
/// client went away or the mock stopped first.
fn read_request(stream: &mut TcpStream, shared: &Shared) -> Option<MockRequest> {
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .ok()?;
    let give_up = Instant::now() + Duration::from_secs(20);
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut head_end = None;
    let mut body_len = 0;
    loop {
        if head_end.is_none()
            && let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n")
        {
            head_end = Some(at + 4);
            let head = String::from_utf8_lossy(&raw[..at]).into_owned();
            body_len = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
        }
        if let Some(end) = head_end
            && raw.len() >= end + body_len
        {
            break;
        }
        if shared.stop.load(Ordering::SeqCst) || Instant::now() > give_up || raw.len() > 8 << 20 {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let head_end = head_end?;
    let head = String::from_utf8_lossy(&raw[..head_end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = raw[head_end..head_end + body_len].to_vec();
    Some(MockRequest {
        method,
        path,
        headers,
        body,
        raw,
    })
}

/// Accepts TCP connections and never reads or writes: a router whose web
/// server hangs. Stops on drop.
pub struct SilentListener {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentListener {
    pub fn port(&self) -> u16 {
        self.port
    }
}

pub fn silent_listener() -> SilentListener {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = thread::spawn(move || {
        let mut held = Vec::new();
        while !thread_stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    SilentListener {
        port,
        stop,
        thread: Some(thread),
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released), for
/// "connection refused".
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A `WWW-Authenticate` value as a FRITZ!Box sends it on TR-064.
pub fn digest_challenge(realm: &str, nonce: &str) -> String {
    format!(
        r#"Digest realm="{realm}", nonce="{nonce}", qop="auth", charset="utf-8", algorithm="MD5""#
    )
}

/// Whether `request` carries an `Authorization: Digest` answering the
/// challenge (`realm`, `nonce`) for `username` and `password`: the
/// expected response is computed here from the known password (RFC 7616
/// with qop=auth, or RFC 2069 without qop), not taken from the client.
pub fn digest_valid(
    request: &MockRequest,
    realm: &str,
    nonce: &str,
    username: &str,
    password: &str,
) -> bool {
    let Some(value) = request.header("authorization") else {
        return false;
    };
    let Some(params) = value.strip_prefix("Digest ") else {
        return false;
    };
    let fields = digest_params(params);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if field("username") != Some(username)
        || field("realm") != Some(realm)
        || field("nonce") != Some(nonce)
        || field("uri") != Some(request.path.as_str())
        || !matches!(field("algorithm"), None | Some("MD5"))
    {
        return false;
    }
    let ha1 = md5::hex(format!("{username}:{realm}:{password}").as_bytes());
    let ha2 = md5::hex(format!("{}:{}", request.method, request.path).as_bytes());
    let expected = match (field("qop"), field("nc"), field("cnonce")) {
        (Some("auth"), Some(nc), Some(cnonce)) => {
            md5::hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes())
        }
        (None, None, None) => md5::hex(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
        _ => return false,
    };
    field("response") == Some(expected.as_str())
}

/// `name=value, name="quoted, value"` pairs (backslash escapes honoured).
fn digest_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if chars.next() != Some('=') {
            return out;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    _ => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.push((name.trim().to_owned(), value.trim().to_owned()));
    }
}
