use super::CliError;
use argh::FromArgs;
use std::path::PathBuf;

/// Run the accounting daemon in the foreground (procd runs it this way).
/// SIGTERM/SIGINT stop it; SIGHUP reloads the configuration.
#[derive(FromArgs)]
#[argh(subcommand, name = "daemon")]
pub struct DaemonArgs {
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf; built-in defaults when neither exists)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

pub fn run(args: DaemonArgs) -> Result<(), CliError> {
    crate::daemon::run(args.config).map_err(CliError::Daemon)
}
