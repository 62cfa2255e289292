//! `draytek`: a DrayTek Vigor's telnet console, for its DSL line health
//! (`vdsl status more`: near- and far-end error counters; `vdsl status`:
//! rates, SNR margin, attenuation) and `wan status` (packets and rates).
//!
//! The console gives no byte counters, so a reading has line values only;
//! the bytes of these routers come from the `snmp` source. Each scrape
//! logs in and says `exit` at the end: DrayTeks allow few telnet sessions,
//! and one kept open would lock the admin out of theirs.

use super::LineKind::{self, Counter, Gauge};
use super::telnet::{self, Pattern, Telnet};
use super::{Deadline, LineValue, Reading, ScrapeError, Source};
use crate::config::Secret;
use crate::upstream::UpstreamConfig;

/// The pager's marker; the router waits for a key after it (and its hint
/// `['q': Quit, 'Enter': New Lines, 'Space Bar': Next Page] ---`).
pub const MORE: &str = "--- MORE ---";
/// Pages of one command's output, far above any real one (a Vigor 3910's
/// `wan status` is three).
const MAX_PAGES: usize = 256;
/// Line values per reading: each WAN gives five.
pub const MAX_LINE_VALUES: usize = 512;

const LOGIN_PROMPTS: [Pattern<'static>; 5] = [
    Pattern::LineEnd("Account:"),
    Pattern::LineEnd("Username:"),
    Pattern::LineEnd("Login:"),
    Pattern::LineEnd("Password:"),
    Pattern::Prompt,
];

pub struct Draytek {
    host: Option<String>,
    port: u16,
    username: Option<String>,
    password: Option<Secret>,
    /// `vdsl` or `adsl`, once a command with it answered (ADSL models
    /// know only `adsl …`).
    dsl: Option<&'static str>,
}

impl Draytek {
    pub fn new(config: &UpstreamConfig, password: Option<Secret>) -> Self {
        Draytek {
            host: config.host.clone(),
            port: config.port,
            username: config.username.clone(),
            password,
            dsl: None,
        }
    }

    /// Answers `Account:` and `Password:` (some models ask only the
    /// latter) until the command prompt. Asked again means refused.
    fn login(&self, conn: &mut Telnet, deadline: Deadline) -> Result<(), ScrapeError> {
        let (mut sent_account, mut sent_password) = (false, false);
        loop {
            let found = conn.expect(
                &LOGIN_PROMPTS,
                "a login prompt (Account:, Password:) or a command prompt",
                deadline,
            )?;
            let said = self.quote(&found.before);
            match found.pattern {
                Some(0..=2) => {
                    if sent_account {
                        return Err(asked_again(&said));
                    }
                    let Some(user) = &self.username else {
                        return Err(ScrapeError::Auth(
                            "the router asks for an account name: add option username \
                             (e.g. 'admin')"
                                .into(),
                        ));
                    };
                    conn.send_line(user.as_bytes(), deadline)?;
                    sent_account = true;
                }
                Some(3) => {
                    if sent_password {
                        return Err(asked_again(&said));
                    }
                    let Some(password) = &self.password else {
                        return Err(ScrapeError::Auth(
                            "the router asks for a password: add option password or \
                             option password_file"
                                .into(),
                        ));
                    };
                    conn.send_line(password.expose().as_bytes(), deadline)?;
                    sent_password = true;
                }
                Some(_) => return Ok(()),
                None if !sent_account && !sent_password => {
                    return Err(ScrapeError::Auth(format!(
                        "the router closed the telnet session before asking for a login{said}: \
                         a DrayTek allows few telnet sessions at a time (close other telnet or \
                         SSH sessions to it), blocks addresses after failed logins (Brute Force \
                         Protection), and must allow telnet from the LAN (System Maintenance >> \
                         Management)"
                    )));
                }
                None => {
                    return Err(ScrapeError::Auth(format!(
                        "the router closed the telnet session after the login{said}: \
                         check option username and option password"
                    )));
                }
            }
        }
    }

