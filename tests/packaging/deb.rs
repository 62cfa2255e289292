//! The Debian package (`debian-package/build-deb`) installed with the real
//! `dpkg` into a throwaway root (`dpkg --root=R --force-not-root
//! --force-script-chrootless`, so it runs as any user and the maintainer
//! scripts run on the host with `DPKG_ROOT=R`): files, modes and the
//! conffile; an upgrade to release 2 keeping an edited config; remove
//! keeping config and history, purge deleting both; and the unit through
//! `systemd-analyze verify`. A fake `systemctl` first on PATH records any
//! call: under `dpkg --root` the scripts must make none.
//!
//! Without `dpkg`/`dpkg-deb` (or `systemd-analyze`) each test says so
//! loudly and passes; with `CI=true` it fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::package::{root, scratch};

const EPOCH: &str = "1700000000";
const CONF: &str = "etc/netmeter/netmeter.conf";
const UNIT: &str = "usr/lib/systemd/system/netmeter.service";
const R2_LINE: &str = "# release 2's default";
const EDITED: &str = "# edited by the admin\n";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `name` runs (`--version`); else a loud notice, a failure with CI=true.
fn have(name: &str, test: &str) -> bool {
    if Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    let message = format!("{test}: no {name} on PATH (Debian: apt-get install dpkg systemd)");
    assert!(!in_ci(), "CI=true: {message}");
    eprintln!("\n!!! SKIPPED !!! {message}\n");
    false
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Release 1 (the checkout) and release 2 (PKG_RELEASE 2, a changed
/// default config) of the amd64 package, built once from this build's
/// binary.
struct Debs {
    r1: PathBuf,
    r2: PathBuf,
    /// A directory with a `systemctl` that records its calls in `calls`.
    fake_bin: PathBuf,
    calls: PathBuf,
}

fn debs() -> &'static Debs {
    static DEBS: OnceLock<Debs> = OnceLock::new();
    DEBS.get_or_init(|| {
        let dir = scratch("debs");
        let tree = dir.join("tree");
        let mut files: Vec<String> = [
            "Cargo.toml",
            "cross/variants.sh",
            "openwrt-package/Makefile",
            "openwrt-package/pack.sh",
            "debian-package/build-deb",
        ]
        .map(String::from)
        .to_vec();
        for entry in std::fs::read_dir(root().join("debian-package/files")).unwrap() {
            let name = entry.unwrap().file_name();
            files.push(format!("debian-package/files/{}", name.to_str().unwrap()));
        }
        for file in &files {
            let to = tree.join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root().join(file), to).unwrap();
        }
        let makefile = tree.join("openwrt-package/Makefile");
        let text = read_text(&makefile).replace("PKG_RELEASE:=1", "PKG_RELEASE:=2");
        std::fs::write(&makefile, text).unwrap();
        let config = tree.join("debian-package/files/netmeter.conf");
        std::fs::write(&config, read_text(&config) + R2_LINE + "\n").unwrap();

        let mut built = Vec::new();
        for (release, base) in [("r1", root().to_path_buf()), ("r2", tree)] {
            let out = run(Command::new(base.join("debian-package/build-deb"))
                .arg("--binary")
                .arg(env!("CARGO_BIN_EXE_netmeter"))
                .arg("--out")
                .arg(dir.join(release))
                .arg("amd64")
                .env("SOURCE_DATE_EPOCH", EPOCH)
                // The debug binary is 30 MB: xz twice would cost 30 s.
                .env("NETMETER_DEB_COMPRESSION", "none"));
            let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
            assert!(path.is_file(), "build-deb printed {}", path.display());
            built.push(path);
        }
        assert_eq!(
            built[0].file_name().unwrap(),
            "netmeter_0.1.0-1_amd64.deb",
            "the name Debian gives it"
        );

        let fake_bin = dir.join("fake-bin");
        let calls = dir.join("systemctl-calls");
        std::fs::create_dir_all(&fake_bin).unwrap();
        let systemctl = fake_bin.join("systemctl");
        std::fs::write(
            &systemctl,
            format!("#!/bin/sh\necho \"$*\" >>'{}'\nexit 1\n", calls.display()),
        )
        .unwrap();
        std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r2 = built.pop().unwrap();
        Debs {
            r1: built.pop().unwrap(),
            r2,
            fake_bin,
            calls,
        }
    })
}

