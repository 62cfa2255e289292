//! A webhook receiver inside a namespace, for the quota tests: an HTTP
//! server on 127.0.0.1 that answers every request 204 and keeps each
//! POST's body, which `webhooks` reads back, tab-separated (agent answers are one line).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;

type R<T = ()> = Result<T, String>;

static BODIES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `webhook PORT`: serves on 127.0.0.1:PORT.
pub fn webhook(port: u16) -> R {
    let listener =
        TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("bind {port}: {e}"))?;
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let mut data = Vec::new();
            // Head, then as many body bytes as Content-Length says.
            let body = loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
                let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if data.len() >= end + 4 + len {
                    let post = head.starts_with("post ");
                    break Some((post, data[end + 4..end + 4 + len].to_vec()));
                }
            };
            if let Some((true, body)) = body {
                BODIES
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).replace(['\n', '\t'], " "));
            }
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    Ok(())
}

/// Every body received so far, tab-separated.
pub fn bodies() -> String {
    BODIES.lock().unwrap().join("\t")
}
