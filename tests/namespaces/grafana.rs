//! Prometheus and Grafana against a real Prometheus (Debian's
//! `prometheus` and `promtool`): `promtool check metrics` on what `/metrics`
//! sends, and, in the full build, every panel query of
//! `dashboards/netmeter.json` answered with data by a Prometheus that
//! scrapes a daemon in the test bed. The WAN host plays the routers above:
//! a Prometheus exporter with a wifi station, and a DrayTek console for the
//! line values. Prometheus runs in the router's namespace on 127.0.0.1.
//!
//! Without prometheus/promtool the tests say so loudly and skip; with
//! CI=true they fail.

use crate::testbed;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testbed::netmeter::{Daemon, Scratch};
use testbed::topology::{LanHost, PORT, Topology, WAN_HOST_V4};
use testbed::{Host, Network};

const API: &str = "127.0.0.1:9750";

/// The program, or None after saying loudly why the test cannot run.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!(
            "{name} is not installed (apt-get install prometheus): the Prometheus tests need it"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true: {msg}");
        }
        let bar = "!".repeat(72);
        let _ = writeln!(std::io::stderr(), "\n{bar}\n!!! SKIPPED: {msg}\n{bar}\n");
    }
    found
}

fn daemon_config(extra: &str) -> String {
    format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\toption listen '{API}'\n\
         \tlist lan_interface 'lan0'\n{extra}"
    )
}

/// What `/metrics` sends, byte for byte.
fn metrics_text(router: &Host, scratch: &Scratch) -> String {
    let file = scratch.0.join("metrics.txt");
    let status = router.run(&format!("http_save {API} /metrics {}", file.display()));
    assert_eq!(status, "200");
    std::fs::read_to_string(&file).unwrap()
}

