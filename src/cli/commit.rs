use super::CliError;
use crate::config::Config;
use crate::serve::api::StatusView;
use argh::FromArgs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Make the running daemon write its state to flash now (before pulling the
/// plug, or before a sysupgrade).
#[derive(FromArgs)]
#[argh(subcommand, name = "commit")]
pub struct CommitArgs {
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// A commit writes a few KB; a slow flash still finishes well within this.
const WAIT: Duration = Duration::from_secs(15);

pub fn run(args: CommitArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    let not_running = || {
        CliError::Failed(format!(
            "no daemon answers: nothing to commit ({})",
            crate::config::System::here().start_hint()
        ))
    };
    let status: StatusView =
        super::ask_daemon(&config, None, "/api/v1/status")?.ok_or_else(not_running)?;
    let before = status.store.commits;
    // 0 would signal this process group: an answer without a pid.
    let pid = i32::try_from(status.pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| CliError::Failed("the daemon did not say its process id".into()))?;
    // SAFETY: kill(2) with a pid the daemon reported and a valid signal.
    if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
        let error = std::io::Error::last_os_error();
        return Err(CliError::Signal { pid, error });
    }
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let Some(status) = super::ask_daemon::<StatusView>(&config, None, "/api/v1/status")? else {
            return Err(not_running());
        };
        if let Some(done) = outcome(status, before) {
            println!("{}", done?);
            return Ok(());
        }
    }
    Err(CliError::Failed(format!(
        "the daemon did not commit within {} s; see its log (logread -e netmeter)",
        WAIT.as_secs()
    )))
}

/// Once the daemon counts a commit after `before`: where it went, or the
/// daemon's own account of why it failed.
fn outcome(status: StatusView, before: u64) -> Option<Result<String, CliError>> {
    if status.store.commits <= before {
        return None;
    }
    Some(match status.store.last_commit_error {
        Some(error) => Err(CliError::Failed(error)),
        None => Ok(format!(
            "committed to {}",
            status.store.database_directory.display()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::samples;

    fn status(state: crate::serve::api::ApiState) -> StatusView {
        super::super::through_api(state, "/api/v1/status").unwrap()
    }

    #[test]
    fn a_commit_is_judged_from_what_the_api_sent() {
        let failed = status(samples::state());
        assert_eq!(failed.pid, std::process::id());
        assert!(outcome(failed.clone(), 3).is_none());
        let e = outcome(failed, 2).unwrap().unwrap_err();
        assert_eq!(e.to_string(), "cannot commit to flash (read-only)");
        let mut state = samples::state();
        state.store.last_commit_error = None;
        let done = outcome(status(state), 2).unwrap().unwrap();
        assert_eq!(done, "committed to /etc/netmeter");
    }
}
