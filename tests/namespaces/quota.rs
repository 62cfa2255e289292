//! Quotas on the real kernel: a LAN host moves known traffic past a
//! quota's thresholds; the exec hook and the webhook (a receiver on
//! 127.0.0.1 in the router's namespace) fire once per threshold, not
//! again after the daemon restarts; a `block` quota drops the device's
//! WAN traffic and nothing else, still after a restart, until `netmeter
//! quota reset`. Periods turning over are proven in the unit tests
//! (`daemon::quota`), where time is passed in.

use crate::testbed;

use serde_json::Value;
use std::time::{Duration, Instant};
use testbed::netmeter::{self, Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4};
use testbed::{LanHost, Network, Topology};

const WEBHOOK_PORT: u16 = 8765;

fn network(hosts: &[&str]) -> Network {
    Network::build(Topology {
        lan: hosts.iter().map(|h| LanHost::dual(h)).collect(),
        bridge: Some("br-lan".into()),
    })
}

fn quotas(net: &Network, d: &Daemon) -> Value {
    let answer = net
        .router
        .run(&format!("http_get {} /api/v1/quotas", d.api));
    let (code, body) = answer.split_once(' ').unwrap_or(("", ""));
    assert_eq!(code, "200", "{answer}");
    serde_json::from_str(body).unwrap()
}

/// Waits (refresh by refresh) until `done` holds for the quotas report.
fn wait_for(net: &Network, d: &Daemon, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let q = quotas(net, d);
        if done(&q) {
            return q;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never {what}: {q}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The hook's lines, one per run.
fn hook_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn webhook_bodies(net: &Network) -> Vec<Value> {
    net.router
        .run("webhooks")
        .split('\t')
        .filter(|b| !b.is_empty())
        .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}")))
        .collect()
}

fn thresholds_of(bodies: &[Value]) -> Vec<u64> {
    let mut t: Vec<u64> = bodies
        .iter()
        .map(|b| b["threshold"].as_u64().unwrap())
        .collect();
    t.sort_unstable();
    t
}

#[test]
fn exec_hook_and_webhook_fire_once_per_threshold_and_not_again_after_a_restart() {
    let net = network(&["laptop"]);
    let laptop = &net.lan[0];
    let mac = laptop.mac();
    net.router.run(&format!("webhook {WEBHOOK_PORT}"));
    let scratch = Scratch::new();
    let log = scratch.0.join("hook.log");
    let hook = scratch.file(
        "hook.sh",
        &format!(
            "#!/bin/sh\necho \"$NETMETER_QUOTA|$NETMETER_TARGET|$NETMETER_THRESHOLD|\
             $NETMETER_USED_BYTES|$NETMETER_LIMIT_BYTES|$NETMETER_PERIOD_START\" >> {}\n",
            log.display()
        ),
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\tlist lan_interface 'br-lan'\n\
         config quota 'laptop_up'\n\toption device '{mac}'\n\toption direction 'tx'\n\
         \toption period 'day'\n\toption limit '1M'\n\tlist threshold '50'\n\tlist threshold '100'\n\
         \toption exec '{}'\n\toption webhook 'http://127.0.0.1:{WEBHOOK_PORT}/hook'\n",
        hook.display()
    );
    let d = Daemon::start(&net.router, &scratch, &config);
    let q = quotas(&net, &d);
    assert_eq!(q["quotas"][0]["limit_bytes"], 1_000_000, "M is 10^6: {q}");
    assert_eq!(q["quotas"][0]["fired"], serde_json::json!([]), "{q}");

    // 600 kB of upload: past 50 %, short of 100 %.
    laptop.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 600000"));
    wait_for(&net, &d, "fired 50 %", |q| {
        q["quotas"][0]["fired"] == serde_json::json!([50])
    });
    let start = Instant::now();
    while hook_lines(&log).is_empty() || webhook_bodies(&net).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Then past 100 %.
    laptop.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 500000"));
    let q = wait_for(&net, &d, "fired 100 %", |q| {
        q["quotas"][0]["fired"] == serde_json::json!([50, 100])
    });
    let start = Instant::now();
    while hook_lines(&log).len() < 2 || webhook_bodies(&net).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // More traffic and refreshes: nothing fires twice.
    laptop.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 100000"));
    d.wait_refreshed(&net.router);
    d.wait_refreshed(&net.router);
    let lines = hook_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let period_start = q["quotas"][0]["period_start"].as_i64().unwrap();
    for (line, threshold) in lines.iter().zip([50, 100]) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(
            &f[..3],
            ["laptop_up", mac.as_str(), &threshold.to_string()],
            "{line}"
        );
        let used: u64 = f[3].parse().unwrap();
        assert!(used * 100 >= 1_000_000 * threshold, "{line}");
        assert_eq!(f[4], "1000000");
        assert_eq!(f[5], period_start.to_string());
    }
    let bodies = webhook_bodies(&net);
    assert_eq!(thresholds_of(&bodies), [50, 100], "{bodies:?}");
    assert!(
        bodies
            .iter()
            .all(|b| b["quota"] == "laptop_up" && b["target"] == mac.as_str())
    );
    let q = quotas(&net, &d);
    assert_eq!(q["alerts"]["exec_started"], 2, "{q}");
    assert_eq!(q["alerts"]["webhook_delivered"], 2, "{q}");

    // A restart: the fired thresholds come back from the saved state.
    drop(d);
    let d = Daemon::start(&net.router, &scratch, &config);
    d.wait_refreshed(&net.router);
    d.wait_refreshed(&net.router);
    let q = quotas(&net, &d);
    assert_eq!(q["quotas"][0]["fired"], serde_json::json!([50, 100]), "{q}");
    assert_eq!(q["alerts"]["exec_started"], 0, "{q}");
    assert_eq!(hook_lines(&log).len(), 2);
    assert_eq!(thresholds_of(&webhook_bodies(&net)), [50, 100]);
}

