use super::CliError;
use crate::collect::devices::{self, Hooks};
use crate::config::Config;
use crate::netlink::nftables::NF_FLOWTABLE_HW_OFFLOAD;
use crate::netlink::{NetlinkSocket, socket::NETLINK_NETFILTER};
use argh::FromArgs;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;

/// Say what would make the counts wrong: placement, flow offloading, a
/// missing table, gaps, and the share of WAN traffic attributed to devices.
/// Exits 1 when it found a problem.
#[derive(FromArgs)]
#[argh(subcommand, name = "check")]
pub struct CheckArgs {
    /// print JSON instead of text
    #[argh(switch)]
    json: bool,
    /// ask the daemon at this address (http://HOST:PORT)
    #[argh(option)]
    url: Option<String>,
    /// configuration file (default /etc/config/netmeter)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(Serialize)]
struct Finding {
    ok: bool,
    topic: &'static str,
    message: String,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    findings: Vec<Finding>,
}

/// Below this share of WAN bytes the placement is suspect (the router's own
/// traffic explains a little, never this much).
const LOW_SHARE: f64 = 0.9;
/// Shares over less WAN traffic than this say nothing.
const MEANINGFUL_BYTES: u64 = 1 << 20;

pub fn run(args: CheckArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    let mut findings = Vec::new();
    let mut say = |ok: bool, topic: &'static str, message: String| {
        findings.push(Finding { ok, topic, message })
    };

    let status: Option<Value> = super::ask_daemon(&config, args.url.as_deref(), "/api/v1/status")?;
    match &status {
        None => say(
            false,
            "daemon",
            "no daemon answers: nothing is being counted (service netmeter start)".into(),
        ),
        Some(s) => {
            let ago = s["uptime"].as_u64().unwrap_or(0);
            say(
                true,
                "daemon",
                format!(
                    "running for {ago} s, refreshing every {} s",
                    s["refresh_interval"]
                ),
            );
            if let Some(e) = s["last_error"].as_str() {
                say(false, "daemon", format!("the last refresh failed: {e}"));
            }
            check_per_device(&s["per_device"], &mut say);
            check_attribution(&s["attribution"], &mut say);
            check_store(&s["store"], &s["clock"], &mut say);
        }
    }
    check_token(&config, &mut say);
    check_kernel(status.is_some(), &mut say);
    #[cfg(feature = "upstream")]
    super::upstream::check(&config, &mut say);
    #[cfg(not(feature = "upstream"))]
    for source in &config.upstream {
        let why = crate::upstream::NEEDS_FULL;
        say(false, "upstream", format!("'{}': {why}", source.name));
    }
    if status.is_some()
        && let Some(d) =
            super::ask_daemon::<Value>(&config, args.url.as_deref(), "/api/v1/devices")?
    {
        check_overflow(&d, &config, &mut say);
    }

    let ok = findings.iter().all(|f| f.ok);
    if args.json {
        super::print_json(&Report { ok, findings })?;
    } else {
        for f in &findings {
            println!(
                "{} {:<12} {}",
                if f.ok { "ok  " } else { "WARN" },
                f.topic,
                f.message
            );
        }
    }
    if ok {
        Ok(())
    } else {
        Err(CliError::Runtime(
            "check found problems (WARN lines above)".into(),
        ))
    }
}

