//! `netmeter daemon`: signals, reload, and errors a person can act on.

use crate::testbed;

use std::time::{Duration, Instant};
use testbed::Network;
use testbed::netmeter::{self, Daemon, Scratch};

const CONFIG: &str =
    "config netmeter 'main'\n\toption refresh_interval '1'\n\toption listen '127.0.0.1:9750'\n";

fn status(net: &Network) -> serde_json::Value {
    let answer = net.router.run("http_get 127.0.0.1:9750 /api/v1/status");
    let (code, body) = answer.split_once(' ').unwrap();
    assert_eq!(code, "200", "{answer}");
    serde_json::from_str(body).unwrap()
}

fn wait_exit(d: &mut Daemon) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = d.child.try_wait().unwrap() {
            return st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "daemon did not stop:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_and_sigint_stop_the_daemon_cleanly_with_exit_0() {
    let net = Network::with_lan_hosts(&[]);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let scratch = Scratch::new();
        let mut d = Daemon::start(&net.router, &scratch, CONFIG);
        d.signal(sig);
        let st = wait_exit(&mut d);
        assert!(st.success(), "exit status {st:?}:\n{}", d.log_text());
        assert!(d.log_text().contains("stopping"), "{}", d.log_text());
    }
}

#[test]
fn sighup_reloads_a_valid_config_and_keeps_the_old_one_when_the_new_is_invalid() {
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, CONFIG);
    assert_eq!(status(&net)["refresh_interval"], 1);

    std::fs::write(
        d.config_path(),
        "config netmeter 'main'\n\toption refresh_interval 'often'\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("keeping the old configuration", Duration::from_secs(5));
    assert!(
        d.log_text().contains("refresh_interval"),
        "the log names the bad option:\n{}",
        d.log_text()
    );
    assert_eq!(
        status(&net)["refresh_interval"],
        1,
        "still running on the old config"
    );

    std::fs::write(d.config_path(), CONFIG.replace("'1'", "'7'")).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("configuration reloaded", Duration::from_secs(5));
    assert_eq!(status(&net)["refresh_interval"], 7);
}

#[test]
fn a_second_daemon_on_the_same_address_fails_with_one_line_that_names_the_fix() {
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let _first = Daemon::start(&net.router, &scratch, CONFIG);
    let cfg = scratch.file("second.conf", CONFIG);
    let out = netmeter::run(&net.router, &["daemon", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line, no backtrace: {err}");
    assert!(
        err.contains("cannot listen on 127.0.0.1:9750") && err.contains("option listen"),
        "{err}"
    );
}

#[test]
fn a_bad_config_is_exit_2_with_file_and_line() {
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let cfg = scratch.file(
        "bad.conf",
        "config netmeter 'main'\n\n\toption refresh_interval '0'\n",
    );
    let out = netmeter::run(&net.router, &["daemon", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.conf:3:") && err.contains("1 to 3600"),
        "{err}"
    );
}

#[test]
fn unknown_paths_get_404_json_and_interfaces_answer_once_refreshed() {
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let _d = Daemon::start(&net.router, &scratch, CONFIG);
    let answer = net.router.run("http_get 127.0.0.1:9750 /nope");
    assert!(answer.starts_with("404 {\"error\""), "{answer}");
    let answer = net.router.run("http_get 127.0.0.1:9750 /api/v1/interfaces");
    assert!(answer.starts_with("200 {\"interfaces\":["), "{answer}");
}

/// The core build keeps a `config quota` section (switching packages
/// needs no config edit), says it needs netmeter-full in the log, the API
/// and the CLI, and counts on.
#[cfg(not(feature = "quota"))]
#[test]
fn the_core_build_says_config_quota_needs_netmeter_full_and_counts_on() {
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let d = Daemon::start(
        &net.router,
        &scratch,
        &format!(
            "{CONFIG}config quota 'kids'\n\toption group 'kids'\n\toption limit '50G'\n\
             \toption action 'block'\n"
        ),
    );
    d.wait_for_log(
        "config quota 'kids' (line 6): this netmeter is the core build, which has no quotas",
        Duration::from_secs(10),
    );
    let before = d.refreshes(&net.router);
    d.wait_for_refreshes(&net.router, before + 2);
    let answer = net.router.run("http_get 127.0.0.1:9750 /api/v1/quotas");
    assert!(
        answer.starts_with("404 {\"error\"") && answer.contains("netmeter-full"),
        "{answer}"
    );
    for command in ["quotas", "quota"] {
        let out = netmeter::run(&net.router, &[command]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "netmeter {command}: this netmeter is the core build"
            )) && stderr.contains("install the netmeter-full package"),
            "{stderr}"
        );
    }
    let out = netmeter::run(
        &net.router,
        &["check", "--config", &d.config_path().display().to_string()],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.contains("'kids': this netmeter is the core build"),
        "{stdout}"
    );
}

/// The core build keeps a `config mqtt` section valid (switching packages
/// needs no config edit) and says what it needs; counting goes on.
#[cfg(not(feature = "mqtt"))]
#[test]
fn the_core_build_says_config_mqtt_needs_netmeter_full_and_counts_on() {
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let d = Daemon::start(
        &net.router,
        &scratch,
        &format!("{CONFIG}config mqtt 'ha'\n\toption host '127.0.0.1'\n"),
    );
    d.wait_for_log(
        "config mqtt 'ha' (line 6): this netmeter is the core build",
        Duration::from_secs(10),
    );
    assert!(
        d.log_text().contains("install the netmeter-full package"),
        "{}",
        d.log_text()
    );
    let before = d.refreshes(&net.router);
    d.wait_for_refreshes(&net.router, before + 2);
    assert!(status(&net).get("mqtt").is_none(), "{}", status(&net));
}
