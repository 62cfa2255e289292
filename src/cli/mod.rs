//! Command-line entry points: one file per subcommand. The rest of the code
//! never sees the argument parser.
//!
//! `argh` with its `help` feature: every `--help` comes from the doc
//! comments. A usage error names what was wrong and ends with `Run 'netmeter
//! [SUBCOMMAND] --help'`. `CliError` is typed (usage, config, daemon,
//! netlink, client, the daemon's answer, signal), and only [`main`] turns it
//! into an exit code (0 ok, 1 runtime, 2 usage or config). `ask_daemon`
//! asks the first `listen` address (or `--url`) and decodes the answer into
//! the API's own view types; when nothing listens, `interfaces`, `devices`
//! and `check` read the kernel through the same `account` code and say so on
//! stderr.

mod check;
mod commit;
mod daemon;
mod devices;
mod format;
mod history;
mod interfaces;
mod queues;
#[cfg(feature = "quota")]
mod quotas;
mod sockets;
mod teardown;
mod top;
#[cfg(feature = "upstream")]
mod upstream;
mod version;
mod watch;

use crate::config::ConfigError;
use crate::daemon::DaemonError;
use crate::netlink::NetlinkError;
use crate::serve::client::ClientError;
use argh::FromArgs;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Per-device and per-interface bandwidth accounting for the gateway router.
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Check(check::CheckArgs),
    Commit(commit::CommitArgs),
    Daemon(daemon::DaemonArgs),
    Devices(devices::DevicesArgs),
    History(history::HistoryArgs),
    Interfaces(interfaces::InterfacesArgs),
    Queues(queues::QueuesArgs),
    Sockets(sockets::SocketsArgs),
    #[cfg(feature = "quota")]
    Quota(quotas::QuotaArgs),
    #[cfg(feature = "quota")]
    Quotas(quotas::QuotasArgs),
    Teardown(teardown::TeardownArgs),
    Top(top::TopArgs),
    #[cfg(feature = "upstream")]
    Upstream(upstream::UpstreamArgs),
    Version(version::VersionArgs),
    Watch(watch::WatchArgs),
}

/// Why a command failed. Only [`main`] turns it into an exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments.
    Usage(String),
    Config(ConfigError),
    /// `netmeter daemon` could not start or had to stop.
    Daemon(DaemonError),
    /// The kernel refused or garbled a netlink request.
    Netlink(NetlinkError),
    /// Asking the daemon failed (a missing daemon is not an error: the
    /// commands read the kernel or the saved state instead).
    Client(ClientError),
    /// The daemon answered, but not with the view asked for.
    Api {
        addr: SocketAddr,
        error: ApiError,
    },
    /// `--json` output could not be encoded.
    Encode(serde_json::Error),
    /// `netmeter commit` could not signal the daemon.
    Signal {
        pid: i32,
        error: std::io::Error,
    },
    /// A sentence that is the whole cause: nothing to read, nothing found,
    /// a problem the daemon reported, `check`'s verdict.
    Failed(String),
}

/// What was wrong with a daemon's answer.
#[derive(Debug)]
pub enum ApiError {
    /// An error status, with the daemon's message when it sent one.
    Status {
        status: u16,
        message: Option<String>,
    },
    /// A 200 whose body is not the view.
    Unreadable(serde_json::Error),
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Config(e)
    }
}

impl From<NetlinkError> for CliError {
    fn from(e: NetlinkError) -> Self {
        CliError::Netlink(e)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
            CliError::Config(e) => write!(f, "{e}"),
            CliError::Daemon(e) => write!(f, "{e}"),
            CliError::Netlink(e) => write!(f, "{e}"),
            CliError::Client(e) => write!(f, "{e}"),
            CliError::Api {
                addr,
                error: ApiError::Status { status, message },
            } => match message {
                Some(m) => write!(f, "the daemon at {addr} answered: {m}"),
                None => write!(f, "the daemon at {addr} answered: HTTP {status}"),
            },
            CliError::Api {
                addr,
                error: ApiError::Unreadable(e),
            } => write!(f, "the daemon at {addr} sent unreadable JSON: {e}"),
            CliError::Encode(e) => write!(f, "{e}"),
            CliError::Signal { pid, error } => write!(
                f,
                "cannot signal the daemon (pid {pid}): {error}; run this as root on the router itself"
            ),
        }
    }
}

/// 2 for what the admin wrote wrong (arguments, configuration), 1 for
/// what went wrong running.
fn exit_code(e: &CliError) -> ExitCode {
    match e {
        CliError::Usage(_) | CliError::Config(_) | CliError::Daemon(DaemonError::Config(_)) => {
            ExitCode::from(2)
        }
        _ => ExitCode::from(1),
    }
}

