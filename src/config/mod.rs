//! The `/etc/config/netmeter` file: UCI syntax, typed settings, validation.
//!
//! Every error names `file:line` and what was expected, because the reader is
//! someone at a router's shell with `vi` and no documentation at hand.
//!
//! `uci.rs` parses the UCI syntax; this file holds `Config` and the loader,
//! which maps each section through one table of known options per section
//! type, so adding an option is a row: `settings.rs` (`config netmeter`),
//! `device.rs` (`config device`), `upstream.rs` (`config upstream`, full
//! build only; the core mounts `upstream_absent.rs`, which keeps a section's
//! name and line unread). `table.rs` is the table machinery, `value.rs` the
//! value parsers and how words are quoted back, `glob.rs` interface
//! patterns, `spelling.rs` the did-you-mean, `prefix.rs` `IpPrefix`,
//! `secret.rs` `Secret` (the token, passwords: no message quotes one).
//! Every problem is collected and the earliest reported, so fixing errors
//! top to bottom never jumps backwards.

mod device;
pub mod glob;
pub mod mqtt;
pub mod prefix;
pub mod protocol;
#[cfg(feature = "quota")]
pub mod quota;
#[cfg(not(feature = "quota"))]
#[path = "quota_absent.rs"]
pub mod quota;
pub mod secret;
mod settings;
mod spelling;
pub(crate) mod table;
pub mod uci;
#[cfg(feature = "upstream")]
pub mod upstream;
#[cfg(not(feature = "upstream"))]
#[path = "upstream_absent.rs"]
pub mod upstream;
pub(crate) mod value;

use crate::mac::Mac;
use std::collections::{HashMap, hash_map};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use device::device;
pub use glob::glob_match;
pub use prefix::{IpPrefix, PrefixError};
pub use protocol::{PortRange, ProtocolClass};
pub use quota::QuotaConfig;
#[cfg(feature = "quota")]
pub use quota::{QuotaDirection, QuotaPeriod, QuotaTarget};
pub use secret::Secret;
use settings::OPTIONS;
use spelling::closest;
use table::apply;
use upstream::UpstreamConfig;
use value::shown;

pub const DEFAULT_PATH: &str = "/etc/config/netmeter";
/// Where the Debian package (`debian-package/build-deb`) puts the config.
pub const DEBIAN_PATH: &str = "/etc/netmeter/netmeter.conf";

/// The config file read without `-c`: [`DEFAULT_PATH`] (OpenWrt's) if it
/// exists, else [`DEBIAN_PATH`] if that exists, else [`DEFAULT_PATH`]
/// (missing: built-in defaults). `exists` answers for a path, so the
/// choice is tested without the files.
pub fn default_path(exists: impl Fn(&Path) -> bool) -> &'static Path {
    let (openwrt, debian) = (Path::new(DEFAULT_PATH), Path::new(DEBIAN_PATH));
    if !exists(openwrt) && exists(debian) {
        debian
    } else {
        openwrt
    }
}

/// The facts the default directories depend on: where netmeter runs and
/// as whom ([`System::here`] reads them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct System {
    /// `/etc/openwrt_release` exists.
    pub openwrt: bool,
    /// Running as uid 0.
    pub root: bool,
    /// `$XDG_STATE_HOME`, if set.
    pub xdg_state_home: Option<PathBuf>,
    /// `$HOME`, if set.
    pub home: Option<PathBuf>,
    /// systemd runs the system (`/run/systemd/system` exists).
    pub systemd: bool,
}

impl System {
    pub fn here() -> System {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        System {
            openwrt: Path::new("/etc/openwrt_release").exists(),
            // SAFETY: geteuid has no preconditions and cannot fail.
            root: unsafe { libc::geteuid() } == 0,
            xdg_state_home: var("XDG_STATE_HOME"),
            home: var("HOME"),
            systemd: Path::new("/run/systemd/system").exists(),
        }
    }

    /// How to start the daemon here, for messages that find none running.
    pub fn start_hint(&self) -> &'static str {
        if self.openwrt {
            "service netmeter start"
        } else if self.systemd && self.root {
            "systemctl start netmeter"
        } else {
            "netmeter daemon, or as root: systemctl start netmeter"
        }
    }
}

/// The default `database_directory` and `spool_directory` for a system:
/// on OpenWrt `/etc/netmeter` (flash) and `/var/lib/netmeter` (tmpfs); as
/// root elsewhere `/var/lib/netmeter` and `/run/netmeter` (the systemd
/// unit's StateDirectory and RuntimeDirectory); as an ordinary user
/// `$XDG_STATE_HOME/netmeter` (else `~/.local/state/netmeter`) and its
/// `spool` directory. A relative `XDG_STATE_HOME` is ignored, as the XDG
/// spec says; a user without a home gets root's paths (and the error that
/// names them).
pub fn default_directories(system: &System) -> (PathBuf, PathBuf) {
    if system.openwrt {
        return ("/etc/netmeter".into(), "/var/lib/netmeter".into());
    }
    let state_home = system
        .xdg_state_home
        .clone()
        .filter(|p| p.is_absolute())
        .or_else(|| {
            let home = system.home.as_ref().filter(|p| p.is_absolute())?;
            Some(home.join(".local/state"))
        });
    match state_home {
        Some(state) if !system.root => {
            let dir = state.join("netmeter");
            (dir.clone(), dir.join("spool"))
        }
        _ => ("/var/lib/netmeter".into(), "/run/netmeter".into()),
    }
}

/// The one section type holding netmeter's settings.
const SETTINGS: &str = "netmeter";
/// Names a device by its MAC address; one section per device.
const DEVICE: &str = "device";
/// Options whose values no message may quote.
pub(crate) const SECRET_OPTIONS: &[&str] = &["token", "password", "community"];
/// An upstream router to scrape; one section per router.
const UPSTREAM: &str = "upstream";
/// A class of traffic for the protocol view; one section per class.
const PROTOCOL: &str = "protocol";
/// The MQTT broker to publish to; one section at most.
const MQTT: &str = "mqtt";
/// A cap on a device's, group's or interface's bytes per period.
const QUOTA: &str = "quota";

