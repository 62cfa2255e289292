use super::CliError;
use crate::account::attribution::Attribution;
use crate::collect::conntrack;
use crate::collect::devices::{self, Hooks};
use crate::config::Config;
use crate::netlink::nftables::NF_FLOWTABLE_COUNTER;
use crate::netlink::nftables::NF_FLOWTABLE_HW_OFFLOAD;
use crate::netlink::{NetlinkSocket, socket::NETLINK_NETFILTER};
use crate::serve::api::{ConntrackStatus, DevicesReport, PerDeviceStatus, StatusView};
use crate::store::persist::StoreStatus;
use crate::store::timeline::ClockState;
use argh::FromArgs;
use serde::Serialize;
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
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf)
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

    let status: Option<StatusView> =
        super::ask_daemon(&config, args.url.as_deref(), "/api/v1/status")?;
    match &status {
        None => say(
            false,
            "daemon",
            format!(
                "no daemon answers: nothing is being counted ({})",
                crate::config::System::here().start_hint()
            ),
        ),
        Some(s) => check_daemon(s, &mut say),
    }
    say(
        true,
        "state",
        format!(
            "history in {}, spool in {} (database_directory, spool_directory)",
            config.database_directory.display(),
            config.spool_directory.display()
        ),
    );
    check_token(&config, &mut say);
    let by_conntrack = status
        .as_ref()
        .is_some_and(|s| s.per_device.placement_kind == "conntrack");
    check_kernel(status.is_some(), by_conntrack, &mut say);
    #[cfg(feature = "upstream")]
    super::upstream::check(&config, &mut say);
    #[cfg(not(feature = "upstream"))]
    for source in &config.upstream {
        let why = crate::upstream::NEEDS_FULL;
        say(false, "upstream", format!("'{}': {why}", source.name));
    }
    #[cfg(not(feature = "quota"))]
    for quota in &config.quotas {
        let why = crate::config::quota::NEEDS_FULL;
        say(false, "quota", format!("'{}': {why}", quota.name));
    }
    if status.is_some()
        && let Some(d) =
            super::ask_daemon::<DevicesReport>(&config, args.url.as_deref(), "/api/v1/devices")?
    {
        check_overflow(&d, &config, &mut say);
    }

    let ok = findings.iter().all(|f| f.ok);
    if args.json {
        super::print_json(&Report { ok, findings })?;
    } else {
        print!("{}", render(&findings));
    }
    if ok {
        Ok(())
    } else {
        Err(CliError::Failed(
            "check found problems (WARN lines above)".into(),
        ))
    }
}

fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            let mark = if f.ok { "ok  " } else { "WARN" };
            format!("{mark} {:<12} {}\n", f.topic, f.message)
        })
        .collect()
}