    /// The last line of what the router said, for a message; nothing if it
    /// could hold the password (a router echoing it).
    fn quote(&self, before: &[u8]) -> String {
        let text = clean_output(before, "");
        let Some(line) = text.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
            return String::new();
        };
        let secret = self.password.as_ref().map_or("", Secret::expose);
        if !secret.is_empty() && line.contains(secret) {
            return String::new();
        }
        let short: String = line.chars().take(100).collect();
        format!(" (it said \"{short}\")")
    }

    fn read(&mut self, conn: &mut Telnet, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let mut line = Vec::new();
        let prefixes = match self.dsl {
            Some(known) => vec![known],
            None => vec!["vdsl", "adsl"],
        };
        // A model without the command says so ("Unknown command" or
        // similar) and the answer holds nothing to read: try the other.
        for prefix in prefixes {
            let more = run(conn, &format!("{prefix} status more"), deadline)?;
            let status = run(conn, &format!("{prefix} status"), deadline)?;
            let mut values = parse_dsl_more(&more);
            for v in parse_dsl_status(&status) {
                push(&mut values, v);
            }
            if !values.is_empty() {
                self.dsl = Some(prefix);
                line = values;
                break;
            }
        }
        let wan = run(conn, "wan status", deadline)?;
        let uptime_secs = parse_wan_uptime(&wan);
        for v in parse_wan_status(&wan) {
            push(&mut line, v);
        }
        if line.is_empty() {
            return Err(ScrapeError::Parse(
                "the answers to 'vdsl status more', 'vdsl status', their 'adsl' forms and \
                 'wan status' held nothing netmeter reads: is this a DrayTek Vigor's console?"
                    .into(),
            ));
        }
        Ok(Reading {
            line,
            uptime_secs,
            ..Reading::default()
        })
    }
}

fn asked_again(said: &str) -> ScrapeError {
    ScrapeError::Auth(format!(
        "the router asked for the login again{said}: check option username and option password"
    ))
}

impl Source for Draytek {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let host = self
            .host
            .clone()
            .ok_or_else(|| ScrapeError::Local("option host is missing".into()))?;
        let mut conn = Telnet::connect(&host, self.port, deadline)?;
        // Not logged in: just hang up (`exit` would be typed as a name).
        self.login(&mut conn, deadline)?;
        let result = self.read(&mut conn, deadline);
        // Every scrape ends its session; nothing stays open for `close`.
        conn.say_goodbye(b"exit");
        result
    }
}

/// Sends `command` and collects its output through the pager (a space per
/// page) up to the next prompt, cleaned by [`clean_output`].
fn run(conn: &mut Telnet, command: &str, deadline: Deadline) -> Result<String, ScrapeError> {
    conn.send_line(command.as_bytes(), deadline)?;
    let waiting_for = format!("its prompt after '{command}'");
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let found = conn.expect(
            &[Pattern::Anywhere(MORE), Pattern::Prompt],
            &waiting_for,
            deadline,
        )?;
        out.extend_from_slice(&found.before);
        if out.len() > telnet::MAX_TEXT {
            return Err(ScrapeError::Protocol(format!(
                "the answer to '{command}' is over {} KiB: is this a DrayTek's console?",
                telnet::MAX_TEXT >> 10
            )));
        }
        match found.pattern {
            Some(0) => {
                pages += 1;
                if pages > MAX_PAGES {
                    return Err(ScrapeError::Protocol(format!(
                        "'{command}' did not end after {pages} pages: is this a DrayTek's console?"
                    )));
                }
                // What the router draws after the key starts a fresh line.
                out.push(b'\n');
                conn.send(b" ", deadline)?;
            }
            Some(_) => return Ok(clean_output(&out, command)),
            None => {
                return Err(ScrapeError::Protocol(format!(
                    "the router closed the telnet session while answering '{command}'"
                )));
            }
        }
    }
}

