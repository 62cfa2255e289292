//! MQTT against a real Mosquitto broker (Debian's `mosquitto`, with its
//! `mosquitto_sub` as the subscriber), both started by the test in the
//! router's namespace on 127.0.0.1: Home Assistant discovery, states and
//! availability; a refused login said and fixed by a reload; the broker
//! stopped and started again, with counting going on meanwhile and
//! netmeter reconnecting; the will when netmeter dies.
//!
//! Without mosquitto the test says so loudly and skips; with CI=true it
//! fails.

use crate::testbed;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testbed::netmeter::{Daemon, Scratch};
use testbed::topology::{LanHost, PORT, Topology, WAN_HOST_V4};
use testbed::{Host, Network};

const API: &str = "127.0.0.1:9750";
const BROKER_PORT: u16 = 1883;
const USER: &str = "netmeter";
const PASSWORD: &str = "broker-pass-1";

/// The program from PATH or /usr/sbin (where Debian puts mosquitto), or
/// None after saying loudly why the test cannot run.
fn program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    let found = dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file());
    if found.is_none() {
        let msg = format!(
            "{name} is not installed (apt-get install mosquitto mosquitto-clients): the MQTT test needs it"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true: {msg}");
        }
        let bar = "!".repeat(72);
        let _ = writeln!(std::io::stderr(), "\n{bar}\n!!! SKIPPED: {msg}\n{bar}\n");
    }
    found
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Mosquitto on 127.0.0.1 in `host`'s namespace, one user with a password.
fn broker(host: &Host, mosquitto: &Path, scratch: &Scratch) -> Running {
    let passwd = scratch.0.join("mosquitto.passwd");
    if !passwd.exists() {
        let made = std::process::Command::new(program("mosquitto_passwd").unwrap())
            .args(["-b", "-c"])
            .arg(&passwd)
            .args([USER, PASSWORD])
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
    }
    let config = scratch.file(
        "mosquitto.conf",
        &format!(
            "listener {BROKER_PORT} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
             persistence false\nuser root\n",
            passwd.display()
        ),
    );
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(scratch.0.join("mosquitto.log"))
        .unwrap();
    let child = host
        .command(mosquitto)
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let b = Running(child);
    wait_for(
        "the broker to listen",
        || {
            host.call(&format!("tcp_probe 127.0.0.1:{BROKER_PORT}"))
                .is_ok()
        },
        || std::fs::read_to_string(scratch.0.join("mosquitto.log")).unwrap_or_default(),
    );
    b
}

/// `mosquitto_sub` on everything, each message a line `RETAIN TOPIC
/// PAYLOAD` in `file`.
fn subscriber(host: &Host, file: &Path) -> Running {
    let out = std::fs::File::create(file).unwrap();
    let child = host
        .command(program("mosquitto_sub").unwrap())
        .args(["-h", "127.0.0.1", "-p", &BROKER_PORT.to_string()])
        .args(["-u", USER, "-P", PASSWORD, "-t", "#", "-F", "%r %t %p"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

/// (retained, topic, payload) of every message the subscriber got.
fn messages(file: &Path) -> Vec<(bool, String, String)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (retain, rest) = l.split_once(' ')?;
            let (topic, payload) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((retain == "1", topic.to_string(), payload.to_string()))
        })
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}:\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn api(router: &Host, path: &str) -> Value {
    let answer = router.run(&format!("http_get {API} {path}"));
    let (status, body) = answer.split_once(' ').unwrap_or((&answer, ""));
    assert_eq!(status, "200", "{path}: {answer}");
    serde_json::from_str(body).unwrap()
}

fn config(password: &str) -> String {
    format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\toption listen '{API}'\n\
         \tlist lan_interface 'lan0'\n\tlist lan_interface 'lan1'\n\
         config mqtt 'ha'\n\toption host '127.0.0.1'\n\toption port '{BROKER_PORT}'\n\
         \toption username '{USER}'\n\toption password '{password}'\n\toption interval '1'\n\
         config quota 'everyone'\n\toption period 'day'\n\toption limit '100K'\n\toption mqtt '1'\n"
    )
}

/// The latest state published for a device, as JSON.
fn latest_state(file: &Path, mac: &str) -> Option<Value> {
    let topic = format!("netmeter/device/{}", mac.replace(':', ""));
    messages(file)
        .into_iter()
        .rev()
        .find(|(_, t, p)| *t == topic && !p.is_empty())
        .and_then(|(_, _, p)| serde_json::from_str(&p).ok())
}

