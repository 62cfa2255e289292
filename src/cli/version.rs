use super::CliError;
use argh::FromArgs;

/// Print the version and the build's variant: core (package netmeter) or
/// full (netmeter-full, with the upstream routers, MQTT and quotas).
#[derive(FromArgs)]
#[argh(subcommand, name = "version")]
pub struct VersionArgs {}

pub fn run(_: VersionArgs) -> Result<(), CliError> {
    println!("netmeter {}", env!("CARGO_PKG_VERSION"));
    let features = crate::FEATURES;
    match crate::upstream::BUILT {
        true => println!("variant: full (package netmeter-full)"),
        false => println!("variant: core (package netmeter)"),
    }
    match features.is_empty() {
        true => println!("features: none"),
        false => println!("features: {}", features.join(" ")),
    }
    Ok(())
}
