//! luci-app-netmeter's packages, as `openwrt-package/build-luci` makes
//! them: the .ipk (architecture `all`) taken apart member by member with
//! package.rs's tar reader, the .apk (arch `noarch`) read with `apk
//! adbdump`; then both installed with the real opkg and apk into throwaway
//! roots beside netmeter and, again, beside netmeter-full (whose Provides
//! satisfies the app's dependency on netmeter), and removed, leaving
//! netmeter installed.
//!
//! The app depends on luci-base and the ucode modules its rpcd plugin
//! loads, which a throwaway root lacks: for opkg they are status entries
//! (as install.rs writes one for libc), for apk empty stand-in packages
//! made with `apk mkpkg` (as install.rs's libc). No `--force-depends` or
//! `--no-deps`: the dependencies are checked for real, and a root without
//! netmeter refuses the app.
//!
//! The tools as install.rs finds them (`NETMETER_APK`, `NETMETER_OPKG`):
//! missing, each test says so loudly and passes; with `CI=true` it fails.
//! The member check of the .ipk needs neither.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::install::{
    self, ARCH, EPOCH, Packages, Root, apk, apk_installed, apk_tool, opkg, opkg_installed,
    opkg_tool, run,
};
use super::package::{
    Variant, control_fields, expect_members, file, gunzip, read, root, scratch, untar,
};

const NAME: &str = "luci-app-netmeter";
const VERSION: &str = "0.1.0-r1";
/// What the app depends on besides netmeter (build-luci's list, in order).
const STUBBED: [&str; 5] = [
    "luci-base",
    "ucode",
    "ucode-mod-socket",
    "ucode-mod-uci",
    "ucode-mod-fs",
];

/// The app's files as installed (path, mode), sorted; the source of each
/// is `luci-app-netmeter/htdocs/…` for `/www/…`, else `root/…`.
const FILES: [(&str, u32); 7] = [
    ("/usr/libexec/rpcd/luci.netmeter", 0o755),
    ("/usr/share/luci/menu.d/luci-app-netmeter.json", 0o644),
    ("/usr/share/rpcd/acl.d/luci-app-netmeter.json", 0o644),
    ("/www/luci-static/resources/netmeter/common.js", 0o644),
    ("/www/luci-static/resources/view/netmeter/devices.js", 0o644),
    (
        "/www/luci-static/resources/view/netmeter/interfaces.js",
        0o644,
    ),
    (
        "/www/luci-static/resources/view/netmeter/settings.js",
        0o644,
    ),
];

fn source(installed: &str) -> PathBuf {
    let app = root().join(NAME);
    match installed.strip_prefix("/www/") {
        Some(rest) => app.join("htdocs").join(rest),
        None => app.join("root").join(installed.trim_start_matches('/')),
    }
}

/// Runs build-luci into a fresh `dir` with `apk` as APK; the paths it
/// printed.
fn build_luci(dir: &Path, apk: &Path) -> Vec<PathBuf> {
    let out = run(Command::new(root().join("openwrt-package/build-luci"))
        .arg("--out")
        .arg(dir)
        .env("APK", apk)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env_remove("NETMETER_DIST"));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// The app's packages (`<dir>/luci-app-netmeter_…_all.ipk`,
/// `<dir>/noarch/luci-app-netmeter-….apk`) and the stand-ins for what it
/// depends on beyond netmeter (`<dir>/stubs/*.apk`), built once.
struct App {
    dir: PathBuf,
}

impl App {
    fn get(apk: &Path) -> &'static App {
        static APP: OnceLock<App> = OnceLock::new();
        APP.get_or_init(|| {
            let dir = scratch("luci-app");
            let printed = build_luci(&dir, apk);
            let app = App { dir };
            assert_eq!(printed, [app.ipk(), app.apk()], "what build-luci printed");
            let empty = app.dir.join("stub-files");
            std::fs::create_dir_all(&empty).unwrap();
            std::fs::create_dir_all(app.dir.join("stubs")).unwrap();
            for name in STUBBED {
                // luci-base is arch-independent; ucode and its modules are not.
                let arch = if name == "luci-base" { "noarch" } else { ARCH };
                run(Command::new(apk)
                    .arg("mkpkg")
                    .args(["--info", &format!("name:{name}")])
                    .args(["--info", "version:1.0-r1"])
                    .args(["--info", &format!("arch:{arch}")])
                    .args(["--info", "description:test stand-in"])
                    .arg("--files")
                    .arg(&empty)
                    .arg("--output")
                    .arg(app.stub(name)));
            }
            app
        })
    }

    fn ipk(&self) -> PathBuf {
        self.dir.join(format!("{NAME}_{VERSION}_all.ipk"))
    }

    fn apk(&self) -> PathBuf {
        self.dir
            .join("noarch")
            .join(format!("{NAME}-{VERSION}.apk"))
    }

    fn stub(&self, name: &str) -> PathBuf {
        self.dir.join("stubs").join(format!("{name}-1.0-r1.apk"))
    }
}