/// What the daemon's status says.
fn check_daemon(s: &StatusView, say: &mut impl FnMut(bool, &'static str, String)) {
    say(
        true,
        "daemon",
        format!(
            "running for {} s, refreshing every {} s",
            s.uptime, s.refresh_interval
        ),
    );
    if let Some(e) = &s.last_error {
        say(false, "daemon", format!("the last refresh failed: {e}"));
    }
    check_per_device(&s.per_device, say);
    if let Some(a) = &s.attribution {
        check_attribution(a, say);
    }
    check_store(&s.store, s.clock, say);
}

fn check_per_device(p: &PerDeviceStatus, say: &mut impl FnMut(bool, &'static str, String)) {
    if p.active {
        say(true, "placement", p.placement.clone());
    } else {
        let why = p.off_reason.as_deref().unwrap_or("not started yet");
        say(
            false,
            "placement",
            format!("per-device accounting is off: {why}"),
        );
    }
    if !p.missing_devices.is_empty() {
        say(
            false,
            "placement",
            format!(
                "configured LAN device(s) missing, not counted: {}",
                p.missing_devices.join(", ")
            ),
        );
    }
    if let Some(c) = &p.conntrack {
        check_conntrack(c, say);
    }
    let gaps = p.unknown_gaps;
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

fn check_conntrack(c: &ConntrackStatus, say: &mut impl FnMut(bool, &'static str, String)) {
    if c.accounting == "on" {
        say(
            true,
            "conntrack",
            format!(
                "conntrack accounting is on; {} of at most {} flows followed",
                c.tracked_flows, c.max_flows
            ),
        );
    } else {
        say(false, "conntrack", c.accounting.clone());
    }
    if c.flows_without_counters > 0 {
        // With accounting on now, these began before it was: they end.
        say(
            c.accounting == "on",
            "conntrack",
            format!(
                "{} flows carry no counters (begun while nf_conntrack_acct was off): their bytes are not counted",
                c.flows_without_counters
            ),
        );
    }
    if c.untracked_flows > 0 {
        say(
            false,
            "conntrack",
            format!(
                "{} flows are not followed (option max_flows {} is reached): each is counted only when it \
                 ends; raise option max_flows",
                c.untracked_flows, c.max_flows
            ),
        );
    }
    if c.event_overruns > 0 {
        say(
            false,
            "conntrack",
            format!(
                "the kernel dropped destroy events {} time(s) (netmeter's buffer was full) and {} flows ended \
                 unseen: their last bytes are not counted; a shorter option refresh_interval helps",
                c.event_overruns, c.ended_unseen
            ),
        );
    } else if c.ended_unseen > 0 {
        say(
            true,
            "conntrack",
            format!(
                "{} flows ended without a destroy event (flows begun before netmeter started get none): \
                 their bytes since the last read before their end are not counted",
                c.ended_unseen
            ),
        );
    }
    for fix in &c.uncounted_flowtables {
        say(false, "conntrack", fix.clone());
    }
}

/// Whether history is safe: writes working, and the clock set.
fn check_store(
    store: &StoreStatus,
    clock: Option<ClockState>,
    say: &mut impl FnMut(bool, &'static str, String),
) {
    let mut fine = true;
    for e in [&store.last_commit_error, &store.last_spool_error]
        .into_iter()
        .flatten()
    {
        say(false, "storage", e.clone());
        fine = false;
    }
    if fine {
        let when = |t: Option<u64>| {
            t.map_or("not yet".to_owned(), |t| {
                format!("at {}", crate::store::files::utc(t))
            })
        };
        say(
            true,
            "storage",
            format!(
                "state from {}; last spool {}, last commit to {} {}",
                store.loaded_from,
                when(store.last_spool),
                store.database_directory.display(),
                when(store.last_commit)
            ),
        );
    }
    match clock {
        Some(ClockState::NotSet) => say(
            false,
            "clock",
            "the system clock is not set (before 2025): history waits for NTP, totals count on".into(),
        ),
        Some(ClockState::Behind) => say(
            false,
            "clock",
            "the system clock went back behind saved history: history waits until it catches up (or an hour)"
                .into(),
        ),
        _ => {}
    }
}

fn check_attribution(a: &Attribution, say: &mut impl FnMut(bool, &'static str, String)) {
    for (dir, share, bytes) in [
        ("sent", a.tx_share, a.wan_tx_bytes),
        ("received", a.rx_share, a.wan_rx_bytes),
    ] {
        let Some(share) = share else {
            continue;
        };
        let text = format!(
            "devices {dir} {:.1}% of the IP bytes on {} since counting began",
            share * 100.0,
            a.wan.join(", ")
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
fn check_kernel(
    daemon_running: bool,
    by_conntrack: bool,
    say: &mut impl FnMut(bool, &'static str, String),
) {
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
                if by_conntrack {
                    if ft.flags & NF_FLOWTABLE_COUNTER == 0 {
                        say(false, "offload", conntrack::counter_fix(&ft));
                    } else {
                        say(
                            true,
                            "offload",
                            format!(
                                "flowtable {} (table {}) offloads on {on} and counts: conntrack's counters, \
                                 which netmeter reads, include its offloaded flows",
                                ft.name, ft.table
                            ),
                        );
                    }
                } else if placement == Some(Hooks::Forward) {
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
                             hook, netmeter's included, and are not counted per device. Count them from \
                             conntrack instead (option placement 'conntrack', or 'auto'), or turn hardware \
                             offload off (firewall: option flow_offloading_hw '0')",
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

fn check_overflow(
    d: &DevicesReport,
    config: &Config,
    say: &mut impl FnMut(bool, &'static str, String),
) {
    let bytes = d.unattributed.rx_bytes + d.unattributed.tx_bytes;
    if bytes > 0 {
        say(
            false,
            "capacity",
            format!(
                "{bytes} bytes could not be tied to a device (the kernel's sets were full): raise option max_devices"
            ),
        );
    }
    if d.other.is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::samples;

    #[test]
    fn findings_come_from_what_the_api_sent() {
        let status: StatusView =
            super::super::through_api(samples::state(), "/api/v1/status").unwrap();
        let devices: DevicesReport =
            super::super::through_api(samples::state(), "/api/v1/devices").unwrap();
        let mut findings = Vec::new();
        let mut say = |ok: bool, topic: &'static str, message: String| {
            findings.push(Finding { ok, topic, message })
        };
        check_daemon(&status, &mut say);
        check_overflow(&devices, &Config::default(), &mut say);
        let text = render(&findings);
        for needle in [
            "ok   daemon       running for 20 s, refreshing every 10 s\n",
            "WARN daemon       the last refresh failed: reading links: EINTR\n",
            "ok   placement    netdev ingress and egress on br-lan\n",
            "WARN placement    configured LAN device(s) missing, not counted: br-guest\n",
            "WARN gaps         netmeter's table vanished 2 time(s)",
            "WARN attribution  devices sent 50.0% of the IP bytes on wan since counting began: traffic",
            "ok   attribution  devices received 95.0% of the IP bytes on wan since counting began \
             (too little traffic yet to judge)\n",
            "WARN storage      cannot commit to flash (read-only)\n",
            "WARN clock        the system clock went back behind saved history",
            "WARN capacity     3072 bytes could not be tied to a device",
            "WARN capacity     more than max_devices (",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
    }

    #[test]
    fn a_healthy_store_says_where_and_when_it_wrote() {
        let mut state = samples::state();
        state.store.last_commit_error = None;
        state.clock = None;
        let status: StatusView = super::super::through_api(state, "/api/v1/status").unwrap();
        let mut findings = Vec::new();
        check_store(&status.store, status.clock, &mut |ok, topic, message| {
            findings.push(Finding { ok, topic, message })
        });
        assert_eq!(
            render(&findings),
            "ok   storage      state from /etc/netmeter/netmeter.state (saved …, sequence 9); \
             last spool at 2026-11-18 11:06:45 UTC, last commit to /etc/netmeter at 2026-11-18 11:06:41 UTC\n"
        );
    }
}
