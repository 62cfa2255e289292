//! The daemon's loop: refresh on schedule, publish for the API, obey signals.

mod attribution;
mod devices;

pub use attribution::Attribution;
pub use devices::{PerDeviceStatus, resolve};

use crate::account::InterfaceAccounts;
use crate::cli::CliError;
use crate::collect::identity::Names;
use crate::collect::links::{read_boot_id, read_links, wan_interfaces};
use crate::config::Config;
use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};
use crate::serve::api::{self, ApiState, DevicesReport, InterfaceView, InterfacesReport};
use crate::serve::http::{self, Limits};
use devices::PerDevice;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Interfaces tracked at most; absent ones are evicted first.
pub const MAX_INTERFACES: usize = 256;

/// One line to stderr, which procd sends to syslog.
pub fn log(message: impl std::fmt::Display) {
    eprintln!("netmeter: {message}");
}

pub fn run(config_path: Option<PathBuf>) -> Result<(), CliError> {
    let mut config = Config::load(config_path.as_deref())?;
    // Signals are taken synchronously by this thread; block them before any
    // other thread exists so none of them gets one.
    let signals = handled_signals();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .map_err(|e| CliError::Runtime(format!("cannot block signals: {e}")))?;

    let mut socket =
        NetlinkSocket::open(NETLINK_ROUTE).map_err(|e| CliError::Runtime(e.to_string()))?;
    let listeners = bind_all(&config)?;
    let state = Arc::new(Mutex::new(ApiState {
        started_unix: crate::clock::unix_now(),
        refresh_interval_secs: config.refresh_interval.as_secs(),
        token: config.token.clone(),
        ..ApiState::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (state, stop) = (state.clone(), stop.clone());
        std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                http::serve(
                    listeners,
                    Limits::default(),
                    |req| api::route(&state, req, crate::clock::unix_now()),
                    stop,
                )
            })
            .map_err(|e| CliError::Runtime(format!("cannot start the HTTP thread: {e}")))?
    };
    warn_about_timeouts(&config);
    log(format!(
        "started: refresh every {} s, API on {}{}",
        config.refresh_interval.as_secs(),
        config
            .listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if config.token.is_some() {
            " (token required)"
        } else {
            ""
        }
    ));

    let mut accounts = InterfaceAccounts::new(MAX_INTERFACES);
    let mut per_device = PerDevice::new(&config);
    let mut names = NamesCache::default();
    let mut attribution = attribution::AttributionTracker::default();
    let mut next_refresh = Instant::now();
    loop {
        if Instant::now() >= next_refresh {
            Refresh {
                socket: &mut socket,
                accounts: &mut accounts,
                per_device: &mut per_device,
                names: &mut names,
                attribution: &mut attribution,
            }
            .run(&config, &state);
            next_refresh += config.refresh_interval;
            if next_refresh < Instant::now() {
                next_refresh = Instant::now() + config.refresh_interval; // we fell behind: skip, don't burst
            }
        }
        match wait_for_signal(
            &signals,
            next_refresh.saturating_duration_since(Instant::now()),
        ) {
            Some(Signal::SIGHUP) => match Config::load(config_path.as_deref()) {
                Ok(new) => {
                    if new.listen != config.listen {
                        log("new listen addresses take effect when the daemon restarts");
                    }
                    config = new;
                    warn_about_timeouts(&config);
                    per_device.reconfigure(&config);
                    {
                        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                        s.refresh_interval_secs = config.refresh_interval.as_secs();
                        s.token = config.token.clone();
                    }
                    next_refresh = Instant::now();
                    log("configuration reloaded");
                }
                Err(e) => log(format!("keeping the old configuration: {e}")),
            },
            Some(sig) => {
                log(format!("{sig} received: stopping"));
                break;
            }
            None => {}
        }
    }
    for line in per_device.stop(crate::clock::now(), &config) {
        log(line);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    Ok(())
}

fn warn_about_timeouts(config: &Config) {
    let effective = devices::element_timeout(config);
    if effective != config.element_timeout {
        log(format!(
            "element_timeout {} s is under three refresh intervals: using {} s so no growth expires unread",
            config.element_timeout.as_secs(),
            effective.as_secs()
        ));
    }
}

/// Device names from the leases, hosts and ethers files, read again only
/// when one of them changed.
#[derive(Default)]
struct NamesCache {
    names: Names,
    stamp: Vec<Option<std::time::SystemTime>>,
}

impl NamesCache {
    fn current(&mut self, config: &Config) -> &Names {
        let stamp: Vec<_> = [&config.dhcp_leases, &config.odhcpd_hosts, &config.ethers]
            .iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect();
        if stamp != self.stamp || self.stamp.is_empty() {
            let (names, warnings) = Names::load(config);
            for w in warnings {
                log(w);
            }
            self.names = names;
            self.stamp = stamp;
        }
        &self.names
    }
}

/// Everything one refresh touches.
struct Refresh<'a> {
    socket: &'a mut NetlinkSocket,
    accounts: &'a mut InterfaceAccounts,
    per_device: &'a mut PerDevice,
    names: &'a mut NamesCache,
    attribution: &'a mut attribution::AttributionTracker,
}

