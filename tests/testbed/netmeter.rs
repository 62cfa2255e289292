//! Running the real netmeter binary inside a test-bed namespace.

use super::Host;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The netmeter binary the tests run: `NETMETER_BINARY` when set (the VM
/// scenarios' static build, tests/vm/), else the one cargo built for
/// this test. Examples get no `CARGO_BIN_EXE_*`, so it is optional.
pub fn binary() -> PathBuf {
    match (std::env::var_os("NETMETER_BINARY"), BUILT) {
        (Some(path), _) => PathBuf::from(path),
        (None, Some(path)) => PathBuf::from(path),
        (None, None) => panic!("set NETMETER_BINARY to the netmeter binary to test"),
    }
}

const BUILT: Option<&str> = option_env!("CARGO_BIN_EXE_netmeter");

/// A scratch directory for one test's files, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netmeter-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes a file here and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `netmeter ARGS…` in `host`'s namespaces to completion.
pub fn run(host: &Host, args: &[&str]) -> Output {
    host.command(binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running netmeter")
}

/// Runs netmeter and parses its stdout as JSON, panicking with its stderr on failure.
pub fn json(host: &Host, args: &[&str]) -> serde_json::Value {
    let out = run(host, args);
    assert!(
        out.status.success(),
        "netmeter {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "netmeter {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A `netmeter daemon` in a namespace, stopped (SIGTERM) on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub config: PathBuf,
    /// IP:PORT of its API inside the namespace.
    pub api: String,
    /// Its `option token`, sent when the harness asks the API.
    pub token: Option<String>,
    host_pid: u32,
}

impl Daemon {
    /// Starts the daemon with this config and waits until its API answers.
    pub fn start(host: &Host, scratch: &Scratch, config_text: &str) -> Daemon {
        Self::start_as(host, scratch, config_text, true)
    }

    /// Starts it as root of the test's user namespace, or without any
    /// capability (`privileged` false), as an ordinary user would.
    pub fn start_as(host: &Host, scratch: &Scratch, config_text: &str, privileged: bool) -> Daemon {
        let cmd = if privileged {
            host.command(binary())
        } else {
            host.command_without_privileges(binary())
        };
        Self::launch(cmd, host, scratch, config_text)
    }

    /// Starts another build of netmeter (the benchmark's musl binary).
    pub fn start_binary(
        binary: &Path,
        host: &Host,
        scratch: &Scratch,
        config_text: &str,
    ) -> Daemon {
        Self::launch(host.command(binary), host, scratch, config_text)
    }

    /// Starts `cmd` (netmeter in `host`'s namespaces, perhaps with more
    /// set up before it runs) as the daemon.
    pub fn launch(mut cmd: Command, host: &Host, scratch: &Scratch, config_text: &str) -> Daemon {
        let config_text = &with_scratch_directories(config_text, scratch);
        let config = scratch.file("netmeter.conf", config_text);
        let log = scratch.0.join("daemon.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .args(["daemon", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            // One open file for both: two would overwrite each other.
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting netmeter daemon");
        // The tests' configs set `option listen` and `option token` at most once.
        let option = |name: &str| {
            config_text.lines().find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("option") && words.next() == Some(name))
                    .then(|| words.next().unwrap_or("").trim_matches('\'').to_string())
            })
        };
        let api = option("listen").unwrap_or_else(|| "127.0.0.1:9750".into());
        let d = Daemon {
            child,
            log,
            config,
            api,
            token: option("token"),
            host_pid: host.pid(),
        };
        d.wait_for_log("started:", Duration::from_secs(10));
        d.wait_for_refreshes(host, 1);
        d
    }

    /// Starts `cmd` as `netmeter daemon` with no `-c`: the built-in
    /// defaults (and /etc/config/netmeter, which the caller makes sure is
    /// absent).
    pub fn launch_without_config(mut cmd: Command, host: &Host, scratch: &Scratch) -> Daemon {
        let log = scratch.0.join("daemon.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting netmeter daemon");
        let d = Daemon {
            child,
            log,
            config: netmeter::config::DEFAULT_PATH.into(),
            api: "127.0.0.1:9750".into(),
            token: None,
            host_pid: host.pid(),
        };
        d.wait_for_log("started:", Duration::from_secs(10));
        d.wait_for_refreshes(host, 1);
        d
    }

    pub fn refreshes(&self, host: &Host) -> u64 {
        assert_eq!(host.pid(), self.host_pid, "ask the daemon's own host");
        let token = self.token.as_deref().unwrap_or("");
        let answer = host
            .call(&format!("http_get {} /api/v1/status {token}", self.api))
            .unwrap_or_default();
        let body = answer.split_once(' ').map_or("", |(_, b)| b);
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        v["refreshes"].as_u64().unwrap_or(0)
    }

    pub fn wait_for_refreshes(&self, host: &Host, target: u64) {
        let start = Instant::now();
        while self.refreshes(host) < target {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the daemon did not refresh:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log after `limit`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log_text().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "daemon never logged '{needle}':\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// Waits until the daemon has completed two refreshes after this call:
    /// the second began after every earlier event.
    pub fn wait_refreshed(&self, host: &Host) {
        self.wait_for_refreshes(host, self.refreshes(host) + 2);
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }
}

/// The config with the spool and database in `scratch` (unless it sets
/// them): a test daemon must never write the host's /etc/netmeter.
pub fn with_scratch_directories(config_text: &str, scratch: &Scratch) -> String {
    if config_text.contains("database_directory") {
        return config_text.to_owned();
    }
    let options = format!(
        "\toption database_directory '{}'\n\toption spool_directory '{}'\n",
        scratch.0.join("flash").display(),
        scratch.0.join("spool").display()
    );
    let mut out = String::new();
    let mut placed = false;
    for line in config_text.lines() {
        out.push_str(line);
        out.push('\n');
        if !placed && line.trim_start().starts_with("config netmeter") {
            out.push_str(&options);
            placed = true;
        }
    }
    if !placed {
        out = format!("config netmeter\n{options}{out}");
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