/// Console output as the screen shows it: each line replayed with `\r`
/// going back to its start and backspace one column left (the pager's
/// redraw), control bytes dropped, the pager's marker and key hint
/// removed, trailing blanks trimmed, and the echo of `command` dropped.
pub fn clean_output(bytes: &[u8], command: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut screen: Vec<char> = Vec::new();
    for raw in text.split('\n') {
        screen.clear();
        let mut column: usize = 0;
        for c in raw.chars() {
            match c {
                '\r' => column = 0,
                '\u{8}' => column = column.saturating_sub(1),
                c if c.is_control() => {}
                c => {
                    if column < screen.len() {
                        screen[column] = c;
                    } else {
                        screen.push(c);
                    }
                    column += 1;
                }
            }
        }
        let line: String = screen.iter().collect();
        let line = strip_pager(&line);
        let line = line.trim_end();
        let echo = !command.is_empty()
            && line
                .trim_start()
                .strip_suffix(command)
                .is_some_and(|head| head.is_empty() || head.ends_with("> "));
        if line.is_empty() && raw.contains(MORE) || echo {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `line` without the pager's marker and its key hint (which can arrive
/// after the marker was answered, so it is removed on its own too).
fn strip_pager(line: &str) -> String {
    let line = line.replace(MORE, "");
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(at) = rest.find("['q': Quit") {
        out.push_str(&rest[..at]);
        let hint = &rest[at..];
        let after = hint[hint.find(']').map_or(hint.len(), |e| e + 1)..].trim_start();
        rest = after.strip_prefix("---").unwrap_or(after);
    }
    out.push_str(rest);
    out
}

/// A value as the console prints it: digits with an optional sign and
/// decimal point; `----` (not reported) and anything else is None. By
/// hand, so nothing the console never prints (`inf`, `1e3`, `nan`) is
/// taken for a value.
fn number(token: &str) -> Option<f64> {
    let (negative, digits) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token.strip_prefix('+').unwrap_or(token)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || whole.len() > 19
        || fraction.len() > 9
    {
        return None;
    }
    let whole = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().ok()?
    };
    let mut value = whole as f64;
    if !fraction.is_empty() {
        let scale = 10u64.pow(fraction.len() as u32);
        value += fraction.parse::<u64>().ok()? as f64 / scale as f64;
    }
    Some(if negative { -value } else { value })
}

/// Adds `value` unless one of its name and end is in already (the first
/// one, e.g. the since-showtime counters, wins) or the list is full.
fn push(values: &mut Vec<LineValue>, value: LineValue) {
    let seen = values
        .iter()
        .any(|v| v.name == value.name && v.end == value.end);
    if !seen && values.len() < MAX_LINE_VALUES {
        values.push(value);
    }
}

/// `vdsl status more` rows: the router's label, netmeter's name, and how
/// the value behaves. Error counts and errored seconds only grow until the
/// line retrains or the router restarts; the rest are line settings.
const MORE_ROWS: &[(&str, &str, LineKind)] = &[
    ("CRC", "crc", Counter),
    ("FECS", "fecs", Counter),
    ("ES", "es", Counter),
    ("SES", "ses", Counter),
    ("LOSS", "loss", Counter),
    ("UAS", "uas", Counter),
    ("LOFS", "lofs", Counter),
    ("LOS", "los", Counter),
    ("LOF", "lof", Counter),
    ("LPR", "lpr", Counter),
    ("LOM", "lom", Counter),
    ("NCD", "ncd", Counter),
    ("LCD", "lcd", Counter),
    ("HECError", "hec_error", Counter),
    ("RsCorrection", "rs_correction", Counter),
    ("SosSuccess", "sos_success", Counter),
    ("Trellis", "trellis", Gauge),
    ("Bitswap", "bitswap", Gauge),
    ("ReTxEnable", "retx_enable", Gauge),
    ("VirtualNoise", "virtual_noise", Gauge),
    ("20BitSupport", "20bit_support", Gauge),
    ("LatencyPath", "latency_path", Gauge),
    ("INP", "inp_symbols", Gauge),
    ("InterleaveDelay", "interleave_delay_ms", Gauge),
    ("INTLVDelay", "interleave_delay_ms", Gauge),
    ("NFEC", "nfec", Gauge),
    ("RFEC", "rfec", Gauge),
    ("LSYMB", "lsymb", Gauge),
    ("INTLVBLOCK", "intlvblock", Gauge),
    ("AELEM", "aelem", Gauge),
];

/// `vdsl status more` (or `adsl status more`): `Label : near far [(unit)]`
/// rows of the ATU-R table. Unknown rows and `----` values are skipped.
pub fn parse_dsl_more(text: &str) -> Vec<LineValue> {
    let mut values = Vec::new();
    for line in text.lines() {
        let Some((label, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(&(_, name, kind)) = MORE_ROWS.iter().find(|r| r.0 == label.trim()) else {
            continue;
        };
        let mut tokens = rest.split_whitespace();
        for end in ["near", "far"] {
            let Some(mut value) = tokens.next().and_then(number) else {
                continue;
            };
            if name == "interleave_delay_ms" {
                // The router says it in 1/100 ms.
                value /= 100.0;
            }
            push(
                &mut values,
                LineValue {
                    name: name.to_owned(),
                    end: Some(end),
                    value,
                    kind,
                },
            );
        }
    }
    values
}

/// `vdsl status` keys: netmeter's name, the end where the key has one.
/// DS is measured at the near end (this modem), US at the far end.
const STATUS_KEYS: &[(&str, &str, Option<&str>, LineKind)] = &[
    ("DS Actual Rate", "ds_actual_rate_bps", None, Gauge),
    ("US Actual Rate", "us_actual_rate_bps", None, Gauge),
    ("DS Attainable Rate", "ds_attainable_rate_bps", None, Gauge),
    ("US Attainable Rate", "us_attainable_rate_bps", None, Gauge),
    ("DS Interleave Depth", "ds_interleave_depth", None, Gauge),
    ("US Interleave Depth", "us_interleave_depth", None, Gauge),
    (
        "NE Current Attenuation",
        "attenuation_db",
        Some("near"),
        Gauge,
    ),
    (
        "Far Current Attenuation",
        "attenuation_db",
        Some("far"),
        Gauge,
    ),
    ("Cur SNR Margin", "snr_margin_db", Some("near"), Gauge),
    ("Far SNR Margin", "snr_margin_db", Some("far"), Gauge),
    ("Xdsl Reset Times", "dsl_resets", None, Counter),
    ("Xdsl Link Times", "dsl_links", None, Counter),
];

/// `vdsl status` (or `adsl status`): `Key : value [unit]`, two to a line.
/// Also `showtime`: 1 while the line is up (State SHOWTIME), else 0.
pub fn parse_dsl_status(text: &str) -> Vec<LineValue> {
    let mut values = Vec::new();
    for raw in text.lines() {
        // One blank between words, as the keys are written here
        // (the router writes `Xdsl Link  Times`).
        let line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        for &(key, name, end, kind) in STATUS_KEYS {
            if let Some(value) = value_after(&line, key).and_then(number) {
                push(
                    &mut values,
                    LineValue {
                        name: name.to_owned(),
                        end,
                        value,
                        kind,
                    },
                );
            }
        }
        if let Some(state) = value_after(&line, "State") {
            let up = state.eq_ignore_ascii_case("SHOWTIME");
            push(
                &mut values,
                LineValue {
                    name: "showtime".to_owned(),
                    end: None,
                    value: if up { 1.0 } else { 0.0 },
                    kind: Gauge,
                },
            );
        }
    }
    values
}

/// The first word after `key :` in `line`, where `key` starts a word.
fn value_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.match_indices(key).find_map(|(at, _)| {
        if at > 0 && !line[..at].ends_with(' ') {
            return None;
        }
        let rest = line[at + key.len()..].trim_start().strip_prefix(':')?;
        rest.split_whitespace().next()
    })
}

/// `wan status`: per WAN a header `WAN1: Online, stall=N` and a line
/// `TX Packets=…, TX Rate(bps)=…, RX Packets=…, RX Rate(bps)=…`. Gives
/// `<wan>_online` (1/0), `<wan>_tx_packets`, `<wan>_rx_packets`
/// (counters) and `<wan>_tx_rate_bps`, `<wan>_rx_rate_bps` (gauges), the
/// WAN's name lowercased (`wan1`, `usb_wan3`).
/// The longest `Up Time=H:MM:SS` among the WANs of `wan status`: DrayOS
/// gives no uptime of its own, and every WAN's starts over only when the
/// router does (one WAN reconnecting leaves the others). None when no WAN
/// is up.
pub fn parse_wan_uptime(text: &str) -> Option<u64> {
    let mut longest = None;
    for (_, tail) in text
        .match_indices("Up Time=")
        .map(|(at, _)| text.split_at(at + 8))
    {
        let clock: String = tail
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ':')
            .collect();
        let mut parts = clock.split(':').map(|p| p.parse::<u64>().ok());
        let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if m < 60 && s < 60 {
            let secs = h.saturating_mul(3600).saturating_add(m * 60 + s);
            longest = longest.max(Some(secs));
        }
    }
    longest.filter(|&secs| secs > 0)
}

pub fn parse_wan_status(text: &str) -> Vec<LineValue> {
    let mut values = Vec::new();
    let mut wan: Option<String> = None;
    for line in text.lines() {
        let head = line.split_once(':').map(|(n, rest)| (n.trim(), rest));
        let wan_name = head.and_then(|(n, _)| {
            let ok = (1..=32).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && n.to_ascii_lowercase().contains("wan");
            ok.then(|| n.to_ascii_lowercase())
        });
        if wan_name.is_some() || line.contains("stall=") {
            // A header; one whose name the pager cut off ends the last WAN.
            wan = wan_name;
            if let (Some(prefix), Some((_, rest))) = (&wan, head) {
                let state = rest.split(',').next().unwrap_or("").trim();
                let online = state.eq_ignore_ascii_case("online");
                push(
                    &mut values,
                    LineValue {
                        name: format!("{prefix}_online"),
                        end: None,
                        value: if online { 1.0 } else { 0.0 },
                        kind: Gauge,
                    },
                );
            }
            continue;
        }
        let Some(prefix) = &wan else {
            continue;
        };
        for field in line.split(',') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let (suffix, kind) = match key.trim() {
                "TX Packets" => ("tx_packets", Counter),
                "RX Packets" => ("rx_packets", Counter),
                "TX Rate(bps)" => ("tx_rate_bps", Gauge),
                "RX Rate(bps)" => ("rx_rate_bps", Gauge),
                _ => continue,
            };
            if let Some(value) = number(value.trim()) {
                push(
                    &mut values,
                    LineValue {
                        name: format!("{prefix}_{suffix}"),
                        end: None,
                        value,
                        kind,
                    },
                );
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    const MORE_FIXTURE: &str =
        include_str!("../../../tests/fixtures/upstream/draytek/vdsl_status_more.txt");
    const STATUS_FIXTURE: &str =
        include_str!("../../../tests/fixtures/upstream/draytek/vdsl_status.txt");
    const WAN_FIXTURE: &str =
        include_str!("../../../tests/fixtures/upstream/draytek/wan_status.txt");

    fn get<'a>(values: &'a [LineValue], name: &str, end: Option<&str>) -> Option<&'a LineValue> {
        values.iter().find(|v| v.name == name && v.end == end)
    }

    fn value(values: &[LineValue], name: &str, end: Option<&str>) -> f64 {
        get(values, name, end)
            .unwrap_or_else(|| panic!("{name} {end:?} missing"))
            .value
    }

    #[test]
    fn vdsl_status_more_near_and_far_counters() {
        let v = parse_dsl_more(MORE_FIXTURE);
        assert_eq!(value(&v, "crc", Some("near")), 287.0);
        assert_eq!(value(&v, "crc", Some("far")), 19.0);
        assert_eq!(value(&v, "fecs", Some("far")), 1214.0);
        assert_eq!(value(&v, "es", Some("near")), 52.0);
        assert_eq!(value(&v, "ses", Some("near")), 4.0);
        assert_eq!(value(&v, "loss", Some("far")), 0.0);
        assert_eq!(value(&v, "uas", Some("far")), 1502.0);
        assert_eq!(value(&v, "lof", Some("near")), 0.0);
        assert_eq!(value(&v, "hec_error", Some("near")), 0.0);
        assert_eq!(get(&v, "crc", Some("near")).unwrap().kind, Counter);
        assert_eq!(value(&v, "inp_symbols", Some("near")), 230.0);
        assert_eq!(value(&v, "interleave_delay_ms", Some("far")), 0.62);
        assert_eq!(get(&v, "inp_symbols", Some("far")).unwrap().kind, Gauge);
        assert_eq!(value(&v, "aelem", Some("near")), 0.0);
        assert!(
            get(&v, "aelem", Some("far")).is_none(),
            "---- is not a value"
        );
        // 28 rows, AELEM with one end.
        assert_eq!(v.len(), 28 * 2 - 1);
    }

    #[test]
    fn vdsl_status_rates_margins_attenuation() {
        let v = parse_dsl_status(STATUS_FIXTURE);
        assert_eq!(value(&v, "ds_actual_rate_bps", None), 99_863_000.0);
        assert_eq!(value(&v, "us_actual_rate_bps", None), 31_998_000.0);
        assert_eq!(value(&v, "ds_attainable_rate_bps", None), 121_339_176.0);
        assert_eq!(value(&v, "us_attainable_rate_bps", None), 40_112_000.0);
        assert_eq!(value(&v, "ds_interleave_depth", None), 1.0);
        assert_eq!(value(&v, "us_interleave_depth", None), 367.0);
        assert_eq!(value(&v, "attenuation_db", Some("near")), 9.0);
        assert_eq!(value(&v, "attenuation_db", Some("far")), 6.0);
        assert_eq!(value(&v, "snr_margin_db", Some("near")), 11.0);
        assert_eq!(value(&v, "snr_margin_db", Some("far")), 8.0);
        assert_eq!(value(&v, "dsl_resets", None), 0.0);
        assert_eq!(value(&v, "dsl_links", None), 3.0);
        assert_eq!(get(&v, "dsl_links", None).unwrap().kind, Counter);
        assert_eq!(value(&v, "showtime", None), 1.0);
        assert_eq!(v.len(), 13);
        let down = parse_dsl_status("  Running Mode : 17A   State : TRAINING\n");
        assert_eq!(value(&down, "showtime", None), 0.0);
    }

    #[test]
    fn the_uptime_is_the_longest_wan_up_time() {
        assert_eq!(parse_wan_uptime(WAN_FIXTURE), Some(27 * 3600 + 13 * 60 + 5));
        let two = "WAN1: Online\n Mode: PPPoE, Up Time=0:05:00\nWAN2: Online\n Mode: DHCP Client, Up Time=100:00:01\n";
        assert_eq!(parse_wan_uptime(two), Some(360_001));
        // Every WAN down, or nothing readable: no uptime.
        assert_eq!(
            parse_wan_uptime("WAN1: Offline\n Mode: ---, Up Time=00:00:00\n"),
            None
        );
        assert_eq!(
            parse_wan_uptime(" Up Time=1:61:00\n Up Time=2:00\n Up Time=x"),
            None
        );
    }

    #[test]
    fn wan_status_packets_and_rates_per_wan() {
        let v = parse_wan_status(WAN_FIXTURE);
        assert_eq!(value(&v, "wan1_online", None), 1.0);
        assert_eq!(value(&v, "wan1_tx_packets", None), 4_018_263.0);
        assert_eq!(value(&v, "wan1_tx_rate_bps", None), 48_210.0);
        assert_eq!(value(&v, "wan1_rx_packets", None), 7_351_196.0);
        assert_eq!(value(&v, "wan1_rx_rate_bps", None), 1_225_480.0);
        assert_eq!(get(&v, "wan1_rx_packets", None).unwrap().kind, Counter);
        assert_eq!(get(&v, "wan1_rx_rate_bps", None).unwrap().kind, Gauge);
        assert_eq!(value(&v, "wan2_online", None), 0.0);
        assert_eq!(value(&v, "wan2_rx_packets", None), 1179.0);
        assert_eq!(value(&v, "usb_wan4_tx_packets", None), 0.0);
        assert_eq!(v.len(), 4 * 5);
    }

    #[test]
    fn a_header_cut_by_the_pager_ends_the_last_wan() {
        let v = parse_wan_status(
            "PVC_WAN8: Offline, stall=N\n TX Packets=5, TX Rate(bps)=0, RX Packets=6, RX Rate(bps)=0\n\
             : Offline, stall=N\n Mode: ---, Up Time=00:00:00\n TX Packets=9, TX Rate(bps)=0\n",
        );
        assert_eq!(value(&v, "pvc_wan8_tx_packets", None), 5.0);
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn missing_and_garbled_fields_give_what_is_readable() {
        let v = parse_dsl_more(" CRC          :    12\n FECS : x 4\n ES :\n SES\n UAS : 1e9 -\n");
        assert_eq!(value(&v, "crc", Some("near")), 12.0);
        assert!(get(&v, "crc", Some("far")).is_none());
        assert_eq!(value(&v, "fecs", Some("far")), 4.0);
        assert_eq!(v.len(), 2);
        let v = parse_wan_status("WAN1: Online\n TX Packets=, TX Rate(bps)=12, RX Packets=NaN\n");
        assert_eq!(value(&v, "wan1_tx_rate_bps", None), 12.0);
        assert_eq!(v.len(), 2);
        assert!(parse_dsl_status("% Unknown command\n").is_empty());
        assert!(parse_dsl_more("").is_empty());
        assert!(parse_wan_status("TX Packets=4").is_empty(), "no WAN header");
    }

    #[test]
    fn pager_redraws_and_echo_are_cleaned() {
        let raw = b"vdsl status more\r\nline one\n--- MORE ---   ['q': Quit, 'Enter': New Lines, \
                    'Space Bar': Next Page] ---\n\r          \r line two\n\x08\x08\x08   \x08\x08\x08three\n\
                    ['q': Quit, 'Enter': New Lines, 'Space Bar': Next Page] --- four\n";
        assert_eq!(
            clean_output(raw, "vdsl status more"),
            "line one\n line two\nthree\n four\n\n"
        );
        assert_eq!(clean_output(b"DrayTek> wan status\nx", "wan status"), "x\n");
        assert_eq!(clean_output(b"ab\rc\x07d", ""), "cd\n");
    }

    #[test]
    fn numbers_are_plain_decimals() {
        assert_eq!(number("17"), Some(17.0));
        assert_eq!(number("-4.5"), Some(-4.5));
        assert_eq!(number("----"), None);
        assert_eq!(number("inf"), None);
        assert_eq!(number("NaN"), None);
        assert_eq!(number("1e9"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("13."), Some(13.0));
        assert_eq!(number("6.25"), Some(6.25));
        assert_eq!(number("+3"), Some(3.0));
        assert_eq!(number("-"), None);
        assert_eq!(number("."), None);
        assert_eq!(number("1.2.3"), None);
        assert_eq!(number("4294967295"), Some(4_294_967_295.0));
        assert_eq!(number("99999999999999999999"), None, "over 19 digits");
    }
}
