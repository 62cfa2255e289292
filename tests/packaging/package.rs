//! The OpenWrt packages: `openwrt-package/build-ipk` packs a host build of
//! each variant (routers get cross/build's) into `netmeter` (the core
//! build, `--no-default-features`) and `netmeter-full` (the default
//! features), and each .ipk is taken apart here with a tar reader of its
//! own (gzip -dc decompresses): every member, mode, owner and time, every
//! control field (Provides, Conflicts and Replaces naming the other
//! variant; Maintainer and URL as the builder sets them), `conffiles`,
//! `Installed-Size`; the two hold the same files but for the binary, and
//! that binary is the variant its package names (it runs here: the tests
//! pack x86_64 host builds); two builds must be the same bytes. The
//! packaged config, init script and maintainer scripts are checked too.
//!
//! This test's own build is one variant (CARGO_BIN_EXE_netmeter, with the
//! features this run has); the other is built here with cargo into
//! `<target>/package-variants/` (cargo keeps it current).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use netmeter::config::Config;

const ARCH: &str = "x86_64";
/// 2023-11-14 22:13:20 UTC.
const EPOCH: u64 = 1_700_000_000;

pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn package_dir() -> PathBuf {
    root().join("openwrt-package")
}

pub(crate) fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    String::from_utf8(read(path)).unwrap()
}

/// A fresh empty directory under the system's temporary directory. Some
/// live as long as the test process (built once, shared by its tests), so
/// none is removed by its test: each process sweeps, once, what processes
/// that have ended left behind.
pub(crate) fn scratch(name: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(sweep_ended_runs);
    let dir = std::env::temp_dir().join(format!("netmeter-package-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the `netmeter-package-PID-*` directories of PIDs no longer
/// running (each run of the .deb tests left about 85 MB).
fn sweep_ended_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("netmeter-package-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `VAR:=value` from the package Makefile.
fn make_var(name: &str) -> String {
    let makefile = read_text(&package_dir().join("Makefile"));
    let prefix = format!("{name}:=");
    makefile
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} is not in openwrt-package/Makefile"))
        .to_string()
}

fn package_version() -> String {
    format!("{}-r{}", make_var("PKG_VERSION"), make_var("PKG_RELEASE"))
}

/// The default of a `NAME ?= value` knob in the package Makefile.
fn make_default(name: &str) -> String {
    let makefile = read_text(&package_dir().join("Makefile"));
    let prefix = format!("{name} ?=");
    makefile
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} ?= is not in openwrt-package/Makefile"))
        .trim()
        .to_string()
}

/// The two builds of one program (cross/variants.sh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Variant {
    Core,
    Full,
}

use Variant::{Core, Full};

impl Variant {
    pub(crate) const ALL: [Variant; 2] = [Core, Full];

    /// build-ipk's `--variant`.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Core => "core",
            Full => "full",
        }
    }

    /// The package's name (and the binary's in dist/<arch>/).
    pub(crate) fn package(self) -> &'static str {
        match self {
            Core => "netmeter",
            Full => "netmeter-full",
        }
    }

    pub(crate) fn other(self) -> Variant {
        match self {
            Core => Full,
            Full => Core,
        }
    }

    /// The variant this test is built as: its binary has the same features.
    fn this_build() -> Variant {
        if cfg!(feature = "upstream") {
            Full
        } else {
            Core
        }
    }
}

