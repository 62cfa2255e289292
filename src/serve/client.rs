//! A minimal HTTP/1.1 GET client for asking a netmeter daemon over loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Answers larger than this are refused: netmeter never sends one.
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens there (connection refused, unreachable): no daemon.
    NoDaemon(String),
    /// Something answered, but not as a netmeter daemon would.
    Failed(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NoDaemon(m) | ClientError::Failed(m) => f.write_str(m),
        }
    }
}

/// Splits `http://HOST:PORT[/…]` into a socket address.
pub fn parse_url(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{url}': expected http://HOST:PORT"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let with_port = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:9750")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("'{url}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{url}': no address"))
}

/// GETs `path`, with `Authorization: Bearer <token>` when a token is
/// given; the status and body.
pub fn get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ClientError> {
    let authorization = match token {
        // A configured token is checked at load; this guards other callers.
        Some(t) if t.contains(|c: char| c.is_control()) => {
            return Err(ClientError::Failed(
                "the token contains control characters".into(),
            ));
        }
        Some(t) => format!("Authorization: Bearer {t}\r\n"),
        None => String::new(),
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| ClientError::NoDaemon(format!("no daemon answers at {addr}: {e}")))?;
    let failed = |e: std::io::Error| ClientError::Failed(format!("asking {addr}: {e}"));
    stream.set_read_timeout(Some(timeout)).map_err(failed)?;
    stream.set_write_timeout(Some(timeout)).map_err(failed)?;
    let host = addr.to_string();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Connection: close\r\n\r\n"
    )
    .map_err(failed)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut raw)
        .map_err(failed)?;
    parse_response(&raw).map_err(|e| ClientError::Failed(format!("{addr} answered oddly: {e}")))
}

fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the answer ended inside its head".into()),
        Err(e) => return Err(e.to_string()),
    };
    let body = &raw[head_len..];
    let length = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    if let Some(n) = length
        && body.len() != n
    {
        return Err(format!("body of {} bytes, Content-Length {n}", body.len()));
    }
    Ok((resp.code.unwrap_or(0), body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_default_to_port_9750_and_accept_ipv6() {
        assert_eq!(parse_url("http://127.0.0.1:9751").unwrap().port(), 9751);
        assert_eq!(parse_url("http://127.0.0.1/").unwrap().port(), 9750);
        assert!(parse_url("http://[::1]:80").unwrap().is_ipv6());
        assert!(parse_url("ftp://x").is_err());
    }

    #[test]
    fn a_body_shorter_than_its_content_length_is_an_error() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap(),
            (200, b"{}".to_vec())
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}").is_err());
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }
}