impl Refresh<'_> {
    fn run(&mut self, config: &Config, state: &Mutex<ApiState>) {
        let boot_id = read_boot_id().unwrap_or_default();
        let now = crate::clock::now();
        let links = read_links(self.socket);
        let mut attribution = None;
        if let Ok(links) = &links {
            let tracked: Vec<_> = links
                .iter()
                .filter(|s| config.tracks_interface(&s.name))
                .cloned()
                .collect();
            for event in self.accounts.ingest(now, &boot_id, &tracked) {
                log(event);
            }
            for line in self.per_device.refresh(now, config, self.socket, links) {
                log(line);
            }
            let wan = wan_interfaces(self.socket, links).unwrap_or_default();
            attribution = self.attribution.update(
                now.unix_secs,
                self.per_device.status.active,
                wan,
                self.accounts,
                links,
                &self.per_device.accounts,
            );
        }
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        match links {
            Ok(_) => {
                s.interfaces = InterfacesReport {
                    interfaces: self.accounts.iter().map(InterfaceView::from).collect(),
                };
                s.devices =
                    DevicesReport::new(&self.per_device.accounts, self.names.current(config));
                s.per_device = self.per_device.status.clone();
                s.attribution = attribution;
                s.last_refresh_unix = Some(crate::clock::unix_now());
                s.refreshes += 1;
                s.last_error = None;
            }
            Err(e) => {
                if s.last_error.as_deref() != Some(&e.to_string()) {
                    log(format!("refresh failed: {e}"));
                }
                s.last_error = Some(e.to_string());
            }
        }
    }
}

fn bind_all(config: &Config) -> Result<Vec<TcpListener>, CliError> {
    config
        .listen
        .iter()
        .map(|addr| {
            TcpListener::bind(addr).map_err(|e| {
                let hint = match e.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        "; is another netmeter running? Or set 'option listen' to a free port"
                    }
                    std::io::ErrorKind::AddrNotAvailable => {
                        "; this address is not on the router: fix 'option listen'"
                    }
                    std::io::ErrorKind::PermissionDenied => "; ports below 1024 need root",
                    _ => "",
                };
                CliError::Runtime(format!("cannot listen on {addr}: {e}{hint}"))
            })
        })
        .collect()
}

fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Waits up to `timeout` for one of the blocked signals.
fn wait_for_signal(set: &SigSet, timeout: Duration) -> Option<Signal> {
    // SAFETY: timespec is plain data; zeroed is valid. Set by field so the
    // code does not name time_t, whose width differs between targets.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // Clamped to fit a 32-bit time_t; nanoseconds are below 10^9.
    ts.tv_sec = timeout.as_secs().min(i32::MAX as u64) as _;
    ts.tv_nsec = timeout.subsec_nanos() as _;
    // SAFETY: a valid signal set and timespec; a null siginfo is allowed.
    let signo = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    if signo > 0 {
        Signal::try_from(signo).ok()
    } else {
        None
    }
}