/// A host build of the variant's netmeter: this build's own, or the other
/// one built with cargo into `<target>/package-variants/` (one target
/// directory for both, so they share the dependencies) and copied to
/// `netmeter-<variant>` there before the other's build replaces
/// `debug/netmeter`. Where it cannot be built (CI runs the test
/// executables again as an unprivileged user, who may neither run this
/// cargo nor write the target directory) the copy from an earlier run is
/// taken, if there is one.
pub(crate) fn variant_binary(variant: Variant) -> &'static Path {
    static BINARIES: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    let own = Path::new(env!("CARGO_BIN_EXE_netmeter"));
    if variant == Variant::this_build() {
        return own;
    }
    BINARIES[variant as usize].get_or_init(|| {
        // <target>/debug/netmeter (or <target>/<triple>/debug/netmeter).
        let target_dir = own
            .parent()
            .and_then(Path::parent)
            .expect("the binary's target directory")
            .join("package-variants");
        let copy = target_dir.join(format!("netmeter-{}", variant.flag()));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut cmd = Command::new(&cargo);
        cmd.args(["build", "--locked", "--quiet", "--bin", "netmeter"])
            .arg("--manifest-path")
            .arg(root().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            // Whatever target this run builds for, the packed binary runs here.
            .env_remove("CARGO_BUILD_TARGET");
        if variant == Core {
            cmd.arg("--no-default-features");
        }
        let probe = target_dir.join(format!(".probe-{}", std::process::id()));
        let writable =
            std::fs::create_dir_all(&target_dir).is_ok() && std::fs::write(&probe, b"").is_ok();
        let _ = std::fs::remove_file(&probe);
        match cmd.output() {
            Ok(out) if out.status.success() => {
                let partial = copy.with_extension(format!("{}", std::process::id()));
                std::fs::copy(target_dir.join("debug").join("netmeter"), &partial).unwrap();
                std::fs::rename(&partial, &copy).unwrap();
            }
            Ok(out) if writable => panic!(
                "cargo build of the {} variant failed:\n{}",
                variant.flag(),
                String::from_utf8_lossy(&out.stderr)
            ),
            result => {
                assert!(
                    copy.is_file(),
                    "cannot build the {} variant here ({}; {} writable: {writable}) and there is no \
                     earlier build at {}: run this test once as a user who can",
                    variant.flag(),
                    match result {
                        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                        Err(e) => format!("{}: {e}", Path::new(&cargo).display()),
                    },
                    target_dir.display(),
                    copy.display()
                );
                eprintln!(
                    "cannot build the {} variant here: packing the earlier build {}",
                    variant.flag(),
                    copy.display()
                );
            }
        }
        copy
    })
}

/// How build-ipk is run: which variant of which binary, with which
/// NETMETER_MAINTAINER and NETMETER_URL (None: not in the environment).
struct Build<'a> {
    variant: Variant,
    binary: &'a Path,
    epoch: Option<u64>,
    maintainer: Option<&'a str>,
    url: Option<&'a str>,
}

impl<'a> Build<'a> {
    /// The variant's own binary, the fixed time, nothing set.
    fn of(variant: Variant) -> Self {
        Build::packing(variant, variant_binary(variant))
    }

    /// Another file as the binary (packing a debug build takes seconds).
    fn packing(variant: Variant, binary: &'a Path) -> Self {
        Build {
            variant,
            binary,
            epoch: Some(EPOCH),
            maintainer: None,
            url: None,
        }
    }
}

/// A small stand-in for the binary, for the checks that are about the
/// packing alone.
fn stand_in(dir: &Path) -> PathBuf {
    let path = dir.join("stand-in");
    std::fs::write(&path, b"\x7fELF not really\n").unwrap();
    path
}

/// Runs build-ipk into `out`; returns the package path.
fn build_ipk(out: &Path, build: &Build) -> PathBuf {
    let mut cmd = Command::new(package_dir().join("build-ipk"));
    cmd.args(["--variant", build.variant.flag(), "--binary"])
        .arg(build.binary)
        .arg("--out")
        .arg(out)
        .arg(ARCH);
    for (name, value) in [
        ("SOURCE_DATE_EPOCH", build.epoch.map(|e| e.to_string())),
        ("NETMETER_MAINTAINER", build.maintainer.map(str::to_string)),
        ("NETMETER_URL", build.url.map(str::to_string)),
    ] {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    let output = cmd.output().expect("run openwrt-package/build-ipk");
    assert!(
        output.status.success(),
        "build-ipk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let path = PathBuf::from(printed.trim());
    assert_eq!(
        path,
        out.join(format!(
            "{}_{}_{ARCH}.ipk",
            build.variant.package(),
            package_version()
        )),
        "build-ipk names its package <name>_<version>_<arch>.ipk and prints the path"
    );
    path
}

/// gzip as `gzip -n` writes it (no name, no time), decompressed by gzip -dc.
pub(crate) fn gunzip(bytes: &[u8]) -> Vec<u8> {
    assert!(
        bytes.len() > 18 && bytes[..3] == [0x1f, 0x8b, 8],
        "not gzip"
    );
    assert_eq!(bytes[3], 0, "gzip flags: no file name or comment (gzip -n)");
    assert_eq!(bytes[4..8], [0, 0, 0, 0], "gzip mtime is zero (gzip -n)");
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "gzip -dc failed");
    output.stdout
}

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) mode: u32,
    /// b'0' a file, b'5' a directory.
    pub(crate) kind: u8,
    pub(crate) mtime: u64,
    pub(crate) data: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let text = std::str::from_utf8(field).unwrap();
    let digits = text.trim_matches(|c| c == '\0' || c == ' ');
    u64::from_str_radix(digits, 8).unwrap_or_else(|_| panic!("bad octal field {text:?}"))
}