/// `promtool check metrics` on `text`: its verdict, with what it said.
fn promtool_check(promtool: &Path, text: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

#[test]
fn promtool_check_metrics_passes_on_what_metrics_sends() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    // The checker is real: a counter without _total is refused.
    let (ok, said) = promtool_check(
        &promtool,
        "# HELP bad_bytes Bytes.\n# TYPE bad_bytes counter\nbad_bytes 1\n",
    );
    assert!(!ok, "promtool took a counter without _total: {said}");

    let net = Network::build(Topology {
        lan: vec![LanHost::dual("laptop")],
        bridge: None,
    });
    let scratch = Scratch::new();
    // A quota, so its families are checked too.
    let d = Daemon::start(
        &net.router,
        &scratch,
        &daemon_config("config quota 'everyone'\n\toption limit '1M'\n"),
    );
    net.lan[0].run(&format!("tcp_download {WAN_HOST_V4} {PORT} 200000"));
    d.wait_refreshed(&net.router);
    let text = metrics_text(&net.router, &scratch);
    // netmeter-full's: the core keeps the section and has no quotas.
    assert_eq!(
        text.contains("netmeter_quota_used_bytes{quota=\"everyone\"}"),
        cfg!(feature = "quota"),
        "{text}"
    );
    assert!(
        text.contains("netmeter_device_receive_bytes_total{"),
        "a device in /metrics:\n{text}"
    );
    let (ok, said) = promtool_check(&promtool, &text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
}

/// The dashboard against Prometheus, in the full build: its upstream rows
/// need upstream routers, its caps row quotas.
#[cfg(all(feature = "upstream", feature = "quota"))]
mod dashboard {
    use super::*;
    use serde_json::Value;
    use std::process::Child;
    use std::time::{Duration, Instant};

    const PROMETHEUS: &str = "127.0.0.1:9090";

    /// Prometheus in `host`'s namespace, scraping netmeter every second;
    /// killed on drop.
    struct Prometheus(Child);

    impl Prometheus {
        fn start(host: &Host, program: &Path, scratch: &Scratch) -> Prometheus {
            let config = scratch.file(
                "prometheus.yml",
                &format!(
                    "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: netmeter\n    static_configs:\n      - targets: ['{API}']\n"
                ),
            );
            let log = std::fs::File::create(scratch.0.join("prometheus.log")).unwrap();
            let child = host
                .command(program)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    scratch.0.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address={PROMETHEUS}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let p = Prometheus(child);
            let start = Instant::now();
            while !host
                .call(&format!("http_get {PROMETHEUS} /-/ready"))
                .is_ok_and(|a| a.starts_with("200"))
            {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "Prometheus did not get ready:\n{}",
                    std::fs::read_to_string(scratch.0.join("prometheus.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(250));
            }
            p
        }
    }

    impl Drop for Prometheus {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The query with Grafana's variables as an import with every variable on
    /// "All" sends them: `.*` for the template variables, and short windows
    /// for a test that has run for a minute, not hours.
    fn as_grafana_sends(expr: &str) -> String {
        expr.replace("$__rate_interval", "30s")
            .replace("$__interval", "1m")
            .replace("$__range", "1m")
            .replace("$instance", ".*")
            .replace("$interface", ".*")
            .replace("$device", ".*")
    }

    /// Percent-encodes a query string value.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// The result of an instant query (an error answer fails the test).
    fn query(host: &Host, expr: &str) -> Vec<Value> {
        let answer = host.run(&format!(
            "http_get {PROMETHEUS} /api/v1/query?query={}",
            encode(expr)
        ));
        let (status, body) = answer.split_once(' ').unwrap_or((&answer, ""));
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        assert_eq!(
            (status, &v["status"]),
            ("200", &Value::from("success")),
            "{expr}: {answer}"
        );
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn every_panel_of_the_grafana_dashboard_gets_data_from_a_real_prometheus() {
        const EXPORTER: u16 = 9100;
        const DRAYTEK: u16 = 2323;
        let Some(prometheus) = tool("prometheus") else {
            return;
        };
        let dashboard: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/netmeter.json"),
            )
            .unwrap(),
        )
        .expect("dashboards/netmeter.json is JSON");
        let panels: Vec<(String, String)> = dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] != "row")
            .flat_map(|p| {
                let title = p["title"].as_str().unwrap().to_string();
                p["targets"]
                    .as_array()
                    .unwrap_or_else(|| panic!("panel {title} has no targets"))
                    .iter()
                    .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
            })
            .collect();
        assert!(panels.len() >= 10, "{panels:?}");

        let net = Network::build(Topology {
            lan: vec![LanHost::dual("laptop"), LanHost::dual("phone")],
            bridge: None,
        });
        net.wan.run(&format!("exporter {EXPORTER} stations"));
        net.wan.run(&format!("draytek {DRAYTEK}"));
        let scratch = Scratch::new();
        let d = Daemon::start(
            &net.router,
            &scratch,
            &daemon_config(&format!(
                "config upstream 'isp'\n\toption type 'prometheus'\n\
                 \toption url 'http://{WAN_HOST_V4}:{EXPORTER}/metrics'\n\toption device 'isp0'\n\
                 \toption interval '5'\n\toption timeout '2'\n\
                 config upstream 'dsl'\n\toption type 'draytek'\n\toption host '{WAN_HOST_V4}'\n\
                 \toption port '{DRAYTEK}'\n\toption password 'vigor-password'\n\
                 \toption interval '5'\n\toption timeout '3'\n\
                 config quota 'everyone'\n\toption limit '1M'\n\toption period 'day'\n"
            )),
        );
        let _prometheus = Prometheus::start(&net.router, &prometheus, &scratch);
        for host in &net.lan {
            host.run(&format!("tcp_download {WAN_HOST_V4} {PORT} 300000"));
            host.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 100000"));
        }

        // Every panel's every query has data within a minute (rates need two
        // scrapes; the upstream routers are read every 5 s).
        let start = Instant::now();
        let mut waiting: Vec<&(String, String)> = panels.iter().collect();
        while !waiting.is_empty() {
            waiting.retain(|(_, expr)| query(&net.router, &as_grafana_sends(expr)).is_empty());
            if waiting.is_empty() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "panels without data after 60 s: {waiting:#?}\n/metrics:\n{}\ndaemon:\n{}",
                metrics_text(&net.router, &scratch),
                d.log_text()
            );
            std::thread::sleep(Duration::from_secs(1));
        }

        // And the data is the daemon's: the WAN panel's download is the WAN.
        let wan = query(
            &net.router,
            "netmeter_interface_receive_bytes_total * on(instance, interface) group_left netmeter_interface_wan",
        );
        assert_eq!(wan.len(), 1, "{wan:?}");
        assert_eq!(wan[0]["metric"]["interface"], "wan", "{wan:?}");
        let line = query(
            &net.router,
            "netmeter_upstream_line{name=\"snr_margin_db\"}",
        );
        assert!(
            line.iter().all(|s| s["metric"]["source"] == "dsl") && !line.is_empty(),
            "{line:?}"
        );
    }
}
