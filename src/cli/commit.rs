use super::CliError;
use crate::config::Config;
use argh::FromArgs;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Make the running daemon write its state to flash now (before pulling the
/// plug, or before a sysupgrade).
#[derive(FromArgs)]
#[argh(subcommand, name = "commit")]
pub struct CommitArgs {
    /// configuration file (default /etc/config/netmeter)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// A commit writes a few KB; a slow flash still finishes well within this.
const WAIT: Duration = Duration::from_secs(15);

pub fn run(args: CommitArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    let not_running = || {
        CliError::Runtime("no daemon answers: nothing to commit (service netmeter start)".into())
    };
    let status: Value =
        super::ask_daemon(&config, None, "/api/v1/status")?.ok_or_else(not_running)?;
    let commits = |s: &Value| s.pointer("/store/commits").and_then(Value::as_u64);
    let before = commits(&status).unwrap_or(0);
    let pid = status
        .get("pid")
        .and_then(Value::as_u64)
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| CliError::Runtime("the daemon did not say its process id".into()))?;
    // SAFETY: kill(2) with a pid the daemon reported and a valid signal.
    if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(CliError::Runtime(format!(
            "cannot signal the daemon (pid {pid}): {e}; run this as root on the router itself"
        )));
    }
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let Some(status) = super::ask_daemon::<Value>(&config, None, "/api/v1/status")? else {
            return Err(not_running());
        };
        if commits(&status).unwrap_or(0) > before {
            let store = &status["store"];
            if let Some(error) = store.get("last_commit_error").and_then(Value::as_str) {
                return Err(CliError::Runtime(error.to_owned()));
            }
            println!(
                "committed to {}",
                store
                    .get("database_directory")
                    .and_then(Value::as_str)
                    .unwrap_or("flash")
            );
            return Ok(());
        }
    }
    Err(CliError::Runtime(format!(
        "the daemon did not commit within {} s; see its log (logread -e netmeter)",
        WAIT.as_secs()
    )))
}
