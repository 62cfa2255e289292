//! The daemon's loop: refresh on schedule, publish for the API, obey signals.
//!
//! Signals (TERM, INT, HUP, USR1, USR2) are blocked before any thread starts and
//! taken with `sigtimedwait` between refreshes: no async handlers. HUP
//! reloads the config (an invalid one is logged and the old kept); USR1
//! (`netmeter commit`) refreshes, then commits; USR2 (`netmeter quota
//! reset`) lifts the requested quotas' blocks, refreshes and commits; TERM refreshes, reads the
//! devices a last time and commits. The saved `State` sits behind a mutex
//! the HTTP thread locks briefly for history; the upstream accounts are
//! read before it is locked (`UpstreamNow`), since the upstream runner takes
//! the two locks the other way round. On start the loaded device generation
//! is continued, so the reinstalled table counts as restarted.

#[cfg(feature = "quota")]
pub mod alerts;
mod conntrack;
mod devices;
#[cfg(feature = "quota")]
pub mod quota;
#[cfg(feature = "quota")]
pub mod quota_runner;
#[cfg(not(feature = "quota"))]
#[path = "quota_runner_absent.rs"]
pub mod quota_runner;

pub use crate::account::attribution::Attribution;
pub use crate::serve::api::PerDeviceStatus;
pub use devices::resolve;

use crate::account::InterfaceEvent;
use crate::clock::Moment;
use crate::collect::identity::Names;
use crate::collect::links::{read_boot_id, read_links, wan_interfaces};
use crate::config::Config;
use crate::config::ConfigError;
use crate::mac::Mac;
use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};
use crate::rxtx::RxTx;
use crate::serve::api::{self, ApiState, DevicesReport, InterfaceView, InterfacesReport};
use crate::serve::http::{self, Limits};
use crate::store::persist::Store;
use crate::store::state::State;
use crate::store::timeline::Observed;
use devices::PerDevice;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::account::interfaces::MAX_INTERFACES;
#[cfg(feature = "mqtt")]
use crate::serve::mqtt::MqttPublisher;
use crate::store::{calendar, history_sizes};

pub use crate::log::log;

/// Why the daemon could not start or had to stop.
#[derive(Debug)]
pub enum DaemonError {
    Config(ConfigError),
    /// The signals the main loop takes could not be blocked.
    Signals(nix::errno::Errno),
    /// The netlink socket for the link counters could not be opened.
    Netlink(crate::netlink::NetlinkError),
    /// An API address could not be bound.
    Listen {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    /// The HTTP server's thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Config(e) => write!(f, "{e}"),
            DaemonError::Signals(e) => write!(f, "cannot block signals: {e}"),
            DaemonError::Netlink(e) => write!(f, "{e}"),
            DaemonError::Listen { addr, error } => {
                let hint = match error.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        "; is another netmeter running? Or set 'option listen' to a free port"
                    }
                    std::io::ErrorKind::AddrNotAvailable => {
                        "; this address is not on the router: fix 'option listen'"
                    }
                    std::io::ErrorKind::PermissionDenied => "; ports below 1024 need root",
                    _ => "",
                };
                write!(f, "cannot listen on {addr}: {error}{hint}")
            }
            DaemonError::Thread(e) => write!(f, "cannot start the HTTP thread: {e}"),
        }
    }
}

impl From<ConfigError> for DaemonError {
    fn from(e: ConfigError) -> Self {
        DaemonError::Config(e)
    }
}

