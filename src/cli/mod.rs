//! Command-line entry points: one file per subcommand. The rest of the code
//! never sees the argument parser.

mod check;
mod commit;
mod daemon;
mod devices;
mod format;
mod history;
mod interfaces;
mod teardown;
#[cfg(feature = "upstream")]
mod upstream;
mod version;

use crate::config::ConfigError;
use argh::FromArgs;
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
    Teardown(teardown::TeardownArgs),
    #[cfg(feature = "upstream")]
    Upstream(upstream::UpstreamArgs),
    Version(version::VersionArgs),
}

/// Why a command failed; decides the exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or configuration: exit 2.
    Usage(String),
    Config(ConfigError),
    /// Something failed while running: exit 1.
    Runtime(String),
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Config(e)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Runtime(m) => f.write_str(m),
            CliError::Config(e) => write!(f, "{e}"),
        }
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
        Command::Teardown(a) => teardown::run(a),
        #[cfg(feature = "upstream")]
        Command::Upstream(a) => upstream::run(a),
        Command::Version(a) => version::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netmeter: {e}");
            match e {
                CliError::Runtime(_) => ExitCode::from(1),
                CliError::Usage(_) | CliError::Config(_) => ExitCode::from(2),
            }
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
    use crate::serve::client::{self, ClientError};
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
        Err(e) => return Err(CliError::Runtime(e.to_string())),
    };
    if status != 200 {
        let msg = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(CliError::Runtime(format!(
            "the daemon at {addr} answered: {msg}"
        )));
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| CliError::Runtime(format!("the daemon at {addr} sent unreadable JSON: {e}")))
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
    let text = serde_json::to_string(value).map_err(|e| CliError::Runtime(e.to_string()))?;
    println!("{text}");
    Ok(())
}
