//! `fritzbox`: AVM's TR-064 on port 49000 with HTTP Digest auth; the same
//! WAN totals as IGD, with the 64-bit fields FRITZ!OS 7 added.

use super::soap::{self, Outcome, TR064_WAN_COMMON};
use super::{Deadline, Reading, ScrapeError, Source};
use crate::config::{Secret, UpstreamConfig};

const CONTROL: &str = "/upnp/control/wancommonifconfig1";

/// The `fritzbox` source.
pub struct Fritzbox {
    host: String,
    port: u16,
    path: String,
    username: String,
    password: Option<Secret>,
}

impl Fritzbox {
    pub fn new(config: &UpstreamConfig, password: Option<Secret>) -> Self {
        Fritzbox {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            path: config.path.clone().unwrap_or_else(|| CONTROL.into()),
            username: config.username.clone().unwrap_or_default(),
            password,
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
            Err(ScrapeError::Auth(_)) => return Err(refused("HTTP 401")),
            Err(e) => return Err(e),
        };
        Ok(Reading {
            wan: Some(soap::addon_counters(&body)?),
            ..Reading::default()
        })
    }
}