#[test]
fn a_block_drops_the_devices_wan_traffic_only_survives_a_restart_and_reset_lifts_it() {
    let net = network(&["kid", "parent"]);
    let (kid, parent) = (&net.lan[0], &net.lan[1]);
    let kid_mac = kid.mac();
    // The router answers on its LAN address too, as dnsmasq or LuCI would.
    net.router.run(&format!("serve {PORT}"));
    let scratch = Scratch::new();
    let config = format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\tlist lan_interface 'br-lan'\n\
         config device\n\toption mac '{kid_mac}'\n\toption name 'Kid tablet'\n\toption group 'kids'\n\
         config quota 'kids'\n\toption group 'kids'\n\toption limit '200K'\n\
         \toption action 'block'\n"
    );
    let d = Daemon::start(&net.router, &scratch, &config);
    let wan = format!("tcp_upload {WAN_HOST_V4} {PORT} 300000");
    kid.run(&wan);
    let q = wait_for(&net, &d, "blocked", |q| q["quotas"][0]["blocked"] == true);
    assert_eq!(
        q["quotas"][0]["blocked_macs"],
        serde_json::json!([kid_mac]),
        "{q}"
    );
    let blocked = |why: &str| {
        let r = kid.call(&wan);
        assert!(r.is_err(), "{why}: the kid reached the WAN: {r:?}");
    };
    blocked("blocked");
    // The LAN and the router itself still answer; other devices go on.
    kid.run(&format!("tcp_upload 10.0.0.1 {PORT} 10000"));
    kid.run(&format!("tcp_upload 10.0.0.3 {PORT} 10000"));
    parent.run(&wan);

    drop(d);
    let d = Daemon::start(&net.router, &scratch, &config);
    d.wait_refreshed(&net.router);
    assert_eq!(quotas(&net, &d)["quotas"][0]["blocked"], true);
    blocked("after a restart");
    kid.run(&format!("tcp_upload 10.0.0.1 {PORT} 10000"));

    let out = netmeter::run(
        &net.router,
        &[
            "quota",
            "reset",
            "kids",
            "-c",
            d.config_path().to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lifted"));
    d.wait_refreshed(&net.router);
    let q = quotas(&net, &d);
    assert!(
        q["quotas"][0]["blocked"] == false && q["quotas"][0]["lifted"] == true,
        "{q}"
    );
    kid.run(&wan);
    let unknown = netmeter::run(
        &net.router,
        &[
            "quota",
            "reset",
            "nobody",
            "-c",
            d.config_path().to_str().unwrap(),
        ],
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("the daemon has kids"));
}
