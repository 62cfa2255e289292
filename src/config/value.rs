//! What an option's value may be, and how words from the file are quoted
//! back in errors.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use super::prefix::{IpPrefix, PrefixError};
use super::table::Bad;
use super::uci;

pub(crate) const IFNAME: &str = "an interface name or glob such as eth* or br-lan";
pub(crate) const PATH: &str = "an absolute path starting with /";

pub(crate) const LABEL: &str = "1 to 64 characters, no control characters";

pub(crate) fn last<T>(values: &[&str], parse: fn(&str) -> Option<T>) -> Result<T, usize> {
    let at = values.len().saturating_sub(1);
    values.get(at).copied().and_then(parse).ok_or(at)
}

pub(crate) fn every<T>(values: &[&str], parse: fn(&str) -> Option<T>) -> Result<Vec<T>, usize> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| parse(v).ok_or(i))
        .collect()
}

/// Digits only: no sign, no unit, no fraction.
pub(crate) fn whole(text: &str, range: RangeInclusive<u64>) -> Option<u64> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = text.parse().ok()?;
    range.contains(&n).then_some(n)
}

/// Linux's own rule for interface names (dev_valid_name), wildcards aside.
pub(crate) fn pattern(text: &str) -> Option<String> {
    let bad = |c: char| c == '/' || c == ':' || c.is_whitespace();
    (!text.is_empty() && !text.contains(bad)).then(|| text.to_owned())
}

/// A real interface's name: no globs, since the LAN devices are looked up
/// by name, and at most IFNAMSIZ - 1 bytes.
pub(crate) fn exact_ifname(text: &str) -> Option<String> {
    let glob = |c: char| matches!(c, '*' | '?' | '[');
    let fits = text.len() <= 15 && text != "." && text != "..";
    pattern(text).filter(|_| fits && !text.contains(glob))
}

pub(crate) fn subnets(values: &[&str]) -> Result<Vec<IpPrefix>, Bad> {
    let parse = |(at, text): (usize, &&str)| {
        text.parse().map_err(|e| match e {
            PrefixError::HostBitsSet { network } => Bad {
                at,
                why: Some(format!(
                    "the host bits of '{}' must be zero: write '{network}'",
                    shown(text)
                )),
            },
            PrefixError::Malformed => Bad::from(at),
        })
    };
    values.iter().enumerate().map(parse).collect()
}

/// UCI's booleans, as OpenWrt's own scripts read them (`config_get_bool`).
pub(crate) fn boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "enabled" => Some(true),
        "0" | "false" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

/// A device or group name as shown in the API: surrounding spaces dropped,
/// short enough for a table column, nothing that could upset a terminal.
pub(crate) fn label(text: &str) -> Option<String> {
    let text = text.trim();
    let fits = (1..=64).contains(&text.chars().count());
    (fits && !text.contains(char::is_control)).then(|| text.to_owned())
}

pub(crate) fn socket(text: &str) -> Option<SocketAddr> {
    text.parse().ok().filter(|a: &SocketAddr| a.port() != 0)
}

/// A host name or IP literal (IPv6 without brackets); no scheme, port or path.
pub(crate) fn host(text: &str) -> Option<String> {
    if text.parse::<std::net::IpAddr>().is_ok() {
        return Some(text.to_owned());
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let fits = (1..=253).contains(&text.len());
    (fits && text.trim_end_matches('.').split('.').all(label_ok)).then(|| text.to_owned())
}

/// A TCP or UDP port, 1 to 65535.
pub(crate) fn port(text: &str) -> Option<u16> {
    whole(text, 1..=65535).map(|p| p as u16)
}

/// A user name as a login form or a broker takes it: 1 to 256
/// characters, no control characters.
pub(crate) fn username(text: &str) -> Option<String> {
    let fits = (1..=256).contains(&text.len()) && !text.contains(char::is_control);
    fits.then(|| text.to_owned())
}

pub(crate) const USERNAME: &str = "a user name of 1 to 256 characters without line breaks";

/// The last of `values` as a password. A secret: the message about a bad
/// one never quotes it.
pub(crate) fn password(values: &[&str]) -> Result<crate::config::Secret, super::table::Bad> {
    let at = values.len() - 1;
    crate::config::Secret::password(values[at]).ok_or_else(|| super::table::Bad {
        at,
        why: Some(
            "expected 1 to 1024 characters without line breaks; the value is not shown here \
             because it is a secret"
                .into(),
        ),
    })
}

pub(crate) fn absolute(text: &str) -> Option<PathBuf> {
    text.starts_with('/').then(|| text.into())
}

/// A word from the file as quoted in a message: short, control characters escaped.
pub(crate) fn shown(word: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::new();
    for (i, c) in word.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn describe(section: &uci::Section) -> String {
    match &section.name {
        Some(name) => format!("section '{name}'"),
        None => format!("the unnamed '{}' section", section.kind),
    }
}
