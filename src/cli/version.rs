use super::CliError;
use argh::FromArgs;

/// Print the version.
#[derive(FromArgs)]
#[argh(subcommand, name = "version")]
pub struct VersionArgs {}

pub fn run(_: VersionArgs) -> Result<(), CliError> {
    println!("netmeter {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
