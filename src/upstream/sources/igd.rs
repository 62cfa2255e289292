//! `igd`: UPnP IGD's WANCommonInterfaceConfig:1, without auth (FRITZ!Box
//! with "UPnP status" on, miniupnpd on OpenWrt and many others).

use super::http::{self, Request};
use super::soap::{self, IGD_WAN_COMMON, Outcome};
use super::{Counters, Deadline, Reading, ScrapeError, Source};
use crate::account::CounterWidth;
use crate::upstream::UpstreamConfig;

/// The connection services whose `GetStatusInfo` gives `NewUptime`.
const CONNECTIONS: [&str; 2] = [
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/// Where device descriptions are, FRITZ!Box's first, then miniupnpd's.
const DESCRIPTIONS: [&str; 2] = ["/igddesc.xml", "/rootDesc.xml"];

/// Which action the router answers.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// The box gave non-zero 64-bit totals (see [`soap::addon_counters`]).
    had_64: bool,
    /// The connection service's control URL and type, from discovery.
    status: Option<(String, &'static str)>,
}

impl Igd {
    pub fn new(config: &UpstreamConfig) -> Self {
        Igd {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            control: config.path.clone(),
            fixed_path: config.path.is_some(),
            method: Method::Unknown,
            had_64: false,
            status: None,
        }
    }

    /// The control URL from the first description that lists the service.
    fn discover(&mut self, deadline: Deadline) -> Result<String, ScrapeError> {
        let mut tried = String::new();
        for path in DESCRIPTIONS {
            let response = http::send(&self.host, self.port, &Request::get(path), deadline)?;
            let text = response.text().unwrap_or("");
            if response.status == 200
                && let Some(url) = soap::control_url(text, IGD_WAN_COMMON)
            {
                self.status = CONNECTIONS
                    .iter()
                    .find_map(|&service| Some((soap::control_url(text, service)?, service)));
                return Ok(url);
            }
            if !tried.is_empty() {
                tried.push_str(", ");
            }
            tried.push_str(path);
            tried.push_str(&match response.status {
                200 => " (no such service)".to_owned(),
                status => format!(" (HTTP {status})"),
            });
        }
        Err(ScrapeError::Protocol(format!(
            "no WANCommonInterfaceConfig:1 service in {tried}: turn on UPnP status information \
             on the router, check option port (miniupnpd has its own), or set option path to the \
             control URL"
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

    /// One reading from `control`; None if it answered 404.
    fn read(&mut self, control: &str, deadline: Deadline) -> Result<Option<Counters>, ScrapeError> {
        let mut addon_fault = None;
        if self.method != Method::TotalBytes {
            match self.call(control, "GetAddonInfos", deadline)? {
                Outcome::Answer(body) => {
                    self.method = Method::AddonInfos;
                    let counters = soap::addon_counters(&body, self.had_64)?;
                    self.had_64 |= counters.width == CounterWidth::Bits64
                        && (counters.rx_bytes, counters.tx_bytes) != (0, 0);
                    return Ok(Some(counters));
                }
                Outcome::NotFound => return Ok(None),
                // miniupnpd: 401 Invalid Action. Try the standard pair.
                Outcome::Fault(code, what) if self.method == Method::Unknown => {
                    addon_fault = Some(format!("GetAddonInfos: UPnP error {code} ({what})"));
                }
                Outcome::Fault(code, what) => return Err(fault("GetAddonInfos", code, &what)),
            }
        }
        let mut values = [0; 2];
        for (value, (action, field)) in values.iter_mut().zip([
            ("GetTotalBytesReceived", "NewTotalBytesReceived"),
            ("GetTotalBytesSent", "NewTotalBytesSent"),
        ]) {
            *value = match self.call(control, action, deadline)? {
                Outcome::Answer(body) => soap::number(&body, field)?.ok_or_else(|| {
                    ScrapeError::Parse(format!("the answer to {action} has no {field}"))
                })?,
                Outcome::NotFound => return Ok(None),
                Outcome::Fault(code, what) => {
                    let e = fault(action, code, &what);
                    return Err(match &addon_fault {
                        Some(first) => ScrapeError::Protocol(format!("{first}; {e}")),
                        None => e,
                    });
                }
            };
        }
        // Remembered only once it worked: a passing fault retries both next time.
        self.method = Method::TotalBytes;
        Ok(Some(soap::standard_counters(values[0], values[1])))
    }
}

fn fault(action: &str, code: u32, description: &str) -> ScrapeError {
    ScrapeError::Protocol(format!(
        "the router answered {action} with UPnP error {code} ({description})"
    ))
}

impl Source for Igd {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let cached = self.control.clone();
        let mut control = match &cached {
            Some(c) => c.clone(),
            None => self.discover(deadline)?,
        };
        self.control = Some(control.clone());
        let mut counters = self.read(&control, deadline)?;
        // A cached control URL that went away (a firmware update moved
        // it): look it up again, once, within this scrape.
        if counters.is_none() && cached.is_some() && !self.fixed_path {
            self.control = None;
            control = self.discover(deadline)?;
            self.control = Some(control.clone());
            counters = self.read(&control, deadline)?;
        }
        let Some(counters) = counters else {
            if !self.fixed_path {
                self.control = None;
            }
            let origin = if self.fixed_path {
                "option path"
            } else {
                "the control URL from the device description"
            };
            return Err(ScrapeError::Protocol(format!(
                "{origin} {control} answered HTTP 404"
            )));
        };
        Ok(Reading {
            wan: Some(counters),
            uptime_secs: self.uptime(deadline),
            ..Reading::default()
        })
    }
}

impl Igd {
    /// The connection's `NewUptime` (miniupnpd: since it or the link came
    /// up; FRITZ!OS: since the connection did); None when the router has
    /// no such service or answers otherwise, and the reading is kept.
    fn uptime(&self, deadline: Deadline) -> Option<u64> {
        let (control, service) = self.status.as_ref()?;
        let outcome = soap::call(
            &self.host,
            self.port,
            control,
            service,
            "GetStatusInfo",
            None,
            deadline,
        );
        match outcome {
            Ok(Outcome::Answer(body)) => soap::number(&body, "NewUptime").ok().flatten(),
            _ => None,
        }
    }
}
