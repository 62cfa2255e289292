//! HTTP against a daemon inside a namespace: raw requests (any bytes, to
//! see how the server answers malformed ones) and load from many clients.
//! The agent side runs in the namespace; the test side decodes answers.

use super::Host;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

type R<T = ()> = Result<T, String>;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> R<Vec<u8>> {
    if text.len() % 2 != 0 {
        return Err("odd hex length".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// Agent side: sends `request` (hex) to `addr` as it is, reads until the
/// server closes, and answers with every byte it sent back (hex).
pub fn http_raw(addr: &str, request: &str) -> R<String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let request = unhex(request)?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    // A hang guard, not a measurement: the server's own deadline is 5 s.
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.write_all(&request).map_err(|e| format!("sending: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .map_err(|e| format!("reading the answer after {} bytes: {e}", answer.len()))?;
    Ok(hex(&answer))
}

/// Agent side: one HTTP/1.1 request from inside the namespace (the page test's
/// WebDriver calls to a chromedriver running here). `body_hex` is the
/// request body in hex, or `-`; answers `STATUS HEXBODY`.
pub fn http_request(method: &str, addr: &str, path: &str, body_hex: &str) -> R<String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let body = if body_hex == "-" {
        Vec::new()
    } else {
        unhex(body_hex)?
    };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    // Starting a browser takes seconds; nothing the tests ask takes a minute.
    let limit = Some(Duration::from_secs(60));
    let io = |e: std::io::Error| format!("{method} {path} at {addr}: {e}");
    stream.set_read_timeout(limit).map_err(io)?;
    stream.set_write_timeout(limit).map_err(io)?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    stream.write_all(&body).map_err(io)?;
    // chromedriver keeps the connection open: read the head, then the
    // body by its length (or to the end).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        match stream.read(&mut buf).map_err(io)? {
            0 => return Err(format!("{method} {path}: the answer ended in its head")),
            n => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("{method} {path}: no status in '{head}'"))?
        .to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix(':'))
            .map(|v| v.trim().to_string())
    };
    let mut answer = raw.split_off(head_end + 4);
    if let Some(length) = header("content-length") {
        let length: usize = length.parse().map_err(|e| format!("content-length: {e}"))?;
        while answer.len() < length {
            match stream.read(&mut buf).map_err(io)? {
                0 => return Err(format!("{method} {path}: the body ended early")),
                n => answer.extend_from_slice(&buf[..n]),
            }
        }
        answer.truncate(length);
    } else {
        stream.read_to_end(&mut answer).map_err(io)?;
    }
    Ok(format!("{status} {}", hex(&answer)))
}

/// Agent side: `threads` clients, each making `per_thread` GETs one after
/// another, cycling through `paths` (comma-separated), with netmeter's own
/// client. Every answer must be a 200 whose body equals the one fetched
/// before the run (for JSON, ignoring `uptime`, which ticks). Answers
/// `GOOD TOTAL`, or the first wrong answer as the error.
pub fn http_hammer(
    addr: &str,
    threads: usize,
    per_thread: usize,
    token: &str,
    paths: &str,
) -> R<String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let token = (token != "-").then_some(token);
    let paths: Vec<&str> = paths.split(',').collect();
    let get = |path: &str| {
        netmeter::serve::client::get(addr, path, token, Duration::from_secs(30))
            .map_err(|e| format!("{path}: {e}"))
    };
    let comparable = |body: &[u8]| -> Vec<u8> {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(mut v) => {
                if let Some(o) = v.as_object_mut() {
                    o.remove("uptime");
                }
                v.to_string().into_bytes()
            }
            Err(_) => body.to_vec(),
        }
    };
    let mut reference = Vec::new();
    for path in &paths {
        let (status, body) = get(path)?;
        if status != 200 {
            return Err(format!(
                "{path}: reference answer {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        reference.push(comparable(&body));
    }
    let good = std::sync::atomic::AtomicUsize::new(0);
    let first_bad: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (paths, reference, good, first_bad, get) =
                (&paths, &reference, &good, &first_bad, &get);
            scope.spawn(move || {
                for i in 0..per_thread {
                    let which = (t + i) % paths.len();
                    let verdict = match get(paths[which]) {
                        Ok((200, body)) if comparable(&body) == reference[which] => Ok(()),
                        Ok((status, body)) => Err(format!(
                            "{}: {status} {}",
                            paths[which],
                            String::from_utf8_lossy(&body)
                        )),
                        Err(e) => Err(e),
                    };
                    match verdict {
                        Ok(()) => {
                            good.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => {
                            let mut first = first_bad.lock().unwrap();
                            first.get_or_insert(format!("client {t}, request {i}: {e}"));
                        }
                    }
                }
            });
        }
    });
    let good = good.into_inner();
    match first_bad.into_inner().unwrap() {
        Some(bad) => Err(format!("{good} of {} right; {bad}", threads * per_thread)),
        None => Ok(format!("{good} {}", threads * per_thread)),
    }
}

/// A parsed answer: status, header lines (name lowercased), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Everything as received, to search for things that must not be there.
    pub raw: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The body as JSON; panics with the whole answer if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Test side: sends `request` from inside `host` to `addr` and parses the answer.
pub fn raw(host: &Host, addr: &str, request: &[u8]) -> Answer {
    let answer = host.run(&format!("http_raw {addr} {}", hex(request)));
    parse(unhex(&answer).unwrap())
}

pub fn parse(raw: Vec<u8>) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
        raw,
    }
}

/// (threads, VmRSS in kB) of a process, from /proc/PID/status.
pub fn threads_and_rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("Threads:"), field("VmRSS:"))
}
