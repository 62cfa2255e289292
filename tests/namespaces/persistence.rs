//! State that survives crashes and full disks, on the real kernel: the
//! daemon is killed mid-write again and again and must always come back
//! with valid state, totals that never go back and never count twice.
//!
//! The soak kills the daemon with SIGKILL during a commit 200 times
//! (`NETMETER_SOAK_TRIALS`, `NETMETER_SOAK_SEED`) and restarts it: state
//! always loads, totals never fall below the last confirmed commit, device
//! totals never exceed what the host sent, interface totals never exceed the
//! kernel's. Other tests fill the flash with a real ENOSPC (`/dev/full`
//! behind the file names), mount the database directory read-only in the
//! daemon's own mount namespace (the error must name read-only, not free
//! space), and damage a checkpoint.

use crate::testbed;

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::netmeter::{self, Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4};
use testbed::{LanHost, Network, Topology};

fn network() -> Network {
    Network::build(Topology {
        lan: vec![LanHost::dual("laptop")],
        bridge: Some("br-lan".into()),
    })
}

const CONFIG: &str =
    "config netmeter 'main'\n\toption refresh_interval '1'\n\tlist lan_interface 'br-lan'\n";

fn status(net: &Network) -> Value {
    let answer = net.router.run("http_get 127.0.0.1:9750 /api/v1/status");
    let body = answer.split_once(' ').map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("status is not JSON ({e}): {answer}"))
}

fn api(net: &Network, path: &str) -> Value {
    let answer = net.router.run(&format!("http_get 127.0.0.1:9750 {path}"));
    let (code, body) = answer.split_once(' ').unwrap_or(("", ""));
    assert_eq!(code, "200", "{path}: {answer}");
    serde_json::from_str(body).unwrap()
}

/// (device tx bytes, eth0-facing LAN interface rx bytes) from the API.
fn totals(net: &Network) -> (u64, u64) {
    let devices = api(net, "/api/v1/devices");
    let tx = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tx_bytes"].as_u64().unwrap())
        .sum();
    let interfaces = api(net, "/api/v1/interfaces");
    let br = interfaces["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "br-lan")
        .map_or(0, |i| i["rx_bytes"].as_u64().unwrap());
    (tx, br)
}

fn commits(net: &Network) -> u64 {
    status(net)["store"]["commits"].as_u64().unwrap_or(0)
}

/// Asks for a commit (SIGUSR1, what `netmeter commit` sends) and waits until it is done.
fn commit_and_wait(net: &Network, d: &Daemon) {
    let before = commits(net);
    d.signal(libc::SIGUSR1);
    let start = Instant::now();
    while commits(net) <= before {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no commit:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A small xorshift: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn files_matching(dir: &Path, pattern: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().contains(pattern))
                .count()
        })
        .unwrap_or(0)
}

