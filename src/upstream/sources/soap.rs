//! UPnP SOAP, as IGD and TR-064 use it: the request envelope, the answer's
//! values and faults, and the control URL in a device description. A
//! small tag scanner, not an XML parser: these documents are flat and
//! machine-written, and a full parser would not fit a router's flash. It
//! still skips comments, declarations and CDATA whole, reads quoted
//! attribute values (a `>` in one does not end the tag) and matches end
//! tags, so a cut or garbled answer has no value to misread: it is a
//! Parse error.

use super::http::{self, Request};
use super::{Counters, Deadline, ScrapeError};
use crate::account::CounterWidth;
use crate::config::Secret;

/// The service both IGD and AVM's TR-064 read WAN totals from.
pub const IGD_WAN_COMMON: &str = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1";
pub const TR064_WAN_COMMON: &str = "urn:dslforum-org:service:WANCommonInterfaceConfig:1";

/// Nesting deeper than this inside an element is not a router's answer
/// (SOAP answers are 4 deep, descriptions 8).
pub const MAX_DEPTH: usize = 32;

/// The request body for `action` of `service`, without arguments.
pub fn envelope(service: &str, action: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\
         <s:Body><u:{action} xmlns:u=\"{service}\"/></s:Body></s:Envelope>"
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Open,
    Close,
    /// `<x/>`: opens and closes.
    Empty,
}

/// One tag: its kind, local name (prefix dropped), and where it starts
/// (`<`) and ends (after `>`) in the document.
#[derive(Clone, Copy, Debug)]
struct Tag<'a> {
    kind: Kind,
    name: &'a str,
    start: usize,
    end: usize,
}

/// The next tag at or after byte `from`; None at the end or at anything
/// that is not a tag (the text was cut, or is not XML). Comments,
/// processing instructions, CDATA and declarations are skipped whole.
/// Every step moves forward, so a scan is linear in the text.
fn next_tag(xml: &str, from: usize) -> Option<Tag<'_>> {
    let bytes = xml.as_bytes();
    let mut at = from;
    loop {
        let start = at + xml.get(at..)?.find('<')?;
        let rest = &xml[start..];
        let skip = [
            ("<!--", "-->"),
            ("<![CDATA[", "]]>"),
            ("<?", "?>"),
            ("<!", ">"),
        ]
        .into_iter()
        .find(|(open, _)| rest.starts_with(open));
        if let Some((open, close)) = skip {
            let inner = rest[open.len()..].find(close)?;
            at = start + open.len() + inner + close.len();
            continue;
        }
        // The tag ends at the first `>` outside a quoted attribute value.
        let mut quote = None;
        let mut gt = None;
        for (i, &b) in bytes[start + 1..].iter().enumerate() {
            match (quote, b) {
                (Some(q), _) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'>') => {
                    gt = Some(start + 1 + i);
                    break;
                }
                (None, b'<') => return None,
                _ => {}
            }
        }
        let gt = gt?;
        let inside = &xml[start + 1..gt];
        let (kind, inside) = match inside.strip_prefix('/') {
            Some(name) => (Kind::Close, name),
            None => match inside.strip_suffix('/') {
                Some(tag) => (Kind::Empty, tag),
                None => (Kind::Open, inside),
            },
        };
        let qualified = inside
            .split(|c: char| c.is_ascii_whitespace())
            .next()
            .unwrap_or("");
        let name = qualified.rsplit(':').next().unwrap_or("");
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            && !qualified.contains(['"', '\'', '=', '/', '&']);
        return valid.then_some(Tag {
            kind,
            name,
            start,
            end: gt + 1,
        });
    }
}

/// Every tag from `from` on, until the end or the first malformed one.
fn tags(xml: &str, from: usize) -> impl Iterator<Item = Tag<'_>> + '_ {
    let mut at = from;
    std::iter::from_fn(move || {
        let tag = next_tag(xml, at)?;
        at = tag.end;
        Some(tag)
    })
}

