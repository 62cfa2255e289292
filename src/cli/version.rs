use super::CliError;
use argh::FromArgs;

/// Print the version and the build's variant: core (package netmeter) or
/// full (netmeter-full, with the upstream routers, MQTT and quotas).
#[derive(FromArgs)]
#[argh(subcommand, name = "version")]
pub struct VersionArgs {}

pub fn run(_: VersionArgs) -> Result<(), CliError> {
    println!("netmeter {}", env!("CARGO_PKG_VERSION"));
    let features: Vec<&str> = [
        (crate::upstream::BUILT, "upstream"),
        (cfg!(feature = "mqtt"), "mqtt"),
        (cfg!(feature = "quota"), "quota"),
    ]
    .into_iter()
    .filter_map(|(built, name)| built.then_some(name))
    .collect();
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