/// `NETMETER_SOAK_TRIALS` (default 200) kill-and-restart rounds;
/// `NETMETER_SOAK_SEED` repeats a run.
#[test]
fn sigkill_during_spool_and_commit_writes_never_loses_saved_totals_nor_counts_twice() {
    let trials: u64 = std::env::var("NETMETER_SOAK_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed = std::env::var("NETMETER_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| (u64::from(std::process::id()) * 2_654_435_761) | 1);
    eprintln!("soak: {trials} trials, NETMETER_SOAK_SEED={seed}");
    let mut rng = Rng(seed);
    let net = network();
    let scratch = Scratch::new();
    let host = &net.lan[0];
    let sent_before = host.counters()["eth0"].tx_l3_bytes();
    // What the last confirmed commit had at least.
    let mut saved = (0u64, 0u64);
    let mut interrupted_writes = 0;
    for trial in 0..trials {
        let d = Daemon::start(&net.router, &scratch, CONFIG);
        let log = d.log_text();
        if trial > 0 {
            assert!(
                log.contains("loaded "),
                "trial {trial}: the restart loaded no state:\n{log}"
            );
        }
        // No valid file may ever have been judged bad.
        assert!(
            !log.contains("moved to") && !log.contains("a copy is in"),
            "trial {trial}: a file was refused:\n{log}"
        );
        let loaded = totals(&net);
        let kernel_br_rx = net.router.counters()["br-lan"].rx_bytes;
        assert!(
            loaded.0 >= saved.0 && loaded.1 >= saved.1,
            "trial {trial}: totals went back from the last commit {saved:?} to {loaded:?}:\n{log}"
        );
        let sent = host.counters()["eth0"].tx_l3_bytes() - sent_before;
        assert!(
            loaded.0 <= sent,
            "trial {trial}: the device is said to have sent {} bytes, it sent {sent}: counted twice",
            loaded.0
        );
        // The kernel's interface counters continue within a boot, so the
        // interface total must be exactly the kernel's however the
        // restarts went (read after netmeter's, so it can only be higher).
        assert!(
            loaded.1 <= kernel_br_rx,
            "trial {trial}: br-lan rx {} over the kernel's {kernel_br_rx}: counted twice",
            loaded.1
        );

        host.run(&format!("udp_upload {WAN_HOST_V4} {PORT} 20 1000"));
        // A commit refreshes first, so it holds at least what the API
        // shows now (and the burst).
        let before_commit = totals(&net);
        commit_and_wait(&net, &d);
        saved = before_commit;

        host.run(&format!("udp_upload {WAN_HOST_V4} {PORT} 20 700"));
        // Kill during the next commit (a journal append, or a checkpoint)
        // and the spool copy after it, or just after.
        d.signal(libc::SIGUSR1);
        std::thread::sleep(Duration::from_micros(rng.below(4000)));
        d.signal(libc::SIGKILL);
        let mut d = d;
        let _ = d.child.wait();
        interrupted_writes += files_matching(&scratch.0.join("spool"), ".tmp")
            + files_matching(&scratch.0.join("flash"), ".tmp");
    }
    eprintln!("soak: {interrupted_writes} kill(s) left a half-written temporary file");
    // The last restart: interface totals equal the kernel's exactly.
    // Only stray neighbour discovery moves br-lan now.
    let d = Daemon::start(&net.router, &scratch, CONFIG);
    d.wait_refreshed(&net.router);
    let (_, br) = totals(&net);
    let kernel = net.router.counters()["br-lan"].rx_bytes;
    assert!(
        br <= kernel && kernel - br <= 4096,
        "br-lan rx {br}, the kernel's {kernel}:\n{}",
        d.log_text()
    );
}

