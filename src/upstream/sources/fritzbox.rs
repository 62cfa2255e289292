//! `fritzbox`: AVM's TR-064 on port 49000 with HTTP Digest auth; the same
//! WAN totals as IGD, with the 64-bit fields FRITZ!OS 7 added.

use super::soap::{self, Outcome, TR064_WAN_COMMON};
use super::{Deadline, Reading, ScrapeError, Source};
use crate::account::CounterWidth;
use crate::config::Secret;
use crate::upstream::UpstreamConfig;

const CONTROL: &str = "/upnp/control/wancommonifconfig1";
/// DeviceInfo's `GetInfo` gives the box's own uptime (`NewUpTime`).
const DEVICE_INFO: &str = "urn:dslforum-org:service:DeviceInfo:1";
const DEVICE_INFO_CONTROL: &str = "/upnp/control/deviceinfo";

/// The `fritzbox` source.
pub struct Fritzbox {
    host: String,
    port: u16,
    path: String,
    username: String,
    password: Option<Secret>,
    /// The box gave non-zero 64-bit totals (see [`soap::addon_counters`]).
    had_64: bool,
}

impl Fritzbox {
    pub fn new(config: &UpstreamConfig, password: Option<Secret>) -> Self {
        Fritzbox {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            path: config.path.clone().unwrap_or_else(|| CONTROL.into()),
            username: config.username.clone().unwrap_or_default(),
            password,
            had_64: false,
        }
    }
}

fn refused(detail: &str) -> ScrapeError {
    ScrapeError::Auth(format!(
        "the FRITZ!Box refused the login ({detail}): check option username and option password \
         (FRITZ!OS 7.24 and later need a user name; the user needs the right \"FRITZ!Box \
         settings\", and TR-064 access for applications must be on)"
    ))
}

impl Source for Fritzbox {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let password = self
            .password
            .as_ref()
            .ok_or_else(|| ScrapeError::Local("option password is missing".into()))?;
        let outcome = soap::call(
            &self.host,
            self.port,
            &self.path,
            TR064_WAN_COMMON,
            "GetAddonInfos",
            Some((&self.username, password)),
            deadline,
        );
        let body = match outcome {
            Ok(Outcome::Answer(body)) => body,
            Ok(Outcome::Fault(code @ (401 | 606), what)) => {
                return Err(refused(&format!("UPnP error {code} {what}")));
            }
            Ok(Outcome::Fault(code, what)) => {
                return Err(ScrapeError::Protocol(format!(
                    "the FRITZ!Box answered UPnP error {code} ({what})"
                )));
            }
            Ok(Outcome::NotFound) => {
                return Err(ScrapeError::Protocol(format!(
                    "POST {} answered HTTP 404: is this a FRITZ!Box's TR-064 port (49000)?",
                    self.path
                )));
            }
            Err(ScrapeError::Auth(_)) => return Err(refused("HTTP 401")),
            Err(e) => return Err(e),
        };
        let counters = soap::addon_counters(&body, self.had_64)?;
        self.had_64 |= counters.width == CounterWidth::Bits64
            && (counters.rx_bytes, counters.tx_bytes) != (0, 0);
        Ok(Reading {
            wan: Some(counters),
            uptime_secs: self.uptime(password, deadline),
            ..Reading::default()
        })
    }
}

impl Fritzbox {
    /// The box's uptime; None when the user may not read DeviceInfo (UPnP
    /// error 606) or the answer lacks it: reboots are then told by the
    /// counters, and the reading is kept.
    fn uptime(&self, password: &Secret, deadline: Deadline) -> Option<u64> {
        let outcome = soap::call(
            &self.host,
            self.port,
            DEVICE_INFO_CONTROL,
            DEVICE_INFO,
            "GetInfo",
            Some((&self.username, password)),
            deadline,
        );
        match outcome {
            Ok(Outcome::Answer(body)) => soap::number(&body, "NewUpTime").ok().flatten(),
            _ => None,
        }
    }
}