fn text_field(field: &[u8]) -> &str {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    std::str::from_utf8(&field[..end]).unwrap()
}

/// A GNU-format tar as OpenWrt's ipkg-build writes it: every header's
/// checksum, GNU magic, owner 0:0 by number without names; ends with two
/// zero blocks, padded to whole 10 KiB records.
pub(crate) fn untar(tar: &[u8]) -> Vec<Member> {
    assert_eq!(tar.len() % 10240, 0, "GNU tar pads to 20-block records");
    let mut members = Vec::new();
    let mut at = 0;
    loop {
        let header = &tar[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            assert!(
                tar[at..].iter().all(|&b| b == 0),
                "only zeros after the end blocks"
            );
            break;
        }
        let name = text_field(&header[0..100]).to_string();
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        assert_eq!(octal(&header[148..156]), sum, "{name}: header checksum");
        assert_eq!(&header[257..265], b"ustar  \0", "{name}: GNU tar magic");
        assert_eq!(octal(&header[108..116]), 0, "{name}: uid 0");
        assert_eq!(octal(&header[116..124]), 0, "{name}: gid 0");
        assert_eq!(
            text_field(&header[265..297]),
            "",
            "{name}: numeric owner only"
        );
        assert_eq!(
            text_field(&header[297..329]),
            "",
            "{name}: numeric group only"
        );
        let size = octal(&header[124..136]) as usize;
        let kind = header[156];
        assert!(
            kind == b'0' || kind == b'5',
            "{name}: only files and directories, not type {}",
            kind as char
        );
        let start = at + 512;
        members.push(Member {
            name,
            mode: octal(&header[100..108]) as u32,
            kind,
            mtime: octal(&header[136..148]),
            data: tar[start..start + size].to_vec(),
        });
        at = start + size.div_ceil(512) * 512;
    }
    members
}

/// Name → member, after checking the names come in exactly this order.
pub(crate) fn expect_members<'a>(
    what: &str,
    members: &'a [Member],
    names: &[&str],
) -> BTreeMap<&'a str, &'a Member> {
    let got: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(got, names, "the members of {what}, in order");
    members.iter().map(|m| (m.name.as_str(), m)).collect()
}

pub(crate) fn file<'a>(map: &BTreeMap<&str, &'a Member>, name: &str, mode: u32) -> &'a [u8] {
    let m = map[name];
    assert_eq!(m.kind, b'0', "{name} is a file");
    assert_eq!(m.mode, mode, "{name} has mode {mode:o}, not {:o}", m.mode);
    &m.data
}

/// The fields of a control file in order; continuation lines joined by '\n'.
pub(crate) fn control_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(more) = line.strip_prefix(' ') {
            let last = fields
                .last_mut()
                .expect("a continuation line after a field");
            last.1.push('\n');
            last.1.push_str(more);
        } else {
            let (key, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("line {line:?}"));
            fields.push((key.to_string(), value.to_string()));
        }
    }
    fields
}

/// What the checks of one package found, for comparing the two.
struct Unpacked {
    /// Every data member but the binary: name, mode, kind, contents.
    data: Vec<(String, u32, u8, Vec<u8>)>,
    /// ./usr/bin/netmeter.
    binary: Vec<u8>,
    /// Every control member but `control`.
    control: Vec<(String, u32, u8, Vec<u8>)>,
    /// The control file's fields, in order.
    fields: Vec<(String, String)>,
}