fn check_per_device(p: &Value, say: &mut impl FnMut(bool, &'static str, String)) {
    if p["active"].as_bool() == Some(true) {
        say(
            true,
            "placement",
            p["placement"].as_str().unwrap_or("?").to_string(),
        );
    } else {
        let why = p["off_reason"].as_str().unwrap_or("not started yet");
        say(
            false,
            "placement",
            format!("per-device accounting is off: {why}"),
        );
    }
    if let Some(missing) = p["missing_devices"].as_array().filter(|m| !m.is_empty()) {
        let names: Vec<&str> = missing.iter().filter_map(Value::as_str).collect();
        say(
            false,
            "placement",
            format!(
                "configured LAN device(s) missing, not counted: {}",
                names.join(", ")
            ),
        );
    }
    let gaps = p["unknown_gaps"].as_u64().unwrap_or(0);
    if gaps > 0 {
        say(
            false,
            "gaps",
            format!(
                "netmeter's table vanished {gaps} time(s) (firewall restarts or 'nft flush ruleset') and was \
                 reinstalled; traffic between the last read and each reinstall is unknown"
            ),
        );
    }
}

/// Whether history is safe: writes working, and the clock set.
fn check_store(store: &Value, clock: &Value, say: &mut impl FnMut(bool, &'static str, String)) {
    let mut fine = true;
    for key in ["last_commit_error", "last_spool_error"] {
        if let Some(e) = store[key].as_str() {
            say(false, "storage", e.to_owned());
            fine = false;
        }
    }
    if fine {
        let when = |key: &str| {
            store[key].as_u64().map_or("not yet".to_owned(), |t| {
                format!("at {}", crate::store::files::utc(t))
            })
        };
        say(
            true,
            "storage",
            format!(
                "state from {}; last spool {}, last commit to {} {}",
                store["loaded_from"].as_str().unwrap_or("?"),
                when("last_spool"),
                store["database_directory"].as_str().unwrap_or("?"),
                when("last_commit")
            ),
        );
    }
    match clock.as_str() {
        Some("notset") => say(
            false,
            "clock",
            "the system clock is not set (before 2025): history waits for NTP, totals count on".into(),
        ),
        Some("behind") => say(
            false,
            "clock",
            "the system clock went back behind saved history: history waits until it catches up (or an hour)"
                .into(),
        ),
        _ => {}
    }
}

fn check_attribution(a: &Value, say: &mut impl FnMut(bool, &'static str, String)) {
    if a.is_null() {
        return;
    }
    let wan: Vec<&str> = a["wan"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (dir, share_key, wan_key) in [
        ("sent", "tx_share", "wan_tx_bytes"),
        ("received", "rx_share", "wan_rx_bytes"),
    ] {
        let (Some(share), Some(bytes)) = (a[share_key].as_f64(), a[wan_key].as_u64()) else {
            continue;
        };
        let text = format!(
            "devices {dir} {:.1}% of the IP bytes on {} since counting began",
            share * 100.0,
            wan.join(", ")
        );
        if bytes < MEANINGFUL_BYTES {
            say(
                true,
                "attribution",
                format!("{text} (too little traffic yet to judge)"),
            );
        } else if share < LOW_SHARE {
            say(
                false,
                "attribution",
                format!(
                    "{text}: traffic is crossing the WAN without passing the LAN device(s) netmeter counts on \
                     (another LAN interface? hardware offload?)"
                ),
            );
        } else {
            say(true, "attribution", text);
        }
    }
}

/// Whether the API asks for a token (never the token itself). Either way
/// is a choice, so neither is a warning.
fn check_token(config: &Config, say: &mut impl FnMut(bool, &'static str, String)) {
    if config.token.is_some() {
        return say(
            true,
            "token",
            "set: API clients must send it as Authorization: Bearer".into(),
        );
    }
    let beyond: Vec<String> = config
        .listen
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.to_string())
        .collect();
    let who = if beyond.is_empty() {
        "programs on the router itself (the API listens on loopback only)".to_string()
    } else {
        format!("anyone who reaches {}", beyond.join(", "))
    };
    say(true, "token", format!("not set: {who} can read the API"));
}

/// What the kernel itself says: netmeter's table and any flowtables.
fn check_kernel(daemon_running: bool, say: &mut impl FnMut(bool, &'static str, String)) {
    let mut socket = match NetlinkSocket::open(NETLINK_NETFILTER) {
        Ok(s) => s,
        Err(e) => return say(false, "firewall", format!("cannot inspect nftables: {e}")),
    };
    let placement = match devices::installed(&mut socket) {
        Ok(p) => p,
        Err(e) if e.is_permission_denied() => {
            return say(
                false,
                "firewall",
                "cannot inspect nftables without root (CAP_NET_ADMIN): run netmeter check as root"
                    .into(),
            );
        }
        Err(e) => return say(false, "firewall", format!("cannot inspect nftables: {e}")),
    };
    match (placement, daemon_running) {
        (Some(_), _) => say(
            true,
            "table",
            "netmeter's nftables table is installed".into(),
        ),
        (None, true) => say(
            false,
            "table",
            "netmeter's nftables table is missing; the daemon reinstalls it on its next refresh"
                .into(),
        ),
        (None, false) => say(
            false,
            "table",
            "netmeter's nftables table is not installed".into(),
        ),
    }
    match devices::flowtables(&mut socket) {
        Ok(fts) if fts.is_empty() => {
            say(true, "offload", "no flowtable: no flow offloading".into())
        }
        Ok(fts) => {
            for ft in fts {
                let on = ft.devices.join(", ");
                if placement == Some(Hooks::Forward) {
                    say(
                        false,
                        "offload",
                        format!(
                            "flowtable {} (table {}) offloads flows on {on}, and netmeter counts in the forward \
                             chain, which offloaded packets skip: per-device counts miss them. Use a kernel with \
                             the netdev egress hook (Linux 5.16+) and option placement 'auto', or turn flow \
                             offloading off",
                            ft.name, ft.table
                        ),
                    );
                } else if ft.flags & NF_FLOWTABLE_HW_OFFLOAD != 0 {
                    say(
                        false,
                        "offload",
                        format!(
                            "flowtable {} (table {}) offloads to hardware on {on}: those flows bypass every software \
                             hook, netmeter's included, and are not counted per device. For exact counts turn \
                             hardware offload off (firewall: option flow_offloading_hw '0')",
                            ft.name, ft.table
                        ),
                    );
                } else {
                    say(
                        true,
                        "offload",
                        format!(
                            "flowtable {} (table {}) offloads in software on {on}: netmeter counts at netdev \
                             ingress before it and at egress (a bridge on its ports, where the flowtable is), \
                             so offloaded flows are counted",
                            ft.name, ft.table
                        ),
                    );
                }
            }
        }
        Err(e) => say(false, "offload", format!("cannot list flowtables: {e}")),
    }
}

fn check_overflow(d: &Value, config: &Config, say: &mut impl FnMut(bool, &'static str, String)) {
    let u = &d["unattributed"];
    let bytes = u["rx_bytes"].as_u64().unwrap_or(0) + u["tx_bytes"].as_u64().unwrap_or(0);
    if bytes > 0 {
        say(
            false,
            "capacity",
            format!(
                "{bytes} bytes could not be tied to a device (the kernel's sets were full): raise option max_devices"
            ),
        );
    }
    if !d["other"].is_null() {
        say(
            false,
            "capacity",
            format!(
                "more than max_devices ({}) devices: the rest are counted together as 'other'",
                config.max_devices
            ),
        );
    }
}
