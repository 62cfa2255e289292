//! `igd`: UPnP IGD's WANCommonInterfaceConfig:1, without auth (FRITZ!Box
//! with "UPnP status" on, miniupnpd on OpenWrt and many others).

use super::soap::{self, IGD_WAN_COMMON, Outcome};
use super::{Counters, Deadline, Reading, ScrapeError, Source};
use crate::collect::links::CounterWidth;
use crate::config::UpstreamConfig;

/// Where device descriptions are, FRITZ!Box's first, then miniupnpd's.
const DESCRIPTIONS: [&str; 2] = ["/igddesc.xml", "/rootDesc.xml"];

/// Which action the router answers.
#[derive(Clone, Copy, PartialEq)]
enum Method {
    Unknown,
    AddonInfos,
    /// miniupnpd has no GetAddonInfos: one call per direction.
    TotalBytes,
}

/// The `igd` source.
pub struct Igd {
    host: String,
    port: u16,
    /// `option path`, or what discovery found.
    control: Option<String>,
    fixed_path: bool,
    method: Method,
}

impl Igd {
    pub fn new(config: &UpstreamConfig) -> Self {
        Igd {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            control: config.path.clone(),
            fixed_path: config.path.is_some(),
            method: Method::Unknown,
        }
    }

    /// The control URL from the first description that lists the service.
    fn discover(&self, deadline: Deadline) -> Result<String, ScrapeError> {
        let mut tried = Vec::new();
        for path in DESCRIPTIONS {
            let request = super::http::Request::get(path);
            let response = super::http::send(&self.host, self.port, &request, deadline)?;
            if response.status == 200
                && let Some(url) = soap::control_url(response.text()?, IGD_WAN_COMMON)
            {
                return Ok(url);
            }
            tried.push(format!("{path} (HTTP {})", response.status));
        }
        Err(ScrapeError::Protocol(format!(
            "no WANCommonInterfaceConfig service in {}: enable UPnP status information on the \
             router, or set option path to its control URL",
            tried.join(", ")
        )))
    }

    fn call(
        &self,
        control: &str,
        action: &str,
        deadline: Deadline,
    ) -> Result<Outcome, ScrapeError> {
        soap::call(
            &self.host,
            self.port,
            control,
            IGD_WAN_COMMON,
            action,
            None,
            deadline,
        )
    }

    fn read(&mut self, control: &str, deadline: Deadline) -> Result<Counters, ScrapeError> {
        if self.method != Method::TotalBytes {
            match self.call(control, "GetAddonInfos", deadline)? {
                Outcome::Answer(body) => {
                    self.method = Method::AddonInfos;
                    return soap::addon_counters(&body);
                }
                Outcome::Fault(..) if self.method == Method::Unknown => {
                    self.method = Method::TotalBytes;
                }
                Outcome::Fault(code, what) => return Err(fault(code, &what)),
            }
        }
        let value = |action: &str, field: &str| match self.call(control, action, deadline)? {
            Outcome::Answer(body) => soap::number(&body, field)?.ok_or_else(|| {
                ScrapeError::Parse(format!("the answer to {action} has no {field}"))
            }),
            Outcome::Fault(code, what) => Err(fault(code, &what)),
        };
        Ok(Counters {
            rx_bytes: value("GetTotalBytesReceived", "NewTotalBytesReceived")?,
            tx_bytes: value("GetTotalBytesSent", "NewTotalBytesSent")?,
            width: CounterWidth::Bits32,
        })
    }
}

fn fault(code: u32, description: &str) -> ScrapeError {
    ScrapeError::Protocol(format!(
        "the router answered UPnP error {code} ({description})"
    ))
}

impl Source for Igd {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let control = match &self.control {
            Some(c) => c.clone(),
            None => {
                let c = self.discover(deadline)?;
                self.control = Some(c.clone());
                c
            }
        };
        match self.read(&control, deadline) {
            // The box moved its control URL (a firmware update): look again next time.
            Err(ScrapeError::Protocol(e)) if e.contains("HTTP 404") && !self.fixed_path => {
                self.control = None;
                Err(ScrapeError::Protocol(e))
            }
            result => Ok(Reading {
                wan: Some(result?),
                ..Reading::default()
            }),
        }
    }
}
