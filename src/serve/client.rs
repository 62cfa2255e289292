//! The CLI's GET to a netmeter daemon over loopback, through the one HTTP
//! client (`net::http`); this file adds the daemon's default port, the
//! bearer token and what a failure means for the CLI.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::net::http::{self, Request};
use crate::net::{Deadline, NetError};

/// Answers larger than this are refused: netmeter never sends one.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

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
/// given; the status and body. `timeout` bounds the connect, then the
/// exchange.
pub fn get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ClientError> {
    let request = match token {
        // A configured token is checked at load; this guards other callers.
        Some(t) if t.contains(|c: char| c.is_control()) => {
            return Err(ClientError::Failed(
                "the token contains control characters".into(),
            ));
        }
        Some(t) => Request::get(path).header("Authorization", format!("Bearer {t}")),
        None => Request::get(path),
    };
    // Connected here, not by `http::send`, so a refusal keeps the OS's
    // words: it means no daemon, and the CLI says so.
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| ClientError::NoDaemon(format!("no daemon answers at {addr}: {e}")))?;
    let host = addr.ip().to_string();
    let deadline = Deadline::after(timeout);
    match http::exchange(stream, &host, addr.port(), &request, MAX_ANSWER, deadline) {
        Ok(response) => Ok((response.status, response.body)),
        Err(NetError::Protocol(e) | NetError::Parse(e)) => {
            Err(ClientError::Failed(format!("{addr} answered oddly: {e}")))
        }
        Err(e) => Err(ClientError::Failed(format!("asking {addr}: {e}"))),
    }
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
        let parse = |raw| http::parse_response(raw, MAX_ANSWER).map(|r| (r.status, r.body));
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap(),
            (200, b"{}".to_vec())
        );
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}").is_err());
        assert!(parse(b"HTTP/1.1 200").is_err());
    }
}
