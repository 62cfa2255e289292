use super::CliError;
use argh::FromArgs;

/// Print the version and the build's variant: core (package netmeter) or
/// full (netmeter-full, with the upstream routers).
#[derive(FromArgs)]
#[argh(subcommand, name = "version")]
pub struct VersionArgs {}

pub fn run(_: VersionArgs) -> Result<(), CliError> {
    println!("netmeter {}", env!("CARGO_PKG_VERSION"));
    match crate::upstream::BUILT {
        true => println!("variant: full (package netmeter-full)\nfeatures: upstream"),
        false => println!("variant: core (package netmeter)\nfeatures: none"),
    }
    Ok(())
}
