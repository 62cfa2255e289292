//! The routers above this one, read over their own protocols.
//!
//! One file per protocol behind [`Source`]: a source turns one scrape into
//! a [`Reading`] of raw counters with their declared widths and nothing
//! more. Wraps, resets, zero glitches and rates are `upstream::account`'s
//! business; schedules, time limits and back-off are `upstream::runner`'s.

use crate::mac::Mac;
use std::fmt;
use std::net::IpAddr;

use crate::account::CounterWidth;
use crate::config::Secret;
use crate::config::upstream::{UpstreamConfig, UpstreamKind};
use crate::net::NetError;

pub use crate::net::Deadline;

pub mod asus;
pub mod base64;
pub mod ber;
pub mod deco;
pub mod digest;
pub mod draytek;
pub mod fritzbox;
pub mod http;
pub mod igd;
pub mod md5;
pub mod prometheus;
pub mod snmp;
pub mod soap;
pub mod telnet;
pub mod tplink;
pub mod ubus;
pub mod vnstat;

/// One upstream router, as a protocol client. Sessions (login tokens)
/// live in the source and are reused across scrapes until rejected.
pub trait Source: Send {
    /// Reads the router's counters once, finishing before `deadline`.
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError>;

    /// Ends the router-side session, if the protocol keeps one (routers
    /// that allow one admin session at a time need this).
    fn close(&mut self, _deadline: Deadline) {}
}

/// What one scrape saw: raw counters as the router reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// The router's Internet side.
    pub wan: Option<Counters>,
    /// Further interfaces by the router's name for them.
    pub interfaces: Vec<(String, Counters)>,
    /// Per device, where the protocol has it.
    pub devices: Vec<DeviceReading>,
    /// Line health (DSL): counters and gauges by name.
    pub line: Vec<LineValue>,
    /// Seconds the router (or the service answering) has been up, where
    /// the protocol says: going back means it restarted, which tells a
    /// reboot from a 32-bit wrap (`upstream::account`).
    pub uptime_secs: Option<u64>,
}

/// Received and sent bytes from the router's point of view of its
/// interface (rx = into the router from that side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The width the protocol declares: a 32-bit field wraps at 2^32.
    pub width: CounterWidth,
}

/// One device as the upstream router counts it. rx/tx are the device's
/// own view (rx = downloaded by the device), like netmeter's devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceReading {
    pub mac: Mac,
    pub ip: Option<IpAddr>,
    pub hostname: Option<String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub width: CounterWidth,
}

/// A line statistic (DrayTek VDSL): `name` is snake_case, `end` "near" or
/// "far" where the statistic has two ends.
#[derive(Clone, Debug, PartialEq)]
pub struct LineValue {
    pub name: String,
    pub end: Option<&'static str>,
    pub value: f64,
    pub kind: LineKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// Only grows (CRC errors, errored seconds).
    Counter,
    /// A value of the moment (SNR margin, attenuation, rate).
    Gauge,
}

/// Why a scrape failed, in the terms `netmeter check` reports: which stage
/// broke, with the detail a person can act on. Never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScrapeError {
    /// The host name did not resolve.
    Dns(String),
    /// No connection (refused, unreachable).
    Connect(String),
    /// The time limit passed; names the stage (connect, read, …).
    Timeout(String),
    /// The router answered, but not as the protocol says (status, framing).
    Protocol(String),
    /// The router refused the credentials or the session; retried later.
    Auth(String),
    /// The router says the credentials are wrong: retrying could lock the
    /// account, so the source stops until the configuration changes.
    WrongCredentials(String),
    /// The router locked logins for this long.
    LockedOut { seconds: u64, detail: String },
    /// The answer came but could not be read.
    Parse(String),
    /// A local problem (unreadable password_file or data file).
    Local(String),
}

impl ScrapeError {
    /// The stage, one word, for `check` and the API.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Dns(_) => "dns",
            Self::Connect(_) => "connect",
            Self::Timeout(_) => "timeout",
            Self::Protocol(_) => "protocol",
            Self::Auth(_) | Self::WrongCredentials(_) | Self::LockedOut { .. } => "auth",
            Self::Parse(_) => "parse",
            Self::Local(_) => "local",
        }
    }
}

impl fmt::Display for ScrapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(d) => write!(f, "DNS: {d}"),
            Self::Connect(d) => write!(f, "connect: {d}"),
            Self::Timeout(d) => write!(f, "timed out: {d}"),
            Self::Protocol(d) => write!(f, "protocol: {d}"),
            Self::Auth(d) => write!(f, "auth: {d}"),
            Self::WrongCredentials(d) => write!(
                f,
                "wrong credentials: {d}; not retrying until the configuration changes \
                 (fix option username/password, then 'service netmeter reload')"
            ),
            Self::LockedOut { seconds, detail } => {
                write!(f, "locked out for {seconds} s: {detail}")
            }
            Self::Parse(d) => write!(f, "parse: {d}"),
            Self::Local(d) => write!(f, "{d}"),
        }
    }
}

impl std::error::Error for ScrapeError {}

/// The network layer's stages are the scrape's.
impl From<NetError> for ScrapeError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Dns(m) => Self::Dns(m),
            NetError::Connect(m) => Self::Connect(m),
            NetError::Timeout(m) => Self::Timeout(m),
            NetError::Protocol(m) => Self::Protocol(m),
            NetError::Parse(m) => Self::Parse(m),
            NetError::Local(m) => Self::Local(m),
        }
    }
}

/// The password from `option password`, or read from `option password_file`
/// (first line, without its line break).
pub fn password(config: &UpstreamConfig) -> Result<Option<Secret>, ScrapeError> {
    if let Some(p) = &config.password {
        return Ok(Some(p.clone()));
    }
    let Some(path) = &config.password_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScrapeError::Local(format!(
            "cannot read option password_file {}: {e}",
            path.display()
        ))
    })?;
    let line = text.lines().next().unwrap_or("");
    Secret::password(line).map(Some).ok_or_else(|| {
        ScrapeError::Local(format!(
            "option password_file {}: the first line must hold the password",
            path.display()
        ))
    })
}

/// The client for a configured source.
pub fn source_for(config: &UpstreamConfig) -> Result<Box<dyn Source>, ScrapeError> {
    let password = password(config)?;
    match config.kind {
        UpstreamKind::Igd => Ok(Box::new(igd::Igd::new(config))),
        UpstreamKind::Fritzbox => Ok(Box::new(fritzbox::Fritzbox::new(config, password))),
        UpstreamKind::Ubus => Ok(Box::new(ubus::Ubus::new(config, password))),
        UpstreamKind::Asus => Ok(Box::new(asus::Asus::new(config, password))),
        UpstreamKind::Snmp => Ok(Box::new(snmp::Snmp::new(config))),
        UpstreamKind::Tplink => Ok(Box::new(tplink::Tplink::new(config, password))),
        UpstreamKind::Prometheus => Ok(Box::new(prometheus::Prometheus::new(config))),
        UpstreamKind::Vnstat => Ok(Box::new(vnstat::Vnstat::new(config))),
        UpstreamKind::Draytek => Ok(Box::new(draytek::Draytek::new(config, password))),
        UpstreamKind::Deco => Ok(Box::new(deco::Deco::new(config, password))),
    }
}