/// Takes the .ipk apart and checks every member and control field but
/// Maintainer and URL, which it returns with the rest in `fields`.
fn check_ipk(ipk: &Path, build: &Build) -> Unpacked {
    let variant = build.variant;
    let what = variant.package();
    let files = package_dir().join("files");

    let outer = untar(&gunzip(&read(ipk)));
    let outer = expect_members(
        what,
        &outer,
        &["./debian-binary", "./data.tar.gz", "./control.tar.gz"],
    );
    assert_eq!(file(&outer, "./debian-binary", 0o644), b"2.0\n");

    let data_tar = gunzip(file(&outer, "./data.tar.gz", 0o644));
    let data = untar(&data_tar);
    for m in &data {
        assert_eq!(m.mtime, EPOCH, "{what}: {}: the fixed time", m.name);
        if m.kind == b'5' {
            assert_eq!(m.mode, 0o755, "{what}: {}: directories 0755", m.name);
        }
    }
    let unpacked_data: Vec<_> = data
        .iter()
        .filter(|m| m.name != "./usr/bin/netmeter")
        .map(|m| (m.name.clone(), m.mode, m.kind, m.data.clone()))
        .collect();
    let data = expect_members(
        &format!("{what}'s data.tar.gz"),
        &data,
        &[
            "./",
            "./etc/",
            "./etc/config/",
            "./etc/config/netmeter",
            "./etc/init.d/",
            "./etc/init.d/netmeter",
            "./etc/uci-defaults/",
            "./etc/uci-defaults/90-netmeter",
            "./lib/",
            "./lib/upgrade/",
            "./lib/upgrade/keep.d/",
            "./lib/upgrade/keep.d/netmeter",
            "./usr/",
            "./usr/bin/",
            "./usr/bin/netmeter",
        ],
    );
    let binary = file(&data, "./usr/bin/netmeter", 0o755).to_vec();
    assert!(
        binary == read(build.binary),
        "{what}: the binary is packed unchanged"
    );
    assert_eq!(
        file(&data, "./etc/config/netmeter", 0o644),
        read(&files.join("netmeter.config"))
    );
    assert_eq!(
        file(&data, "./etc/init.d/netmeter", 0o755),
        read(&files.join("netmeter.init"))
    );
    assert_eq!(
        file(&data, "./etc/uci-defaults/90-netmeter", 0o755),
        read(&files.join("netmeter.uci-defaults"))
    );
    assert_eq!(
        file(&data, "./lib/upgrade/keep.d/netmeter", 0o644),
        b"/etc/netmeter/\n",
        "sysupgrade keeps the database directory"
    );

    let control = untar(&gunzip(file(&outer, "./control.tar.gz", 0o644)));
    for m in &control {
        assert_eq!(m.mtime, EPOCH, "{what}: {}: the fixed time", m.name);
    }
    let unpacked_control: Vec<_> = control
        .iter()
        .filter(|m| m.name != "./control")
        .map(|m| (m.name.clone(), m.mode, m.kind, m.data.clone()))
        .collect();
    let control = expect_members(
        &format!("{what}'s control.tar.gz"),
        &control,
        &["./", "./conffiles", "./control", "./postinst", "./prerm"],
    );
    assert_eq!(control["./"].mode, 0o755);
    assert_eq!(
        file(&control, "./conffiles", 0o644),
        b"/etc/config/netmeter\n",
        "opkg keeps a changed config across upgrades"
    );
    assert_eq!(
        file(&control, "./postinst", 0o755),
        read(&files.join("netmeter.postinst"))
    );
    assert_eq!(
        file(&control, "./prerm", 0o755),
        read(&files.join("netmeter.prerm"))
    );

    let text = String::from_utf8(file(&control, "./control", 0o644).to_vec()).unwrap();
    assert!(text.ends_with('\n') && !text.ends_with("\n\n"), "{text:?}");
    let fields = control_fields(&text);
    // OpenWrt's fields in OpenWrt's order (include/package-pack.mk), an
    // empty one left out; Replaces (which OpenWrt's rules do not write) is
    // what makes opkg remove the other variant on install.
    let mut expected_keys = vec!["Package", "Version", "Depends", "Conflicts"];
    if variant == Full {
        expected_keys.push("Provides");
    }
    expected_keys.extend(["Replaces", "Source", "SourceName", "License", "Section"]);
    let url = build.url.unwrap_or("");
    if !url.is_empty() {
        expected_keys.push("URL");
    }
    let maintainer = build
        .maintainer
        .map_or_else(|| make_default("NETMETER_MAINTAINER"), str::to_string);
    if !maintainer.is_empty() {
        expected_keys.push("Maintainer");
    }
    expected_keys.extend(["Architecture", "Installed-Size", "Description"]);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, expected_keys, "{what}: the control fields in order");
    let field: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(field["Package"], variant.package());
    assert_eq!(
        field["Version"],
        format!("{}-r{}", env!("CARGO_PKG_VERSION"), make_var("PKG_RELEASE"))
    );
    assert_eq!(field["Depends"], "libc");
    // Each names the other: installing one replaces the other.
    assert_eq!(field["Conflicts"], variant.other().package());
    assert_eq!(field["Replaces"], variant.other().package());
    if variant == Full {
        // The full build can stand in for the core (dnsmasq-full provides
        // dnsmasq); the core cannot stand in for the full build, so it
        // provides nothing.
        assert_eq!(field["Provides"], "netmeter");
    }
    assert_eq!(field["Source"], "feeds/netmeter/openwrt-package");
    assert_eq!(field["SourceName"], "netmeter");
    assert_eq!(field["License"], env!("CARGO_PKG_LICENSE"));
    assert_eq!(field["Section"], "net");
    if !url.is_empty() {
        assert_eq!(field["URL"], url);
    }
    if !maintainer.is_empty() {
        assert_eq!(field["Maintainer"], maintainer);
    }
    assert_eq!(field["Architecture"], ARCH);
    assert_eq!(
        field["Installed-Size"],
        data_tar.len().to_string(),
        "Installed-Size is the uncompressed data tar's length, as ipkg-build counts it"
    );
    // OpenWrt writes "Description: " and then every line indented by one space.
    assert!(text.contains("\nDescription:  netmeter counts"), "{text}");
    assert!(field["Description"].lines().count() >= 2);
    assert!(field["Description"].lines().all(|l| !l.trim().is_empty()));
    let build_named = match variant {
        Core => "This is the core build",
        Full => "This is the full build",
    };
    assert!(
        field["Description"]
            .replace('\n', " ")
            .contains(build_named),
        "{what}: the description says which build it is: {}",
        field["Description"]
    );

    Unpacked {
        data: unpacked_data,
        binary,
        control: unpacked_control,
        fields,
    }
}

