//! Outgoing connections, every wait bounded by a [`Deadline`]: name
//! resolution on a thread of its own, TCP connect, the HTTP/1.1 client
//! (`http`), and MQTT's wire format (`mqtt`). Compiled in both builds: the
//! CLI asks its daemon through it, the daemon's MQTT publisher speaks to
//! its broker with it, and the upstream slice reads routers through it
//! (SNMP and telnet use `resolve` and `connect`). Imports nothing of
//! netmeter's own.
//!
//! Messages call the peer "the router": it is one of the routers above
//! this one, or netmeter's own daemon on this router.

pub mod http;
#[cfg(feature = "mqtt")]
pub mod mqtt;

use std::fmt;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// The moment an exchange must be over by; every wait inside it is
/// bounded by what is left of it.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(limit: Duration) -> Self {
        Deadline(Instant::now() + limit)
    }

    pub fn at(instant: Instant) -> Self {
        Deadline(instant)
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    /// Time left, or a timeout naming `stage` when none is.
    pub fn remaining(self, stage: &str) -> Result<Duration, NetError> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(NetError::Timeout(format!(
                "{stage}: the scrape's time limit passed"
            )))
        } else {
            Ok(left)
        }
    }
}

/// Why an exchange failed, by the stage that broke; the text says what to
/// check. The upstream slice maps each to its `ScrapeError` namesake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The host name did not resolve.
    Dns(String),
    /// No connection, or it broke (refused, unreachable, reset).
    Connect(String),
    /// The deadline passed; the text starts with the stage (dns, connect,
    /// write, read).
    Timeout(String),
    /// The peer answered, but not as HTTP says (framing, size, status line).
    Protocol(String),
    /// The answer or a URL could not be read (not UTF-8, malformed URL).
    Parse(String),
    /// A local problem (an invalid request, no thread for the lookup).
    Local(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(m)
            | Self::Connect(m)
            | Self::Timeout(m)
            | Self::Protocol(m)
            | Self::Parse(m)
            | Self::Local(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for NetError {}

/// Resolves (when a name) and connects, within the deadline.
pub fn connect(host: &str, port: u16, deadline: Deadline) -> Result<TcpStream, NetError> {
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
    Err(last.unwrap_or_else(|| NetError::Dns(format!("cannot resolve '{host}': no address"))))
}

fn connect_error(addr: SocketAddr, e: std::io::Error) -> NetError {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => NetError::Timeout(format!(
            "connect: {addr} did not accept a connection within the time limit: \
             is the router at this address?"
        )),
        ErrorKind::ConnectionRefused => NetError::Connect(format!(
            "{addr}: connection refused: is the router at this address, and the port right?"
        )),
        _ => NetError::Connect(format!("{addr}: {e}: is the router at this address?")),
    }
}

/// Looks `host` up on a short-lived thread, so a resolver that hangs
/// cannot hold the caller past its deadline (the thread ends on its own).
/// Parking rather than a channel: it is already in the binary.
pub fn resolve(host: &str, port: u16, deadline: Deadline) -> Result<Vec<SocketAddr>, NetError> {
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
        .map_err(|e| NetError::Local(format!("cannot start a DNS lookup: {e}")))?;
    let found = loop {
        if let Some(found) = slot.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            break found;
        }
        let Ok(left) = deadline.remaining("dns") else {
            return Err(NetError::Timeout(format!(
                "dns: '{host}' did not resolve within the time limit"
            )));
        };
        // Returns early on unpark, or spuriously: the loop checks again.
        thread::park_timeout(left);
    };
    match found {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(NetError::Dns(format!(
            "cannot resolve '{host}': no address"
        ))),
        Err(e) => Err(NetError::Dns(format!("cannot resolve '{host}': {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::http::{self, Request};
    use super::*;

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
        let got = http::send("localhost", 80, &Request::get("/"), 1, past);
        assert!(
            matches!(got, Err(NetError::Timeout(ref m)) if m.starts_with("dns")),
            "{got:?}"
        );
        let got = http::send("127.0.0.1", 80, &Request::get("/"), 1, past);
        assert!(
            matches!(got, Err(NetError::Timeout(ref m)) if m.starts_with("connect")),
            "{got:?}"
        );
    }
}