pub fn main() -> ExitCode {
    crate::clock::adopt_router_timezone();
    let argv: Vec<String> = std::env::args().collect();
    let name = argv
        .first()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("netmeter")
        .to_string();
    let rest: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    let args = match Args::from_args(&[&name], &rest) {
        Ok(a) => a,
        Err(early) => {
            return if early.status.is_ok() {
                println!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                let prefix = help_prefix(&name, &rest);
                // argh calls a misspelt subcommand an argument.
                let named = rest.iter().find(|w| **w != "help");
                match named {
                    Some(&"upstream") if !crate::upstream::BUILT => {
                        eprintln!("netmeter upstream: {}", crate::upstream::NEEDS_FULL)
                    }
                    #[cfg(not(feature = "quota"))]
                    Some(&word @ ("quota" | "quotas")) => {
                        eprintln!("netmeter {word}: {}", crate::config::quota::NEEDS_FULL)
                    }
                    Some(word) if prefix.is_empty() && !word.starts_with('-') => {
                        eprintln!("Unknown subcommand: {word}")
                    }
                    _ => eprintln!("{}", early.output.trim_end()),
                }
                eprintln!(
                    "Run '{name} {}--help' for usage.",
                    help_prefix(&name, &rest)
                );
                ExitCode::from(2)
            };
        }
    };
    let result = match args.command {
        Command::Check(a) => check::run(a),
        Command::Commit(a) => commit::run(a),
        Command::Daemon(a) => daemon::run(a),
        Command::Devices(a) => devices::run(a),
        Command::History(a) => history::run(a),
        Command::Interfaces(a) => interfaces::run(a),
        Command::Queues(a) => queues::run(a),
        Command::Sockets(a) => sockets::run(a),
        #[cfg(feature = "quota")]
        Command::Quota(a) => quotas::run_quota(a),
        #[cfg(feature = "quota")]
        Command::Quotas(a) => quotas::run(a),
        Command::Teardown(a) => teardown::run(a),
        Command::Top(a) => top::run(a),
        #[cfg(feature = "upstream")]
        Command::Upstream(a) => upstream::run(a),
        Command::Version(a) => version::run(a),
        Command::Watch(a) => watch::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netmeter: {e}");
            exit_code(&e)
        }
    }
}

/// `"devices "` when the arguments name a subcommand (so its own `--help`
/// is the one to read), else nothing.
fn help_prefix(name: &str, rest: &[&str]) -> String {
    match rest.first() {
        Some(sub)
            if !sub.starts_with('-')
                && *sub != "help"
                && Args::from_args(&[name], &[sub, "--help"]).is_err_and(|e| e.status.is_ok()) =>
        {
            format!("{sub} ")
        }
        _ => String::new(),
    }
}

/// Asks the running daemon (at `--url`, else the first configured listen
/// address) for `path`. `None` when no daemon answers there and `--url` was
/// not given: the caller reads the kernel directly and says so.
fn ask_daemon<T: serde::de::DeserializeOwned>(
    config: &crate::config::Config,
    url: Option<&str>,
    path: &str,
) -> Result<Option<T>, CliError> {
    use crate::serve::client;
    let addr = match url {
        Some(url) => client::parse_url(url).map_err(CliError::Usage)?,
        None => match config.listen.first() {
            Some(a) => loopback_for(*a),
            None => return Ok(None),
        },
    };
    let token = config.token.as_ref().map(crate::config::Secret::expose);
    let answer = client::get(addr, path, token, std::time::Duration::from_secs(3));
    let (status, body) = match answer {
        Ok(a) => a,
        Err(ClientError::NoDaemon(why)) if url.is_none() => {
            eprintln!("netmeter: {why}");
            return Ok(None);
        }
        Err(e) => return Err(CliError::Client(e)),
    };
    read_answer(status, &body)
        .map(Some)
        .map_err(|error| CliError::Api { addr, error })
}

/// A daemon's answer as the view the API serialised it from.
fn read_answer<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ApiError> {
    if status != 200 {
        let message = serde_json::from_slice::<crate::serve::http::ErrorBody>(body)
            .ok()
            .map(|b| b.error);
        return Err(ApiError::Status { status, message });
    }
    serde_json::from_slice(body).map_err(ApiError::Unreadable)
}

/// A daemon listening on every address is asked on loopback.
fn loopback_for(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::SocketAddr;
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        a => a,
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string(value).map_err(CliError::Encode)?;
    println!("{text}");
    Ok(())
}

/// What the CLI reads from a daemon publishing `state`: the API's own
/// route and serialiser, then the CLI's own reader.
#[cfg(test)]
fn through_api<T: serde::de::DeserializeOwned>(
    state: crate::serve::api::ApiState,
    path: &str,
) -> Result<T, CliError> {
    let sent = crate::serve::api::samples::answer(state, path);
    read_answer(sent.status, &sent.body).map_err(|error| CliError::Api {
        addr: SocketAddr::from(([127, 0, 0, 1], 9750)),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::{StatusView, samples};

    #[test]
    fn an_error_answer_is_shown_with_the_daemons_own_message() {
        let e = through_api::<StatusView>(samples::state(), "/api/v1/nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the daemon at 127.0.0.1:9750 answered: no such endpoint: /api/v1/nope"
        );
        assert_eq!(exit_code(&e), ExitCode::from(1));
    }

    #[test]
    fn an_answer_that_is_not_the_view_is_unreadable() {
        let e = through_api::<crate::serve::api::DevicesReport>(samples::state(), "/api/v1/status")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("sent unreadable JSON: missing field `devices`"),
            "{e}"
        );
    }
}
