//! Where a fired threshold goes: the quota's `exec` hook, its `webhook`
//! and, with `option mqtt '1'`, the queue the MQTT publisher takes from.
//! Nothing here waits on the poll loop's time: hooks are spawned and
//! reaped at later refreshes (killed after [`EXEC_LIMIT`]); webhooks are
//! POSTed by their own thread from a bounded queue, retried with back-off.
//!
//! Alerts of a quota with `mqtt` wait in [`Alerts::take_mqtt`]'s list
//! until the end of the refresh, when the daemon hands them to the MQTT
//! publisher's bounded queue.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::log;
use crate::config::QuotaConfig;
use crate::net::Deadline;
use crate::net::http::{Request, parse_url, send};
use crate::serve::quota::{AlertCounts, QuotaAlert};

/// A hook still running after this is killed.
pub const EXEC_LIMIT: Duration = Duration::from_secs(30);
/// Hooks running at once; more are refused (and logged) until some end.
pub const MAX_HOOKS: usize = 16;
/// Webhooks waiting for their thread.
pub const WEBHOOK_QUEUE: usize = 64;
/// One POST's whole exchange, connection included.
pub const WEBHOOK_DEADLINE: Duration = Duration::from_secs(10);
/// Waits between tries: 4 tries in about a minute.
pub const WEBHOOK_BACKOFF: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(40),
];
/// A webhook answer's body is read up to this, then ignored.
const MAX_ANSWER: usize = 16 << 10;

/// Counts the webhook thread keeps (u32: no 64-bit atomics on MIPS).
#[derive(Default)]
struct WebhookCounts {
    delivered: AtomicU32,
    failed: AtomicU32,
}

/// (quota, URL, body) of one POST.
type Post = (String, String, Vec<u8>);

/// The webhook thread's queue: a mutex and a condvar rather than an
/// `mpsc` channel, whose code the core build has nowhere else (12 KB,
/// docs/BENCHMARKS.md).
#[derive(Default)]
struct WebhookQueue {
    posts: Mutex<VecDeque<Post>>,
    ready: Condvar,
}

/// The alert sinks of one daemon.
#[derive(Default)]
pub struct Alerts {
    /// Running hooks: (quota, process, when to kill it).
    hooks: Vec<(String, Pid, Instant)>,
    /// Started with the first webhook.
    webhooks: Option<Arc<WebhookQueue>>,
    webhook_counts: Arc<WebhookCounts>,
    exec_started: u64,
    exec_failed: u64,
    webhook_dropped: u64,
    /// Alerts for the MQTT publisher since the last [`Self::take_mqtt`],
    /// oldest first (a refresh's worth: bounded by the config).
    mqtt: Vec<QuotaAlert>,
}

impl Alerts {
    /// Sends `alert` to every sink `quota` names.
    pub fn dispatch(&mut self, quota: &QuotaConfig, alert: &QuotaAlert) {
        log(format!(
            "quota {}: {} % of {} bytes reached ({} bytes used this {})",
            alert.quota, alert.threshold, alert.limit_bytes, alert.used_bytes, alert.period
        ));
        if let Some(program) = &quota.exec {
            self.exec(program, alert);
        }
        if let Some(url) = &quota.webhook {
            self.webhook(url, alert);
        }
        if quota.mqtt {
            self.mqtt.push(alert.clone());
        }
    }

    /// Every alert for the MQTT publisher since the last call, oldest first.
    pub fn take_mqtt(&mut self) -> Vec<QuotaAlert> {
        std::mem::take(&mut self.mqtt)
    }

    fn exec(&mut self, program: &std::path::Path, alert: &QuotaAlert) {
        self.reap();
        if self.hooks.len() >= MAX_HOOKS {
            self.exec_failed += 1;
            log(format!(
                "quota {}: not running {}: {MAX_HOOKS} hooks are still running",
                alert.quota,
                program.display()
            ));
            return;
        }
        match spawn_hook(program, &environment(alert)) {
            Ok(child) => {
                self.exec_started += 1;
                self.hooks
                    .push((alert.quota.clone(), child, Instant::now() + EXEC_LIMIT));
            }
            Err(e) => {
                self.exec_failed += 1;
                log(format!(
                    "quota {}: cannot run {}: {e}",
                    alert.quota,
                    program.display()
                ));
            }
        }
    }