#[test]
fn a_full_flash_is_reported_and_counting_goes_on_then_recovers() {
    let net = network();
    let scratch = Scratch::new();
    let flash = scratch.0.join("flash");
    std::fs::create_dir_all(&flash).unwrap();
    // Every write to the database directory hits a real ENOSPC.
    for name in ["netmeter.state.tmp", "netmeter.journal"] {
        std::os::unix::fs::symlink("/dev/full", flash.join(name)).unwrap();
    }
    let d = Daemon::start(&net.router, &scratch, CONFIG);
    let cfg = d.config_path().to_str().unwrap().to_owned();
    let out = netmeter::run(&net.router, &["commit", "-c", &cfg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No space left") && err.contains("counting goes on"),
        "{err}"
    );
    let store = &status(&net)["store"];
    assert!(
        store["last_commit_error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left")),
        "{store}"
    );
    let check = netmeter::run(&net.router, &["check", "-c", &cfg]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{text}");
    assert!(text.contains("No space left"), "{text}");

    // Still counting.
    let (tx0, _) = totals(&net);
    net.lan[0].run(&format!("udp_upload {WAN_HOST_V4} {PORT} 30 1000"));
    d.wait_refreshed(&net.router);
    let (tx1, _) = totals(&net);
    assert!(tx1 >= tx0 + 30 * 1000, "{tx0} -> {tx1}");

    // Space again: the next commit works and check is content.
    for name in ["netmeter.state.tmp", "netmeter.journal"] {
        // A failed save removes its temporary file itself.
        match std::fs::remove_file(flash.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{name}: {e}"),
            _ => {}
        }
    }
    let out = netmeter::run(&net.router, &["commit", "-c", &cfg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(flash.join("netmeter.state").exists());
    assert!(status(&net)["store"]["last_commit_error"].is_null());
}

/// Before `cmd` runs: a mount namespace of its own (inside the test's user
/// namespace) with a read-only tmpfs over `dir`. Only that process sees
/// it; nothing of the host's is mounted or remounted.
fn on_read_only_tmpfs(cmd: &mut std::process::Command, dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: only async-signal-safe syscalls between fork and exec, on
    // strings made before the fork. Runs after the test bed's own hook
    // has joined the host's user and network namespaces.
    unsafe {
        cmd.pre_exec(move || {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            let none = std::ptr::null();
            check(libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"tmpfs".as_ptr(),
                dir.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                std::ptr::null(),
            ))
        });
    }
}

#[test]
fn a_read_only_database_directory_is_reported_as_read_only_not_as_full() {
    let net = network();
    let scratch = Scratch::new();
    let flash = scratch.0.join("flash");
    std::fs::create_dir_all(&flash).unwrap();
    let mut cmd = net.router.command(netmeter::binary());
    on_read_only_tmpfs(&mut cmd, &flash);
    let d = Daemon::launch(cmd, &net.router, &scratch, CONFIG);
    let cfg = d.config_path().to_str().unwrap().to_owned();
    let out = netmeter::run(&net.router, &["commit", "-c", &cfg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Read-only file system")
            && err.contains("the filesystem is read-only: remount it read-write")
            && err.contains("option database_directory")
            && err.contains("counting goes on"),
        "{err}"
    );
    assert!(!err.contains("free space"), "{err}");
    let check = netmeter::run(&net.router, &["check", "-c", &cfg]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{text}");
    let storage = text
        .lines()
        .find(|l| l.contains("storage"))
        .unwrap_or_else(|| panic!("no storage line:\n{text}"));
    assert!(
        storage.starts_with("WARN")
            && storage.contains("read-only")
            && !storage.contains("free space"),
        "{storage}"
    );
    assert!(
        d.log_text().contains("Read-only file system"),
        "{}",
        d.log_text()
    );
    // The host's view of the directory is untouched and writable.
    std::fs::write(flash.join("probe"), b"").unwrap();
}

#[test]
fn a_damaged_checkpoint_is_moved_aside_and_the_previous_generation_with_its_journal_is_used() {
    let net = network();
    let scratch = Scratch::new();
    let flash = scratch.0.join("flash");
    let host = &net.lan[0];
    let mut expected = 0;
    {
        let d = Daemon::start(&net.router, &scratch, CONFIG);
        // Commits until the journal outgrew the first checkpoint and a
        // second was written: then there is a previous generation.
        let mut rounds = 0;
        while status(&net)["store"]["checkpoints"].as_u64() < Some(2) {
            rounds += 1;
            assert!(rounds < 200, "no second checkpoint:\n{}", d.log_text());
            host.run(&format!("udp_upload {WAN_HOST_V4} {PORT} 5 1000"));
            d.wait_for_refreshes(&net.router, d.refreshes(&net.router) + 1);
            expected = totals(&net).0;
            commit_and_wait(&net, &d);
        }
        // Stopping commits too; then the spool goes, as at a reboot.
    }
    std::fs::remove_dir_all(scratch.0.join("spool")).unwrap();
    let state = flash.join("netmeter.state");
    let mut bytes = std::fs::read(&state).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&state, &bytes).unwrap();

    let d = Daemon::start(&net.router, &scratch, CONFIG);
    let log = d.log_text();
    assert!(
        log.contains("netmeter.state: damaged (checksum mismatch") && log.contains("moved to"),
        "{log}"
    );
    assert_eq!(files_matching(&flash, "netmeter.state.bad-"), 1, "{log}");
    let (tx, _) = totals(&net);
    assert!(
        tx >= expected,
        "the previous generation and its journal give {tx}, {expected} was committed:\n{log}"
    );
}

#[test]
fn history_survives_a_restart_and_commit_says_where_it_wrote() {
    let net = network();
    let scratch = Scratch::new();
    let host = &net.lan[0];
    let d = Daemon::start(&net.router, &scratch, CONFIG);
    host.run(&format!("udp_upload {WAN_HOST_V4} {PORT} 50 1000"));
    d.wait_refreshed(&net.router);
    let cfg = d.config_path().to_str().unwrap().to_owned();
    let out = netmeter::run(&net.router, &["commit", "-c", &cfg]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("committed to"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let day = |net: &Network| -> u64 {
        let h = api(net, "/api/v1/history?interface=br-lan&period=hour");
        h["series"][0]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["rx_bytes"].as_u64().unwrap())
            .sum()
    };
    let before = day(&net);
    assert!(before >= 50 * 1000, "{before}");
    // No argument: the WAN interfaces, then the busiest devices.
    let out = netmeter::run(&net.router, &["history", "--hourly", "-c", &cfg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first_series = text.lines().next().unwrap_or("");
    assert!(first_series.starts_with("wan "), "{text}");
    let mac = host.mac();
    assert!(text.contains(&mac), "{mac} missing: {text}");
    drop(d);
    let d = Daemon::start(&net.router, &scratch, CONFIG);
    let after = day(&net);
    assert!(after >= before, "history went from {before} to {after}");
    // Without a daemon the CLI reads the saved state.
    drop(d);
    let out = netmeter::run(&net.router, &["history", "br-lan", "--hourly", "-c", &cfg]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("showing the state saved in"), "{err}");
    assert!(text.starts_with("br-lan  hourly traffic"), "{text}");
}

/// br-lan's received bytes from the API (the LAN host's uploads).
fn br_lan_rx(net: &Network) -> u64 {
    api(net, "/api/v1/interfaces")["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "br-lan")
        .map_or(0, |i| i["rx_bytes"].as_u64().unwrap())
}

#[test]
fn an_ordinary_user_without_a_config_keeps_the_totals_in_their_state_directory_across_a_restart() {
    for path in ["/etc/config/netmeter", "/etc/openwrt_release"] {
        assert!(
            !Path::new(path).exists(),
            "{path} exists on this machine: this test starts the daemon without -c and needs \
             the defaults of a machine that is not OpenWrt and has no netmeter config"
        );
    }
    let net = network();
    let scratch = Scratch::new();
    let home = scratch.0.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let start = || {
        let mut cmd = net.router.command_as_user(netmeter::binary(), 1000);
        cmd.env("HOME", &home).env_remove("XDG_STATE_HOME");
        Daemon::launch_without_config(cmd, &net.router, &scratch)
    };
    let d = start();
    net.lan[0].run(&format!("udp_upload {WAN_HOST_V4} {PORT} 50 1000"));
    // SIGTERM (the drop): a last read of the counters, then the commit.
    let log_file = d.log.clone();
    drop(d);
    let log = std::fs::read_to_string(&log_file).unwrap();
    let state = home.join(".local/state/netmeter");
    assert!(
        state.join("netmeter.state").is_file(),
        "no state file saved in {} (it holds {:?}):\n{log}",
        state.display(),
        std::fs::read_dir(&state).map(|d| d
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect::<Vec<_>>())
    );
    assert!(
        log.contains(&state.display().to_string()),
        "the log does not name {}:\n{log}",
        state.display()
    );
    // Per-device accounting is off for want of privilege, said once with the fix.
    let said = log.lines().filter(|l| l.contains("CAP_NET_ADMIN")).count();
    assert_eq!(
        said, 1,
        "per-device accounting off should be said once:\n{log}"
    );

    let d = start();
    let after = br_lan_rx(&net);
    assert!(
        after >= 50 * 1000,
        "the totals did not continue: br-lan rx {after} after the restart:\n{}",
        d.log_text()
    );
}
