//! HTTP to the routers on the LAN: the one client (`crate::net::http`)
//! with the routers' body cap and errors as [`ScrapeError`]s, plus a
//! Digest-authenticated send (FRITZ!Box TR-064).

use super::{Deadline, ScrapeError, digest};
use crate::config::Secret;
use crate::net::http as client;

pub use client::{Request, Response, Url};

/// The largest body accepted: router pages and SOAP answers are far smaller.
pub const MAX_BODY: usize = 4 << 20;

/// Sends `request` to `host` (a name, an IPv4 or an IPv6 address, with or
/// without brackets) and reads the whole answer, all before `deadline`.
pub fn send(
    host: &str,
    port: u16,
    request: &Request,
    deadline: Deadline,
) -> Result<Response, ScrapeError> {
    Ok(client::send(host, port, request, MAX_BODY, deadline)?)
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
        .find_map(|(_, value)| digest::parse_challenge(value));
    let Some(challenge) = challenge else {
        return Ok(first);
    };
    let authorization = digest::authorization(
        &challenge,
        username,
        password,
        request.method,
        request.path,
        &digest::cnonce(),
    );
    let retry = request.clone().header("Authorization", authorization);
    send(host, port, &retry, deadline)
}

/// Splits `http://HOST[:PORT][/PATH]`. Only plain http: these are LAN
/// routers, and TLS is not built in.
pub fn parse_url(url: &str) -> Result<Url, ScrapeError> {
    Ok(client::parse_url(url)?)
}

/// Reads one response from `bytes`, as if the router wrote them and closed
/// the connection: what [`send`] does with the socket, for tests and fuzzing.
pub fn parse_response(bytes: &[u8]) -> Result<Response, ScrapeError> {
    Ok(client::parse_response(bytes, MAX_BODY)?)
}