/// The validated `config netmeter` section; anything the file leaves out
/// holds its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub refresh_interval: Duration,
    /// Glob patterns; empty means every interface.
    pub interface: Vec<String>,
    /// Glob patterns, already resolved by the rule on [`Config::tracks_interface`].
    pub exclude_interface: Vec<String>,
    pub listen: Vec<SocketAddr>,
    pub database_directory: PathBuf,
    pub spool_directory: PathBuf,
    /// How often the whole state is copied to the spool (tmpfs): the most a
    /// daemon crash can lose.
    pub spool_interval: Duration,
    /// How often changes are committed to flash: the most a power cut can lose.
    pub commit_interval: Duration,
    /// The day of the month a billing month starts (1 = calendar months).
    pub month_rotate: u8,
    /// Buckets kept per interface, finest first: five-minute, hourly,
    /// daily, monthly, yearly (0 = not kept).
    pub interface_history: [u32; 5],
    /// The same per device.
    pub device_history: [u32; 5],
    /// Exact interface names (no globs): the devices behind them are the
    /// ones accounted one by one.
    pub lan_interface: Vec<String>,
    /// Empty means: take them from the LAN interfaces' own addresses.
    pub lan_subnet: Vec<IpPrefix>,
    pub max_devices: u32,
    /// Leave the kernel's rules in place on exit, so counting goes on
    /// while netmeter restarts.
    pub keep_rules: bool,
    /// Where the per-device counters sit in the kernel.
    pub placement: Placement,
    /// How long an idle device's kernel set element lives.
    pub element_timeout: Duration,
    pub dhcp_leases: PathBuf,
    pub odhcpd_hosts: PathBuf,
    pub ethers: PathBuf,
    /// From the `config device` sections, in file order; no MAC twice.
    pub devices: Vec<DeviceName>,
    /// When set, every API request needs `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// From the `config upstream` sections, in file order; names unique.
    pub upstream: Vec<UpstreamConfig>,
    /// From the `config protocol` sections, in file order.
    pub protocols: Vec<ProtocolClass>,
    /// Flows the conntrack placement follows at most.
    pub max_flows: u32,
    /// From the `config mqtt` section, if any.
    pub mqtt: Option<mqtt::MqttConfig>,
    /// From the `config quota` sections, in file order; names unique.
    pub quotas: Vec<QuotaConfig>,
}

/// Where per-device counters sit. `Netdev` (LAN device ingress before any
/// flowtable, and egress) sees flows a software flowtable offloads;
/// `Forward` (the forward chain) does not, but works on kernels before 5.16,
/// which lack the netdev egress hook. `Conntrack` reads conntrack's per-flow
/// counters, which a flowtable with the `counter` flag keeps up to date even
/// for flows offloaded to hardware. `Auto` is conntrack when a flowtable
/// offloads to hardware, else netdev where the kernel offers it, else forward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    #[default]
    Auto,
    Netdev,
    Forward,
    Conntrack,
}

/// A name the admin gave a device; it wins over every name learnt elsewhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceName {
    pub mac: Mac,
    pub name: String,
    pub group: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            refresh_interval: Duration::from_secs(10),
            interface: Vec::new(),
            exclude_interface: vec!["lo".into()],
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 9750))],
            database_directory: "/etc/netmeter".into(),
            spool_directory: "/var/lib/netmeter".into(),
            spool_interval: Duration::from_secs(300),
            commit_interval: Duration::from_secs(3600),
            month_rotate: 1,
            interface_history: [48 * 12, 7 * 24, 62, 36, 10],
            device_history: [0, 72, 62, 24, 10],
            lan_interface: vec!["br-lan".into()],
            lan_subnet: Vec::new(),
            max_devices: 1024,
            keep_rules: false,
            placement: Placement::Auto,
            element_timeout: Duration::from_secs(3600),
            dhcp_leases: "/tmp/dhcp.leases".into(),
            odhcpd_hosts: "/tmp/hosts/odhcpd".into(),
            ethers: "/etc/ethers".into(),
            devices: Vec::new(),
            token: None,
            upstream: Vec::new(),
            protocols: Vec::new(),
            mqtt: None,
            max_flows: 65_536,
            quotas: Vec::new(),
        }
    }
}

/// A problem with the configuration; nothing else is reported through this
/// type, so the CLI can map it to its own exit status.
#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: io::Error,
        /// The path was given on the command line, so a missing file is a mistake.
        explicit: bool,
    },
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read {
                path,
                error,
                explicit,
            } => {
                write!(f, "cannot read {}: {error}", path.display())?;
                if *explicit && error.kind() == io::ErrorKind::NotFound {
                    write!(f, ": create it or drop -c to use the built-in defaults")?;
                }
                Ok(())
            }
            ConfigError::Invalid {
                path,
                line,
                message,
            } => {
                write!(f, "{}:{line}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { error, .. } => Some(error),
            ConfigError::Invalid { .. } => None,
        }
    }
}

impl Config {
    /// The built-in defaults with the directories this system calls for
    /// ([`default_directories`]).
    pub fn for_system(system: &System) -> Config {
        let (database_directory, spool_directory) = default_directories(system);
        Config {
            database_directory,
            spool_directory,
            ..Config::default()
        }
    }