/// Where the element opened by `open` ends: the start of its end tag and
/// the end of it. None if it is never closed, or anything inside it is
/// closed by another name or nested deeper than [`MAX_DEPTH`]: a garbled
/// answer gives no values rather than some of them.
fn close_of(xml: &str, open: Tag<'_>) -> Option<(usize, usize)> {
    let mut inside: Vec<&str> = Vec::new();
    for tag in tags(xml, open.end) {
        match tag.kind {
            Kind::Open if inside.len() >= MAX_DEPTH => return None,
            Kind::Open => inside.push(tag.name),
            Kind::Empty => {}
            Kind::Close => match inside.pop() {
                Some(name) if name == tag.name => {}
                Some(_) => return None,
                None => return (tag.name == open.name).then_some((tag.start, tag.end)),
            },
        }
    }
    None
}

/// The content of every element named `local` (any prefix), in order. A
/// leaf's text comes trimmed with entities decoded; an element holding
/// others gives its markup, to look inside with [`element`]. An element
/// nested in a same-named one is inside the outer one's markup, not
/// listed. Stops at the first element that is never closed.
pub fn elements<'a>(xml: &'a str, local: &'a str) -> impl Iterator<Item = String> + 'a {
    let mut at = 0;
    std::iter::from_fn(move || {
        loop {
            let tag = next_tag(xml, at)?;
            at = tag.end;
            if tag.name != local || tag.kind == Kind::Close {
                continue;
            }
            if tag.kind == Kind::Empty {
                return Some(String::new());
            }
            let (content_end, after) = close_of(xml, tag)?;
            at = after;
            return Some(content(&xml[tag.end..content_end]));
        }
    })
}

/// An element's content: text decoded, CDATA as is, markup kept.
fn content(inner: &str) -> String {
    let inner = inner.trim();
    if let Some(data) = inner
        .strip_prefix("<![CDATA[")
        .and_then(|d| d.strip_suffix("]]>"))
        .filter(|d| !d.contains("]]>"))
    {
        return data.to_owned();
    }
    if inner.contains('<') {
        inner.to_owned()
    } else {
        unescape(inner)
    }
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
/// on the device: an absolute URL's host part dropped (the configured
/// host is asked), a relative one resolved against `URLBase` or, without
/// it, the description's own directory (`/`).
pub fn control_url(description: &str, service_type: &str) -> Option<String> {
    let url = elements(description, "service").find_map(|service| {
        let found = element(&service, "serviceType")? == service_type;
        found.then(|| element(&service, "controlURL"))?
    })?;
    let path = if url.contains("://") {
        http::parse_url(&url).ok()?.path
    } else if url.starts_with('/') {
        url
    } else {
        let base = element(description, "URLBase")
            .and_then(|b| http::parse_url(&b).ok())
            .map_or_else(|| "/".to_owned(), |b| b.path);
        let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        format!("{}{url}", if dir.is_empty() { "/" } else { dir })
    };
    let usable =
        path.starts_with('/') && !path.contains(|c: char| c.is_whitespace() || c.is_control());
    usable.then_some(path)
}

/// What a SOAP call came back with.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The inside of the action's `…Response` element.
    Answer(String),
    /// A SOAP fault: the UPnP error code (0 if none) and description.
    Fault(u32, String),
    /// HTTP 404: no such control URL (moved by a firmware update, or a
    /// wrong `option path`).
    NotFound,
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
    Some((code, printable(&description, 120)))
}

/// At most `max` characters of router-supplied text, control characters
/// dropped: it ends up in log lines and the API.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Calls `action`; with `digest` credentials the call uses HTTP Digest
/// (TR-064). A 401 after that is `Auth`; a 200 without the action's
/// complete response element is `Parse`; other statuses without a fault
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
    // Faults come with 500 as the spec says, or with 200 from some boxes.
    if let Some((code, description)) = response.text().ok().and_then(fault) {
        return Ok(Outcome::Fault(code, description));
    }
    match response.status {
        200 => element(response.text()?, &format!("{action}Response"))
            .map(Outcome::Answer)
            .ok_or_else(|| {
                ScrapeError::Parse(format!(
                    "the answer to {action} has no complete {action}Response \
                     (cut short, or not a SOAP answer)"
                ))
            }),
        401 => Err(ScrapeError::Auth(
            "the router answered 401: check option username and option password".into(),
        )),
        404 => Ok(Outcome::NotFound),
        status => Err(ScrapeError::Protocol(format!(
            "POST {path} ({action}) answered HTTP {status}"
        ))),
    }
}