#[test]
fn each_ipk_is_what_opkg_expects_member_by_member_and_field_by_field() {
    let dir = scratch("members");
    let [core, full] = Variant::ALL.map(|variant| {
        let build = Build::of(variant);
        let unpacked = check_ipk(&build_ipk(&dir, &build), &build);
        assert_is_variant(variant, &unpacked.binary, &dir);
        unpacked
    });
    // The same files otherwise: one package replaces the other on the router.
    assert!(
        core.data == full.data,
        "the two packages' data members differ beyond /usr/bin/netmeter"
    );
    assert!(
        core.control == full.control,
        "the two packages' conffiles and maintainer scripts differ"
    );
    let same: Vec<_> = [
        "Version",
        "Depends",
        "Source",
        "SourceName",
        "License",
        "Section",
    ]
    .iter()
    .map(|key| {
        let value = |fields: &[(String, String)]| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        (value(&core.fields), value(&full.fields))
    })
    .collect();
    for (c, f) in &same {
        assert_eq!(c, f, "both packages have the same fields but their names");
    }
    assert!(
        core.binary != full.binary,
        "the two packages hold the same binary"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn maintainer_and_url_are_what_the_builder_sets() {
    // The defaults are neutral text and no URL: no invented address.
    assert_eq!(make_default("NETMETER_MAINTAINER"), "netmeter developers");
    assert_eq!(make_default("NETMETER_URL"), "");
    let dir = scratch("fields");
    let binary = stand_in(&dir);
    for variant in Variant::ALL {
        for (maintainer, url) in [
            (None, None),
            (
                Some("Router Team <team@example.invalid>"),
                Some("https://example.invalid/netmeter"),
            ),
            // Set to nothing: the field is left out, as OpenWrt leaves out an empty one.
            (Some(""), Some("")),
        ] {
            let build = Build {
                maintainer,
                url,
                ..Build::packing(variant, &binary)
            };
            let unpacked = check_ipk(&build_ipk(&dir, &build), &build);
            let field = |key: &str| {
                unpacked
                    .fields
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(
                field("Maintainer"),
                match maintainer {
                    None => Some("netmeter developers"),
                    Some("") => None,
                    Some(m) => Some(m),
                }
            );
            assert_eq!(field("URL"), url.filter(|u| !u.is_empty()));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs the packed binary itself (a host build: ARCH is x86_64): it is
/// this checkout's version and the variant its package names.
fn assert_is_variant(variant: Variant, packed: &[u8], dir: &Path) {
    {
        let binary = dir.join(format!("{}.bin", variant.package()));
        std::fs::write(&binary, packed).unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&binary)
            .status()
            .unwrap();
        let run = |arg: &str| {
            let out = Command::new(&binary).arg(arg).output().unwrap();
            assert!(out.status.success(), "{} {arg}", variant.package());
            String::from_utf8(out.stdout).unwrap()
        };
        let version = run("version");
        assert_eq!(
            version.lines().next(),
            Some(format!("netmeter {}", env!("CARGO_PKG_VERSION")).as_str()),
            "{version}"
        );
        // The `features:` line (space-separated) names upstream in the full build only.
        let features = version
            .lines()
            .find_map(|l| l.strip_prefix("features:"))
            .unwrap_or_else(|| panic!("{}: no features line: {version}", variant.package()));
        let upstream = features.split_whitespace().any(|f| f == "upstream");
        assert_eq!(
            upstream,
            variant == Full,
            "{}: features:{features}",
            variant.package()
        );
        let help = run("--help");
        let lists_upstream = help.lines().any(|l| {
            l.strip_prefix("  upstream")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
        });
        match variant {
            Full => assert!(
                lists_upstream,
                "the full build has the upstream command:\n{help}"
            ),
            Core => assert!(
                !lists_upstream,
                "the core build has no upstream command:\n{help}"
            ),
        }
    }
}

#[test]
fn two_builds_of_the_package_are_the_same_bytes() {
    let dir = scratch("stand-in");
    let binary = stand_in(&dir);
    for variant in Variant::ALL {
        let build = Build::packing(variant, &binary);
        let name = variant.flag();
        let first = build_ipk(&scratch(&format!("first-{name}")), &build);
        // Another directory, another moment: nothing of either may show.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = build_ipk(&scratch(&format!("second-{name}")), &build);
        assert!(
            read(&first) == read(&second),
            "{} and {} differ",
            first.display(),
            second.display()
        );
        // Another time gives other bytes: the time really is the one given.
        let later = Build {
            epoch: Some(EPOCH + 1),
            ..Build::packing(variant, &binary)
        };
        let other = build_ipk(&scratch(&format!("other-{name}")), &later);
        assert!(read(&first) != read(&other));
        for p in [&first, &second, &other] {
            std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_source_date_epoch_the_time_is_the_last_commits() {
    let Ok(output) = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root())
        .output()
    else {
        eprintln!("no git here: skipped");
        return;
    };
    let Ok(commit_time) = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse::<u64>()
    else {
        eprintln!("not a git checkout: skipped");
        return;
    };
    let dir = scratch("git-time");
    let binary = stand_in(&dir);
    let build = Build {
        epoch: None,
        ..Build::packing(Variant::this_build(), &binary)
    };
    let ipk = build_ipk(&dir, &build);
    let outer = untar(&gunzip(&read(&ipk)));
    assert!(outer.iter().all(|m| m.mtime == commit_time));
    let data = untar(&gunzip(&outer[1].data));
    assert!(data.iter().all(|m| m.mtime == commit_time));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_makefile_and_the_crate_agree() {
    assert_eq!(make_var("PKG_NAME"), "netmeter");
    assert_eq!(make_var("PKG_VERSION"), env!("CARGO_PKG_VERSION"));
    assert_eq!(make_var("PKG_LICENSE"), env!("CARGO_PKG_LICENSE"));
    assert_eq!(make_var("PKG_MAINTAINER"), "$(NETMETER_MAINTAINER)");
    let makefile = read_text(&package_dir().join("Makefile"));
    for line in [
        "PKG_BUILD_DEPENDS:=rust/host",
        "PKG_BUILD_DIR:=$(BUILD_DIR)/$(PKG_NAME)-$(BUILD_VARIANT)/$(PKG_NAME)-$(PKG_VERSION)",
        "  URL:=$(NETMETER_URL)",
        "  DEPENDS:=$(RUST_ARCH_DEPENDS)",
        // Two packages over cargo's features, as OpenWrt builds variants.
        "define Package/netmeter",
        "  VARIANT:=core",
        "  DEFAULT_VARIANT:=1",
        "define Package/netmeter-full",
        "  VARIANT:=full",
        "  PROVIDES:=netmeter",
        "  CONFLICTS:=netmeter",
        "\t$(call Build/Compile/Cargo,,$(if $(filter core,$(BUILD_VARIANT)),--no-default-features))",
        "Package/netmeter-full/conffiles = $(Package/netmeter/conffiles)",
        "Package/netmeter-full/install = $(Package/netmeter/install)",
        "$(eval $(call RustBinPackage,netmeter))",
        "$(eval $(call RustBinPackage,netmeter-full))",
        "$(eval $(call BuildPackage,netmeter))",
        "$(eval $(call BuildPackage,netmeter-full))",
        "\t$(INSTALL_DATA) ./files/netmeter.config $(1)/etc/config/netmeter",
        "\t$(INSTALL_BIN) ./files/netmeter.init $(1)/etc/init.d/netmeter",
        "\t$(INSTALL_DATA) ./files/netmeter.keep $(1)/lib/upgrade/keep.d/netmeter",
    ] {
        assert!(
            makefile.lines().any(|l| l == line),
            "the Makefile lacks {line:?}"
        );
    }
    // menuconfig refuses a cycle of conflicts: the core names none.
    let core = makefile
        .split("define Package/netmeter\n")
        .nth(1)
        .and_then(|rest| rest.split("endef").next())
        .expect("define Package/netmeter");
    assert!(!core.contains("CONFLICTS"), "{core}");
    assert!(!core.contains("PROVIDES"), "{core}");
}

#[test]
fn the_packaged_config_listens_on_loopback_and_the_lan_and_keeps_every_other_default() {
    let path = package_dir().join("files/netmeter.config");
    let text = read_text(&path);
    let config = Config::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    let expected = Config {
        listen: vec![
            "127.0.0.1:9750".parse().unwrap(),
            "192.168.1.1:9750".parse().unwrap(),
        ],
        lan_interface: vec!["br-lan".into()],
        database_directory: "/etc/netmeter".into(),
        spool_directory: "/var/lib/netmeter".into(),
        ..Config::default()
    };
    assert_eq!(config, expected);

    // "A commented option shows its built-in default": each one uncommented
    // changes nothing.
    let mut commented = 0;
    for (i, line) in text.lines().enumerate() {
        let Some(option) = line.strip_prefix("\t#") else {
            continue;
        };
        if !(option.starts_with("option ") || option.starts_with("list ")) {
            continue;
        }
        commented += 1;
        let mut lines: Vec<&str> = text.lines().collect();
        let uncommented = format!("\t{option}");
        lines[i] = &uncommented;
        let changed = Config::parse(&lines.join("\n"), &path)
            .unwrap_or_else(|e| panic!("line {}: {option}: {e}", i + 1));
        assert_eq!(
            changed,
            expected,
            "line {}: {option} is not the default",
            i + 1
        );
    }
    assert!(commented >= 20, "only {commented} commented options");
}

fn shellcheck_available() -> bool {
    Command::new("shellcheck")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_init_and_maintainer_scripts_pass_sh_n_and_shellcheck() {
    let files = package_dir().join("files");
    let scripts = [
        "netmeter.init",
        "netmeter.uci-defaults",
        "netmeter.postinst",
        "netmeter.prerm",
    ]
    .map(|f| files.join(f));
    let shellcheck = shellcheck_available();
    if !shellcheck {
        eprintln!("shellcheck is not installed: sh -n only");
    }
    for script in &scripts {
        let status = Command::new("sh").arg("-n").arg(script).status().unwrap();
        assert!(status.success(), "sh -n {}", script.display());
        if shellcheck {
            let out = Command::new("shellcheck")
                .args(["--shell=sh", "--severity=style"])
                .arg(script)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "shellcheck {}:\n{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

#[test]
fn the_init_script_runs_the_daemon_under_procd_as_the_issue_asks() {
    let init = read_text(&package_dir().join("files/netmeter.init"));
    assert!(init.starts_with("#!/bin/sh /etc/rc.common\n"));
    for line in [
        "USE_PROCD=1",
        "PROG=/usr/bin/netmeter",
        "CONFIG=/etc/config/netmeter",
        "\tprocd_set_param command \"$PROG\" daemon -c \"$CONFIG\"",
        "\tprocd_set_param respawn",
        "\tprocd_set_param stdout 1",
        "\tprocd_set_param stderr 1",
        "\tprocd_add_reload_trigger \"netmeter\"",
        "\tprocd_send_signal netmeter '*' HUP",
    ] {
        assert!(
            init.lines().any(|l| l == line),
            "the init script lacks {line:?}"
        );
    }
    let timeout: u32 = init
        .lines()
        .find_map(|l| l.trim().strip_prefix("procd_set_param term_timeout "))
        .expect("a term_timeout")
        .parse()
        .unwrap();
    assert!(
        timeout >= 20,
        "procd's 5 s default may kill the daemon during its last commit"
    );
}

/// Runs the uci-defaults script with a stand-in `uci` holding the LAN
/// address and the listen list; returns the listen list after it.
fn run_uci_defaults(lan: &str, listen: &str, name: &str) -> String {
    let dir = scratch(name);
    std::fs::write(dir.join("listen"), listen).unwrap();
    let fake_uci = dir.join("uci");
    std::fs::write(
        &fake_uci,
        format!(
            r#"#!/bin/sh
[ "$1" = -q ] && shift
state={dir}/listen
case "$1 $2" in
"get network.lan.ipaddr") [ -n "{lan}" ] && echo "{lan}" || exit 1 ;;
"get netmeter.main.listen") cat "$state" ;;
"del_list netmeter.main.listen="*)
	v=${{2#netmeter.main.listen=}}
	echo $(for w in $(cat "$state"); do [ "$w" = "$v" ] || echo "$w"; done) >"$state" ;;
"add_list netmeter.main.listen="*) echo $(cat "$state") "${{2#netmeter.main.listen=}}" >"$state" ;;
"commit netmeter") touch {dir}/committed ;;
*) echo "unexpected: uci $*" >&2; exit 1 ;;
esac
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&fake_uci)
        .status()
        .unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh")
        .arg(package_dir().join("files/netmeter.uci-defaults"))
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = read_text(&dir.join("listen")).trim().to_string();
    let committed = dir.join("committed").exists();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        committed,
        result != listen.trim(),
        "commits when it changes"
    );
    result
}

#[test]
fn after_install_the_daemon_listens_on_the_routers_own_lan_address() {
    let packaged = "127.0.0.1:9750 192.168.1.1:9750";
    assert_eq!(run_uci_defaults("192.168.1.1", packaged, "same"), packaged);
    assert_eq!(
        run_uci_defaults("10.0.0.1/24 10.0.1.1/24", packaged, "other"),
        "127.0.0.1:9750 10.0.0.1:9750"
    );
    // No static LAN address (a DHCP client): left for the admin.
    assert_eq!(run_uci_defaults("", packaged, "none"), packaged);
    // The admin's own choice is left alone.
    assert_eq!(
        run_uci_defaults("10.0.0.1", "0.0.0.0:9750", "edited"),
        "0.0.0.0:9750"
    );
}
