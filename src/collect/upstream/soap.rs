//! UPnP SOAP, as IGD and TR-064 use it: the request envelope, the answer's
//! values and faults, and the control URL in a device description. A
//! small tag scanner, not an XML parser: these documents are flat and
//! machine-written, and a full parser would not fit a router's flash.

use super::http::{self, Request};
use super::{Counters, Deadline, ScrapeError};
use crate::collect::links::CounterWidth;
use crate::config::Secret;

/// The service both IGD and AVM's TR-064 read WAN totals from.
pub const IGD_WAN_COMMON: &str = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1";
pub const TR064_WAN_COMMON: &str = "urn:dslforum-org:service:WANCommonInterfaceConfig:1";

/// The request body for `action` of `service`, without arguments.
pub fn envelope(service: &str, action: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\
         <s:Body><u:{action} xmlns:u=\"{service}\"/></s:Body></s:Envelope>"
    )
}

/// An element's start tag at `at` (just after its `<`): its local name
/// (namespace prefix dropped), whether it closes itself, where it ends.
fn start_tag(xml: &str, at: usize) -> Option<(&str, bool, usize)> {
    let rest = &xml[at..];
    let close = rest.find('>')?;
    let tag = &rest[..close];
    let self_closing = tag.ends_with('/');
    let name = tag
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .filter(|n| !n.is_empty())?;
    let local = name.rsplit(':').next()?;
    Some((local, self_closing, at + close + 1))
}

/// The text of every element named `local` (any prefix), in order:
/// entities decoded, surrounding whitespace trimmed. Elements nested in a
/// same-named one are not expected in these documents and end the outer.
pub fn elements<'a>(xml: &'a str, local: &'a str) -> impl Iterator<Item = String> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(lt) = xml.get(from..)?.find('<') {
            let at = from + lt + 1;
            from = at;
            // End tags, declarations and comments are not elements.
            if xml[at..].starts_with(['/', '?', '!']) {
                continue;
            }
            let (name, self_closing, content) = start_tag(xml, at)?;
            if name != local {
                continue;
            }
            if self_closing {
                from = content;
                return Some(String::new());
            }
            // The end tag: `</` with any prefix and this local name.
            let mut search = content;
            while let Some(end) = xml.get(search..)?.find("</") {
                let tag_at = search + end + 2;
                let close = xml[tag_at..].find('>')? + tag_at;
                let name = xml[tag_at..close].trim();
                if name.rsplit(':').next() == Some(local) {
                    from = close + 1;
                    return Some(unescape(xml[content..search + end].trim()));
                }
                search = tag_at;
            }
            return None;
        }
        None
    })
}

/// The first element named `local`.
pub fn element(xml: &str, local: &str) -> Option<String> {
    elements(xml, local).next()
}

/// XML's five entities and numeric references; anything else is kept.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The control URL of `service_type` in a device description, as a path
/// on the device (an absolute URL's host part dropped, `URLBase` applied).
pub fn control_url(description: &str, service_type: &str) -> Option<String> {
    let url = elements(description, "service").find_map(|service| {
        let found = element(&service, "serviceType")? == service_type;
        found.then(|| element(&service, "controlURL"))?
    })?;
    let path = match url.strip_prefix("http://") {
        Some(rest) => format!("/{}", rest.split_once('/').map_or("", |(_, p)| p)),
        None if url.starts_with('/') => url,
        None => {
            let base = element(description, "URLBase").unwrap_or_default();
            let base_path = base
                .strip_prefix("http://")
                .and_then(|r| r.split_once('/'))
                .map_or("", |(_, p)| p);
            format!("/{}{url}", base_path.trim_end_matches('/').to_owned() + "/").replace("//", "/")
        }
    };
    (!path.contains(char::is_whitespace)).then_some(path)
}

/// What a SOAP call came back with.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The action's answer (the whole body).
    Answer(String),
    /// A SOAP fault: the UPnP error code and description.
    Fault(u32, String),
}

/// A UPnPError in a fault body.
pub fn fault(body: &str) -> Option<(u32, String)> {
    element(body, "Fault")?;
    let code = element(body, "errorCode")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let description = element(body, "errorDescription")
        .or_else(|| element(body, "faultstring"))
        .unwrap_or_default();
    Some((code, description.chars().take(120).collect()))
}

/// Calls `action`; with `digest` credentials the call uses HTTP Digest
/// (TR-064). A 401 after that is `Auth`; other statuses without a fault
/// are `Protocol`.
pub fn call(
    host: &str,
    port: u16,
    path: &str,
    service: &str,
    action: &str,
    digest: Option<(&str, &Secret)>,
    deadline: Deadline,
) -> Result<Outcome, ScrapeError> {
    let body = envelope(service, action);
    let request = Request::post(path, body.as_bytes())
        .header("Content-Type", "text/xml; charset=\"utf-8\"")
        .header("SOAPAction", format!("\"{service}#{action}\""));
    let response = match digest {
        Some((user, password)) => {
            http::send_digest(host, port, &request, user, password, deadline)?
        }
        None => http::send(host, port, &request, deadline)?,
    };
    let text = response.text()?;
    if let Some((code, description)) = fault(text) {
        return Ok(Outcome::Fault(code, description));
    }
    match response.status {
        200 if element(text, &format!("{action}Response")).is_some() => {
            Ok(Outcome::Answer(text.to_owned()))
        }
        200 => Err(ScrapeError::Parse(format!(
            "the answer to {action} has no {action}Response"
        ))),
        401 => Err(ScrapeError::Auth(
            "the router answered 401: check option username and option password".into(),
        )),
        status => Err(ScrapeError::Protocol(format!(
            "POST {path} ({action}) answered HTTP {status}"
        ))),
    }
}

