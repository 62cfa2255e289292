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
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
    hooks: Vec<(String, Child, Instant)>,
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
        // No shell: names reach the program as values, never as code.
        let spawned = Command::new(program)
            .envs(environment(alert))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn();
        match spawned {
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
        self.hooks
            .retain_mut(|(quota, child, deadline)| match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        failed += 1;
                        log(format!("quota {quota}: the exec hook ended with {status}"));
                    }
                    false
                }
                Ok(None) if now >= *deadline => {
                    failed += 1;
                    log(format!(
                        "quota {quota}: the exec hook ran over {} s: killed",
                        EXEC_LIMIT.as_secs()
                    ));
                    let _ = child.kill();
                    let _ = child.wait();
                    false
                }
                Ok(None) => true,
                Err(_) => false,
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
        let mut tries = std::iter::once(Duration::ZERO).chain(WEBHOOK_BACKOFF);
        let outcome = loop {
            let Some(wait) = tries.next() else {
                break Err("no more tries".to_string());
            };
            std::thread::sleep(wait);
            match post(&url, &body) {
                Ok(()) => break Ok(()),
                Err(e) => log(format!("quota {quota}: webhook {url}: {e}")),
            }
        };
        match outcome {
            Ok(()) => counts.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => {
                log(format!(
                    "quota {quota}: webhook {url}: given up after {} tries",
                    WEBHOOK_BACKOFF.len() + 1
                ));
                counts.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
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