/// An empty root with dpkg's database.
fn new_root(name: &str) -> PathBuf {
    let r = scratch(name);
    for sub in ["var/lib/dpkg/updates", "var/lib/dpkg/info"] {
        std::fs::create_dir_all(r.join(sub)).unwrap();
    }
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    r
}

/// `dpkg --root=R … ARGS`, as any user, the scripts on the host with
/// DPKG_ROOT=R and the fake systemctl first on PATH.
fn dpkg(r: &Path, args: &[&str], deb: Option<&Path>) -> Output {
    let debs = debs();
    // dpkg wants ldconfig and start-stop-daemon on PATH, in /usr/sbin
    // and /sbin, which an ordinary user's PATH may lack.
    let path = format!(
        "{}:{}:/usr/sbin:/sbin",
        debs.fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", r.display()))
        .args([
            "--force-not-root",
            "--force-script-chrootless",
            "--log=/dev/null",
        ])
        .args(args)
        .env("PATH", path);
    if let Some(deb) = deb {
        cmd.arg(deb);
    }
    run(&mut cmd)
}

fn status(r: &Path) -> String {
    let out = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", r.join("var/lib/dpkg").display()))
        .args(["-W", "-f=${Version} ${db:Status-Abbrev}", "netmeter"]));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every path under R outside dpkg's database, sorted, relative.
fn files_in(r: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            if rel == "var/lib/dpkg" {
                continue;
            }
            out.push(rel);
            if path.is_dir() && !path.is_symlink() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(r, r, &mut out);
    out.sort();
    out
}

fn no_systemctl_calls() {
    let calls = &debs().calls;
    assert!(
        !calls.exists(),
        "a maintainer script called systemctl under dpkg --root: {}",
        read_text(calls)
    );
}

#[test]
fn the_deb_installs_the_binary_the_unit_and_the_config_as_a_conffile() {
    let test = "the_deb_installs_the_binary_the_unit_and_the_config_as_a_conffile";
    if !have("dpkg", test) || !have("dpkg-deb", test) {
        return;
    }
    let r = new_root("deb-install");
    dpkg(&r, &["-i"], Some(&debs().r1));
    assert_eq!(status(&r), "0.1.0-1 ii");
    assert_eq!(
        files_in(&r),
        [
            "etc",
            "etc/netmeter",
            CONF,
            "usr",
            "usr/bin",
            "usr/bin/netmeter",
            "usr/lib",
            "usr/lib/systemd",
            "usr/lib/systemd/system",
            UNIT,
            "var",
            "var/lib",
        ],
        "the package's files and nothing else"
    );
    assert_eq!(mode(&r.join("usr/bin/netmeter")), 0o755);
    assert_eq!(mode(&r.join(UNIT)), 0o644);
    assert_eq!(mode(&r.join(CONF)), 0o644);
    assert_eq!(
        read_text(&r.join(CONF)),
        read_text(&root().join("debian-package/files/netmeter.conf"))
    );
    let conffiles = read_text(&r.join("var/lib/dpkg/info/netmeter.conffiles"));
    assert_eq!(conffiles, "/etc/netmeter/netmeter.conf\n");
    for script in ["postinst", "prerm", "postrm"] {
        assert_eq!(
            mode(&r.join(format!("var/lib/dpkg/info/netmeter.{script}"))),
            0o755,
            "{script}"
        );
    }
    no_systemctl_calls();

    // The installed binary reads the installed config.
    run(Command::new(r.join("usr/bin/netmeter")).arg("version"));
    let out = Command::new(r.join("usr/bin/netmeter"))
        .args(["check", "--json", "-c"])
        .arg(r.join(CONF))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/var/lib/netmeter") && text.contains("/run/netmeter"),
        "check names the package's directories: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_upgrade_keeps_the_edited_config_remove_keeps_it_and_the_history_and_purge_deletes_both() {
    let test =
        "an_upgrade_keeps_the_edited_config_remove_keeps_it_and_the_history_and_purge_deletes_both";
    if !have("dpkg", test) || !have("dpkg-deb", test) {
        return;
    }
    let debs = debs();
    let r = new_root("deb-upgrade");
    dpkg(&r, &["-i"], Some(&debs.r1));
    let edited = read_text(&r.join(CONF)) + EDITED;
    std::fs::write(r.join(CONF), &edited).unwrap();

    dpkg(&r, &["--force-confold", "-i"], Some(&debs.r2));
    assert_eq!(status(&r), "0.1.0-2 ii");
    assert_eq!(read_text(&r.join(CONF)), edited, "the admin's edit stays");
    let dist = r.join(format!("{CONF}.dpkg-dist"));
    assert!(
        read_text(&dist).ends_with(&format!("{R2_LINE}\n")),
        "release 2's default beside it"
    );
    std::fs::remove_file(&dist).unwrap();

    // The history as systemd's DynamicUser keeps it.
    let private = r.join("var/lib/private/netmeter");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(private.join("state"), "history").unwrap();
    std::os::unix::fs::symlink("private/netmeter", r.join("var/lib/netmeter")).unwrap();

    dpkg(&r, &["-r", "netmeter"], None);
    assert_eq!(status(&r), "0.1.0-2 rc");
    assert!(!r.join("usr/bin/netmeter").exists(), "the binary is gone");
    assert!(!r.join(UNIT).exists(), "the unit is gone");
    assert_eq!(read_text(&r.join(CONF)), edited, "the config stays");
    assert_eq!(read_text(&r.join("var/lib/netmeter/state")), "history");

    dpkg(&r, &["-P", "netmeter"], None);
    assert!(!r.join(CONF).exists(), "purge deletes the config");
    assert!(!r.join("etc/netmeter").exists());
    assert!(
        !private.exists() && !r.join("var/lib/netmeter").is_symlink(),
        "purge deletes the history inside the root"
    );
    no_systemctl_calls();
}

#[test]
fn the_unit_passes_systemd_analyze_verify_and_runs_the_daemon_as_the_issue_asks() {
    let test = "the_unit_passes_systemd_analyze_verify_and_runs_the_daemon_as_the_issue_asks";
    let unit = read_text(&root().join("debian-package/files/netmeter.service"));
    for line in [
        "Type=simple",
        "ExecStart=/usr/bin/netmeter daemon -c /etc/netmeter/netmeter.conf",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=netmeter",
        "RuntimeDirectory=netmeter",
        "RuntimeDirectoryPreserve=restart",
        "AmbientCapabilities=CAP_NET_ADMIN",
        "CapabilityBoundingSet=CAP_NET_ADMIN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    // The config the unit names is where the package puts it, with the
    // unit's directories.
    let conf = read_text(&root().join("debian-package/files/netmeter.conf"));
    assert!(conf.contains("\toption database_directory '/var/lib/netmeter'\n"));
    assert!(conf.contains("\toption spool_directory '/run/netmeter'\n"));

    if !have("systemd-analyze", test) {
        return;
    }
    // verify wants ExecStart's binary to exist: this build's, by its path.
    let dir = scratch("deb-unit");
    let copy = dir.join("netmeter.service");
    let exe = env!("CARGO_BIN_EXE_netmeter");
    std::fs::write(
        &copy,
        unit.replace("ExecStart=/usr/bin/netmeter ", &format!("ExecStart={exe} ")),
    )
    .unwrap();
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warns:\n{stderr}"
    );
}

#[test]
fn the_maintainer_scripts_pass_sh_n_and_shellcheck() {
    let files = root().join("debian-package/files");
    let shellcheck = Command::new("shellcheck").arg("--version").output().is_ok();
    for script in ["postinst", "prerm", "postrm"] {
        let path = files.join(script);
        assert!(read_text(&path).starts_with("#!/bin/sh\n"), "{script}");
        run(Command::new("sh").arg("-n").arg(&path));
        if shellcheck {
            run(Command::new("shellcheck")
                .args(["--shell=sh", "--severity=style"])
                .arg(&path));
        }
    }
}
