//! Command-line entry points: one file per subcommand. The rest of the code
//! never sees the argument parser.

mod daemon;
mod format;
mod interfaces;
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
    Daemon(daemon::DaemonArgs),
    Interfaces(interfaces::InterfacesArgs),
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
                eprintln!("{}", early.output);
                ExitCode::from(2)
            };
        }
    };
    let result = match args.command {
        Command::Daemon(a) => daemon::run(a),
        Command::Interfaces(a) => interfaces::run(a),
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