    /// Collects hooks that ended, kills those past [`EXEC_LIMIT`]; never waits.
    pub fn reap(&mut self) {
        let now = Instant::now();
        let mut failed = 0;
        self.hooks.retain(|(quota, child, deadline)| {
            match waitpid(*child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if now >= *deadline => {
                    failed += 1;
                    log(format!(
                        "quota {quota}: the exec hook ran over {} s: killed",
                        EXEC_LIMIT.as_secs()
                    ));
                    let _ = kill(*child, Signal::SIGKILL);
                    let _ = waitpid(*child, None);
                    false
                }
                Ok(WaitStatus::StillAlive) => true,
                Ok(WaitStatus::Exited(_, 0)) => false,
                Ok(WaitStatus::Exited(_, code)) => {
                    failed += 1;
                    log(format!("quota {quota}: the exec hook exited with {code}"));
                    false
                }
                Ok(WaitStatus::Signaled(_, signal, _)) => {
                    failed += 1;
                    log(format!(
                        "quota {quota}: the exec hook was killed by {signal}"
                    ));
                    false
                }
                // Stopped or continued: still ours to wait for.
                Ok(_) => true,
                Err(_) => false,
            }
        });
        self.exec_failed += failed;
    }

    fn webhook(&mut self, url: &str, alert: &QuotaAlert) {
        let queue = self.webhooks.get_or_insert_with(|| {
            let queue = Arc::new(WebhookQueue::default());
            let (q, counts) = (queue.clone(), self.webhook_counts.clone());
            let started = std::thread::Builder::new()
                .name("webhook".into())
                .spawn(move || post_all(&q, &counts));
            if let Err(e) = started {
                log(format!("cannot start the webhook thread: {e}"));
            }
            queue
        });
        let body = serde_json::to_vec(alert).unwrap_or_default();
        let mut posts = queue.posts.lock().unwrap_or_else(|p| p.into_inner());
        if posts.len() >= WEBHOOK_QUEUE {
            self.webhook_dropped += 1;
            log(format!(
                "quota {}: {WEBHOOK_QUEUE} webhooks are waiting: this one is dropped",
                alert.quota
            ));
            return;
        }
        posts.push_back((alert.quota.clone(), url.to_owned(), body));
        queue.ready.notify_one();
    }

    pub fn counts(&self) -> AlertCounts {
        AlertCounts {
            exec_started: self.exec_started,
            exec_failed: self.exec_failed,
            webhook_delivered: u64::from(self.webhook_counts.delivered.load(Ordering::Relaxed)),
            webhook_failed: u64::from(self.webhook_counts.failed.load(Ordering::Relaxed))
                + self.webhook_dropped,
        }
    }
}

/// The hook's environment: `NETMETER_QUOTA`, `NETMETER_TARGET`,
/// `NETMETER_THRESHOLD`, `NETMETER_USED_BYTES`, `NETMETER_LIMIT_BYTES`,
/// `NETMETER_PERIOD_START` (unix seconds), and the rest of the alert.
pub fn environment(alert: &QuotaAlert) -> Vec<(&'static str, String)> {
    vec![
        ("NETMETER_QUOTA", alert.quota.clone()),
        ("NETMETER_TARGET", alert.target.clone()),
        ("NETMETER_TARGET_KIND", alert.target_kind.clone()),
        ("NETMETER_DIRECTION", alert.direction.clone()),
        ("NETMETER_PERIOD", alert.period.clone()),
        ("NETMETER_THRESHOLD", alert.threshold.to_string()),
        ("NETMETER_USED_BYTES", alert.used_bytes.to_string()),
        ("NETMETER_LIMIT_BYTES", alert.limit_bytes.to_string()),
        ("NETMETER_PERIOD_START", alert.period_start.to_string()),
        ("NETMETER_PERIOD_END", alert.period_end.to_string()),
    ]
}

/// Starts `program` with the daemon's environment plus `facts`, stdin and
/// stdout on /dev/null (stderr goes where the daemon's does), no shell:
/// names reach it as values, never as code. posix_spawn rather than
/// `std::process::Command`, which the full build has nowhere else (14 KB
/// on MIPS, docs/BENCHMARKS.md). The child starts with no signal blocked
/// (the daemon blocks the ones it waits for) and SIGPIPE at its default,
/// as `Command` would give it.
fn spawn_hook(program: &std::path::Path, facts: &[(&str, String)]) -> nix::Result<Pid> {
    spawn(program, &[], facts)
}

