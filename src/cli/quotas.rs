//! `netmeter quotas [--json]` shows every quota as the daemon judged it;
//! `netmeter quota reset NAME` lifts a quota's block for the rest of its
//! period: it leaves a request in the daemon's spool directory (only the
//! daemon's user, root on a router, may write there) and sends SIGUSR2,
//! then waits until the API shows the block lifted.

use super::{CliError, format};
use crate::config::Config;
use crate::serve::api::StatusView;
use argh::FromArgs;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Show every quota: usage in its period, thresholds fired, blocks.
#[derive(FromArgs)]
#[argh(subcommand, name = "quotas")]
pub struct QuotasArgs {
    /// print JSON instead of a table
    #[argh(switch)]
    json: bool,
    /// ask the daemon at this address (http://HOST:PORT) instead of the
    /// configured listen address
    #[argh(option)]
    url: Option<String>,
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// Act on one quota: `netmeter quota reset NAME` lifts its block until
/// its period ends.
#[derive(FromArgs)]
#[argh(subcommand, name = "quota")]
pub struct QuotaArgs {
    #[argh(subcommand)]
    action: QuotaAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum QuotaAction {
    Reset(ResetArgs),
}

/// Lift a quota's block until its period ends (its thresholds stay fired).
#[derive(FromArgs)]
#[argh(subcommand, name = "reset")]
struct ResetArgs {
    /// the quota's name (its config quota section)
    #[argh(positional)]
    name: String,
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// The daemon lifts at once; its next refresh updates the table.
const WAIT: Duration = Duration::from_secs(15);

fn not_running() -> CliError {
    CliError::Failed(format!(
        "no daemon answers: quotas are judged by the daemon ({})",
        crate::config::System::here().start_hint()
    ))
}

/// The daemon's quotas report, read as a JSON value: the views'
/// `Deserialize` would cost the full build 15 KB on x86_64 for one table
/// (docs/BENCHMARKS.md).
fn ask(config: &Config, url: Option<&str>) -> Result<Vec<Value>, CliError> {
    let report: Value =
        super::ask_daemon(config, url, "/api/v1/quotas")?.ok_or_else(not_running)?;
    match report.get("quotas").and_then(Value::as_array) {
        Some(quotas) => Ok(quotas.clone()),
        None => Err(CliError::Failed(format!(
            "the daemon's /api/v1/quotas has no quotas list: {report}"
        ))),
    }
}

pub fn run(args: QuotasArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    if args.json {
        let report: Value = super::ask_daemon(&config, args.url.as_deref(), "/api/v1/quotas")?
            .ok_or_else(not_running)?;
        super::print_json(&report)
    } else {
        print!("{}", render(&ask(&config, args.url.as_deref())?));
        Ok(())
    }
}

fn text(q: &Value, field: &str) -> String {
    q[field].as_str().unwrap_or_default().to_owned()
}

fn number(q: &Value, field: &str) -> u64 {
    q[field].as_u64().unwrap_or_default()
}

fn flag(q: &Value, field: &str) -> bool {
    q[field].as_bool().unwrap_or_default()
}

pub fn run_quota(args: QuotaArgs) -> Result<(), CliError> {
    let QuotaAction::Reset(args) = args.action;
    let config = Config::load(args.config.as_deref())?;
    let quotas = ask(&config, None)?;
    if !quotas.iter().any(|q| q["name"] == args.name.as_str()) {
        let known: Vec<String> = quotas.iter().map(|q| text(q, "name")).collect();
        return Err(CliError::Usage(match known.is_empty() {
            true => format!(
                "no quota named '{}': the daemon has none (add a config quota section)",
                args.name
            ),
            false => format!(
                "no quota named '{}': the daemon has {}",
                args.name,
                known.join(", ")
            ),
        }));
    }
    let status: StatusView =
        super::ask_daemon(&config, None, "/api/v1/status")?.ok_or_else(not_running)?;
    let dir = status
        .store
        .spool_directory
        .join(crate::daemon::quota_runner::RESET_DIRECTORY);
    let write = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(&args.name), b""))
        .map_err(|e| {
            CliError::Failed(format!(
                "cannot leave the reset request in {}: {e} (run as the daemon's user, root)",
                dir.display()
            ))
        });
    write?;
    let pid = i32::try_from(status.pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| CliError::Failed("the daemon did not say its process id".into()))?;
    // SAFETY: kill(2) with a pid the daemon reported and a valid signal.
    if unsafe { libc::kill(pid, libc::SIGUSR2) } != 0 {
        let error = std::io::Error::last_os_error();
        return Err(CliError::Signal { pid, error });
    }
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let quotas = ask(&config, None)?;
        if let Some(q) = quotas.iter().find(|q| q["name"] == args.name.as_str())
            && (flag(q, "lifted")
                || (q["fired"].as_array().is_none_or(Vec::is_empty) && !flag(q, "blocked")))
        {
            println!(
                "quota {}: lifted until the {} ends",
                args.name,
                text(q, "period")
            );
            return Ok(());
        }
    }
    Err(CliError::Failed(format!(
        "the daemon did not lift quota {} within {} s; see its log (logread -e netmeter)",
        args.name,
        WAIT.as_secs()
    )))
}

fn render(quotas: &[Value]) -> String {
    let rows: Vec<Vec<String>> = quotas
        .iter()
        .map(|q| {
            let (used, limit) = (number(q, "used_bytes"), number(q, "limit_bytes"));
            let percent = u128::from(used) * 100 / u128::from(limit.max(1));
            let state = if flag(q, "blocked") {
                "blocked"
            } else if flag(q, "lifted") {
                "lifted"
            } else {
                ""
            };
            let fired: Vec<String> = q["fired"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| format!("{t}%"))
                .collect();
            vec![
                text(q, "name"),
                format!("{} {}", text(q, "target_kind"), text(q, "target")),
                format!("{} {}", text(q, "direction"), text(q, "period")),
                format::bytes(used),
                format::bytes(limit),
                format!("{percent}%"),
                fired.join(" "),
                state.to_owned(),
            ]
        })
        .collect();
    format::table(
        &[
            "quota", "target", "counts", "used", "limit", "", "fired", "state",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::samples;

    #[test]
    fn the_table_renders_what_the_api_sent() {
        let report: Value = super::super::through_api(samples::state(), "/api/v1/quotas").unwrap();
        let text = render(report["quotas"].as_array().unwrap());
        assert!(text.starts_with("quota"), "{text}");
        assert!(
            text.contains(
                "kids   group kids  total month  1.00 GiB  1.00 GiB  100%  80% 100%  blocked"
            ),
            "{text}"
        );
    }
}
