//! One thread per upstream source: its own schedule, a hard time limit per
//! scrape, exponential back-off, and never a wait the local refresh shares.
//!
//! Each reading is ingested under the accounts' lock (`upstream::Shared`),
//! checked there against the stop signal so an old thread never accounts
//! after a reload; their bytes are then saved into the state under its lock
//! (accounts, then state: nobody takes them the other way round). Back-off
//! doubles from the interval up to an hour; `WrongCredentials` stops the
//! thread until a reload, `LockedOut` waits the router's time. A reload
//! always restarts the threads (a fixed password file changes no config
//! line). On stop the threads get 3 s to end their sessions, after the
//! final commit.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::collect::links::{read_links, wan_interfaces};
use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};
use crate::rxtx::RxTx;
use crate::store::state::State;
use crate::upstream::sources::{Deadline, Reading, ScrapeError, Source, source_for};
use crate::upstream::{UpstreamAccounts, UpstreamConfig};

/// The longest wait between attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// How a source is doing, for the API, `netmeter upstream` and `check`.
/// Never holds a secret: errors come from `ScrapeError`, which has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ok: bool,
    /// Unix seconds of the last successful scrape.
    pub last_success: Option<u64>,
    /// The last failure's message, cleared by a success.
    pub last_error: Option<String>,
    /// Its stage: dns, connect, timeout, protocol, auth, parse or local.
    pub error_stage: Option<String>,
    /// Failures in a row.
    pub failures: u32,
    /// Unix seconds of the next attempt; None when stopped.
    pub next_attempt: Option<u64>,
    /// Stopped until the configuration changes (wrong credentials).
    pub stopped: bool,
}

/// The running source threads; dropping it stops them.
#[derive(Default)]
pub struct UpstreamRunner {
    workers: Vec<Worker>,
}

struct Worker {
    /// Dropped to stop the thread, which wakes at once.
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl UpstreamRunner {
    /// Starts a thread per configured source. Threads already running are
    /// told to stop but not waited for (a scrape in progress must not hold
    /// up the caller); they ingest nothing more.
    pub fn start(
        &mut self,
        sources: &[UpstreamConfig],
        state: &Arc<Mutex<State>>,
        shared: &super::Shared,
    ) {
        self.signal_stop();
        self.workers.clear();
        {
            let mut accounts = shared.accounts();
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            // The saved accounts are read once: a reload keeps those in
            // memory, with the readings' moments their rates need.
            let accounts = accounts.get_or_insert_with(|| {
                UpstreamAccounts::decode(&state.upstream).unwrap_or_else(|e| {
                    crate::log::log(format!("{e}: upstream totals start from zero"));
                    UpstreamAccounts::default()
                })
            });
            accounts.retain_configured(sources.iter().map(|s| s.name.as_str()));
            state.upstream.replace(accounts.encode());
        }
        *shared.health() = sources
            .iter()
            .map(|s| SourceStatus {
                name: s.name.clone(),
                kind: s.kind.name().to_owned(),
                next_attempt: Some(crate::clock::unix_now()),
                ..SourceStatus::default()
            })
            .collect();
        for config in sources {
            let (tx, rx) = mpsc::channel();
            let mut context = Context {
                config: config.clone(),
                state: state.clone(),
                shared: shared.clone(),
                local: LocalWan::default(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("upstream-{}", config.name))
                .stack_size(256 * 1024)
                .spawn(move || context.run(rx));
            match spawned {
                Ok(handle) => self.workers.push(Worker {
                    stop: Some(tx),
                    handle: Some(handle),
                }),
                Err(e) => crate::log::log(format!(
                    "upstream '{}': cannot start its thread: {e}",
                    config.name
                )),
            }
        }
    }

    /// Tells every thread to stop: from now on none ingests a reading.
    pub fn signal_stop(&mut self) {
        for worker in &mut self.workers {
            worker.stop.take();
        }
    }

    /// Stops every thread and waits up to `limit` for them to end their
    /// router sessions; a thread still in a scrape is left to the exit.
    pub fn stop_within(&mut self, limit: Duration) {
        self.signal_stop();
        let until = Instant::now() + limit;
        while Instant::now() < until
            && self
                .workers
                .iter()
                .any(|w| w.handle.as_ref().is_some_and(|h| !h.is_finished()))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for worker in &mut self.workers {
            if let Some(handle) = worker.handle.take_if(|h| h.is_finished()) {
                let _ = handle.join();
            }
        }
        self.workers.clear();
    }
}

/// What one source thread works with.
struct Context {
    config: UpstreamConfig,
    state: Arc<Mutex<State>>,
    shared: super::Shared,
    local: LocalWan,
}

impl Context {
    fn run(&mut self, stop: mpsc::Receiver<()>) {
        let mut source: Option<Box<dyn Source>> = None;
        let mut failures = 0u32;
        let mut next = Instant::now();
        // Nothing is ever sent: the sender is dropped to stop the thread.
        while let Err(RecvTimeoutError::Timeout) =
            stop.recv_timeout(next.saturating_duration_since(Instant::now()))
        {
            let started = Instant::now();
            let result = match &mut source {
                Some(s) => s.scrape(Deadline::after(self.config.timeout)),
                None => source_for(&self.config).and_then(|s| {
                    source
                        .insert(s)
                        .scrape(Deadline::after(self.config.timeout))
                }),
            };
            let wait = match result {
                Ok(reading) => {
                    failures = 0;
                    if !self.ingest(&reading, &stop) {
                        break;
                    }
                    self.config.interval
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let wait = match &error {
                        ScrapeError::WrongCredentials(_) => None,
                        ScrapeError::LockedOut { seconds, .. } => {
                            Some(Duration::from_secs(*seconds).max(self.config.interval))
                        }
                        _ => Some(backoff(self.config.interval, failures)),
                    };
                    self.failed(&error, failures, wait);
                    match wait {
                        Some(wait) => wait,
                        None => {
                            // Until a reload restarts this thread.
                            let _ = stop.recv();
                            break;
                        }
                    }
                }
            };
            next = started + wait;
        }
        if let Some(mut s) = source {
            s.close(Deadline::after(self.config.timeout));
        }
    }

    /// Accounts a reading unless the thread was told to stop meanwhile
    /// (a newer thread may own the source now); false then.
    fn ingest(&mut self, reading: &Reading, stop: &mpsc::Receiver<()>) -> bool {
        let now = crate::clock::now();
        let local = match (&reading.wan, self.config.compare) {
            (Some(_), true) => self.local.delta(&self.config.compare_interface),
            _ => None,
        };
        let kind = self.config.kind.name();
        {
            let mut accounts = self.shared.accounts();
            // Checked under the lock: the runner signals before a new
            // thread can ingest, so two never account the same source.
            if !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                return false;
            }
            let accounts = accounts.get_or_insert_default();
            let max_rate = self.config.max_rate_bytes();
            let decisions =
                accounts.ingest_limited(&self.config.name, kind, now, reading, local, max_rate);
            for line in decisions {
                crate::log::log(format!("upstream {}: {line}", self.config.name));
            }
            // Saved while the accounts are still locked, so a reading of
            // another source cannot overwrite these bytes with older ones.
            let bytes = accounts.encode();
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.upstream.update(bytes);
        }
        let recovered = self.update_status(|s| {
            let was_failing = s.last_error.is_some();
            s.ok = true;
            s.last_success = Some(now.unix_secs);
            s.last_error = None;
            s.error_stage = None;
            s.failures = 0;
            s.next_attempt = Some(now.unix_secs + self.config.interval.as_secs());
            was_failing
        });
        if recovered {
            crate::log::log(format!("upstream '{}': reading again", self.config.name));
        }
        true
    }

    fn failed(&self, error: &ScrapeError, failures: u32, wait: Option<Duration>) {
        let now = crate::clock::unix_now();
        let message = error.to_string();
        let first = self.update_status(|s| {
            let first = s.last_error.as_deref() != Some(&message);
            s.ok = false;
            s.last_error = Some(message.clone());
            s.error_stage = Some(error.stage().to_owned());
            s.failures = failures;
            s.next_attempt = wait.map(|w| now + w.as_secs());
            s.stopped = wait.is_none();
            first
        });
        // A failure is logged when it changes, not every attempt.
        if first {
            let retry = match wait {
                Some(w) => format!("; retrying in {} s", w.as_secs()),
                None => String::new(),
            };
            crate::log::log(format!("upstream '{}': {message}{retry}", self.config.name));
        }
    }

    fn update_status<T>(&self, change: impl FnOnce(&mut SourceStatus) -> T) -> T {
        let mut health = self.shared.health();
        let mut spare = SourceStatus::default();
        let slot = health
            .iter_mut()
            .find(|s| s.name == self.config.name)
            .unwrap_or(&mut spare);
        change(slot)
    }
}

/// The wait after `failures` failures in a row: the interval, doubled per
/// failure after the first, at most an hour (or the interval, if longer).
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let doubled = interval.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF.max(interval))
}