/// [`spawn_hook`] with arguments after the program's name (for tests).
fn spawn(program: &std::path::Path, args: &[&str], facts: &[(&str, String)]) -> nix::Result<Pid> {
    let c = |bytes: &[u8]| CString::new(bytes).map_err(|_| nix::errno::Errno::EINVAL);
    let path = c(program.as_os_str().as_bytes())?;
    let mut argv = vec![path.clone()];
    for arg in args {
        argv.push(c(arg.as_bytes())?);
    }
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(name, _)| !facts.iter().any(|(f, _)| name.as_bytes() == f.as_bytes()))
        .filter_map(|(name, value)| {
            let mut pair = name.into_vec();
            pair.push(b'=');
            pair.extend(value.as_bytes());
            CString::new(pair).ok()
        })
        .collect();
    for (name, value) in facts {
        // A NUL cannot be passed; nothing netmeter names holds one.
        env.push(c(format!("{name}={value}").as_bytes())?);
    }
    let mut actions = PosixSpawnFileActions::init()?;
    actions.add_open(0, c"/dev/null", OFlag::O_RDONLY, Mode::empty())?;
    actions.add_open(1, c"/dev/null", OFlag::O_WRONLY, Mode::empty())?;
    let mut attr = PosixSpawnAttr::init()?;
    attr.set_sigmask(&SigSet::empty())?;
    let mut pipe = SigSet::empty();
    pipe.add(Signal::SIGPIPE);
    attr.set_sigdefault(&pipe)?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )?;
    posix_spawn(path.as_c_str(), &actions, &attr, &argv, &env)
}