    /// `file` is only used to name the file in errors. Unset options take
    /// [`Config::default`] (OpenWrt's directories).
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        Config::parse_over(text, file, Config::default())
    }

    /// As [`Config::parse`], unset options taking `defaults`.
    pub fn parse_over(text: &str, file: &Path, defaults: Config) -> Result<Config, ConfigError> {
        let invalid = |(line, message)| ConfigError::Invalid {
            path: file.into(),
            line,
            message,
        };
        let sections = uci::parse(text).map_err(|e| invalid((e.line, e.message)))?;
        // Collect every problem and report the earliest, so fixing errors
        // top to bottom never jumps backwards.
        let mut problems = Vec::new();
        let mut config = defaults;
        let mut settings: Option<&uci::Section> = None;
        let mut mqtt_line: Option<usize> = None;
        // The line of each MAC's `option mac`, to name both ends of a duplicate.
        let mut macs: HashMap<Mac, usize> = HashMap::new();
        // The line of each quota's section, to name both ends of a duplicate.
        let mut quota_lines: HashMap<String, usize> = HashMap::new();
        for section in &sections {
            match section.kind.as_str() {
                SETTINGS => match settings {
                    Some(first) => problems.push((
                        section.line,
                        format!(
                            "a second 'config {SETTINGS}' section (the first is at line {}): \
                             merge them into one",
                            first.line
                        ),
                    )),
                    None => settings = Some(section),
                },
                DEVICE => {
                    let Some((device, line)) = device(section, &mut problems) else {
                        continue;
                    };
                    match macs.entry(device.mac) {
                        hash_map::Entry::Occupied(first) => problems.push((
                            line,
                            format!(
                                "option mac: {} already has a device section (its option mac is \
                                 at line {}): keep one section per device",
                                device.mac,
                                first.get()
                            ),
                        )),
                        hash_map::Entry::Vacant(slot) => {
                            slot.insert(line);
                            config.devices.push(device);
                        }
                    }
                }
                UPSTREAM => upstream::add_section(&mut config.upstream, section, &mut problems),
                PROTOCOL => {
                    if let Some(class) = protocol::protocol(section, &mut problems) {
                        config.protocols.push(class);
                    }
                }
                QUOTA => {
                    let Some(quota) = quota::quota(section, &mut problems) else {
                        continue;
                    };
                    match quota_lines.entry(quota.name.clone()) {
                        hash_map::Entry::Occupied(first) => problems.push((
                            section.line,
                            format!(
                                "a second quota named '{}' (the first is at line {}): \
                                 rename one, 'netmeter quota reset' takes the name",
                                quota.name,
                                first.get()
                            ),
                        )),
                        hash_map::Entry::Vacant(slot) => {
                            slot.insert(section.line);
                            config.quotas.push(quota);
                        }
                    }
                }
                MQTT => match mqtt_line {
                    Some(first) => problems.push((
                        section.line,
                        format!(
                            "a second 'config {MQTT}' section (the first is at line {first}): \
                             netmeter publishes to one broker; keep one"
                        ),
                    )),
                    None => {
                        mqtt_line = Some(section.line);
                        config.mqtt = mqtt::mqtt(section, &mut problems);
                    }
                },
                kind => {
                    let known = [SETTINGS, DEVICE, UPSTREAM, PROTOCOL, MQTT, QUOTA];
                    let hint = match closest(kind, known) {
                        Some(near) => format!("did you mean '{near}'?"),
                        None => {
                            let quoted: Vec<String> =
                                known.iter().map(|k| format!("'{k}'")).collect();
                            format!("expected one of {}", quoted.join(", "))
                        }
                    };
                    problems.push((
                        section.line,
                        format!("unknown section type '{}': {hint}", shown(kind)),
                    ));
                }
            }
        }
        if let Some(section) = settings {
            let given = apply(&mut config, OPTIONS, section, &mut problems);
            let is_given = |name: &str| {
                OPTIONS
                    .iter()
                    .zip(&given)
                    .any(|(o, &given)| o.name == name && given)
            };
            if is_given("interface") && !is_given("exclude_interface") {
                config.exclude_interface.clear();
            }
        }
        quota::problems(&config, &sections, &mut problems);
        match problems.into_iter().min_by_key(|(line, _)| *line) {
            Some(problem) => Err(invalid(problem)),
            None => Ok(config),
        }
    }

    /// Explicit path: a missing file is an error. None: read the
    /// [`default_path`], and a missing default file means built-in defaults, so a fresh
    /// install runs before anyone writes a config. The directories a file
    /// leaves unset are this system's ([`default_directories`]).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let defaults = Config::for_system(&System::here());
        match path {
            Some(path) => load_from(path, true, defaults),
            None => load_from(default_path(|p| p.exists()), false, defaults),
        }
    }

    /// Whether netmeter accounts an interface of this name.
    ///
    /// Without `list interface` every interface is tracked except those
    /// matching `exclude_interface`, which defaults to `lo`. With `list
    /// interface` only matching interfaces are tracked, minus those matching
    /// an `exclude_interface` the file sets itself: the default exclusion of
    /// `lo` is dropped then, so that `list interface 'lo'` or `'*'` means
    /// what it says. An explicit `list exclude_interface` always replaces
    /// the default.
    pub fn tracks_interface(&self, name: &str) -> bool {
        let included =
            self.interface.is_empty() || self.interface.iter().any(|p| glob_match(p, name));
        included && !self.exclude_interface.iter().any(|p| glob_match(p, name))
    }
}