/// netmeter's own WAN counters, read when a source's reading arrives, so
/// the double-NAT difference compares the same interval on both sides.
#[derive(Default)]
struct LocalWan {
    socket: Option<NetlinkSocket>,
    /// Raw rx/tx per interface at the last reading.
    last: Vec<(String, RxTx<u64>)>,
}

impl LocalWan {
    /// What the compared interfaces (or the default routes' interfaces)
    /// counted since the last call; None on the first call or when the
    /// kernel cannot be read.
    fn delta(&mut self, configured: &[String]) -> Option<RxTx<u64>> {
        if self.socket.is_none() {
            self.socket = NetlinkSocket::open(NETLINK_ROUTE).ok();
        }
        let socket = self.socket.as_mut()?;
        let links = read_links(socket).ok()?;
        let names = match configured.is_empty() {
            true => wan_interfaces(socket, &links).ok()?,
            false => configured.to_vec(),
        };
        let mut now = Vec::new();
        let mut delta = Some(RxTx::<u64>::ZERO);
        for link in links.iter().filter(|l| names.contains(&l.name)) {
            let raw = RxTx::new(link.counters.rx_bytes, link.counters.tx_bytes);
            match self
                .last
                .iter()
                .find(|(n, _)| *n == link.name)
                .map(|(_, r)| r)
            {
                // A counter that went down restarted: this interval is unknown for it.
                Some(before) => {
                    if let Some(d) = &mut delta {
                        d.rx += raw.rx.saturating_sub(before.rx);
                        d.tx += raw.tx.saturating_sub(before.tx);
                    }
                }
                None => delta = None,
            }
            now.push((link.name.clone(), raw));
        }
        let first = self.last.is_empty();
        self.last = now;
        if first || self.last.is_empty() {
            None
        } else {
            delta
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_interval_up_to_an_hour() {
        let s = Duration::from_secs;
        let waits: Vec<_> = (1..=9).map(|n| backoff(s(60), n).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(s(7200), 5), s(7200), "never below the interval");
        assert_eq!(backoff(s(5), u32::MAX), s(3600));
    }
}