/// Waits until the broker has the device's state with the API's totals.
fn states_match_the_api(net: &Network, file: &Path) {
    for host in &net.lan {
        let mac = host.mac();
        wait_for(
            &format!("{mac}'s state with the API's totals"),
            || {
                let devices = api(&net.router, "/api/v1/devices");
                let Some(dev) = devices["devices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["mac"] == mac.as_str())
                    .cloned()
                else {
                    return false;
                };
                latest_state(file, &mac).is_some_and(|s| {
                    s["rx_bytes"] == dev["rx_bytes"] && s["tx_bytes"] == dev["tx_bytes"]
                })
            },
            || format!("{:?}", latest_state(file, &mac)),
        );
    }
}

#[test]
fn home_assistant_sees_discovery_states_and_availability_through_a_real_broker_that_restarts() {
    let Some(mosquitto) = program("mosquitto") else {
        return;
    };
    if program("mosquitto_sub").is_none() || program("mosquitto_passwd").is_none() {
        return;
    }
    let net = Network::build(Topology {
        lan: vec![LanHost::dual("laptop"), LanHost::dual("phone")],
        bridge: None,
    });
    let scratch = Scratch::new();
    let mut mosquitto_now = Some(broker(&net.router, &mosquitto, &scratch));
    let seen = scratch.0.join("seen.txt");
    let mut sub = Some(subscriber(&net.router, &seen));

    // A wrong password: refused, said with what to check, counting goes on.
    let d = Daemon::start(&net.router, &scratch, &config("wrong-password"));
    wait_for(
        "the refused login in the status",
        || {
            api(&net.router, "/api/v1/status")["mqtt"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("check option username and option password"))
        },
        || d.log_text(),
    );
    // The right one, by reload.
    let text = std::fs::read_to_string(d.config_path()).unwrap();
    std::fs::write(d.config_path(), text.replace("wrong-password", PASSWORD)).unwrap();
    d.signal(libc::SIGHUP);
    for host in &net.lan {
        host.run(&format!("tcp_download {WAN_HOST_V4} {PORT} 300000"));
    }
    net.lan[0].run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 100000"));

    // Availability, discovery for both devices and the router's WAN.
    wait_for(
        "online and the discovery configs",
        || {
            let m = messages(&seen);
            let online = m
                .iter()
                .any(|(_, t, p)| t == "netmeter/status" && p == "online");
            let configs = m
                .iter()
                .filter(|(_, t, _)| {
                    t.starts_with("homeassistant/sensor/") && t.ends_with("/config")
                })
                .count();
            online && configs >= 12
        },
        || format!("{:#?}\n{}", messages(&seen), d.log_text()),
    );
    let m = messages(&seen);
    for host in &net.lan {
        let id = host.mac().replace(':', "");
        let topic = format!("homeassistant/sensor/netmeter_{id}/rx_bytes/config");
        let (_, _, payload) = m
            .iter()
            .find(|(_, t, _)| *t == topic)
            .unwrap_or_else(|| panic!("no {topic}: {m:#?}"));
        let c: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(c["state_topic"], format!("netmeter/device/{id}"));
        assert_eq!(c["state_class"], "total_increasing");
        assert_eq!(c["unit_of_measurement"], "B");
        assert_eq!(c["availability_topic"], "netmeter/status");
        assert_eq!(c["device"]["connections"][0][1], host.mac().as_str());
    }
    assert!(
        m.iter()
            .any(|(_, t, _)| t == "homeassistant/sensor/netmeter_netmeter_wan/rx_bytes/config"),
        "the router's WAN sensors: {m:#?}"
    );
    states_match_the_api(&net, &seen);
    let status = api(&net.router, "/api/v1/status");
    assert_eq!(status["mqtt"]["connected"], true, "{status}");

    // The quota over every device passed its 100 % with the downloads:
    // one alert, not retained, the document the webhook gets.
    #[cfg(feature = "quota")]
    {
        let alerts = || -> Vec<(bool, Value)> {
            messages(&seen)
                .into_iter()
                .filter(|(_, t, _)| t == "netmeter/quota/everyone/alert")
                .map(|(r, _, p)| (r, serde_json::from_str(&p).unwrap()))
                .collect()
        };
        wait_for(
            "the quota's alert",
            || !alerts().is_empty(),
            || format!("{:#?}\n{}", messages(&seen), d.log_text()),
        );
        // Two more refreshes: it is not sent again.
        let refreshes = api(&net.router, "/api/v1/status")["refreshes"]
            .as_u64()
            .unwrap();
        wait_for(
            "two more refreshes",
            || {
                api(&net.router, "/api/v1/status")["refreshes"]
                    .as_u64()
                    .unwrap()
                    >= refreshes + 2
            },
            || d.log_text(),
        );
        let alerts = alerts();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let (retained, alert) = &alerts[0];
        assert!(!retained, "{alert}");
        assert_eq!(
            (
                &alert["quota"],
                &alert["target_kind"],
                &alert["period"],
                &alert["threshold"],
                &alert["limit_bytes"]
            ),
            (
                &Value::from("everyone"),
                &Value::from("all"),
                &Value::from("day"),
                &Value::from(100),
                &Value::from(100_000)
            ),
            "{alert}"
        );
        assert!(alert["used_bytes"].as_u64().unwrap() >= 100_000, "{alert}");
        let quotas = api(&net.router, "/api/v1/quotas");
        assert_eq!(
            quotas["quotas"][0]["fired"],
            serde_json::json!([100]),
            "{quotas}"
        );
    }

    // Retained: what Home Assistant gets when it subscribes later.
    let late = scratch.0.join("late.txt");
    let _late_sub = subscriber(&net.router, &late);
    wait_for(
        "the retained availability, configs and states",
        || {
            let m = messages(&late);
            let retained = |prefix: &str| {
                m.iter()
                    .filter(|(r, t, _)| *r && t.starts_with(prefix))
                    .count()
            };
            m.iter()
                .any(|(r, t, p)| *r && t == "netmeter/status" && p == "online")
                && retained("homeassistant/sensor/") >= 12
                && retained("netmeter/device/") >= 2
        },
        || format!("{:#?}", messages(&late)),
    );

    // Home Assistant comes back online: the configs are sent again.
    let configs_before = messages(&seen)
        .iter()
        .filter(|(_, t, _)| t.ends_with("/config"))
        .count();
    let published = net
        .router
        .command(program("mosquitto_pub").unwrap())
        .args(["-h", "127.0.0.1", "-p", &BROKER_PORT.to_string()])
        .args([
            "-u",
            USER,
            "-P",
            PASSWORD,
            "-t",
            "homeassistant/status",
            "-m",
            "online",
        ])
        .output()
        .unwrap();
    assert!(published.status.success(), "{published:?}");
    wait_for(
        "the configs again after Home Assistant's birth message",
        || {
            messages(&seen)
                .iter()
                .filter(|(_, t, _)| t.ends_with("/config"))
                .count()
                >= configs_before + 12
        },
        || d.log_text(),
    );

    // The broker goes away: counting goes on, the status says so.
    drop(sub.take());
    drop(mosquitto_now.take());
    let before = d.refreshes(&net.router);
    net.lan[1].run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 200000"));
    d.wait_for_refreshes(&net.router, before + 3);
    wait_for(
        "the status to say the broker is away",
        || api(&net.router, "/api/v1/status")["mqtt"]["connected"] == false,
        || d.log_text(),
    );

    // It comes back: netmeter reconnects and publishes again.
    let _mosquitto = broker(&net.router, &mosquitto, &scratch);
    let seen_again = scratch.0.join("seen-again.txt");
    let _sub = subscriber(&net.router, &seen_again);
    wait_for(
        "online and the configs after the broker's restart",
        || {
            let m = messages(&seen_again);
            m.iter()
                .any(|(_, t, p)| t == "netmeter/status" && p == "online")
                && m.iter().filter(|(_, t, _)| t.ends_with("/config")).count() >= 12
        },
        || format!("{:#?}\n{}", messages(&seen_again), d.log_text()),
    );
    states_match_the_api(&net, &seen_again);
    let status = api(&net.router, "/api/v1/status");
    assert!(
        status["mqtt"]["reconnects"].as_u64().unwrap() >= 1,
        "{status}"
    );

    // netmeter dies: the broker publishes its will.
    d.signal(libc::SIGKILL);
    wait_for(
        "the will: offline",
        || {
            messages(&seen_again)
                .iter()
                .any(|(_, t, p)| t == "netmeter/status" && p == "offline")
        },
        || format!("{:#?}", messages(&seen_again)),
    );
}