/// The webhook thread: each POST in turn, retried after each back-off.
fn post_all(queue: &WebhookQueue, counts: &WebhookCounts) {
    loop {
        let (quota, url, body) = {
            let mut posts = queue.posts.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                match posts.pop_front() {
                    Some(post) => break post,
                    None => {
                        posts = queue.ready.wait(posts).unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
        };
        match deliver(&quota, &url, &body, &WEBHOOK_BACKOFF) {
            true => counts.delivered.fetch_add(1, Ordering::Relaxed),
            false => counts.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// POSTs `body`, and again after each wait of `backoff` until one is
/// delivered; false when every try failed (each failure is logged).
fn deliver(quota: &str, url: &str, body: &[u8], backoff: &[Duration]) -> bool {
    for wait in std::iter::once(&Duration::ZERO).chain(backoff) {
        std::thread::sleep(*wait);
        match post(url, body) {
            Ok(()) => return true,
            Err(e) => log(format!("quota {quota}: webhook {url}: {e}")),
        }
    }
    log(format!(
        "quota {quota}: webhook {url}: given up after {} tries",
        backoff.len() + 1
    ));
    false
}

/// One POST; any 2xx is delivered.
fn post(url: &str, body: &[u8]) -> Result<(), String> {
    let url = parse_url(url).map_err(|e| e.to_string())?;
    let request = Request::post(&url.path, body)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("netmeter/", env!("CARGO_PKG_VERSION")),
        );
    let answer = send(
        &url.host,
        url.port,
        &request,
        MAX_ANSWER,
        Deadline::after(WEBHOOK_DEADLINE),
    )
    .map_err(|e| e.to_string())?;
    match answer.status {
        200..=299 => Ok(()),
        status => Err(format!("answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(threshold: u16) -> QuotaAlert {
        QuotaAlert {
            quota: "kids".into(),
            target: "Kid's laptop; rm -rf /".into(),
            target_kind: "device".into(),
            direction: "total".into(),
            period: "month".into(),
            threshold,
            used_bytes: 800,
            limit_bytes: 1000,
            period_start: 1_796_083_200,
            period_end: 1_798_761_600,
            at: 1_796_212_800,
        }
    }

    #[test]
    fn the_hook_environment_carries_the_facts_as_values() {
        let env = environment(&alert(80));
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("NETMETER_QUOTA"), Some("kids"));
        assert_eq!(get("NETMETER_TARGET"), Some("Kid's laptop; rm -rf /"));
        assert_eq!(get("NETMETER_THRESHOLD"), Some("80"));
        assert_eq!(get("NETMETER_USED_BYTES"), Some("800"));
        assert_eq!(get("NETMETER_LIMIT_BYTES"), Some("1000"));
        assert_eq!(get("NETMETER_PERIOD_START"), Some("1796083200"));
    }

    #[test]
    fn mqtt_alerts_wait_for_the_publisher_in_order_and_only_for_quotas_that_ask() {
        let mut alerts = Alerts::default();
        let quota = QuotaConfig {
            name: "kids".into(),
            mqtt: true,
            ..QuotaConfig::default()
        };
        for i in 0..3 {
            alerts.dispatch(&quota, &alert(i + 1));
        }
        let taken = alerts.take_mqtt();
        let thresholds: Vec<u16> = taken.iter().map(|a| a.threshold).collect();
        assert_eq!(thresholds, [1, 2, 3]);
        assert!(alerts.take_mqtt().is_empty());
        let silent = QuotaConfig {
            mqtt: false,
            ..quota
        };
        alerts.dispatch(&silent, &alert(1));
        assert!(alerts.take_mqtt().is_empty());
    }

    #[test]
    fn a_hook_starts_with_no_signal_blocked_sigpipe_at_default_and_the_facts_in_its_environment() {
        // As in the daemon: the signals it waits for are blocked (and Rust
        // ignores SIGPIPE); a program, not a shell, shows what it inherits.
        let mut blocked = SigSet::empty();
        blocked.add(Signal::SIGUSR1);
        blocked.add(Signal::SIGHUP);
        let old = blocked
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .unwrap();
        let facts = [("NETMETER_TARGET", "a 'b' $c; d".to_string())];
        let child = spawn(std::path::Path::new("/bin/sleep"), &["10"], &facts);
        old.thread_set_mask().unwrap();
        let child = child.unwrap();
        // posix_spawn returns while the kernel is still setting up the
        // new image: its environment shows once the exec is done.
        let deadline = Instant::now() + Duration::from_secs(5);
        let environ = loop {
            let environ = std::fs::read(format!("/proc/{child}/environ")).unwrap();
            if !environ.is_empty() || Instant::now() > deadline {
                break environ;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
        let stdin = std::fs::read_link(format!("/proc/{child}/fd/0")).unwrap();
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        let mask = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "{status}");
        assert_eq!(mask("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{status}");
        let environ: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
        assert!(
            environ.contains(&&b"NETMETER_TARGET=a 'b' $c; d"[..]),
            "{status}\n{:?}",
            environ
                .iter()
                .map(|e| String::from_utf8_lossy(e))
                .collect::<Vec<_>>()
        );
        if let Some(path) = std::env::var_os("PATH") {
            let inherited = [b"PATH=", path.as_bytes()].concat();
            assert!(
                environ.contains(&&inherited[..]),
                "the daemon's own environment too"
            );
        }
        assert_eq!(stdin, std::path::Path::new("/dev/null"));
    }

    /// A webhook receiver on loopback answering each POST with the next
    /// status of `answers`; returns its URL and the bodies it got.
    fn receiver(answers: &'static [u16]) -> (String, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let thread = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for status in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                // Headers, then as many body bytes as Content-Length says.
                let body = loop {
                    let n = conn.read(&mut buf).unwrap();
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if request.len() >= end + 4 + length {
                            break request[end + 4..end + 4 + length].to_vec();
                        }
                    }
                };
                bodies.push(body);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                conn.write_all(reply.as_bytes()).unwrap();
            }
            bodies
        });
        (url, thread)
    }

    #[test]
    fn a_webhook_is_tried_again_after_each_back_off_until_delivered_and_given_up_after_the_last() {
        let backoff = [Duration::from_millis(20), Duration::from_millis(40)];
        // Refused twice, then taken: three tries, the same body each time.
        let (url, server) = receiver(&[500, 503, 204]);
        assert!(deliver("kids", &url, b"{\"a\":1}", &backoff));
        assert_eq!(server.join().unwrap(), vec![b"{\"a\":1}".to_vec(); 3]);
        // Refused at every try: 1 + 2 tries, then given up.
        let (url, server) = receiver(&[500, 500, 500]);
        assert!(!deliver("kids", &url, b"{}", &backoff));
        assert_eq!(server.join().unwrap().len(), 3);
        // Nothing listening: given up as well, without hanging.
        assert!(!deliver("kids", "http://127.0.0.1:9/hook", b"{}", &backoff));
    }

    #[test]
    fn a_hook_that_cannot_start_is_counted_and_counting_goes_on() {
        let mut alerts = Alerts::default();
        let quota = QuotaConfig {
            name: "kids".into(),
            exec: Some("/nonexistent/netmeter-hook".into()),
            ..QuotaConfig::default()
        };
        alerts.dispatch(&quota, &alert(80));
        assert_eq!(alerts.counts().exec_failed, 1);
        assert_eq!(alerts.counts().exec_started, 0);
    }
}
