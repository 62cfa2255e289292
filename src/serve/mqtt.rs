//! The MQTT publisher: one thread that keeps a session with the broker of
//! `config mqtt` and publishes what `home_assistant` builds from the API's
//! state every `interval`. Counting never waits for it: the daemon shares
//! the API state it already publishes for HTTP, and hands quota alerts to
//! a bounded queue ([`MqttPublisher::alert`]); a broker that is down, slow
//! or refusing costs the publisher thread only. It reconnects with
//! back-off (1 s doubling to 60 s), republishes availability and discovery
//! on every connect and when Home Assistant announces itself, and removes a
//! device's entities when the accounts no longer have it.

use super::api::{ApiState, MqttStatus};
use super::home_assistant::{Message, Topics};
use crate::config::mqtt::MqttConfig;
use crate::log::log;
use crate::net::mqtt::{self, Connect, Packet, Will};
use crate::net::{Deadline, connect};
use std::collections::{BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Alerts waiting for the broker; beyond this the oldest is dropped (and
/// counted): a broker down for days must not grow the daemon.
pub const MAX_QUEUED_ALERTS: usize = 256;
const KEEP_ALIVE: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long the thread sleeps in a read at most: the delay of an alert or
/// a stop.
const POLL: Duration = Duration::from_millis(500);

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    alerts: VecDeque<Message>,
    dropped: u64,
    stop: bool,
}

/// The running publisher; stopped (availability set offline) on drop.
pub struct MqttPublisher {
    config: MqttConfig,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl MqttPublisher {
    pub fn start(config: &MqttConfig, api: Arc<Mutex<ApiState>>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let mut session = Session {
            config: config.clone(),
            topics: Topics {
                prefix: config.topic_prefix.clone(),
                discovery: config.discovery_prefix.clone(),
            },
            shared: shared.clone(),
            api,
            announced: BTreeSet::new(),
        };
        let thread = std::thread::Builder::new()
            .name("mqtt".into())
            .spawn(move || session.run())?;
        Ok(MqttPublisher {
            config: config.clone(),
            shared,
            thread: Some(thread),
        })
    }

    /// The config it runs with, to tell whether a reload changes it.
    pub fn config(&self) -> &MqttConfig {
        &self.config
    }

    /// Queues a message for the broker (a quota alert); never waits.
    pub fn alert(&self, message: Message) {
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if q.alerts.len() >= MAX_QUEUED_ALERTS {
            q.alerts.pop_front();
            q.dropped += 1;
        }
        q.alerts.push_back(message);
    }

    /// Queues a quota's alert (JSON) for `PREFIX/quota/NAME/alert`: not
    /// retained, as each is news once.
    pub fn quota_alert(&self, quota: &str, payload: Vec<u8>) {
        self.alert(Message {
            topic: self.topics().quota_alert(quota),
            payload,
            retain: false,
        });
    }

    /// The topics it publishes to.
    pub fn topics(&self) -> Topics {
        Topics {
            prefix: self.config.topic_prefix.clone(),
            discovery: self.config.discovery_prefix.clone(),
        }
    }
}

impl Drop for MqttPublisher {
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a session ended.
enum End {
    Stopped,
    Failed(String),
}

struct Session {
    config: MqttConfig,
    topics: Topics,
    shared: Arc<Shared>,
    api: Arc<Mutex<ApiState>>,
    /// Devices whose discovery configs the broker has (by MAC).
    announced: BTreeSet<String>,
}

impl Session {
    fn run(&mut self) {
        let broker = format!("{}:{}", self.config.host, self.config.port);
        self.status(|s| s.broker = broker.clone());
        let mut backoff = Duration::from_secs(1);
        let mut sessions = 0u64;
        let mut last_logged: Option<String> = None;
        loop {
            let begun = Instant::now();
            let end = match self.open() {
                Ok(stream) => {
                    sessions += 1;
                    self.status(|s| {
                        s.connected = true;
                        s.last_connect = Some(crate::clock::unix_now());
                        s.last_error = None;
                        s.reconnects = sessions - 1;
                    });
                    if last_logged.take().is_some() || sessions == 1 {
                        log(format!("mqtt: connected to {broker}"));
                    }
                    self.serve(stream)
                }
                Err(why) => End::Failed(why),
            };
            self.status(|s| s.connected = false);
            let why = match end {
                End::Stopped => return,
                End::Failed(why) => why,
            };
            // One line per new kind of failure, not one per retry.
            if last_logged.as_deref() != Some(why.as_str()) {
                log(format!("mqtt: {broker}: {why}; retrying with back-off"));
                last_logged = Some(why.clone());
            }
            self.status(|s| s.last_error = Some(why));
            if begun.elapsed() > MAX_BACKOFF {
                backoff = Duration::from_secs(1);
            }
            if self.sleep(backoff) {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn status(&self, change: impl FnOnce(&mut MqttStatus)) {
        let mut api = self.api.lock().unwrap_or_else(PoisonError::into_inner);
        change(api.mqtt.get_or_insert_with(MqttStatus::default));
    }

    /// Waits `pause` unless stopped first; true when stopped.
    fn sleep(&self, pause: Duration) -> bool {
        let q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (q, _) = self
            .shared
            .wake
            .wait_timeout_while(q, pause, |q| !q.stop)
            .unwrap_or_else(PoisonError::into_inner);
        q.stop
    }

    fn stopped(&self) -> bool {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop
    }

    /// Connects and logs in: the stream, or why not.
    fn open(&self) -> Result<TcpStream, String> {
        let deadline = Deadline::after(CONNECT_TIMEOUT);
        let mut stream =
            connect(&self.config.host, self.config.port, deadline).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        stream
            .set_write_timeout(Some(CONNECT_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let password = match (&self.config.password, &self.config.password_file) {
            (Some(p), _) => Some(p.expose().as_bytes().to_vec()),
            (None, Some(file)) => Some(read_password(file)?),
            (None, None) => None,
        };
        let will = self.topics.offline();
        let hello = mqtt::connect(&Connect {
            client_id: &self.config.client_id,
            keep_alive_secs: KEEP_ALIVE.as_secs() as u16,
            will: Some(Will {
                topic: &will.topic,
                payload: &will.payload,
                retain: true,
            }),
            username: self.config.username.as_deref(),
            password: password.as_deref(),
        });
        stream
            .write_all(&hello)
            .map_err(|e| format!("sending CONNECT: {e}"))?;
        let mut buf = Vec::new();
        match read_packet(&mut stream, &mut buf, CONNECT_TIMEOUT)? {
            Some(Packet::ConnAck { code: 0, .. }) => Ok(stream),
            Some(Packet::ConnAck { code, .. }) => Err(format!(
                "the broker refused the login (code {code}): {}",
                mqtt::refusal(code)
            )),
            Some(other) => Err(format!("the broker answered CONNECT with {other:?}")),
            None => Err(format!(
                "no CONNACK within {} s: is this an MQTT broker's port?",
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }

    /// Publishes until the connection fails or the daemon stops.
    fn serve(&mut self, mut stream: TcpStream) -> End {
        let mut out = Writer {
            stream: &mut stream,
            api: self.api.clone(),
            last_write: Instant::now(),
        };
        let mut first = vec![self.topics.online()];
        self.announced.clear();
        first.extend(self.round(true));
        if let Err(e) = out.send(&first) {
            return End::Failed(e);
        }
        if self.config.discovery {
            let sub = mqtt::subscribe(1, &self.topics.home_assistant_status());
            if let Err(e) = out.raw(&sub) {
                return End::Failed(e);
            }
        }
        let mut next_round = Instant::now() + self.config.interval;
        let mut ping_sent: Option<Instant> = None;
        let mut rediscover = false;
        let mut buf = Vec::new();
        loop {
            if self.stopped() {
                let bye = [self.topics.offline()];
                let _ = out.send(&bye);
                let _ = out.raw(&mqtt::DISCONNECT);
                return End::Stopped;
            }
            let alerts: Vec<Message> = {
                let mut q = self
                    .shared
                    .queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let dropped = q.dropped;
                let drained: Vec<Message> = q.alerts.drain(..).collect();
                drop(q);
                self.status(|s| s.alerts_dropped = dropped);
                drained
            };
            if let Err(e) = out.send(&alerts) {
                // Not lost: back in front of the queue for the next session.
                let mut q = self
                    .shared
                    .queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for m in alerts.into_iter().rev() {
                    q.alerts.push_front(m);
                }
                q.alerts.truncate(MAX_QUEUED_ALERTS);
                return End::Failed(e);
            }
            if Instant::now() >= next_round || rediscover {
                let messages = self.round(rediscover);
                rediscover = false;
                if let Err(e) = out.send(&messages) {
                    return End::Failed(e);
                }
                next_round = Instant::now() + self.config.interval;
            }
            if ping_sent.is_none() && out.last_write.elapsed() >= KEEP_ALIVE / 2 {
                if let Err(e) = out.raw(&mqtt::PINGREQ) {
                    return End::Failed(e);
                }
                ping_sent = Some(Instant::now());
            }
            if ping_sent.is_some_and(|at| at.elapsed() > KEEP_ALIVE / 2) {
                return End::Failed("the broker stopped answering (no PINGRESP)".into());
            }
            let wait = POLL.min(next_round.saturating_duration_since(Instant::now()));
            match read_packet(out.stream, &mut buf, wait.max(Duration::from_millis(10))) {
                Ok(Some(Packet::PingResp)) => ping_sent = None,
                Ok(Some(Packet::Publish { topic, payload, .. })) => {
                    // Home Assistant restarted: it wants the configs again.
                    if topic == self.topics.home_assistant_status() && payload == b"online" {
                        rediscover = true;
                    }
                }
                Ok(_) => {}
                Err(e) => return End::Failed(e),
            }
        }
    }

    /// The states of this round, with discovery for every device when
    /// `everything` (a new session, Home Assistant back), else for new
    /// devices only; removal for devices the accounts dropped.
    fn round(&mut self, everything: bool) -> Vec<Message> {
        let (interfaces, devices, wan) = {
            let api = self.api.lock().unwrap_or_else(PoisonError::into_inner);
            if api.refreshes == 0 {
                return Vec::new();
            }
            (
                api.interfaces.interfaces.clone(),
                api.devices.devices.clone(),
                api.wan.clone(),
            )
        };
        let mut messages = Vec::new();
        if self.config.discovery {
            if everything {
                self.announced.clear();
                messages.extend(self.topics.router_discovery(&wan));
            }
            let current: BTreeSet<String> = devices.iter().map(|d| d.mac.clone()).collect();
            for gone in self.announced.difference(&current) {
                messages.extend(self.topics.device_removal(gone));
            }
            for d in devices.iter().filter(|d| !self.announced.contains(&d.mac)) {
                messages.extend(self.topics.device_discovery(d));
            }
            self.announced = current;
        }
        messages.extend(self.topics.interface_states(&interfaces));
        messages.extend(self.topics.device_states(&devices));
        messages
    }
}

struct Writer<'a> {
    stream: &'a mut TcpStream,
    api: Arc<Mutex<ApiState>>,
    last_write: Instant,
}

impl Writer<'_> {
    fn send(&mut self, messages: &[Message]) -> Result<(), String> {
        for m in messages {
            self.raw(&mqtt::publish(&m.topic, &m.payload, m.retain))?;
        }
        if !messages.is_empty() {
            let mut api = self.api.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = api.mqtt.as_mut() {
                s.messages_published += messages.len() as u64;
            }
        }
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("the connection broke: {e}"))?;
        self.last_write = Instant::now();
        Ok(())
    }
}

/// The next packet, reading for `wait` at most; None when none came whole.
fn read_packet(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    wait: Duration,
) -> Result<Option<Packet>, String> {
    let until = Instant::now() + wait;
    loop {
        if let Some((packet, used)) = mqtt::decode(buf).map_err(|e| e.to_string())? {
            buf.drain(..used);
            return Ok(Some(packet));
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return Err("the broker closed the connection".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(None);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("the connection broke: {e}")),
        }
    }
}

fn read_password(file: &std::path::Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read option password_file {}: {e}", file.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::samples;

    fn session(api: Arc<Mutex<ApiState>>) -> Session {
        let config = MqttConfig::new("ha", "127.0.0.1");
        Session {
            topics: Topics {
                prefix: config.topic_prefix.clone(),
                discovery: config.discovery_prefix.clone(),
            },
            config,
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
            }),
            api,
            announced: BTreeSet::new(),
        }
    }

    fn configs(messages: &[Message]) -> Vec<&str> {
        messages
            .iter()
            .filter(|m| m.topic.ends_with("/rx_bytes/config") && !m.payload.is_empty())
            .map(|m| m.topic.as_str())
            .collect()
    }

    #[test]
    fn new_devices_are_announced_once_and_forgotten_ones_removed() {
        let api = Arc::new(Mutex::new(ApiState::default()));
        let mut s = session(api.clone());
        assert!(s.round(true).is_empty(), "nothing before the first refresh");
        {
            let mut a = api.lock().unwrap();
            a.refreshes = 1;
            a.wan = vec!["wan".into()];
            a.devices = samples::devices();
        }
        let first = s.round(true);
        assert_eq!(
            configs(&first),
            [
                "homeassistant/sensor/netmeter_netmeter_wan/rx_bytes/config",
                "homeassistant/sensor/netmeter_aabbccddee01/rx_bytes/config",
                "homeassistant/sensor/netmeter_aabbccddee02/rx_bytes/config",
            ]
        );
        let states = |m: &[Message]| {
            m.iter()
                .filter(|m| m.topic.starts_with("netmeter/device/"))
                .count()
        };
        assert_eq!(states(&first), 2);

        // Next round: states only.
        let again = s.round(false);
        assert!(configs(&again).is_empty());
        assert_eq!(states(&again), 2);

        // The second device is gone: its entities and state are cleared.
        api.lock().unwrap().devices.devices.truncate(1);
        let after = s.round(false);
        let cleared: Vec<&str> = after
            .iter()
            .filter(|m| m.payload.is_empty())
            .map(|m| m.topic.as_str())
            .collect();
        assert_eq!(cleared.len(), 5, "{cleared:?}");
        assert!(
            cleared.iter().all(|t| t.contains("aabbccddee02")),
            "{cleared:?}"
        );
        assert!(configs(&after).is_empty());
    }

    #[test]
    fn a_full_alert_queue_drops_the_oldest_and_counts_it() {
        let api = Arc::new(Mutex::new(ApiState::default()));
        let mut config = MqttConfig::new("ha", "127.0.0.1");
        // Nothing listens on port 9 of loopback: the session keeps failing.
        config.port = 9;
        let p = MqttPublisher::start(&config, api).unwrap();
        for n in 0..MAX_QUEUED_ALERTS + 3 {
            p.alert(Message {
                topic: format!("netmeter/quota/q/alert{n}"),
                payload: Vec::new(),
                retain: false,
            });
        }
        let q = p.shared.queue.lock().unwrap();
        assert_eq!(q.alerts.len(), MAX_QUEUED_ALERTS);
        assert_eq!(q.dropped, 3);
        assert_eq!(q.alerts[0].topic, "netmeter/quota/q/alert3");
    }
}