/// A number in an answer; None when absent.
pub fn number(body: &str, name: &str) -> Result<Option<u64>, ScrapeError> {
    match element(body, name) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ScrapeError::Parse(format!("{name} is not a whole number"))),
    }
}

/// The WAN totals in a `GetAddonInfos` answer: AVM's 64-bit fields when
/// present and not zero (some cable boxes send zero), else the standard
/// 32-bit ones.
pub fn addon_counters(body: &str) -> Result<Counters, ScrapeError> {
    let rx64 = number(body, "NewX_AVM_DE_TotalBytesReceived64")?;
    let tx64 = number(body, "NewX_AVM_DE_TotalBytesSent64")?;
    if let (Some(rx), Some(tx)) = (rx64, tx64)
        && (rx, tx) != (0, 0)
    {
        return Ok(Counters {
            rx_bytes: rx,
            tx_bytes: tx,
            width: CounterWidth::Bits64,
        });
    }
    let missing = || ScrapeError::Parse("the answer has no NewTotalBytesReceived/Sent".into());
    Ok(Counters {
        rx_bytes: number(body, "NewTotalBytesReceived")?.ok_or_else(missing)?,
        tx_bytes: number(body, "NewTotalBytesSent")?.ok_or_else(missing)?,
        width: CounterWidth::Bits32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FRITZ!Box 7590's answer (FRITZ!OS 7.57), values changed.
    const ADDON_INFOS: &str =
        include_str!("../../../tests/fixtures/upstream/fritzbox/GetAddonInfos.xml");

    #[test]
    fn the_64_bit_fields_win_unless_absent_or_zero() {
        let c = addon_counters(ADDON_INFOS).unwrap();
        assert_eq!(
            (c.rx_bytes, c.tx_bytes, c.width),
            (306_893_660_778, 19_774_048_175, CounterWidth::Bits64)
        );
        let zero = ADDON_INFOS
            .replace("19774048175", "0")
            .replace("306893660778", "0");
        let c = addon_counters(&zero).unwrap();
        assert_eq!(
            (c.rx_bytes, c.tx_bytes, c.width),
            (1_263_357_546, 2_594_113_455, CounterWidth::Bits32)
        );
        let old: String = ADDON_INFOS
            .lines()
            .filter(|l| !l.contains("_AVM_DE_TotalBytes"))
            .collect();
        assert_eq!(addon_counters(&old).unwrap().width, CounterWidth::Bits32);
        let broken = ADDON_INFOS.replace("19774048175", "19x");
        assert!(addon_counters(&broken).is_err());
    }

    #[test]
    fn elements_by_local_name_with_entities_and_self_closing_tags() {
        let xml = "<a:x>1</a:x><y attr=\"v\"> &lt;2&amp;&#51;&#x34; </y><z/><q>&bogus; &</q>";
        assert_eq!(element(xml, "x").as_deref(), Some("1"));
        assert_eq!(element(xml, "y").as_deref(), Some("<2&34"));
        assert_eq!(element(xml, "z").as_deref(), Some(""));
        assert_eq!(element(xml, "q").as_deref(), Some("&bogus; &"));
        assert_eq!(element(xml, "missing"), None);
        assert_eq!(element("<x>unclosed", "x"), None);
        assert_eq!(element("<x", "x"), None);
        let all: Vec<_> = elements("<l>1</l><l>2</l>", "l").collect();
        assert_eq!(all, ["1", "2"]);
    }

    #[test]
    fn faults_carry_the_upnp_error() {
        let body = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>
<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>401</errorCode>
<errorDescription>Invalid Action</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(fault(body), Some((401, "Invalid Action".into())));
        assert_eq!(fault(ADDON_INFOS), None);
    }

    #[test]
    fn control_urls_from_descriptions() {
        let fritz = include_str!("../../../tests/fixtures/upstream/igd/igddesc-fritzbox.xml");
        assert_eq!(
            control_url(fritz, IGD_WAN_COMMON).as_deref(),
            Some("/igdupnp/control/WANCommonIFC1")
        );
        let mini = include_str!("../../../tests/fixtures/upstream/igd/rootDesc-miniupnpd.xml");
        assert_eq!(
            control_url(mini, IGD_WAN_COMMON).as_deref(),
            Some("/ctl/CmnIfCfg")
        );
        let based = "<root><URLBase>http://10.0.0.1:5000/igd/</URLBase><service>\
            <serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>\
            <controlURL>ctl/x</controlURL></service></root>";
        assert_eq!(
            control_url(based, IGD_WAN_COMMON).as_deref(),
            Some("/igd/ctl/x")
        );
        let absolute = based.replace("ctl/x", "http://10.0.0.1:5000/abs/ctl");
        assert_eq!(
            control_url(&absolute, IGD_WAN_COMMON).as_deref(),
            Some("/abs/ctl")
        );
        assert_eq!(control_url("<root/>", IGD_WAN_COMMON), None);
    }

    #[test]
    fn the_envelope_names_the_action_in_the_service_namespace() {
        let e = envelope(TR064_WAN_COMMON, "GetAddonInfos");
        assert!(e.contains(
            "<u:GetAddonInfos xmlns:u=\"urn:dslforum-org:service:WANCommonInterfaceConfig:1\"/>"
        ));
        assert_eq!(
            element(&e, "Body").as_deref(),
            Some(&*format!(
                "<u:GetAddonInfos xmlns:u=\"{TR064_WAN_COMMON}\"/>"
            ))
        );
    }
}