/// The postinst and postrm luci.mk writes: nothing in an image build
/// (IPKG_INSTROOT set), else drop LuCI's caches and HUP rpcd.
const SCRIPT: &str = "#!/bin/sh
[ -n \"${IPKG_INSTROOT}\" ] || {
\trm -f /tmp/luci-indexcache.* 2>/dev/null
\trm -rf /tmp/luci-modulecache/ 2>/dev/null
\tkillall -HUP rpcd 2>/dev/null
\texit 0
}
";

/// Every directory above the app's files, `./`-style with a slash.
fn data_members() -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    names.insert("./".to_string());
    for (path, _) in FILES {
        let mut at = 0;
        while let Some(slash) = path[at + 1..].find('/') {
            at += 1 + slash;
            names.insert(format!(".{}/", &path[..at]));
        }
        names.insert(format!(".{path}"));
    }
    // GNU tar --sort=name: a directory before what it holds.
    names.into_iter().collect()
}

#[test]
fn the_luci_ipk_is_what_opkg_expects_member_by_member_and_field_by_field() {
    let dir = scratch("luci-ipk");
    // No apk-tools 3 (APK names nothing): build-luci makes the .ipk alone.
    let printed = build_luci(&dir, &dir.join("no-apk"));
    let ipk = dir.join(format!("{NAME}_{VERSION}_all.ipk"));
    assert_eq!(printed, std::slice::from_ref(&ipk));

    let outer = untar(&gunzip(&read(&ipk)));
    let outer = expect_members(
        NAME,
        &outer,
        &["./debian-binary", "./data.tar.gz", "./control.tar.gz"],
    );
    assert_eq!(file(&outer, "./debian-binary", 0o644), b"2.0\n");

    let data_tar = gunzip(file(&outer, "./data.tar.gz", 0o644));
    let data = untar(&data_tar);
    let epoch: u64 = EPOCH.parse().unwrap();
    for m in &data {
        assert_eq!(m.mtime, epoch, "{}: the fixed time", m.name);
        if m.kind == b'5' {
            assert_eq!(m.mode, 0o755, "{}: directories 0755", m.name);
        }
    }
    let names = data_members();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let data = expect_members(&format!("{NAME}'s data.tar.gz"), &data, &names);
    for (path, mode) in FILES {
        assert_eq!(
            file(&data, &format!(".{path}"), mode),
            read(&source(path)),
            "{path} is packed unchanged"
        );
    }
    for json in [
        "./usr/share/luci/menu.d/luci-app-netmeter.json",
        "./usr/share/rpcd/acl.d/luci-app-netmeter.json",
    ] {
        serde_json::from_slice::<serde_json::Value>(&data[json].data)
            .unwrap_or_else(|e| panic!("{json} is not JSON: {e}"));
    }

    let control = untar(&gunzip(file(&outer, "./control.tar.gz", 0o644)));
    let control = expect_members(
        &format!("{NAME}'s control.tar.gz"),
        &control,
        &["./", "./control", "./postinst", "./postrm"],
    );
    assert_eq!(control["./"].mode, 0o755);
    assert_eq!(file(&control, "./postinst", 0o755), SCRIPT.as_bytes());
    assert_eq!(file(&control, "./postrm", 0o755), SCRIPT.as_bytes());
    let text = String::from_utf8(file(&control, "./control", 0o644).to_vec()).unwrap();
    let fields = control_fields(&text);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected = vec!["Package", "Version", "Depends", "Source", "SourceName"];
    expected.extend(["License", "Section", "Maintainer", "Architecture"]);
    expected.extend(["Installed-Size", "Description"]);
    // URL only when the builder sets one (NETMETER_URL; empty by default).
    if fields.iter().any(|(k, _)| k == "URL") {
        expected.insert(7, "URL");
    }
    assert_eq!(keys, expected, "the control fields in order:\n{text}");
    let field: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(field["Package"], NAME);
    assert_eq!(field["Version"], VERSION);
    assert_eq!(
        field["Depends"],
        "libc, luci-base, netmeter, ucode, ucode-mod-socket, ucode-mod-uci, ucode-mod-fs",
        "netmeter by name: netmeter-full provides it"
    );
    assert_eq!(field["Source"], "feeds/luci/applications/luci-app-netmeter");
    assert_eq!(field["SourceName"], NAME);
    assert_eq!(field["License"], env!("CARGO_PKG_LICENSE"));
    assert_eq!(field["Section"], "luci");
    assert!(!field["Maintainer"].is_empty());
    assert_eq!(field["Architecture"], "all");
    assert_eq!(field["Installed-Size"], data_tar.len().to_string());
    // "Description: " and the line indented by one space, as OpenWrt writes it.
    assert!(
        text.ends_with(
            "\nDescription:  LuCI support for netmeter (per-device bandwidth accounting)\n"
        ),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `apk adbdump`'s view of a package: the info fields (lists joined by
/// spaces), the paths (directories with a trailing slash but the root,
/// which is "/") with their modes, and the scripts' names.
struct Dump {
    info: BTreeMap<String, String>,
    paths: Vec<(String, u32)>,
    scripts: Vec<String>,
}

fn adbdump(tool: &Path, package: &Path) -> Dump {
    let out = run(Command::new(tool).arg("adbdump").arg(package));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut dump = Dump {
        info: BTreeMap::new(),
        paths: Vec::new(),
        scripts: Vec::new(),
    };
    let mut section = "";
    let mut list_key = String::new();
    let mut dir = String::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            // "info:", "paths: # 18 items", "scripts:".
            section = line.split(':').next().unwrap();
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let item = line.trim_start();
        match section {
            "info" if indent == 2 => {
                let (key, value) = item.split_once(':').unwrap();
                let value = value.trim();
                list_key = key.to_string();
                let value = if value.starts_with('#') { "" } else { value };
                dump.info.insert(key.to_string(), value.to_string());
            }
            "info" => {
                let value = item.strip_prefix("- ").unwrap();
                let entry = dump.info.get_mut(&list_key).unwrap();
                if !entry.is_empty() {
                    entry.push(' ');
                }
                entry.push_str(value);
            }
            "paths" if indent == 2 => {
                // A directory: "- name: D", or "- acl:" for the root.
                dir = item
                    .strip_prefix("- name: ")
                    .map_or("/".to_string(), |d| format!("/{d}/"));
                dump.paths.push((dir.clone(), 0));
            }
            "paths" if indent == 6 && item.starts_with("- name: ") => {
                let name = &item["- name: ".len()..];
                dump.paths.push((format!("{}{name}", dir), 0));
            }
            "paths" if item.starts_with("mode: ") => {
                let mode = u32::from_str_radix(&item["mode: ".len()..], 8).unwrap();
                dump.paths.last_mut().unwrap().1 = mode;
            }
            "scripts" if indent == 2 => {
                dump.scripts
                    .push(item.split_once(':').unwrap().0.to_string());
            }
            _ => {}
        }
    }
    dump
}

#[test]
fn the_luci_apk_is_noarch_depends_on_netmeter_and_holds_only_the_apps_files() {
    let Some(tool) = apk_tool("luci .apk") else {
        return;
    };
    let app = App::get(&tool);
    let dump = adbdump(&tool, &app.apk());
    let info = |key: &str| dump.info.get(key).map_or("", String::as_str);
    assert_eq!(info("name"), NAME);
    assert_eq!(info("version"), VERSION);
    assert_eq!(info("arch"), "noarch");
    assert_eq!(info("license"), env!("CARGO_PKG_LICENSE"));
    assert_eq!(info("origin"), "feeds/luci/applications/luci-app-netmeter");
    // apk sorts them.
    assert_eq!(
        info("depends"),
        "libc luci-base netmeter ucode ucode-mod-fs ucode-mod-socket ucode-mod-uci"
    );
    assert_eq!(info("provides"), "", "the app provides nothing");

    let list = "/lib/apk/packages/luci-app-netmeter.list";
    let mut expected: Vec<(String, u32)> = FILES
        .iter()
        .map(|&(p, m)| (p.to_string(), m))
        .chain([(list.to_string(), 0o644)])
        .collect();
    let dirs: std::collections::BTreeSet<String> = expected
        .iter()
        .flat_map(|(p, _)| {
            p.match_indices('/')
                .map(|(i, _)| p[..=i].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    expected.extend(dirs.into_iter().map(|d| (d, 0o755)));
    expected.sort();
    let mut got = dump.paths.clone();
    got.sort();
    assert_eq!(got, expected, "the .apk's paths and modes");
    assert_eq!(
        dump.scripts,
        ["post-install", "post-deinstall", "post-upgrade"]
    );
}

/// The app's files are in the root with their modes and contents.
fn assert_app_installed(root: &Root) {
    for (path, mode) in FILES {
        let file = root.join(path);
        let meta = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "{path}");
        assert_eq!(read(&file), read(&source(path)), "{path}");
    }
}

fn assert_app_removed(root: &Root) {
    for (path, _) in FILES {
        assert!(!root.join(path).exists(), "{path} is still there");
    }
}

// -------------------------------------------------------------------- opkg

/// Status entries for what the app needs beyond netmeter and libc.
fn opkg_stub_status(tool: &Path, root: &Root) {
    opkg(tool, root); // writes the status file with libc
    let status = root.join("/usr/lib/opkg/status");
    let mut text = install::read_text(&status);
    for name in STUBBED {
        text.push_str(&format!(
            "Package: {name}\nVersion: 1.0-r1\nStatus: install user installed\n\
             Architecture: all\nInstalled-Time: 1700000000\n\n"
        ));
        std::fs::write(root.join(&format!("/usr/lib/opkg/info/{name}.list")), "").unwrap();
    }
    std::fs::write(&status, text).unwrap();
}

#[test]
fn opkg_installs_the_luci_app_beside_either_variant_and_removes_it_leaving_netmeter() {
    let Some(tool) = opkg_tool("luci opkg install") else {
        return;
    };
    let Some(apk_path) = apk_tool("luci opkg install (build-apk)") else {
        return;
    };
    let packages = Packages::get(&apk_path);
    let app = App::get(&apk_path);

    // Without netmeter the dependency is not met: opkg refuses the app.
    let root = Root::new("luci-opkg-no-netmeter");
    opkg_stub_status(&tool, &root);
    let refused = opkg(&tool, &root)
        .arg("install")
        .arg(app.ipk())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("cannot find dependency netmeter"),
        "opkg installed the app without netmeter: {said}"
    );
    assert_app_removed(&root);

    for variant in Variant::ALL {
        let root = Root::new(&format!("luci-opkg-{}", variant.flag()));
        opkg_stub_status(&tool, &root);
        run(opkg(&tool, &root)
            .arg("install")
            .arg(packages.ipk("r1", variant)));
        // The README's command: the app alone, by file.
        let out = run(opkg(&tool, &root).arg("install").arg(app.ipk()));
        let said = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
        assert!(!said.contains("ependenc"), "{said}");
        assert_app_installed(&root);
        let mut expected: Vec<String> = STUBBED.iter().map(|n| format!("{n}-1.0-r1")).collect();
        expected.extend([
            "libc-1.2.5-r4".to_string(),
            format!("{NAME}-{VERSION}"),
            format!("{}-0.1.0-r1", variant.package()),
        ]);
        expected.sort();
        assert_eq!(opkg_installed(&root), expected);

        run(opkg(&tool, &root).args(["remove", NAME]));
        assert_app_removed(&root);
        expected.retain(|p| !p.starts_with(NAME));
        assert_eq!(opkg_installed(&root), expected);
        root.assert_installed(variant);
    }
}

// --------------------------------------------------------------------- apk

#[test]
fn apk_installs_the_luci_app_beside_either_variant_and_removes_it_leaving_netmeter() {
    let Some(tool) = apk_tool("luci apk add") else {
        return;
    };
    let packages = Packages::get(&tool);
    let app = App::get(&tool);
    let stubs: Vec<PathBuf> = STUBBED.iter().map(|n| app.stub(n)).collect();

    // Without netmeter the dependency is not met: apk refuses the app.
    let root = Root::new("luci-apk-no-netmeter");
    let refused = apk(&tool, &root)
        .args(["add", "--initdb", "--allow-untrusted"])
        .arg(packages.libc())
        .args(&stubs)
        .arg(app.apk())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr) + String::from_utf8_lossy(&refused.stdout);
    assert!(
        !refused.status.success() && said.contains("netmeter (no such package)"),
        "apk installed the app without netmeter: {said}"
    );
    assert_app_removed(&root);

    for variant in Variant::ALL {
        let root = Root::new(&format!("luci-apk-{}", variant.flag()));
        run(apk(&tool, &root)
            .args(["add", "--initdb", "--allow-untrusted"])
            .arg(packages.libc())
            .arg(packages.apk("r1", variant)));
        run(apk(&tool, &root)
            .args(["add", "--allow-untrusted"])
            .args(&stubs));
        // The README's command: the app alone, by file.
        run(apk(&tool, &root)
            .args(["add", "--allow-untrusted"])
            .arg(app.apk()));
        assert_app_installed(&root);
        // package-pack.mk's .list names the app's files.
        let list = install::read_text(&root.join(&format!("/lib/apk/packages/{NAME}.list")));
        let want: Vec<&str> = FILES.iter().map(|(p, _)| *p).collect();
        assert_eq!(list.lines().collect::<Vec<_>>(), want);
        let mut expected: Vec<String> = STUBBED.iter().map(|n| format!("{n}-1.0-r1")).collect();
        expected.extend([
            "libc-1.2.5-r4".to_string(),
            format!("{NAME}-{VERSION}"),
            format!("{}-0.1.0-r1", variant.package()),
        ]);
        expected.sort();
        assert_eq!(apk_installed(&root), expected);

        run(apk(&tool, &root).args(["del", NAME]));
        assert_app_removed(&root);
        let installed = apk_installed(&root);
        assert!(
            installed.contains(&format!("{}-0.1.0-r1", variant.package()))
                && !installed.iter().any(|p| p.starts_with(NAME)),
            "{installed:?}"
        );
        root.assert_installed(variant);
    }
}

#[test]
fn the_feed_carries_the_luci_app_and_apk_adds_it_with_netmeter_from_the_signed_index() {
    let Some(tool) = apk_tool("luci app in the feed") else {
        return;
    };
    let packages = Packages::get(&tool);
    let app = App::get(&tool);
    // A dist/ as the README's build leaves it: both variants and the app.
    let dir = scratch("luci-feed");
    let dist = dir.join("dist");
    run(Command::new("cp")
        .arg("-a")
        .arg(packages.dir.join("r1"))
        .arg(&dist));
    std::fs::create_dir_all(dist.join("noarch")).unwrap();
    std::fs::copy(app.ipk(), dist.join(app.ipk().file_name().unwrap())).unwrap();
    std::fs::copy(
        app.apk(),
        dist.join("noarch").join(app.apk().file_name().unwrap()),
    )
    .unwrap();
    let out = run(Command::new(root().join("openwrt-package/build-feed"))
        .arg("--dist")
        .arg(&dist)
        .arg("--key")
        .arg(dir.join("key/netmeter-feed.key"))
        .arg("--out")
        .arg(dir.join("feed"))
        .arg(ARCH)
        .env("APK", &tool));
    let feed = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());

    // apk: the app from the signed index, netmeter with it as its dependency.
    let root = Root::new("luci-feed-apk");
    std::fs::create_dir_all(root.join("/etc/apk/keys")).unwrap();
    std::fs::copy(
        feed.join("netmeter-feed.pem"),
        root.join("/etc/apk/keys/netmeter-feed.pem"),
    )
    .unwrap();
    let stubs: Vec<PathBuf> = STUBBED.iter().map(|n| app.stub(n)).collect();
    run(apk(&tool, &root)
        .args(["add", "--initdb", "--allow-untrusted"])
        .arg(packages.libc())
        .args(&stubs));
    run(apk(&tool, &root)
        .arg("--repository")
        .arg(feed.join(ARCH).join("packages.adb"))
        .args(["add", NAME]));
    assert_app_installed(&root);
    let installed = apk_installed(&root);
    assert!(
        installed.contains(&format!("{NAME}-{VERSION}"))
            && installed.contains(&"netmeter-0.1.0-r1".to_string()),
        "{installed:?}"
    );
    root.assert_installed(Variant::Core);

    // opkg: Packages lists the app with its file and checksum.
    let index = install::read_text(&feed.join(ARCH).join("Packages"));
    let ipk = app.ipk().file_name().unwrap().to_str().unwrap().to_string();
    let entry = index
        .split("\n\n")
        .find(|e| e.starts_with(&format!("Package: {NAME}\n")))
        .unwrap_or_else(|| panic!("no {NAME} in Packages:\n{index}"));
    let sum = run(Command::new("sha256sum").arg(feed.join(ARCH).join(&ipk)));
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert!(
        entry.contains(&format!("Filename: {ipk}\n"))
            && entry.contains("Architecture: all\n")
            && entry.contains(&format!(
                "SHA256sum: {}\n",
                sum.split_whitespace().next().unwrap()
            )),
        "{entry}"
    );
}