pub fn run(config_path: Option<PathBuf>) -> Result<(), DaemonError> {
    let mut config = Config::load(config_path.as_deref())?;
    // Signals are taken synchronously by this thread; block them before any
    // other thread exists so none of them gets one.
    let signals = handled_signals();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).map_err(DaemonError::Signals)?;

    let socket = NetlinkSocket::open(NETLINK_ROUTE).map_err(DaemonError::Netlink)?;
    let listeners = bind_all(&config)?;
    let api_state = Arc::new(Mutex::new(ApiState {
        started_unix: crate::clock::unix_now(),
        refresh_interval_secs: config.refresh_interval.as_secs(),
        token: config.token.clone(),
        ..ApiState::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (state, stop) = (api_state.clone(), stop.clone());
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
            .map_err(DaemonError::Thread)?
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

    let mut store = Store::new(&config.spool_directory, &config.database_directory);
    let (loaded, lines) = store.load(&calendar(&config), history_sizes(&config).pair());
    for line in lines {
        log(line);
    }
    let mut state =
        loaded.unwrap_or_else(|| State::new(MAX_INTERFACES, config.max_devices as usize));
    let mut per_device = PerDevice::new(&config);
    apply_config(&config, &mut state, &mut per_device);
    let shared = Arc::new(Mutex::new(state));
    let mut upstream = crate::upstream::UpstreamRunner::default();
    let health = api_state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .upstream
        .clone();
    upstream.start(&config.upstream, &shared, &health);
    let mut mqtt = start_mqtt(&config, &api_state);
    {
        let mut s = api_state.lock().unwrap_or_else(|p| p.into_inner());
        s.store = store.status.clone();
        s.history = Some(shared.clone());
        s.month_rotate = config.month_rotate;
    }
    let mut refresher = Refresher {
        socket,
        per_device,
        names: NamesCache::default(),
        attribution: crate::account::attribution::AttributionTracker::default(),
        quotas: quota_runner::QuotaRunner::default(),
    };
    refresher.quotas.announce(&config);
    let mut next_refresh = Instant::now();
    let mut next_spool = Instant::now() + config.spool_interval;
    let mut next_commit = Instant::now() + config.commit_interval;
    // A requested commit: after a refresh, so it holds the latest counts.
    let mut commit_now = false;
    loop {
        if Instant::now() >= next_refresh {
            let upstream_now = UpstreamNow::read(&health);
            let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
            refresher.run(&mut state, &config, &api_state, &upstream_now);
            drop(state);
            for (quota, payload) in refresher.quotas.take_mqtt() {
                if let Some(publisher) = &mqtt {
                    publisher.quota_alert(&quota, payload);
                }
            }
            next_refresh += config.refresh_interval;
            if next_refresh < Instant::now() {
                next_refresh = Instant::now() + config.refresh_interval; // we fell behind: skip, don't burst
            }
        }
        let now = Instant::now();
        if now >= next_commit || commit_now {
            commit_now = false;
            persist(&shared, &mut store, &api_state, true);
            next_commit = now + config.commit_interval;
            next_spool = now + config.spool_interval;
        } else if now >= next_spool {
            persist(&shared, &mut store, &api_state, false);
            next_spool = now + config.spool_interval;
        }
        let wake = next_refresh.min(next_spool).min(next_commit);
        match wait_for_signal(&signals, wake.saturating_duration_since(Instant::now())) {
            Some(Signal::SIGHUP) => match Config::load(config_path.as_deref()) {
                Ok(new) => {
                    if new.listen != config.listen {
                        log("new listen addresses take effect when the daemon restarts");
                    }
                    if (&new.spool_directory, &new.database_directory)
                        != (&config.spool_directory, &config.database_directory)
                    {
                        log(
                            "new spool or database directories take effect when the daemon restarts",
                        );
                    }
                    // Always: a fixed password_file changes no config line.
                    upstream.start(&new.upstream, &shared, &health);
                    if new.mqtt.as_ref() != mqtt.as_ref().map(|p| p.config()) {
                        // The old session ends first (availability offline).
                        drop(mqtt.take());
                        mqtt = start_mqtt(&new, &api_state);
                    }
                    config = new;
                    warn_about_timeouts(&config);
                    refresher.quotas.announce(&config);
                    refresher.per_device.reconfigure();
                    apply_config(
                        &config,
                        &mut shared.lock().unwrap_or_else(|p| p.into_inner()),
                        &mut refresher.per_device,
                    );
                    {
                        let mut s = api_state.lock().unwrap_or_else(|p| p.into_inner());
                        s.refresh_interval_secs = config.refresh_interval.as_secs();
                        s.month_rotate = config.month_rotate;
                        s.token = config.token.clone();
                    }
                    next_refresh = Instant::now();
                    log("configuration reloaded");
                }
                Err(e) => log(format!("keeping the old configuration: {e}")),
            },
            Some(Signal::SIGUSR1) => {
                log("commit requested");
                commit_now = true;
                next_refresh = Instant::now();
            }
            Some(Signal::SIGUSR2) => {
                // `netmeter quota reset`: lifted at once, committed so a
                // power cut cannot bring the block back.
                let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
                for line in quota_runner::take_resets(&config, &mut state.quotas) {
                    log(line);
                }
                drop(state);
                commit_now = true;
                next_refresh = Instant::now();
            }
            Some(sig) => {
                log(format!("{sig} received: stopping"));
                break;
            }
            None => {}
        }
    }
    // No upstream reading lands after the final commit.
    upstream.signal_stop();
    {
        let upstream_now = UpstreamNow::read(&health);
        let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
        // The last counts before they are written.
        refresher.run(&mut state, &config, &api_state, &upstream_now);
        let state = &mut *state;
        let now = crate::clock::now();
        for line in refresher.per_device.stop(now, &config, &mut state.devices) {
            log(line);
        }
        update_timeline(&config, state, now, &upstream_now.series);
    }
    persist(&shared, &mut store, &api_state, true);
    // Availability goes offline with a clean goodbye.
    drop(mqtt);
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    // Sources end their router sessions (TP-Link allows one admin at a
    // time); procd's kill comes 5 s after its TERM, and the state is saved.
    upstream.stop_within(Duration::from_secs(3));
    Ok(())
}

/// The core build has no publisher: a `config mqtt` section is said to
/// need netmeter-full, once per start or reload.
#[cfg(not(feature = "mqtt"))]
struct MqttPublisher(crate::config::mqtt::MqttConfig);

#[cfg(not(feature = "mqtt"))]
impl MqttPublisher {
    fn config(&self) -> &crate::config::mqtt::MqttConfig {
        &self.0
    }

    fn quota_alert(&self, _quota: &str, _payload: Vec<u8>) {}
}

#[cfg(not(feature = "mqtt"))]
fn start_mqtt(config: &Config, _: &Arc<Mutex<ApiState>>) -> Option<MqttPublisher> {
    let m = config.mqtt.as_ref()?;
    log(format!(
        "config mqtt '{}' (line {}): {}",
        m.name,
        m.line,
        crate::config::mqtt::NEEDS_FULL
    ));
    Some(MqttPublisher(m.clone()))
}

/// The publisher of `config mqtt`, if there is one.
#[cfg(feature = "mqtt")]
fn start_mqtt(config: &Config, api_state: &Arc<Mutex<ApiState>>) -> Option<MqttPublisher> {
    let mut s = api_state.lock().unwrap_or_else(|p| p.into_inner());
    s.mqtt = None;
    drop(s);
    let m = config.mqtt.as_ref()?;
    match MqttPublisher::start(m, api_state.clone()) {
        Ok(p) => Some(p),
        Err(e) => {
            log(format!("mqtt: cannot start the publisher thread: {e}"));
            None
        }
    }
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

/// The upstream accounts as a refresh uses them: read before the saved
/// state is locked, since the upstream runner takes the two locks the other
/// way round.
struct UpstreamNow {
    series: Vec<(String, RxTx<u64>)>,
    figures: Vec<crate::upstream::DeviceFigure>,
}

impl UpstreamNow {
    fn read(shared: &crate::upstream::Shared) -> Self {
        Self {
            series: crate::upstream::series(shared),
            figures: crate::upstream::device_figures(shared),
        }
    }
}

/// What a refresh works with, besides the state it updates.
struct Refresher {
    socket: NetlinkSocket,
    per_device: PerDevice,
    names: NamesCache,
    attribution: crate::account::attribution::AttributionTracker,
    quotas: quota_runner::QuotaRunner,
}

impl Refresher {
    fn run(
        &mut self,
        state: &mut State,
        config: &Config,
        api_state: &Mutex<ApiState>,
        upstream: &UpstreamNow,
    ) {
        let boot_id = read_boot_id().unwrap_or_default();
        let now = crate::clock::now();
        let links = read_links(&mut self.socket);
        let mut attribution = None;
        let mut clock = None;
        let mut wan = Vec::new();
        if let Ok(links) = &links {
            let tracked: Vec<_> = links
                .iter()
                .filter(|s| config.tracks_interface(&s.name))
                .cloned()
                .collect();
            for event in state.interfaces.ingest(now, &boot_id, &tracked) {
                if let InterfaceEvent::Renamed { from, to, .. } = &event {
                    state.timeline.rename_interface(from, to);
                }
                log(event);
            }
            for line in
                self.per_device
                    .refresh(now, config, &mut self.socket, links, &mut state.devices)
            {
                log(line);
            }
            clock = Some(update_timeline(config, state, now, &upstream.series));
            wan = wan_interfaces(&mut self.socket, links).unwrap_or_default();
            attribution = self.attribution.update(
                now.unix_secs,
                self.per_device.status.active,
                wan.clone(),
                &state.interfaces,
                links,
                &state.devices,
            );
        }
        let mut s = api_state.lock().unwrap_or_else(|p| p.into_inner());
        match links {
            Ok(_) => {
                s.interfaces = InterfacesReport {
                    interfaces: state.interfaces.iter().map(InterfaceView::from).collect(),
                };
                s.devices = DevicesReport::new(&state.devices, self.names.current(config));
                s.devices.join_upstream(upstream.figures.clone());
                s.devices.join_periods(
                    &state.timeline,
                    &calendar(config),
                    i64::try_from(now.unix_secs).unwrap_or(i64::MAX),
                );
                if let Some(flows) = &self.per_device.flows {
                    s.devices.join_classes(&flows.by_class);
                }
                let trusted = clock == Some(crate::store::timeline::ClockState::Trusted);
                let blocked = self
                    .quotas
                    .refresh(config, state, &mut s, trusted, now.unix_secs);
                for line in self.per_device.block(blocked) {
                    log(line);
                }
                s.per_device = self.per_device.status.clone();
                s.attribution = attribution;
                s.clock = clock;
                s.wan = wan;
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

/// Credits the growth of every total to history.
fn update_timeline(
    config: &Config,
    state: &mut State,
    now: Moment,
    upstream: &[(String, RxTx<u64>)],
) -> crate::store::timeline::ClockState {
    let sizes = history_sizes(config);
    let observed = Observed {
        interfaces: state
            .interfaces
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    RxTx::new(t.rx_bytes.total(), t.tx_bytes.total()),
                )
            })
            // Upstream series (`isp/wan`) have history like local interfaces.
            .chain(
                upstream
                    .iter()
                    .map(|(name, totals)| (name.as_str(), *totals)),
            )
            .collect(),
        devices: state
            .devices
            .devices()
            .chain(std::iter::once(state.devices.other()))
            .filter(|t| t.mac != Mac::OTHER || t.first_seen != 0)
            .map(|t| (t.mac, RxTx::new(t.rx_bytes, t.tx_bytes)))
            .collect(),
    };
    let clock = state.timeline.update(
        &calendar(config),
        sizes.pair(),
        now.unix_secs,
        now.monotonic_ms,
        &observed,
    );
    if clock != crate::store::timeline::ClockState::Trusted {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            log(format!(
                "the system clock ({}) is not set yet or went back: history waits for NTP; totals count on",
                crate::store::files::utc(now.unix_secs)
            ));
        }
    }
    clock
}

/// Spools, and commits to flash when `commit` (stop, schedule, request).
fn persist(shared: &Mutex<State>, store: &mut Store, api_state: &Mutex<ApiState>, commit: bool) {
    let now = crate::clock::unix_now();
    let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
    let before = store.status.clone();
    // Flash first: the spool copy then records that the commit happened.
    // A failure is logged once, not every interval until it is fixed.
    if commit
        && let Err(e) = store.commit(&mut state, now)
        && before.last_commit_error.is_none()
    {
        log(store
            .status
            .last_commit_error
            .clone()
            .unwrap_or_else(|| e.to_string()));
    }
    if let Err(e) = store.spool(&state, now)
        && before.last_spool_error.is_none()
    {
        log(store
            .status
            .last_spool_error
            .clone()
            .unwrap_or_else(|| e.to_string()));
    }
    drop(state);
    api_state.lock().unwrap_or_else(|p| p.into_inner()).store = store.status.clone();
}

/// Settings that reach into loaded or running state.
fn apply_config(config: &Config, state: &mut State, per_device: &mut PerDevice) {
    state.devices.set_max_devices(config.max_devices as usize);
    let sizes = history_sizes(config);
    state.timeline.resize(&sizes.0, &sizes.1);
    per_device.resume(&state.devices);
}

fn bind_all(config: &Config) -> Result<Vec<TcpListener>, DaemonError> {
    config
        .listen
        .iter()
        .map(|addr| {
            TcpListener::bind(addr).map_err(|error| DaemonError::Listen { addr: *addr, error })
        })
        .collect()
}

fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
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