fn load_from(path: &Path, explicit: bool, defaults: Config) -> Result<Config, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound && !explicit => {
            return Ok(defaults);
        }
        Err(error) => {
            return Err(ConfigError::Read {
                path: path.into(),
                error,
                explicit,
            });
        }
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => Config::parse_over(text, path, defaults),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            Err(ConfigError::Invalid {
                path: path.into(),
                line,
                message: "expected UTF-8 text, got bytes that are not".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::spelling::edit_distance;
    use super::*;

    fn directories(system: System) -> (String, String) {
        let (db, spool) = default_directories(&system);
        (db.display().to_string(), spool.display().to_string())
    }

    fn user(xdg: Option<&str>, home: Option<&str>) -> System {
        System {
            openwrt: false,
            root: false,
            xdg_state_home: xdg.map(PathBuf::from),
            home: home.map(PathBuf::from),
            systemd: false,
        }
    }

    #[test]
    fn the_hint_to_start_the_daemon_is_the_systems_own() {
        let openwrt = System {
            openwrt: true,
            root: true,
            ..user(None, None)
        };
        assert_eq!(openwrt.start_hint(), "service netmeter start");
        let debian = System {
            systemd: true,
            root: true,
            ..user(None, None)
        };
        assert_eq!(debian.start_hint(), "systemctl start netmeter");
        assert!(user(None, None).start_hint().starts_with("netmeter daemon"));
    }

    #[test]
    fn without_c_the_openwrt_config_is_read_else_the_debian_one_if_only_it_exists() {
        let with = |files: &'static [&'static str]| {
            default_path(move |p| files.iter().any(|f| Path::new(f) == p))
                .display()
                .to_string()
        };
        assert_eq!(with(&[]), DEFAULT_PATH);
        assert_eq!(with(&[DEFAULT_PATH]), DEFAULT_PATH);
        assert_eq!(with(&[DEFAULT_PATH, DEBIAN_PATH]), DEFAULT_PATH);
        assert_eq!(with(&[DEBIAN_PATH]), "/etc/netmeter/netmeter.conf");
    }

    #[test]
    fn on_openwrt_the_history_is_on_flash_and_the_spool_on_tmpfs_whoever_runs_it() {
        for root in [true, false] {
            let system = System {
                openwrt: true,
                root,
                ..user(Some("/x"), Some("/home/a"))
            };
            assert_eq!(
                directories(system),
                ("/etc/netmeter".into(), "/var/lib/netmeter".into())
            );
        }
    }

    #[test]
    fn as_root_elsewhere_the_state_is_in_var_lib_and_the_spool_in_run() {
        let system = System {
            root: true,
            ..user(Some("/x"), Some("/root"))
        };
        assert_eq!(
            directories(system),
            ("/var/lib/netmeter".into(), "/run/netmeter".into())
        );
    }

    #[test]
    fn an_ordinary_user_keeps_the_state_under_xdg_state_home_else_the_home() {
        assert_eq!(
            directories(user(Some("/s"), Some("/home/a"))),
            ("/s/netmeter".into(), "/s/netmeter/spool".into())
        );
        assert_eq!(
            directories(user(None, Some("/home/a"))),
            (
                "/home/a/.local/state/netmeter".into(),
                "/home/a/.local/state/netmeter/spool".into()
            )
        );
        // The XDG spec: a relative path is invalid and ignored.
        assert_eq!(
            directories(user(Some("rel"), Some("/home/a"))).0,
            "/home/a/.local/state/netmeter"
        );
    }

    #[test]
    fn an_ordinary_user_without_a_home_gets_roots_paths() {
        assert_eq!(
            directories(user(None, None)),
            ("/var/lib/netmeter".into(), "/run/netmeter".into())
        );
    }

    #[test]
    fn a_file_that_sets_no_directory_keeps_the_systems_defaults() {
        let system = user(Some("/s"), None);
        let config = Config::parse_over(
            "config netmeter\n\toption refresh_interval '5'\n",
            Path::new(FILE),
            Config::for_system(&system),
        )
        .unwrap();
        assert_eq!(config.database_directory, Path::new("/s/netmeter"));
        let config = Config::parse_over(
            "config netmeter\n\toption database_directory '/d'\n",
            Path::new(FILE),
            Config::for_system(&system),
        )
        .unwrap();
        assert_eq!(config.database_directory, Path::new("/d"));
        assert_eq!(config.spool_directory, Path::new("/s/netmeter/spool"));
    }

    /// The path messages name; shared with the section files' tests.
    pub(super) const FILE: &str = "/etc/config/netmeter";

    pub(super) fn parse(text: &str) -> Config {
        Config::parse(text, Path::new(FILE)).unwrap()
    }

    pub(super) fn error(text: &str) -> String {
        Config::parse(text, Path::new(FILE))
            .unwrap_err()
            .to_string()
    }

    fn settings(body: &str) -> Config {
        parse(&format!("config netmeter 'main'\n{body}"))
    }

    /// A directory path unique to this test run that nobody created.
    fn missing_path(tag: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!("netmeter-test-{}-{tag}", std::process::id()))
            .join("netmeter")
    }

    #[test]
    fn a_full_file_sets_every_option() {
        let config = settings(
            "\toption refresh_interval '30'\n\
             \tlist interface 'eth*'\n\tlist interface \"br-lan\"\n\
             \tlist exclude_interface 'eth9'\n\
             \tlist listen '127.0.0.1:9750'\n\tlist listen '[::1]:9751'\n\
             \toption database_directory /srv/nm\n\
             \toption spool_directory '/tmp/nm'\n\
             \toption spool_interval '60'\n\toption commit_interval '7200'\n\
             \toption month_rotate '15'\n\
             \toption history_fiveminute_hours '24'\n\toption history_hourly_days '2'\n\
             \toption history_daily_days '31'\n\toption history_monthly_months '0'\n\
             \toption history_yearly_years '5'\n\
             \toption device_hourly_hours '48'\n\toption device_daily_days '0'\n\
             \toption device_monthly_months '12'\n\toption device_yearly_years '3'\n\
             \tlist lan_interface 'br-lan'\n\tlist lan_interface 'br-guest'\n\
             \tlist lan_subnet '192.168.1.0/24'\n\tlist lan_subnet 'fd00:1::/64'\n\
             \toption max_devices '65536'\n\
             \toption keep_rules 'Yes'\n\
             \toption element_timeout '604800'\n\
             \toption dhcp_leases '/tmp/dnsmasq.leases'\n\
             \toption odhcpd_hosts '/tmp/hosts/v6'\n\
             \toption ethers '/etc/ethers.local'\n\
             \toption token '0123456789abcdef'\n\
             config device\n\toption mac 'AA-BB-CC-DD-EE-FF'\n\toption name ' Kid laptop '\n\
             \toption group 'kids'\n\
             config device 'tv'\n\toption name 'TV'\n\toption mac '00:1b:21:3a:4b:5c'\n",
        );
        assert_eq!(
            config,
            Config {
                refresh_interval: Duration::from_secs(30),
                interface: vec!["eth*".into(), "br-lan".into()],
                exclude_interface: vec!["eth9".into()],
                listen: vec![
                    "127.0.0.1:9750".parse().unwrap(),
                    "[::1]:9751".parse().unwrap()
                ],
                database_directory: "/srv/nm".into(),
                spool_directory: "/tmp/nm".into(),
                spool_interval: Duration::from_secs(60),
                commit_interval: Duration::from_secs(7200),
                month_rotate: 15,
                interface_history: [288, 48, 31, 0, 5],
                device_history: [0, 48, 0, 12, 3],
                lan_interface: vec!["br-lan".into(), "br-guest".into()],
                lan_subnet: vec![
                    "192.168.1.0/24".parse().unwrap(),
                    "fd00:1::/64".parse().unwrap()
                ],
                max_devices: 65536,
                keep_rules: true,
                placement: Placement::Auto,
                element_timeout: Duration::from_secs(604_800),
                dhcp_leases: "/tmp/dnsmasq.leases".into(),
                odhcpd_hosts: "/tmp/hosts/v6".into(),
                ethers: "/etc/ethers.local".into(),
                token: Secret::token("0123456789abcdef"),
                devices: vec![
                    DeviceName {
                        mac: Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
                        name: "Kid laptop".into(),
                        group: Some("kids".into()),
                    },
                    DeviceName {
                        mac: Mac([0x00, 0x1b, 0x21, 0x3a, 0x4b, 0x5c]),
                        name: "TV".into(),
                        group: None,
                    },
                ],
                upstream: Vec::new(),
                protocols: Vec::new(),
                mqtt: None,
                max_flows: 65_536,
                quotas: Vec::new(),
            }
        );
    }

    #[test]
    fn every_default_text_in_the_table_is_the_built_in_default() {
        for known in OPTIONS.iter().filter(|k| !k.default.is_empty()) {
            let keyword = if known.many { "list" } else { "option" };
            let config = settings(&format!("{keyword} {} '{}'\n", known.name, known.default));
            assert_eq!(config, Config::default(), "{}", known.name);
        }
    }

    #[test]
    fn an_empty_file_or_one_without_settings_gives_the_defaults() {
        assert_eq!(parse(""), Config::default());
        assert_eq!(
            parse(
                "# nothing\n\nconfig device\n\toption mac '00:11:22:33:44:55'\noption name 'a'\n"
            )
            .refresh_interval,
            Config::default().refresh_interval
        );
    }

    #[test]
    fn anonymous_settings_section_is_accepted() {
        assert_eq!(
            parse("config netmeter\noption refresh_interval 5").refresh_interval,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn option_given_twice_keeps_the_last_value() {
        let config = settings("option refresh_interval 5\noption refresh_interval 7\n");
        assert_eq!(config.refresh_interval, Duration::from_secs(7));
    }

    #[test]
    fn list_options_also_accept_option_which_replaces_earlier_values() {
        assert_eq!(
            settings("option listen 10.0.0.1:1\n").listen,
            ["10.0.0.1:1".parse().unwrap()]
        );
        let config =
            settings("list listen 10.0.0.1:1\noption listen 10.0.0.2:2\nlist listen 10.0.0.3:3\n");
        assert_eq!(
            config.listen,
            ["10.0.0.2:2".parse().unwrap(), "10.0.0.3:3".parse().unwrap()]
        );
    }

    #[test]
    fn unknown_option_suggests_the_closest_known_one() {
        assert_eq!(
            error("config netmeter 'main'\n\n\n\toption refresh_intervall '5'\n"),
            "/etc/config/netmeter:4: unknown option 'refresh_intervall' in section 'main': \
             did you mean 'refresh_interval'?"
        );
    }

    #[test]
    fn unknown_option_far_from_any_lists_the_known_ones() {
        assert_eq!(
            error("config netmeter\noption colour 'red'\n"),
            "/etc/config/netmeter:2: unknown option 'colour' in the unnamed 'netmeter' section: \
             known options are refresh_interval, interface, exclude_interface, listen, \
             database_directory, spool_directory, spool_interval, commit_interval, month_rotate, \
             history_fiveminute_hours, history_hourly_days, history_daily_days, \
             history_monthly_months, history_yearly_years, device_hourly_hours, device_daily_days, \
             device_monthly_months, device_yearly_years, lan_interface, lan_subnet, max_devices, \
             max_flows, keep_rules, placement, element_timeout, dhcp_leases, odhcpd_hosts, ethers, token"
        );
    }

    #[test]
    fn out_of_range_refresh_interval_names_the_range_and_default() {
        assert_eq!(
            error("config netmeter 'main'\n\n\n\toption refresh_interval '0'\n"),
            "/etc/config/netmeter:4: option refresh_interval: expected whole seconds from 1 to 3600, \
             got '0' (default 10)"
        );
        for bad in ["3601", "+5", "1.5", "10s", "", "99999999999999999999999"] {
            assert!(
                error(&format!("config netmeter\noption refresh_interval '{bad}'"))
                    .contains("expected whole seconds")
            );
        }
        assert_eq!(
            settings("option refresh_interval 3600").refresh_interval,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn listen_without_a_numeric_address_shows_the_expected_form() {
        assert_eq!(
            error(
                "config netmeter 'main'\n\tlist listen '127.0.0.1:9750'\n\n\n\n\tlist listen 'localhost'\n"
            ),
            "/etc/config/netmeter:6: option listen: expected IP:PORT such as 127.0.0.1:9750 or [::1]:9750, \
             got 'localhost'"
        );
        assert!(
            error("config netmeter\noption listen '127.0.0.1:0'").contains("got '127.0.0.1:0'")
        );
        assert!(error("config netmeter\noption listen '::1:9750'").contains("expected IP:PORT"));
    }

    #[test]
    fn list_for_a_single_valued_option_says_to_use_option() {
        assert_eq!(
            error("config netmeter 'main'\n\n\n\n\tlist refresh_interval '5'\n"),
            "/etc/config/netmeter:5: 'list' used for option refresh_interval, which takes one value: \
             write 'option refresh_interval ...'"
        );
    }

    #[test]
    fn relative_directories_are_rejected() {
        assert_eq!(
            error("config netmeter\n\toption spool_directory 'spool'\n"),
            "/etc/config/netmeter:2: option spool_directory: expected an absolute path starting with /, \
             got 'spool' (default /var/lib/netmeter)"
        );
        assert!(
            error("config netmeter\noption database_directory ''")
                .starts_with("/etc/config/netmeter:2: option database_directory")
        );
    }

    #[test]
    fn bad_interface_patterns_are_rejected() {
        assert!(
            error("config netmeter\nlist interface 'eth 0'")
                .contains("expected an interface name or glob")
        );
        assert!(
            error("config netmeter\nlist exclude_interface ''")
                .contains(":2: option exclude_interface")
        );
    }

    #[test]
    fn a_second_settings_section_names_both_lines() {
        assert_eq!(
            error("config netmeter 'main'\n\toption refresh_interval 5\nconfig netmeter 'other'\n"),
            "/etc/config/netmeter:3: a second 'config netmeter' section (the first is at line 1): \
             merge them into one"
        );
    }

    #[test]
    fn unknown_section_type_suggests_the_closest_known_one() {
        assert_eq!(
            error("config netmeter\nconfig devices 'tv'\n"),
            "/etc/config/netmeter:2: unknown section type 'devices': did you mean 'device'?"
        );
        assert_eq!(
            error("config interface 'lan'\n"),
            "/etc/config/netmeter:1: unknown section type 'interface': \
             expected one of 'netmeter', 'device', 'upstream', 'protocol', 'mqtt', 'quota'"
        );
    }

    #[test]
    fn the_earliest_problem_in_the_file_is_reported() {
        let text =
            "config netmeter\noption listen nowhere\noption refresh_interval 0\nconfig bogus\n";
        assert!(
            error(text).starts_with("/etc/config/netmeter:2:"),
            "{}",
            error(text)
        );
    }

    #[test]
    fn syntax_errors_carry_the_file_and_line() {
        assert_eq!(
            error("config netmeter\n\topton listen x\n"),
            "/etc/config/netmeter:2: expected 'config', 'option', 'list' or 'package', got 'opton': \
             did you mean 'option'?"
        );
    }

    #[test]
    fn by_default_every_interface_but_lo_is_tracked() {
        let config = Config::default();
        assert!(config.tracks_interface("eth0"));
        assert!(config.tracks_interface("br-lan"));
        assert!(!config.tracks_interface("lo"));
    }

    #[test]
    fn explicitly_included_lo_is_tracked() {
        assert!(settings("list interface 'lo'\n").tracks_interface("lo"));
        let all = settings("list interface '*'\n");
        assert!(all.tracks_interface("lo"));
        assert!(all.tracks_interface("wlan0"));
    }

    #[test]
    fn included_patterns_limit_tracking() {
        let config = settings(
            "list interface 'eth*'\nlist interface 'br-lan'\nlist exclude_interface 'eth1'\n",
        );
        assert!(config.tracks_interface("eth0"));
        assert!(config.tracks_interface("br-lan"));
        assert!(!config.tracks_interface("eth1"));
        assert!(!config.tracks_interface("wlan0"));
        assert!(!config.tracks_interface("lo"));
    }

    #[test]
    fn explicit_exclude_replaces_the_default() {
        let config = settings("list exclude_interface 'wg*'\n");
        assert!(config.tracks_interface("lo"));
        assert!(!config.tracks_interface("wg0"));
        assert!(config.tracks_interface("eth0"));
    }

    #[test]
    fn globs_match_like_the_shell() {
        let cases = [
            ("eth*", "eth0", true),
            ("eth*", "eth", true),
            ("eth*", "veth0", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("e?h0", "eth0", true),
            ("e?h0", "eh0", false),
            ("*lan*", "br-lan.10", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("**x", "x", true),
            ("eth[0-2]", "eth1", true),
            ("eth[0-2]", "eth3", false),
            ("eth[!0-2]", "eth3", true),
            ("eth[^0]", "eth0", false),
            ("[abc]x", "bx", true),
            ("[]]", "]", true),
            ("[a-]", "-", true),
            ("eth[0", "eth[0", true),
            ("eth[0", "eth0", false),
            ("[", "[", true),
            ("[!", "x", false),
            ("wl?n*", "wlån0", true),
            ("ü*", "über", true),
            ("[z-a]", "m", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(
                glob_match(pattern, name),
                expected,
                "{pattern:?} vs {name:?}"
            );
        }
    }

    #[test]
    fn globs_never_panic_or_take_forever_on_odd_patterns() {
        let long = "a".repeat(2000);
        let star_heavy = "*a".repeat(50) + "b";
        assert!(!glob_match(&star_heavy, &long));
        for pattern in ["[", "[!", "[a-", "[a-]", "[]", "[!]", "?*?*[", "\\", "*[*"] {
            for name in ["", "a", "[", "]", "-", "é"] {
                let _ = glob_match(pattern, name);
            }
        }
    }

    #[test]
    fn odd_unicode_never_panics_and_is_quoted_briefly() {
        let long = "ß".repeat(50_000);
        for text in [
            format!("config netmeter\noption {long} x"),
            format!("config netmeter\noption refresh_interval '{long}'"),
            format!("config netmeter\nlist interface '{long}'"),
            "config netmeter\noption listen '🦀:80'".to_string(),
            "config netmeter\noption spool_directory '/\u{0}\u{202e}'".to_string(),
            format!("config {long}"),
        ] {
            let _ = Config::parse(&text, Path::new(FILE));
        }
        let message = error(&format!(
            "config netmeter\noption refresh_interval '{long}'"
        ));
        assert!(message.chars().count() < 200, "{message}");
        assert!(error("config netmeter\noption listen 'a\u{7}b'").contains(r"'a\u{7}b'"));
    }

    #[test]
    fn explicit_missing_file_is_an_error_with_a_hint() {
        let path = missing_path("explicit");
        let message = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("cannot read {}: ", path.display())),
            "{message}"
        );
        assert!(
            message.ends_with(": create it or drop -c to use the built-in defaults"),
            "{message}"
        );
    }

    #[test]
    fn missing_default_file_means_built_in_defaults() {
        assert_eq!(
            load_from(&missing_path("default"), false, Config::default()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn existing_files_are_read_and_named_in_errors() {
        let dir = missing_path("files").parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(
            &good,
            "config netmeter 'main'\r\n\toption refresh_interval '20'\r\n",
        )
        .unwrap();
        assert_eq!(
            Config::load(Some(&good)).unwrap().refresh_interval,
            Duration::from_secs(20)
        );
        let bad = dir.join("bad");
        std::fs::write(&bad, b"config netmeter\n\noption listen '\xff'\n").unwrap();
        let message = load_from(&bad, false, Config::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            format!(
                "{}:3: expected UTF-8 text, got bytes that are not",
                bad.display()
            )
        );
        // A directory cannot be read as a file, even when it is the default path.
        let message = load_from(&dir, false, Config::default())
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!("cannot read {}: ", dir.display())),
            "{message}"
        );
        assert!(!message.contains("drop -c"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_subnet_with_host_bits_set_shows_the_network_to_write() {
        assert_eq!(
            error(
                "config netmeter\n\tlist lan_subnet '192.168.1.0/24'\n\tlist lan_subnet '192.168.1.1/24'\n"
            ),
            "/etc/config/netmeter:3: option lan_subnet: the host bits of '192.168.1.1/24' must be \
             zero: write '192.168.1.0/24'"
        );
        assert!(
            error("config netmeter\nlist lan_subnet 'fd00::1/64'").ends_with("write 'fd00::/64'")
        );
    }

    #[test]
    fn a_malformed_subnet_shows_the_expected_form() {
        assert_eq!(
            error("config netmeter\n\tlist lan_subnet '192.168.1.0'\n"),
            "/etc/config/netmeter:2: option lan_subnet: expected a subnet such as 192.168.1.0/24 \
             or fd00::/64, got '192.168.1.0'"
        );
        for bad in ["192.168.1.0/33", "lan", "fd00::/-1", ""] {
            assert!(
                error(&format!("config netmeter\nlist lan_subnet '{bad}'"))
                    .contains("expected a subnet")
            );
        }
    }

    #[test]
    fn lan_interfaces_are_exact_names() {
        assert_eq!(
            settings("list lan_interface 'br-guest'\n").lan_interface,
            ["br-guest"]
        );
        assert_eq!(
            error("config netmeter\n\tlist lan_interface 'br-*'\n"),
            "/etc/config/netmeter:2: option lan_interface: expected an interface name such as \
             br-lan (at most 15 characters, no wildcards), got 'br-*'"
        );
        for bad in ["wlan[01]", "br?lan", "a-name-of-16-chr", "..", "eth0:1", ""] {
            assert!(
                error(&format!("config netmeter\nlist lan_interface '{bad}'"))
                    .contains("no wildcards"),
                "{bad}"
            );
        }
        assert_eq!(
            settings("option lan_interface 'a-name-of-15ch'").lan_interface,
            ["a-name-of-15ch"]
        );
    }

    #[test]
    fn numbers_and_booleans_are_checked_with_the_range_and_default_shown() {
        assert_eq!(
            error("config netmeter\noption max_devices '65537'"),
            "/etc/config/netmeter:2: option max_devices: expected a whole number from 1 to 65536, \
             got '65537' (default 1024)"
        );
        assert_eq!(
            error("config netmeter\noption keep_rules 'y'"),
            "/etc/config/netmeter:2: option keep_rules: expected 1 or 0 (or true/false, yes/no, \
             on/off), got 'y' (default 0)"
        );
        for (option, bad) in [
            ("max_devices", "0"),
            ("element_timeout", "1"),
            ("element_timeout", "604801"),
            ("element_timeout", "1h"),
            ("spool_interval", "9"),
            ("commit_interval", "59"),
            ("month_rotate", "0"),
            ("month_rotate", "29"),
            ("history_hourly_days", "63"),
            ("device_yearly_years", "-1"),
        ] {
            let message = error(&format!("config netmeter\noption {option} '{bad}'"));
            assert!(message.contains(&format!(":2: option {option}: expected")));
        }
        let keep = |v: &str| settings(&format!("option keep_rules '{v}'")).keep_rules;
        assert!(["1", "true", "YES", "On", "enabled"].into_iter().all(keep));
        assert!(
            !["0", "False", "no", "OFF", "disabled"]
                .into_iter()
                .any(keep)
        );
    }

    #[test]
    fn a_token_is_kept_secret_in_every_message() {
        let token = "q83vEjRWeJq83vEjRWeJ+/==";
        let config = settings(&format!("option token '{token}'\n"));
        assert_eq!(config.token.as_ref().map(Secret::expose), Some(token));
        assert!(!format!("{config:?}").contains("q83v"));
        assert_eq!(Config::default().token, None);
        let secret_bits = ["hunter2", "tiny", "q83vEjRWeJq83vEjRWeJ"];
        for text in [
            "config netmeter\noption token 'hunter2'\n".to_string(),
            "config netmeter\noption token 'q83vEjRWeJq83vEjRWeJ tiny'\n".into(),
            "config netmeter\noption token q83vEjRWeJq83vEjRWeJ tiny\n".into(),
            "config netmeter\nlist token q83vEjRWeJq83vEjRWeJ hunter2\n".into(),
            format!("config netmeter\noption token '{token}\u{7}hunter2'\n"),
        ] {
            let message = error(&text);
            assert!(message.starts_with("/etc/config/netmeter:2: "), "{message}");
            assert!(message.contains("token"), "{message}");
            for bit in secret_bits {
                assert!(!message.contains(bit), "{message} quotes the secret");
            }
        }
        assert!(
            error("config netmeter\noption token 'hunter2'\n")
                .contains("expected 16 to 256 characters")
        );
    }

    #[test]
    fn a_device_section_without_mac_or_name_points_at_its_config_line() {
        assert_eq!(
            error("config netmeter\n\nconfig device 'tv'\n\toption name 'TV'\n"),
            "/etc/config/netmeter:3: section 'tv' is missing option mac: add a line such as \
             option mac 'aa:bb:cc:dd:ee:ff'"
        );
        assert_eq!(
            error("config device\n\toption group 'kids'\n"),
            "/etc/config/netmeter:1: the unnamed 'device' section is missing option mac and \
             option name: add lines such as option mac 'aa:bb:cc:dd:ee:ff' and option name 'laptop'"
        );
    }

    #[test]
    fn a_malformed_mac_shows_the_expected_form() {
        assert_eq!(
            error("config device\n\toption mac 'aa:bb:cc:dd:ee'\n\toption name 'x'\n"),
            "/etc/config/netmeter:2: option mac: expected a MAC address such as aa:bb:cc:dd:ee:ff \
             or aa-bb-cc-dd-ee-ff, got 'aa:bb:cc:dd:ee'"
        );
    }

    #[test]
    fn the_same_mac_in_two_device_sections_names_both_lines() {
        let text = "config device\n\toption mac 'aa:bb:cc:dd:ee:ff'\n\toption name 'one'\n\
                    config device\n\toption name 'two'\n\toption mac 'AA-BB-CC-DD-EE-FF'\n";
        assert_eq!(
            error(text),
            "/etc/config/netmeter:6: option mac: aa:bb:cc:dd:ee:ff already has a device section \
             (its option mac is at line 2): keep one section per device"
        );
    }

    #[test]
    fn two_bad_device_sections_are_not_reported_as_duplicates() {
        let text = "config device\n\toption mac 'x'\n\toption name 'one'\n\
                    config device\n\toption mac 'y'\n\toption name 'two'\n";
        assert!(error(text).starts_with("/etc/config/netmeter:2: option mac: expected"));
    }

    #[test]
    fn unknown_device_options_suggest_the_closest_or_list_the_known_ones() {
        assert_eq!(
            error("config device 'tv'\n\toption nam 'TV'\n"),
            "/etc/config/netmeter:2: unknown option 'nam' in section 'tv': did you mean 'name'?"
        );
        assert_eq!(
            error("config device\n\toption colour 'red'\n"),
            "/etc/config/netmeter:2: unknown option 'colour' in the unnamed 'device' section: \
             known options are mac, name, group"
        );
    }

    #[test]
    fn device_names_and_groups_must_be_short_printable_text() {
        let base = "config device\n\toption mac 'aa:bb:cc:dd:ee:ff'\n";
        assert_eq!(
            error(&format!("{base}\toption name '  '\n")),
            "/etc/config/netmeter:3: option name: expected 1 to 64 characters, no control \
             characters, got '  '"
        );
        assert!(
            error(&format!(
                "{base}\toption name 'x'\n\toption group 'a\u{7}'\n"
            ))
            .contains(":4: option group")
        );
        let long = "n".repeat(65);
        assert!(error(&format!("{base}\toption name '{long}'\n")).contains(":3: option name"));
        assert_eq!(
            parse(&format!("{base}\toption name '{}'\n", "n".repeat(64))).devices[0]
                .name
                .len(),
            64
        );
        assert!(error(&format!("{base}\tlist name 'x'\n")).contains("'list' used for option name"));
    }

    #[test]
    fn the_readme_examples_parse_and_its_defaults_are_the_built_in_ones() {
        let readme = include_str!("../../README.md");
        let examples: Vec<&str> = readme
            .split("```")
            .skip(1)
            .step_by(2)
            .filter(|block| block.trim_start().starts_with("config "))
            .collect();
        assert_eq!(examples.len(), 6);
        assert_eq!(parse(examples[0]).upstream[0].name, "isp");
        assert_eq!(parse(examples[1]), Config::default());
        assert_eq!(parse(examples[2]).devices[0].name, "Kids laptop");
        let protocols = parse(examples[3]).protocols;
        assert_eq!(
            protocols
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["plex", "web"]
        );
        assert_eq!(protocols[1].classes, ["http", "https"]);
        let mqtt = parse(examples[4]).mqtt.unwrap();
        assert_eq!(
            (mqtt.host.as_str(), mqtt.client_id.as_str()),
            ("192.168.1.10", "netmeter-ha")
        );
        let quota = &parse(examples[5]).quotas[0];
        assert_eq!(quota.name, "kids");
        #[cfg(feature = "quota")]
        assert_eq!(
            (
                quota.name.as_str(),
                quota.limit,
                &quota.thresholds[..],
                quota.block
            ),
            ("kids", 50_000_000_000, &[80, 100][..], true)
        );
        let seed = include_str!("../../fuzz/seeds/config/documented_example.conf");
        assert_eq!(parse(seed).devices[0].group.as_deref(), Some("kids"));
        assert_eq!(parse(seed).upstream.len(), 1);
    }

    #[test]
    fn suggestions_ignore_case_and_skip_far_words() {
        assert_eq!(
            closest("Listen", OPTIONS.iter().map(|o| o.name)),
            Some("listen")
        );
        assert_eq!(
            closest("interfaces", OPTIONS.iter().map(|o| o.name)),
            Some("interface")
        );
        assert_eq!(closest("x", ["list"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
