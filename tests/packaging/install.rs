//! The packages installed as a router installs them, with the real package
//! managers, into a throwaway root directory: apk-tools 3 (`apk add --root R
//! --initdb`, OpenWrt 25.x) and OpenWrt's opkg (`opkg --offline-root R
//! install`, 24.10), both variants. Upgrade to a newer build (release 2, a
//! changed default config), switch between `netmeter` and `netmeter-full`,
//! remove; and a signed feed from `build-feed` that installs with its key
//! and no `--allow-untrusted`.
//!
//! The tools: `NETMETER_APK` and `NETMETER_OPKG` (what
//! `../shared/tools/build-package-managers DIR` prints), else `apk` and
//! `opkg` on PATH. Missing, each test says so loudly and passes; with
//! `CI=true` it fails. The maintainer scripts run as OpenWrt's image
//! builder runs them (`IPKG_INSTROOT=R`, apk with `--force-no-chroot
//! --preserve-env`, opkg with `--force-postinstall`) against a stand-in
//! `R/lib/functions.sh` that records each call and fails unless
//! `IPKG_INSTROOT` is the root: a script that reached for the host's
//! `/lib/functions.sh` would record nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::package::{Variant, root, scratch, variant_binary};

pub(crate) const ARCH: &str = "x86_64";
pub(crate) const EPOCH: &str = "1700000000";
/// The line release 2's default config ends with (so it differs from
/// release 1's).
const R2_LINE: &str = "# release 2's default";
const EDITED: &str = "# edited by the admin\n";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The tool from `env` or PATH, if it is the one wanted (`--version`
/// output starting with `version_prefix`); else None after a loud notice
/// (a failure with CI=true).
fn tool(env: &str, name: &str, version_prefix: &str, test: &str) -> Option<PathBuf> {
    let candidate = std::env::var_os(env).map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    let why = match &candidate {
        None => format!("no {name}: set {env} or put it on PATH"),
        Some(path) => match Command::new(path).arg("--version").output() {
            Ok(out) if String::from_utf8_lossy(&out.stdout).starts_with(version_prefix) => {
                return candidate;
            }
            Ok(out) => format!(
                "{} is not {version_prefix}…: {}",
                path.display(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
            Err(e) => format!("{}: {e}", path.display()),
        },
    };
    let message = format!(
        "{test}: {why}. Build the real tools with ../shared/tools/build-package-managers DIR \
         and set {env}=DIR/bin/{name} (.ci/run does)"
    );
    assert!(!in_ci(), "CI=true: {message}");
    eprintln!("\n!!! SKIPPED !!! {message}\n");
    None
}

pub(crate) fn apk_tool(test: &str) -> Option<PathBuf> {
    tool("NETMETER_APK", "apk", "apk-tools 3.", test)
}

/// opkg-lede prints no version line; `--version` is not an option it has,
/// so any output from a file named opkg does. It is checked by running it.
pub(crate) fn opkg_tool(test: &str) -> Option<PathBuf> {
    tool("NETMETER_OPKG", "opkg", "", test)
}

pub(crate) fn run(cmd: &mut Command) -> Output {
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

pub(crate) fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ------------------------------------------------------------ the packages

/// The packages of both variants, release 1 (the checkout's files) in
/// `r1/` and release 2 (PKG_RELEASE 2, a changed default config) in `r2/`,
/// each holding `<arch>/<name>-<version>.apk` and `<name>_<version>_<arch>.ipk`;
/// built once for every test here.
pub(crate) struct Packages {
    pub(crate) dir: PathBuf,
}

impl Packages {
    pub(crate) fn get(apk: &Path) -> &'static Packages {
        static PACKAGES: OnceLock<Packages> = OnceLock::new();
        PACKAGES.get_or_init(|| {
            let dir = scratch("install-packages");
            // Release 2: a copy of what the packers read, changed.
            let tree = dir.join("tree");
            for sub in ["openwrt-package/files", "cross"] {
                std::fs::create_dir_all(tree.join(sub)).unwrap();
            }
            let mut files: Vec<String> = [
                "Cargo.toml",
                "cross/variants.sh",
                "openwrt-package/Makefile",
                "openwrt-package/pack.sh",
                "openwrt-package/build-apk",
                "openwrt-package/build-ipk",
            ]
            .map(String::from)
            .to_vec();
            for entry in std::fs::read_dir(root().join("openwrt-package/files")).unwrap() {
                let name = entry.unwrap().file_name();
                files.push(format!("openwrt-package/files/{}", name.to_str().unwrap()));
            }
            for file in &files {
                std::fs::copy(root().join(file), tree.join(file)).unwrap();
            }
            let makefile = tree.join("openwrt-package/Makefile");
            let text = read_text(&makefile).replace("PKG_RELEASE:=1", "PKG_RELEASE:=2");
            std::fs::write(&makefile, text).unwrap();
            let config = tree.join("openwrt-package/files/netmeter.config");
            let text = read_text(&config) + R2_LINE + "\n";
            std::fs::write(&config, text).unwrap();

            for (release, base) in [("r1", root().to_path_buf()), ("r2", tree)] {
                for variant in Variant::ALL {
                    for script in ["build-apk", "build-ipk"] {
                        run(Command::new(base.join("openwrt-package").join(script))
                            .args(["--variant", variant.flag(), "--binary"])
                            .arg(variant_binary(variant))
                            .arg("--out")
                            .arg(dir.join(release))
                            .arg(ARCH)
                            .env("APK", apk)
                            .env("SOURCE_DATE_EPOCH", EPOCH));
                    }
                }
            }
            // libc, which the packages depend on and an empty root lacks.
            let files = dir.join("libc-files");
            std::fs::create_dir_all(files.join("lib")).unwrap();
            run(Command::new(apk)
                .args(["mkpkg", "--info", "name:libc", "--info", "version:1.2.5-r4"])
                .args([
                    "--info",
                    "arch:x86_64",
                    "--info",
                    "description:test stand-in",
                ])
                .arg("--files")
                .arg(&files)
                .arg("--output")
                .arg(dir.join("libc-1.2.5-r4.apk")));
            Packages { dir }
        })
    }

    pub(crate) fn apk(&self, release: &str, variant: Variant) -> PathBuf {
        let version = if release == "r1" {
            "0.1.0-r1"
        } else {
            "0.1.0-r2"
        };
        self.dir
            .join(release)
            .join(ARCH)
            .join(format!("{}-{version}.apk", variant.package()))
    }

    pub(crate) fn ipk(&self, release: &str, variant: Variant) -> PathBuf {
        let version = if release == "r1" {
            "0.1.0-r1"
        } else {
            "0.1.0-r2"
        };
        self.dir
            .join(release)
            .join(format!("{}_{version}_{ARCH}.ipk", variant.package()))
    }

    pub(crate) fn libc(&self) -> PathBuf {
        self.dir.join("libc-1.2.5-r4.apk")
    }

    /// Release 2's default config.
    fn r2_config(&self) -> String {
        read_text(&root().join("openwrt-package/files/netmeter.config")) + R2_LINE + "\n"
    }
}

// ------------------------------------------------------------- a test root

/// A throwaway root with the stand-in `lib/functions.sh`.
pub(crate) struct Root {
    pub(crate) path: PathBuf,
}

impl Root {
    pub(crate) fn new(name: &str) -> Root {
        let path = scratch(name).join("root");
        std::fs::create_dir_all(path.join("lib")).unwrap();
        // OpenWrt's functions.sh enables and starts the service; this one
        // records each call, and fails unless IPKG_INSTROOT is this root.
        let stub = format!(
            r#"[ "$IPKG_INSTROOT" = "{root}" ] || {{ echo "IPKG_INSTROOT is '$IPKG_INSTROOT', not {root}" >&2; exit 1; }}
record() {{ name=${{pkgname:-$(basename "${{2%.*}}")}}; echo "$1 $name root=${{root-unset}} upgrade=${{PKG_UPGRADE:-}}" >>"$IPKG_INSTROOT/script-calls"; }}
add_group_and_user() {{ record add_group_and_user "$@"; }}
default_postinst() {{ record default_postinst "$@"; }}
default_prerm() {{ record default_prerm "$@"; }}
"#,
            root = path.display()
        );
        std::fs::write(path.join("lib/functions.sh"), stub).unwrap();
        Root { path }
    }

    pub(crate) fn join(&self, path: &str) -> PathBuf {
        self.path.join(path.trim_start_matches('/'))
    }

    /// What the scripts called, one a line, and forgets it.
    fn take_calls(&self) -> Vec<String> {
        let file = self.join("script-calls");
        let calls = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        calls.lines().map(str::to_string).collect()
    }

    fn edit_config(&self) {
        let config = self.join("/etc/config/netmeter");
        let text = read_text(&config) + EDITED;
        std::fs::write(&config, text).unwrap();
    }

    fn config(&self) -> String {
        read_text(&self.join("/etc/config/netmeter"))
    }

    /// A file in the history directory, as the daemon would leave one.
    fn write_history(&self) {
        std::fs::create_dir_all(self.join("/etc/netmeter")).unwrap();
        std::fs::write(self.join("/etc/netmeter/state.bin"), b"history").unwrap();
    }

    /// The files a package installs are there, with their modes, and the
    /// binary is the variant's.
    pub(crate) fn assert_installed(&self, variant: Variant) {
        for (file, mode) in [
            ("/usr/bin/netmeter", 0o755),
            ("/etc/init.d/netmeter", 0o755),
            ("/etc/uci-defaults/90-netmeter", 0o755),
            ("/etc/config/netmeter", 0o644),
            ("/lib/upgrade/keep.d/netmeter", 0o644),
        ] {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(self.join(file))
                .unwrap_or_else(|e| panic!("{file} after installing {}: {e}", variant.package()));
            assert_eq!(meta.permissions().mode() & 0o7777, mode, "{file}");
        }
        assert!(
            std::fs::read(self.join("/usr/bin/netmeter")).unwrap()
                == std::fs::read(variant_binary(variant)).unwrap(),
            "/usr/bin/netmeter is not the {} build",
            variant.flag()
        );
    }

    /// Every file of the package is gone; the edited config and the
    /// history stay.
    fn assert_removed_keeping_config_and_history(&self) {
        for file in [
            "/usr/bin/netmeter",
            "/etc/init.d/netmeter",
            "/etc/uci-defaults/90-netmeter",
            "/lib/upgrade/keep.d/netmeter",
        ] {
            assert!(
                !self.join(file).exists(),
                "{file} is still there after removal"
            );
        }
        assert!(self.config().ends_with(EDITED), "the edited config is gone");
        assert_eq!(
            std::fs::read(self.join("/etc/netmeter/state.bin")).unwrap(),
            b"history"
        );
    }
}

// --------------------------------------------------------------------- apk

/// `apk --root R` as OpenWrt's image builder runs it.
pub(crate) fn apk(tool: &Path, root: &Root) -> Command {
    let mut cmd = Command::new(tool);
    cmd.env("IPKG_INSTROOT", &root.path)
        .arg("--root")
        .arg(&root.path)
        .args([
            "--force-no-chroot",
            "--preserve-env",
            "--no-cache",
            "--no-logfile",
        ])
        .args(["--no-interactive", "--no-progress"]);
    cmd
}

/// The packages apk has installed in the root, sorted.
pub(crate) fn apk_installed(root: &Root) -> Vec<String> {
    let db = read_text(&root.join("/lib/apk/db/installed"));
    let mut names: Vec<String> = db
        .lines()
        .filter_map(|l| l.strip_prefix("P:"))
        .map(|name| {
            let version = db
                .split("\n\n")
                .find(|entry| entry.lines().any(|l| l == format!("P:{name}")))
                .and_then(|entry| entry.lines().find_map(|l| l.strip_prefix("V:")))
                .unwrap_or("?");
            format!("{name}-{version}")
        })
        .collect();
    names.sort();
    names
}

/// A root with libc and the variant's release-1 .apk, added from files.
fn apk_install_file(tool: &Path, packages: &Packages, root: &Root, variant: Variant) {
    run(apk(tool, root)
        .args(["add", "--initdb", "--allow-untrusted"])
        .arg(packages.libc())
        .arg(packages.apk("r1", variant)));
}

#[test]
fn apk_installs_either_variant_into_a_fresh_root_and_its_scripts_use_only_that_root() {
    let Some(tool) = apk_tool("apk install") else {
        return;
    };
    let packages = Packages::get(&tool);
    for variant in Variant::ALL {
        let root = Root::new(&format!("apk-install-{}", variant.flag()));
        apk_install_file(&tool, packages, &root, variant);
        root.assert_installed(variant);
        let name = variant.package();
        assert_eq!(
            apk_installed(&root),
            ["libc-1.2.5-r4".to_string(), format!("{name}-0.1.0-r1")]
        );
        let root_path = root.path.display();
        assert_eq!(
            root.take_calls(),
            [
                format!("add_group_and_user {name} root={root_path} upgrade="),
                format!("default_postinst {name} root={root_path} upgrade="),
            ]
        );
        // package-pack.mk's metadata in the data tree.
        let list = read_text(&root.join(&format!("/lib/apk/packages/{name}.list")));
        assert_eq!(
            list.lines().collect::<Vec<_>>(),
            [
                "/etc/config/netmeter",
                "/etc/init.d/netmeter",
                "/etc/uci-defaults/90-netmeter",
                "/lib/upgrade/keep.d/netmeter",
                "/usr/bin/netmeter"
            ]
        );
        assert_eq!(
            read_text(&root.join(&format!("/lib/apk/packages/{name}.conffiles"))),
            "/etc/config/netmeter\n"
        );
        let config_sum = run(Command::new("sha256sum").arg(root.join("/etc/config/netmeter")));
        let sum = String::from_utf8_lossy(&config_sum.stdout);
        assert_eq!(
            read_text(&root.join(&format!("/lib/apk/packages/{name}.conffiles_static"))),
            format!(
                "/etc/config/netmeter {}\n",
                sum.split_whitespace().next().unwrap()
            )
        );
    }
}

#[test]
fn apk_upgrade_keeps_the_edited_config_and_puts_the_new_default_beside_it_as_apk_new() {
    let Some(tool) = apk_tool("apk upgrade") else {
        return;
    };
    let packages = Packages::get(&tool);
    for variant in Variant::ALL {
        let root = Root::new(&format!("apk-upgrade-{}", variant.flag()));
        apk_install_file(&tool, packages, &root, variant);
        root.edit_config();
        let edited = root.config();
        root.take_calls();
        run(apk(&tool, &root)
            .args(["add", "--allow-untrusted"])
            .arg(packages.apk("r2", variant)));
        let name = variant.package();
        assert_eq!(
            apk_installed(&root),
            ["libc-1.2.5-r4".to_string(), format!("{name}-0.1.0-r2")]
        );
        assert_eq!(
            root.config(),
            edited,
            "the upgrade changed the edited config"
        );
        assert_eq!(
            read_text(&root.join("/etc/config/netmeter.apk-new")),
            packages.r2_config()
        );
        let root_path = root.path.display();
        assert_eq!(
            root.take_calls(),
            [
                format!("add_group_and_user {name} root={root_path} upgrade=1"),
                format!("default_postinst {name} root={root_path} upgrade=1"),
            ]
        );
    }
}

/// A feed from build-feed with release 1 of both variants, and libc in a
/// second repository; the root trusts the feed's key.
fn apk_feed_root(tool: &Path, packages: &Packages, name: &str) -> (Root, [PathBuf; 2]) {
    let dir = scratch(&format!("{name}-feed"));
    let feed = build_feed(tool, packages, &dir);
    let root = Root::new(name);
    std::fs::create_dir_all(root.join("/etc/apk/keys")).unwrap();
    std::fs::copy(
        feed.join("netmeter-feed.pem"),
        root.join("/etc/apk/keys/netmeter-feed.pem"),
    )
    .unwrap();
    // libc: OpenWrt's own feed has it; here a file, once.
    run(apk(tool, &root)
        .args(["add", "--initdb", "--allow-untrusted"])
        .arg(packages.libc()));
    let index = feed.join(ARCH).join("packages.adb");
    (root, [index, feed])
}

/// build-feed over release 1's packages, with a fresh key; the feed's path.
fn build_feed(tool: &Path, packages: &Packages, dir: &Path) -> PathBuf {
    let out = run(Command::new(root().join("openwrt-package/build-feed"))
        .arg("--dist")
        .arg(packages.dir.join("r1"))
        .arg("--key")
        .arg(dir.join("key/netmeter-feed.key"))
        .arg("--out")
        .arg(dir.join("feed"))
        .arg(ARCH)
        .env("APK", tool));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn apk_add_of_the_other_variant_from_the_feed_replaces_the_installed_one_and_the_config_stays() {
    let Some(tool) = apk_tool("apk switch") else {
        return;
    };
    let packages = Packages::get(&tool);
    let (root, [index, _]) = apk_feed_root(&tool, packages, "apk-switch");
    let from_feed = |args: &[&str]| {
        run(apk(&tool, &root).arg("--repository").arg(&index).args(args));
    };
    from_feed(&["add", "netmeter"]);
    root.assert_installed(Variant::Core);
    root.edit_config();
    let edited = root.config();

    from_feed(&["add", "netmeter-full"]);
    assert_eq!(
        apk_installed(&root),
        ["libc-1.2.5-r4", "netmeter-full-0.1.0-r1"]
    );
    root.assert_installed(Variant::Full);
    assert_eq!(root.config(), edited);

    // The world still asks for netmeter: without netmeter-full, the core
    // comes back.
    from_feed(&["del", "netmeter-full"]);
    assert_eq!(apk_installed(&root), ["libc-1.2.5-r4", "netmeter-0.1.0-r1"]);
    root.assert_installed(Variant::Core);
    assert_eq!(root.config(), edited);
    let calls = root.take_calls();
    for expected in [
        "default_postinst netmeter ",
        "default_prerm netmeter ",
        "default_postinst netmeter-full ",
        "default_prerm netmeter-full ",
    ] {
        assert!(
            calls.iter().any(|c| c.starts_with(expected)),
            "no '{expected}…' among the scripts' calls {calls:?}"
        );
    }
}

#[test]
fn apk_del_removes_the_package_files_and_keeps_the_edited_config_and_the_history() {
    let Some(tool) = apk_tool("apk del") else {
        return;
    };
    let packages = Packages::get(&tool);
    for variant in Variant::ALL {
        let root = Root::new(&format!("apk-del-{}", variant.flag()));
        apk_install_file(&tool, packages, &root, variant);
        root.edit_config();
        root.write_history();
        root.take_calls();
        run(apk(&tool, &root).args(["del", variant.package()]));
        assert_eq!(apk_installed(&root), ["libc-1.2.5-r4"]);
        root.assert_removed_keeping_config_and_history();
        assert_eq!(
            root.take_calls(),
            [format!(
                "default_prerm {} root={} upgrade=",
                variant.package(),
                root.path.display()
            )]
        );
    }
}

#[test]
fn a_signed_feed_from_build_feed_installs_with_its_key_and_without_allow_untrusted() {
    let Some(tool) = apk_tool("signed feed") else {
        return;
    };
    let packages = Packages::get(&tool);
    let (root, [index, feed]) = apk_feed_root(&tool, packages, "apk-signed-feed");
    // Without the key the index is refused.
    let keys = root.join("/etc/apk/keys");
    std::fs::rename(&keys, root.join("/etc/apk/keys.away")).unwrap();
    let refused = apk(&tool, &root)
        .arg("--repository")
        .arg(&index)
        .args(["add", "netmeter"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "apk installed from a feed whose key it does not trust"
    );
    std::fs::rename(root.join("/etc/apk/keys.away"), &keys).unwrap();

    run(apk(&tool, &root)
        .arg("--repository")
        .arg(&index)
        .args(["add", "netmeter"]));
    assert_eq!(apk_installed(&root), ["libc-1.2.5-r4", "netmeter-0.1.0-r1"]);
    root.assert_installed(Variant::Core);

    // The opkg side of the feed lists both .ipk with their checksums.
    let index = read_text(&feed.join(ARCH).join("Packages"));
    for variant in Variant::ALL {
        let ipk = format!("{}_0.1.0-r1_{ARCH}.ipk", variant.package());
        let sum = run(Command::new("sha256sum").arg(feed.join(ARCH).join(&ipk)));
        let sum = String::from_utf8_lossy(&sum.stdout);
        let entry = index
            .split("\n\n")
            .find(|e| e.starts_with(&format!("Package: {}\n", variant.package())))
            .unwrap_or_else(|| panic!("no {} in Packages:\n{index}", variant.package()));
        assert!(entry.contains(&format!("Filename: {ipk}\n")), "{entry}");
        assert!(
            entry.contains(&format!(
                "SHA256sum: {}\n",
                sum.split_whitespace().next().unwrap()
            )),
            "{entry}"
        );
    }
    let gz = run(Command::new("gzip")
        .arg("-dc")
        .arg(feed.join(ARCH).join("Packages.gz")));
    assert_eq!(String::from_utf8(gz.stdout).unwrap(), index);
}

// -------------------------------------------------------------------- opkg

/// `opkg --offline-root R` as OpenWrt's image builder runs it, with a
/// status entry for libc.
pub(crate) fn opkg(tool: &Path, root: &Root) -> Command {
    for dir in ["/var/lock", "/usr/lib/opkg/info", "/tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let status = root.join("/usr/lib/opkg/status");
    if !status.exists() {
        std::fs::write(
            &status,
            "Package: libc\nVersion: 1.2.5-r4\nStatus: install user installed\n\
             Architecture: x86_64\nInstalled-Time: 1700000000\n\n",
        )
        .unwrap();
        std::fs::write(root.join("/usr/lib/opkg/info/libc.list"), "").unwrap();
    }
    let mut cmd = Command::new(tool);
    cmd.env("IPKG_INSTROOT", &root.path)
        .env("TMPDIR", root.join("/tmp"))
        .arg("--offline-root")
        .arg(&root.path)
        .args([
            "-f",
            "/dev/null",
            "--force-postinstall",
            "--add-dest",
            "root:/",
        ])
        .args(["--add-arch", "all:100", "--add-arch", "x86_64:200"]);
    cmd
}

/// The packages opkg has installed, sorted.
pub(crate) fn opkg_installed(root: &Root) -> Vec<String> {
    let status = read_text(&root.join("/usr/lib/opkg/status"));
    let mut names: Vec<String> = status
        .split("\n\n")
        .filter(|e| {
            e.lines()
                .any(|l| l.starts_with("Status:") && l.ends_with(" installed"))
        })
        .filter_map(|e| {
            let field = |f: &str| e.lines().find_map(|l| l.strip_prefix(f));
            Some(format!("{}-{}", field("Package: ")?, field("Version: ")?))
        })
        .collect();
    names.sort();
    names
}

#[test]
fn opkg_installs_either_variant_into_an_offline_root_and_its_scripts_use_only_that_root() {
    let Some(tool) = opkg_tool("opkg install") else {
        return;
    };
    let apk = apk_tool("opkg install (build-apk)");
    let Some(apk) = apk else { return };
    let packages = Packages::get(&apk);
    for variant in Variant::ALL {
        let root = Root::new(&format!("opkg-install-{}", variant.flag()));
        run(opkg(&tool, &root)
            .arg("install")
            .arg(packages.ipk("r1", variant)));
        root.assert_installed(variant);
        let name = variant.package();
        assert_eq!(
            opkg_installed(&root),
            ["libc-1.2.5-r4".to_string(), format!("{name}-0.1.0-r1")]
        );
        // opkg's scripts pass $0; no pkgname or root is exported.
        assert_eq!(
            root.take_calls(),
            [format!("default_postinst {name} root=unset upgrade=0")]
        );
    }
}

#[test]
fn opkg_upgrade_keeps_the_edited_config_and_puts_the_new_default_beside_it_as_opkg() {
    let Some(tool) = opkg_tool("opkg upgrade") else {
        return;
    };
    let Some(apk) = apk_tool("opkg upgrade (build-apk)") else {
        return;
    };
    let packages = Packages::get(&apk);
    for variant in Variant::ALL {
        let root = Root::new(&format!("opkg-upgrade-{}", variant.flag()));
        run(opkg(&tool, &root)
            .arg("install")
            .arg(packages.ipk("r1", variant)));
        root.edit_config();
        let edited = root.config();
        root.take_calls();
        run(opkg(&tool, &root)
            .arg("install")
            .arg(packages.ipk("r2", variant)));
        let name = variant.package();
        assert_eq!(
            opkg_installed(&root),
            ["libc-1.2.5-r4".to_string(), format!("{name}-0.1.0-r2")]
        );
        assert_eq!(
            root.config(),
            edited,
            "the upgrade changed the edited config"
        );
        assert_eq!(
            read_text(&root.join("/etc/config/netmeter-opkg")),
            packages.r2_config()
        );
        let calls = root.take_calls();
        assert!(
            calls.contains(&format!("default_postinst {name} root=unset upgrade=1")),
            "{calls:?}"
        );
    }
}

#[test]
fn opkg_install_of_the_other_variant_replaces_the_installed_one_and_the_config_stays() {
    let Some(tool) = opkg_tool("opkg switch") else {
        return;
    };
    let Some(apk) = apk_tool("opkg switch (build-apk)") else {
        return;
    };
    let packages = Packages::get(&apk);
    for first in Variant::ALL {
        let root = Root::new(&format!("opkg-switch-from-{}", first.flag()));
        run(opkg(&tool, &root)
            .arg("install")
            .arg(packages.ipk("r1", first)));
        root.edit_config();
        let edited = root.config();
        let second = first.other();
        run(opkg(&tool, &root)
            .arg("install")
            .arg(packages.ipk("r1", second)));
        assert_eq!(
            opkg_installed(&root),
            [
                "libc-1.2.5-r4".to_string(),
                format!("{}-0.1.0-r1", second.package())
            ]
        );
        root.assert_installed(second);
        assert_eq!(root.config(), edited);
    }
}

#[test]
fn opkg_remove_removes_the_package_files_and_keeps_the_edited_config_and_the_history() {
    let Some(tool) = opkg_tool("opkg remove") else {
        return;
    };
    let Some(apk) = apk_tool("opkg remove (build-apk)") else {
        return;
    };
    let packages = Packages::get(&apk);
    for variant in Variant::ALL {
        let root = Root::new(&format!("opkg-remove-{}", variant.flag()));
        run(opkg(&tool, &root)
            .arg("install")
            .arg(packages.ipk("r1", variant)));
        root.edit_config();
        root.write_history();
        root.take_calls();
        run(opkg(&tool, &root).args(["remove", variant.package()]));
        assert_eq!(opkg_installed(&root), ["libc-1.2.5-r4"]);
        root.assert_removed_keeping_config_and_history();
        assert_eq!(
            root.take_calls(),
            [format!(
                "default_prerm {} root=unset upgrade=0",
                variant.package()
            )]
        );
    }
}