/// A number in an answer; None when absent.
pub fn number(body: &str, name: &str) -> Result<Option<u64>, ScrapeError> {
    match element(body, name) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ScrapeError::Parse(format!(
                "{name} is not a whole number: '{}'",
                printable(&text, 24)
            ))
        }),
    }
}

/// Totals from the standard `ui4` fields. miniupnpd built without
/// UPNP_STRICT on a 64-bit system sends its 64-bit counters in them: a
/// value beyond 32 bits shows the counter does not wrap at 2^32.
pub fn standard_counters(rx_bytes: u64, tx_bytes: u64) -> Counters {
    let wide = rx_bytes.max(tx_bytes) > u64::from(u32::MAX);
    Counters {
        rx_bytes,
        tx_bytes,
        width: if wide {
            CounterWidth::Bits64
        } else {
            CounterWidth::Bits32
        },
    }
}

/// The WAN totals in a `GetAddonInfos` answer: AVM's 64-bit fields when
/// present and not zero (some cable boxes send zero), else the standard
/// 32-bit ones. `had_64`: this box gave non-zero 64-bit totals before, so
/// zeros there are a glitch (FRITZ!OS sends lone zeros) for the
/// accounting to skip, not a reason to switch to the 32-bit fields, whose
/// smaller value would read as a reboot.
pub fn addon_counters(body: &str, had_64: bool) -> Result<Counters, ScrapeError> {
    let rx64 = number(body, "NewX_AVM_DE_TotalBytesReceived64")?;
    let tx64 = number(body, "NewX_AVM_DE_TotalBytesSent64")?;
    if let (Some(rx), Some(tx)) = (rx64, tx64)
        && (had_64 || (rx, tx) != (0, 0))
    {
        return Ok(Counters {
            rx_bytes: rx,
            tx_bytes: tx,
            width: CounterWidth::Bits64,
        });
    }
    let field = |name| {
        number(body, name)?
            .ok_or_else(|| ScrapeError::Parse(format!("the answer to GetAddonInfos has no {name}")))
    };
    Ok(standard_counters(
        field("NewTotalBytesReceived")?,
        field("NewTotalBytesSent")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FRITZ!Box 7590's answer (FRITZ!OS 7.57), values changed.
    const ADDON_INFOS: &str =
        include_str!("../../../tests/fixtures/upstream/fritzbox/GetAddonInfos.xml");
    const FRITZ_DESC: &str =
        include_str!("../../../tests/fixtures/upstream/igd/igddesc-fritzbox.xml");
    const MINI_DESC: &str =
        include_str!("../../../tests/fixtures/upstream/igd/rootDesc-miniupnpd.xml");
    const MINI_FAULT: &str =
        include_str!("../../../tests/fixtures/upstream/igd/fault-invalid-action.xml");

    fn body(answer: &str) -> String {
        match element(answer, "GetAddonInfosResponse") {
            Some(inner) => inner,
            None => panic!("no response in {answer}"),
        }
    }

    #[test]
    fn the_64_bit_fields_win_unless_absent_or_zero() {
        let c = addon_counters(&body(ADDON_INFOS), false).unwrap();
        assert_eq!(
            (c.rx_bytes, c.tx_bytes, c.width),
            (306_893_660_778, 19_774_048_175, CounterWidth::Bits64)
        );
        let zero = ADDON_INFOS
            .replace("19774048175", "0")
            .replace("306893660778", "0");
        let c = addon_counters(&body(&zero), false).unwrap();
        assert_eq!(
            (c.rx_bytes, c.tx_bytes, c.width),
            (1_263_357_546, 2_594_113_455, CounterWidth::Bits32)
        );
        // Once the box had 64-bit totals, zeros there stay 64-bit zeros.
        let c = addon_counters(&body(&zero), true).unwrap();
        assert_eq!(
            (c.rx_bytes, c.tx_bytes, c.width),
            (0, 0, CounterWidth::Bits64)
        );
        let old: String = ADDON_INFOS
            .lines()
            .filter(|l| !l.contains("_AVM_DE_TotalBytes"))
            .collect();
        for had_64 in [false, true] {
            assert_eq!(
                addon_counters(&body(&old), had_64).unwrap().width,
                CounterWidth::Bits32
            );
        }
        let broken = ADDON_INFOS.replace("19774048175", "19x");
        let e = addon_counters(&body(&broken), false).unwrap_err();
        assert_eq!(e.stage(), "parse", "{e}");
        assert!(
            e.to_string().contains("NewX_AVM_DE_TotalBytesSent64"),
            "{e}"
        );
        let none = ADDON_INFOS.replace("NewTotalBytesSent>", "NewOther>");
        let none: String = none.lines().filter(|l| !l.contains("64")).collect();
        let e = addon_counters(&body(&none), false).unwrap_err();
        assert!(e.to_string().contains("NewTotalBytesSent"), "{e}");
    }

    #[test]
    fn standard_fields_beyond_32_bits_are_64_bit_counters() {
        let top = u64::from(u32::MAX);
        assert_eq!(standard_counters(top, 1).width, CounterWidth::Bits32);
        assert_eq!(standard_counters(1, top + 1).width, CounterWidth::Bits64);
    }

    #[test]
    fn elements_by_local_name_with_entities_and_self_closing_tags() {
        let xml =
            "<a:x>1</a:x><y attr=\"v\"> &lt;2&amp;&#51;&#x34; </y><z/><z2 a='1' /><q>&bogus; &</q>";
        assert_eq!(element(xml, "x").as_deref(), Some("1"));
        assert_eq!(element(xml, "y").as_deref(), Some("<2&34"));
        assert_eq!(element(xml, "z").as_deref(), Some(""));
        assert_eq!(element(xml, "z2").as_deref(), Some(""));
        assert_eq!(element(xml, "q").as_deref(), Some("&bogus; &"));
        assert_eq!(element(xml, "missing"), None);
        assert_eq!(element("<x>unclosed", "x"), None);
        assert_eq!(element("<x", "x"), None);
        assert_eq!(element("<x>1</y>", "x"), None);
        let all: Vec<_> = elements("<l>1</l>\n<l>2</l>", "l").collect();
        assert_eq!(all, ["1", "2"]);
    }

    #[test]
    fn comments_declarations_cdata_and_quoted_gt_are_not_tags() {
        let xml = "<?xml version=\"1.0\"?><!DOCTYPE root><!-- <x>comment</x> -->\
                   <root a=\"1>2\" b='<'><x><![CDATA[<raw> & ]]></x><x>\n  two\t</x></root>";
        let all: Vec<_> = elements(xml, "x").collect();
        assert_eq!(all, ["<raw> & ", "two"]);
        assert!(element(xml, "root").unwrap().starts_with("<x><![CDATA["));
    }

    #[test]
    fn an_element_holding_others_gives_its_markup() {
        let xml = "<s:service><a>1</a><s:service><a>2</a></s:service></s:service><a>3</a>";
        let outer: Vec<_> = elements(xml, "service").collect();
        assert_eq!(outer, ["<a>1</a><s:service><a>2</a></s:service>"]);
        assert_eq!(element(&outer[0], "a").as_deref(), Some("1"));
        let all: Vec<_> = elements(xml, "a").collect();
        assert_eq!(all, ["1", "2", "3"]);
    }

    #[test]
    fn cut_or_garbled_markup_has_no_value() {
        let cases = [
            "<a>1",
            "<a>1</a",
            "<a>1</b>",
            "<a><b>1</a></b>",
            "<a>1 < 2</a>",
            "<a><!-- open</a>",
            "<a b=\"x>1</a>",
            "<=a>1</=a>",
            "< a>1</a>",
            "<a>1</ a>",
            "<x:>1</x:>",
        ];
        for text in cases {
            assert_eq!(element(text, "a"), None, "{text}");
        }
        // Inside an element, every end tag must match: no values from a
        // garbled answer, not even the intact ones.
        assert_eq!(element("<a><b>1</b><c>2</d></a>", "a"), None);
        let deep = |n| format!("<a>{}{}</a>", "<b>".repeat(n), "</b>".repeat(n));
        assert!(element(&deep(MAX_DEPTH), "a").is_some());
        assert_eq!(element(&deep(MAX_DEPTH + 1), "a"), None);
        assert_eq!(element("<a>1</a>", "a").as_deref(), Some("1"));
        assert_eq!(element("<p:a >1</p:a >", "a").as_deref(), Some("1"));
    }

    #[test]
    fn cut_answers_are_parse_errors_and_cut_descriptions_give_no_partial_url() {
        let response_end = ADDON_INFOS.find("</u:GetAddonInfosResponse>").unwrap();
        for doc in [ADDON_INFOS, FRITZ_DESC, MINI_DESC, MINI_FAULT] {
            let whole = control_url(doc, IGD_WAN_COMMON);
            // Every 5th cut, and every one near the end (where answers are cut).
            let ends = (0..doc.len())
                .step_by(5)
                .chain(doc.len().saturating_sub(64)..doc.len());
            for end in ends.filter(|&e| doc.is_char_boundary(e)) {
                let cut = &doc[..end];
                let url = control_url(cut, IGD_WAN_COMMON);
                assert!(url.is_none() || url == whole, "{cut}");
                if doc == ADDON_INFOS && end <= response_end {
                    assert_eq!(element(cut, "GetAddonInfosResponse"), None, "{cut}");
                }
                let _ = fault(cut);
                let _ = elements(cut, "NewTotalBytesSent").count();
            }
        }
    }

    #[test]
    fn faults_carry_the_upnp_error() {
        assert_eq!(fault(MINI_FAULT), Some((401, "Invalid Action".into())));
        assert_eq!(fault(ADDON_INFOS), None);
        let bare = "<s:Envelope><s:Body><s:Fault><faultcode>s:Server</faultcode>\
                    <faultstring>Internal\nError</faultstring></s:Fault></s:Body></s:Envelope>";
        assert_eq!(fault(bare), Some((0, "InternalError".into())));
    }

    #[test]
    fn control_urls_from_descriptions() {
        assert_eq!(
            control_url(FRITZ_DESC, IGD_WAN_COMMON).as_deref(),
            Some("/igdupnp/control/WANCommonIFC1")
        );
        assert_eq!(
            control_url(MINI_DESC, IGD_WAN_COMMON).as_deref(),
            Some("/ctl/CmnIfCfg")
        );
        let based = "<root><URLBase>http://10.0.0.1:5000/igd/</URLBase><service>\
            <serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>\
            <controlURL>ctl/x</controlURL></service></root>";
        assert_eq!(
            control_url(based, IGD_WAN_COMMON).as_deref(),
            Some("/igd/ctl/x")
        );
        let bare_base = based.replace("5000/igd/", "5000");
        assert_eq!(
            control_url(&bare_base, IGD_WAN_COMMON).as_deref(),
            Some("/ctl/x")
        );
        let no_base = based.replace("<URLBase>http://10.0.0.1:5000/igd/</URLBase>", "");
        assert_eq!(
            control_url(&no_base, IGD_WAN_COMMON).as_deref(),
            Some("/ctl/x")
        );
        let absolute = based.replace("ctl/x", "http://10.0.0.1:5000/abs/ctl");
        assert_eq!(
            control_url(&absolute, IGD_WAN_COMMON).as_deref(),
            Some("/abs/ctl")
        );
        let tls = based.replace("ctl/x", "https://10.0.0.1/abs/ctl");
        assert_eq!(control_url(&tls, IGD_WAN_COMMON), None);
        let spaced = based.replace("ctl/x", "ctl/a b");
        assert_eq!(control_url(&spaced, IGD_WAN_COMMON), None);
        assert_eq!(control_url("<root/>", IGD_WAN_COMMON), None);
        assert_eq!(control_url(FRITZ_DESC, TR064_WAN_COMMON), None);
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
