//! The VM harness: boots a real Debian kernel under qemu (TCG, no KVM, no
//! network device) with an initramfs made here, runs a scenario as the
//! guest's `/init`, and hands back what it printed on the serial console.
//!
//! 1. Packages: the kernel (`linux-image-<flavour>` resolved to its
//!    versioned package with `apt-cache depends`) and `busybox-static` are
//!    fetched with `apt-get download` and unpacked with `dpkg-deb -x`,
//!    never installed. Everything lands in `target/vm-cache/<arch>/` (or
//!    `$NETMETER_VM_CACHE`), so a re-run downloads nothing; a foreign
//!    architecture's apt lists are kept there too, so the machine's apt
//!    and dpkg configuration are never changed. A scenario that needs a
//!    Debian program (`tc` from iproute2) names it in `Vm::programs`: the
//!    program goes in with its dynamic loader and the shared libraries it
//!    needs, and theirs (`DT_NEEDED`, read from the ELF files here), each
//!    looked up in the `Depends` of the package that needs it (only
//!    packages named `*lib*`, fetched when first needed), so nothing else
//!    of those packages is copied.
//! 2. Builds: netmeter and the scenario program (`tests/vm/scenario.rs`,
//!    the example `vm_scenario`, which includes the namespace test bed)
//!    static for the guest (`Arch::build`), in their own target directories
//!    under the cache, so the outer `cargo test` keeps its lock.
//! 3. Initramfs: a newc cpio written here (`Cpio`): busybox, the modules
//!    the scenario needs with their dependencies (read from each module's
//!    own `.modinfo`, so no depmod), the two binaries, the Debian programs
//!    with their libraries at their packages' paths, and a `/init`
//!    script that mounts /proc, /sys, /dev and /tmp, loads the modules,
//!    runs the scenario and powers off.
//! 4. Boot: `qemu-system-*` with `-nic none`, `-no-reboot` and `panic=-1`
//!    (a dying guest ends qemu), the console on the first serial port
//!    captured to a log; a wall-clock limit kills a hung guest.
//!
//! Adding an architecture is a new `Arch` value: its Debian names, qemu
//! machine, console and how to build for it.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the guest prints, one per line (see scenario.rs and `init_script`).
pub const RESULT: &str = "NETMETER-VM-RESULT ";
const BOOTED: &str = "NETMETER-VM-BOOTED";
const EXIT: &str = "NETMETER-VM-EXIT ";
const MODULE_FAILED: &str = "NETMETER-VM-MODULE-FAILED ";

/// A guest architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Debian's amd64 kernel on qemu's q35 PC.
    X86_64,
    /// Debian's mipsel `4kc-malta` kernel on qemu's MIPS Malta board with
    /// a 24Kc CPU (OpenWrt's mipsel_24kc routers' core).
    Mipsel,
}

impl Arch {
    /// Debian's architecture name.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Mipsel => "mipsel",
        }
    }

    /// Debian's multiarch tuple: the library directories' name.
    fn multiarch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Mipsel => "mipsel-linux-gnu",
        }
    }

    /// The metapackage whose dependency names the current kernel package.
    fn kernel_metapackage(self) -> &'static str {
        match self {
            Arch::X86_64 => "linux-image-amd64",
            Arch::Mipsel => "linux-image-4kc-malta",
        }
    }

    pub fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Mipsel => "qemu-system-mipsel",
        }
    }

    /// The Rust target of the static guest builds.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Mipsel => "mipsel-unknown-linux-musl",
        }
    }

    /// The Debian package that provides `qemu()`.
    fn qemu_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Mipsel => "qemu-system-mips",
        }
    }

    fn console(self) -> &'static str {
        "ttyS0"
    }

    /// qemu's machine arguments.
    fn machine_args(self) -> Vec<String> {
        let args: &[&str] = match self {
            Arch::X86_64 => &[
                "-M",
                "q35",
                "-accel",
                "tcg,thread=multi",
                "-cpu",
                "max",
                "-smp",
                "2",
                "-m",
                "1024",
            ],
            // The Malta kernel addresses 256 MB without highmem.
            Arch::Mipsel => &["-M", "malta", "-cpu", "24Kc", "-m", "256"],
        };
        args.iter().map(|a| a.to_string()).collect()
    }

    /// apt options for this architecture's packages: none for the
    /// machine's own; for a foreign one, apt's lists and cache kept under
    /// the VM cache with this as the only architecture, so the machine's
    /// dpkg and apt configuration stay as they are.
    fn apt_options(self, cache: &Path) -> Vec<String> {
        if self.debian() == host_debian_arch() {
            return Vec::new();
        }
        let apt = cache.join("apt");
        vec![
            format!("APT::Architecture={}", self.debian()),
            format!("APT::Architectures={}", self.debian()),
            format!("Dir::State::Lists={}", apt.join("lists").display()),
            format!("Dir::Cache={}", apt.join("cache").display()),
            "Dir::State::status=/dev/null".to_string(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect()
    }

    /// Builds netmeter and the scenario program static for the guest:
    /// (netmeter, vm_scenario).
    fn build(self, cache: &Path) -> Result<(PathBuf, PathBuf), Unavailable> {
        let target = self.rust_target();
        match self {
            Arch::X86_64 => {
                let dir = cache.join("cargo");
                let mut cmd = Command::new(cargo());
                cmd.env("CARGO_TARGET_DIR", &dir)
                    .args(["build", "--release", "--target", target])
                    .args(["--bin", "netmeter", "--example", "vm_scenario"]);
                build(
                    &mut cmd,
                    &cache.join("build-amd64.log"),
                    &format!("is the target installed (rustup target add {target})?"),
                )?;
                let out = dir.join(target).join("release");
                Ok((out.join("netmeter"), out.join("examples/vm_scenario")))
            }
            Arch::Mipsel => {
                // The router build (cross/, README "Size"): nightly with std
                // rebuilt, panic=immediate-abort, through cargo-zigbuild for
                // the musl C parts. relocation-model=static: static-PIE
                // MIPS binaries crash under qemu. The scenario program is
                // built beside it with panic=abort, so its panics explain.
                let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
                let path = std::env::join_paths(std::iter::once(venv.clone()).chain(
                    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
                ))
                .unwrap();
                if which_in(&path, "cargo-zigbuild").is_none() {
                    return Err(Unavailable(format!(
                        "cargo-zigbuild is not installed (python3 -m venv .venv && \
                         .venv/bin/pip install ziglang cargo-zigbuild; looked in {} and PATH)",
                        venv.display()
                    )));
                }
                let mut out = Vec::new();
                for (what, extra_flags, artifact) in [
                    (
                        "router",
                        " -Zunstable-options -Cpanic=immediate-abort",
                        ["--bin", "netmeter"],
                    ),
                    ("scenario", "", ["--example", "vm_scenario"]),
                ] {
                    let dir = cache.join(format!("cargo-mipsel-{what}"));
                    let mut cmd = Command::new("cargo");
                    cmd.env("PATH", &path)
                        .env("CARGO_TARGET_DIR", &dir)
                        .env(
                            "RUSTFLAGS",
                            format!("-C relocation-model=static{extra_flags}"),
                        )
                        .args(["+nightly", "zigbuild", "--release", "--target", target])
                        .arg("-Zbuild-std=std,panic_abort")
                        .args(artifact);
                    build(
                        &mut cmd,
                        &cache.join(format!("build-mipsel-{what}.log")),
                        "needs the nightly toolchain with rust-src \
                         (rustup component add rust-src --toolchain nightly)",
                    )?;
                    let built = dir.join(target).join("release");
                    out.push(if what == "router" {
                        built.join("netmeter")
                    } else {
                        built.join("examples/vm_scenario")
                    });
                }
                Ok((out[0].clone(), out[1].clone()))
            }
        }
    }
}

/// Runs a build in the project; Unavailable with `hint` and the log if it fails.
fn build(cmd: &mut Command, log: &Path, hint: &str) -> Result<(), Unavailable> {
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    logged(cmd, log).map_err(|e| {
        Unavailable(format!(
            "a static guest build failed ({e}); {hint} Log: {}",
            log.display()
        ))
    })
}

/// Why a VM cannot be had on this machine (no qemu, no package, …).
#[derive(Debug)]
pub struct Unavailable(pub String);

/// What one boot gave.
pub struct Run {
    /// The serial console, whole.
    pub log: String,
    pub log_path: PathBuf,
    /// The scenario's result lines, parsed.
    pub results: Vec<Value>,
    /// The kernel package booted (e.g. linux-image-6.1.0-56-amd64).
    pub kernel_package: String,
    /// Seconds spent: fetching and unpacking packages, building, writing
    /// the initramfs, booting until poweroff.
    pub timings: BTreeMap<&'static str, f64>,
}

impl Run {
    /// The result of one case; panics with the console log if missing.
    pub fn result(&self, case: &str) -> &Value {
        self.results
            .iter()
            .find(|r| r["case"] == case)
            .unwrap_or_else(|| {
                panic!(
                    "the guest printed no result for {case}; console ({}):\n{}",
                    self.log_path.display(),
                    tail(&self.log, 120)
                )
            })
    }
}

/// What to boot: the architecture, the kernel modules the scenario needs
/// (dependencies are added), the Debian programs it runs, and the
/// scenario's arguments.
pub struct Vm<'a> {
    pub arch: Arch,
    pub modules: &'a [&'a str],
    /// (package, path in it): e.g. `("iproute2", "sbin/tc")`, in the guest
    /// at that path (on its PATH) with the libraries it needs.
    pub programs: &'a [(&'a str, &'a str)],
    pub cases: &'a [&'a str],
    /// The longest the guest may run.
    pub limit: Duration,
}

impl Vm<'_> {
    /// Boots it. Err when qemu or a package cannot be had here; every
    /// other problem (a guest that fails or hangs) panics.
    pub fn run(&self) -> Result<Run, Unavailable> {
        let arch = self.arch;
        let mut timings = BTreeMap::new();
        let qemu = which(arch.qemu()).ok_or_else(|| {
            Unavailable(format!(
                "{} is not installed (apt-get install --no-install-recommends {})",
                arch.qemu(),
                arch.qemu_package()
            ))
        })?;
        for tool in ["apt-get", "apt-cache", "dpkg-deb"] {
            which(tool).ok_or_else(|| {
                Unavailable(format!("{tool} is missing: the harness needs Debian's apt"))
            })?;
        }
        let cache = cache_root();
        let arch_cache = cache.join(arch.debian());
        std::fs::create_dir_all(&arch_cache).unwrap();

        let t = Instant::now();
        let kernel_package = kernel_package(arch, &arch_cache)?;
        let kernel_dir = unpacked(arch, &kernel_package, &arch_cache)?;
        let busybox_dir = unpacked(arch, "busybox-static", &arch_cache)?;
        let mut programs = Programs::new(arch, &arch_cache);
        for (package, path) in self.programs {
            programs.add(package, path)?;
        }
        timings.insert("packages", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let (netmeter, scenario) = arch.build(&cache)?;
        timings.insert("build", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let release = kernel_release(&kernel_dir)?;
        let modules_root = kernel_dir.join("lib/modules").join(&release);
        let modules = load_order(&modules_root, self.modules).map_err(Unavailable)?;
        // One directory per scenario, replaced by its next run.
        let run_dir = arch_cache.join(format!("run-{}", self.cases.join("+")));
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir).unwrap();
        let initrd = run_dir.join("initramfs.cpio");
        let mut cpio = Cpio::new();
        for dir in ["bin", "dev", "proc", "sys", "tmp", "modules"] {
            cpio.dir(dir);
        }
        cpio.char_device("dev/console", 5, 1);
        cpio.file(
            "bin/busybox",
            &read(&busybox_dir.join("bin/busybox")),
            0o755,
        );
        cpio.symlink("bin/sh", "busybox");
        cpio.file("bin/netmeter", &read(&netmeter), 0o755);
        cpio.file("bin/vm_scenario", &read(&scenario), 0o755);
        for (guest, host, mode) in &programs.files {
            cpio.file(guest, &read(host), *mode);
        }
        let mut names = Vec::new();
        for (i, path) in modules.iter().enumerate() {
            let name = format!(
                "modules/{i:02}-{}",
                path.file_name().unwrap().to_string_lossy()
            );
            cpio.file(&name, &read(path), 0o644);
            names.push(format!("/{name}"));
        }
        cpio.file("init", init_script(&names, self.cases).as_bytes(), 0o755);
        std::fs::write(&initrd, cpio.finish()).unwrap();
        let kernel = boot_image(arch, &kernel_dir, &release);
        timings.insert("initramfs", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let log_path = run_dir.join("console.log");
        let log_file = std::fs::File::create(&log_path).unwrap();
        let append = format!("console={} quiet panic=-1", arch.console());
        let mut child = Command::new(qemu)
            .args(arch.machine_args())
            .args(["-nodefaults", "-display", "none", "-nic", "none"])
            .args(["-serial", "stdio", "-no-reboot"])
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", &append])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", arch.qemu()));
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if t.elapsed() > self.limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        timings.insert("boot", t.elapsed().as_secs_f64());
        let log = String::from_utf8_lossy(&read(&log_path)).into_owned();
        let show = || format!("console ({}):\n{}", log_path.display(), tail(&log, 150));
        let Some(status) = status else {
            panic!(
                "the guest ran over {:?} and was killed; {}",
                self.limit,
                show()
            );
        };
        assert!(status.success(), "qemu failed ({status}); {}", show());
        assert!(
            log.contains(BOOTED),
            "the guest never reached /init; {}",
            show()
        );
        let failed: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split_once(MODULE_FAILED).map(|(_, m)| m.trim()))
            .collect();
        assert!(
            failed.is_empty(),
            "modules failed to load: {failed:?}; {}",
            show()
        );
        let exit = log
            .lines()
            .find_map(|l| l.split_once(EXIT).map(|(_, c)| c.trim()));
        assert_eq!(exit, Some("0"), "the scenario program failed; {}", show());
        let results = log
            .lines()
            .filter_map(|l| l.split_once(RESULT).map(|(_, j)| j))
            .map(|j| {
                serde_json::from_str(j)
                    .unwrap_or_else(|e| panic!("a result line is not JSON ({e}): {j}"))
            })
            .collect();
        Ok(Run {
            log,
            log_path,
            results,
            kernel_package,
            timings,
        })
    }
}

/// In CI (`CI=true`) a VM that cannot be had is a failure with the reason;
/// elsewhere the test says loudly that it skipped, and why.
pub fn unavailable(test: &str, why: Unavailable) {
    let msg = format!(
        "{test}: cannot boot a VM here: {}. On Debian: apt-get update && \
         apt-get install --no-install-recommends qemu-system-x86 qemu-system-mips (.ci/run does this).",
        why.0
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    loud(&format!("SKIPPED (CI is not true): {msg}"));
}

/// A banner straight to stderr: the test harness captures eprintln! of
/// tests that pass, and this must be seen.
pub fn loud(text: &str) {
    let bar = "!".repeat(72);
    let body: Vec<String> = text.lines().map(|l| format!("!!! {l}")).collect();
    let _ = writeln!(std::io::stderr(), "\n{bar}\n{}\n{bar}\n", body.join("\n"));
}

/// `target/vm-cache`, beside the test's own target directory, or
/// `NETMETER_VM_CACHE` (to share the downloads between clones).
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("NETMETER_VM_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .join("vm-cache")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn which(program: &str) -> Option<PathBuf> {
    which_in(&std::env::var_os("PATH")?, program)
}

fn which_in(paths: &std::ffi::OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn host_debian_arch() -> String {
    Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a command with its output in `log`; Err with the log's tail.
fn logged(cmd: &mut Command, log: &Path) -> Result<(), String> {
    let file = std::fs::File::create(log).unwrap();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        Err(format!("{cmd:?}: {status}\n{}", tail(&text, 30)))
    }
}

/// The versioned kernel package the metapackage depends on now; offline,
/// the newest one already in the cache.
fn kernel_package(arch: Arch, cache: &Path) -> Result<String, Unavailable> {
    let options = arch.apt_options(cache);
    if !options.is_empty() {
        refresh_private_lists(&options, cache);
    }
    let out = Command::new("apt-cache")
        .args(&options)
        .args(["depends", "--no-recommends", "--no-suggests"])
        .arg(arch.kernel_metapackage())
        .output();
    let named = out.ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .filter(|p| p.starts_with("linux-image-"))
                .map(|p| p.split(':').next().unwrap().to_string())
        })
    });
    if let Some(name) = named {
        return Ok(name);
    }
    let mut cached: Vec<String> = std::fs::read_dir(cache.join("debs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let package = name.split('_').next()?.to_string();
            (package.starts_with("linux-image-") && package != arch.kernel_metapackage())
                .then_some(package)
        })
        .collect();
    cached.sort();
    cached.pop().ok_or_else(|| {
        Unavailable(format!(
            "apt-cache does not know {} ({}) and nothing is cached (run apt-get update)",
            arch.kernel_metapackage(),
            arch.debian()
        ))
    })
}

/// A foreign architecture's package lists, fetched into the cache when
/// missing or a day old. A failure leaves the old lists (or the cached
/// packages) to be used.
fn refresh_private_lists(options: &[String], cache: &Path) {
    let apt = cache.join("apt");
    let stamp = apt.join("updated");
    let fresh = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .is_ok_and(|t| {
            t.elapsed()
                .is_ok_and(|age| age < Duration::from_secs(86_400))
        });
    if fresh {
        return;
    }
    for dir in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(apt.join(dir)).unwrap();
    }
    let log = cache.join("apt-update.log");
    if logged(Command::new("apt-get").args(options).arg("update"), &log).is_ok() {
        std::fs::write(&stamp, b"").unwrap();
    }
}

/// The package fetched (once) and unpacked (once) under the cache.
fn unpacked(arch: Arch, package: &str, cache: &Path) -> Result<PathBuf, Unavailable> {
    let dir = cache.join("unpacked").join(package);
    if dir.is_dir() {
        return Ok(dir);
    }
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let find = || {
        std::fs::read_dir(&debs).ok().and_then(|entries| {
            entries.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{package}_"))
            })
        })
    };
    let deb = match find() {
        Some(deb) => deb,
        None => {
            let log = cache.join(format!("download-{package}.log"));
            logged(
                Command::new("apt-get")
                    .current_dir(&debs)
                    .args(arch.apt_options(cache))
                    .args(["download", package]),
                &log,
            )
            .map_err(|e| Unavailable(format!("apt-get download {package} failed: {e}")))?;
            find().ok_or_else(|| Unavailable(format!("apt-get download gave no {package}")))?
        }
    };
    let partial = cache.join("unpacked").join(format!("{package}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).unwrap();
    logged(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial),
        &cache.join(format!("unpack-{package}.log")),
    )
    .map_err(|e| Unavailable(format!("dpkg-deb -x {}: {e}", deb.display())))?;
    std::fs::rename(&partial, &dir).unwrap();
    Ok(dir)
}

/// The one kernel release under `lib/modules`.
fn kernel_release(kernel_dir: &Path) -> Result<String, Unavailable> {
    let releases: Vec<String> = std::fs::read_dir(kernel_dir.join("lib/modules"))
        .map_err(|e| Unavailable(format!("no lib/modules in the kernel package: {e}")))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match releases.as_slice() {
        [one] => Ok(one.clone()),
        other => Err(Unavailable(format!(
            "expected one kernel release, found {other:?}"
        ))),
    }
}

/// What qemu boots: `vmlinux` extracted from an x86 bzImage (PVH entry,
/// faster), else the package's image as it is.
fn boot_image(arch: Arch, kernel_dir: &Path, release: &str) -> PathBuf {
    let image = kernel_dir.join("boot").join(format!("vmlinuz-{release}"));
    if arch != Arch::X86_64 {
        return image;
    }
    let vmlinux = kernel_dir.join("boot").join(format!("vmlinux-{release}"));
    if vmlinux.is_file() || extract_vmlinux(&image, &vmlinux) {
        vmlinux
    } else {
        image
    }
}

/// The xz stream inside a bzImage, decompressed with `xz` (as the
/// kernel's scripts/extract-vmlinux does); false when that fails.
fn extract_vmlinux(bz_image: &Path, out: &Path) -> bool {
    const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
    let data = read(bz_image);
    let Some(start) = data.windows(XZ_MAGIC.len()).position(|w| w == XZ_MAGIC) else {
        return false;
    };
    let Ok(mut child) = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let mut stdin = child.stdin.take().unwrap();
    let payload = data[start..].to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&payload);
    });
    let output = child.wait_with_output();
    let _ = writer.join();
    match output {
        Ok(o) if o.stdout.starts_with(b"\x7fELF") => {
            let partial = out.with_extension("partial");
            std::fs::write(&partial, &o.stdout).is_ok() && std::fs::rename(&partial, out).is_ok()
        }
        _ => false,
    }
}

/// The guest's `/init`: a busybox shell script.
fn init_script(modules: &[String], cases: &[&str]) -> String {
    let mut s = String::from(
        "#!/bin/busybox sh\n\
         export PATH=/bin:/sbin:/usr/bin:/usr/sbin\n\
         busybox mount -t proc proc /proc\n\
         busybox mount -t sysfs sys /sys\n\
         busybox mount -t devtmpfs dev /dev\n\
         busybox mount -t tmpfs tmp /tmp\n",
    );
    for m in modules {
        s.push_str(&format!(
            "busybox insmod {m} || echo \"{MODULE_FAILED}{m}\"\n"
        ));
    }
    s.push_str(&format!(
        "echo \"{BOOTED} $(busybox uname -r)\"\n\
         NETMETER_BINARY=/bin/netmeter /bin/vm_scenario {}\n\
         echo \"{EXIT}$?\"\n\
         busybox sync\n\
         busybox poweroff -f\n",
        cases.join(" ")
    ));
    s
}

/// The module files to load, dependencies first, for the wanted modules
/// (names as in `lsmod`). Dependencies come from each module's own
/// `.modinfo` (`depends=`), so no depmod/modules.dep is needed.
pub fn load_order(modules_root: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut index = BTreeMap::new();
    let mut stack = vec![modules_root.join("kernel")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.file_name().unwrap().to_str() {
                if let Some(stem) = name.strip_suffix(".ko") {
                    index.insert(stem.replace('-', "_"), path.clone());
                }
            }
        }
    }
    let mut order = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        seen: &mut std::collections::BTreeSet<String>,
        order: &mut Vec<PathBuf>,
        chain: &mut Vec<String>,
    ) -> Result<(), String> {
        let name = name.replace('-', "_");
        if seen.contains(&name) {
            return Ok(());
        }
        if chain.contains(&name) {
            return Err(format!("module dependency cycle: {chain:?} → {name}"));
        }
        let path = index
            .get(&name)
            .ok_or_else(|| format!("no module {name} in the kernel package (built in?)"))?;
        chain.push(name.clone());
        let info = std::fs::read(path).map_err(|e| e.to_string())?;
        // Soft dependencies name a module or an algorithm (`crc32c`, which
        // crc32c_generic provides); one that is neither is left out.
        for soft in modinfo(&info, "softdep")
            .iter()
            .flat_map(|v| softdep_pre(v))
        {
            if let Some(found) = [soft.clone(), format!("{soft}_generic")]
                .into_iter()
                .find(|n| index.contains_key(&n.replace('-', "_")))
            {
                visit(&found, index, seen, order, chain)?;
            }
        }
        for dep in module_depends(&info) {
            visit(&dep, index, seen, order, chain)?;
        }
        chain.pop();
        seen.insert(name);
        order.push(path.clone());
        Ok(())
    }
    for name in wanted {
        visit(name, &index, &mut seen, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}

/// A module's `depends=` from its `.modinfo`.
pub fn module_depends(ko: &[u8]) -> Vec<String> {
    modinfo(ko, "depends")
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

/// The modules a `softdep=pre: a b post: c` value loads first.
fn softdep_pre(value: &str) -> Vec<String> {
    let mut pre = false;
    let mut out = Vec::new();
    for word in value.split_whitespace() {
        match word {
            "pre:" => pre = true,
            "post:" => pre = false,
            name if pre => out.push(name.to_string()),
            _ => {}
        }
    }
    out
}

/// Every value of `key` in a module's `.modinfo` strings (NUL-separated
/// `key=value`, so a key counts only right after a NUL).
pub fn modinfo(ko: &[u8], key: &str) -> Vec<String> {
    let needle = format!("\0{key}=");
    let needle = needle.as_bytes();
    let mut values = Vec::new();
    let mut at = 0;
    while let Some(pos) = ko[at..].windows(needle.len()).position(|w| w == needle) {
        let start = at + pos + needle.len();
        let end = ko[start..]
            .iter()
            .position(|&b| b == 0)
            .map_or(ko.len(), |e| start + e);
        values.push(String::from_utf8_lossy(&ko[start..end]).into_owned());
        at = end;
    }
    values
}

/// A newc ("070701") cpio archive, as the kernel unpacks an initramfs.
/// The kernel creates no missing directories, so every entry's parents
/// are written before it (once each).
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: std::collections::BTreeSet<String>,
}

impl Default for Cpio {
    fn default() -> Self {
        Self::new()
    }
}

impl Cpio {
    pub fn new() -> Cpio {
        Cpio {
            out: Vec::new(),
            ino: 1,
            dirs: Default::default(),
        }
    }

    pub fn dir(&mut self, path: &str) {
        self.parents(path);
        if self.dirs.insert(path.to_string()) {
            self.entry(path, 0o040_755, &[], (0, 0));
        }
    }

    pub fn file(&mut self, path: &str, data: &[u8], perm: u32) {
        self.parents(path);
        self.entry(path, 0o100_000 | perm, data, (0, 0));
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        self.entry(path, 0o120_777, target.as_bytes(), (0, 0));
    }

    pub fn char_device(&mut self, path: &str, major: u32, minor: u32) {
        self.parents(path);
        self.entry(path, 0o020_600, &[], (major, minor));
    }

    /// The directories above `path` not yet written.
    fn parents(&mut self, path: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & 0o170_000 == 0o040_000 { 2 } else { 1 },
            0, // mtime
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.out
    }
}

/// The Debian programs a scenario runs, with everything the dynamic
/// loader will look for: (path in the guest, file here, mode).
pub struct Programs<'a> {
    arch: Arch,
    cache: &'a Path,
    pub files: Vec<(String, PathBuf, u32)>,
    /// Sonames and interpreters placed so far.
    placed: std::collections::BTreeSet<String>,
    /// Each package's `Depends` (and `Pre-Depends`), as apt lists them.
    depends: BTreeMap<String, Vec<String>>,
}

impl<'a> Programs<'a> {
    pub fn new(arch: Arch, cache: &'a Path) -> Programs<'a> {
        Programs {
            arch,
            cache,
            files: Vec::new(),
            placed: Default::default(),
            depends: BTreeMap::new(),
        }
    }

    /// `path` of `package`, its interpreter and its libraries, recursively.
    pub fn add(&mut self, package: &str, path: &str) -> Result<(), Unavailable> {
        let root = unpacked(self.arch, package, self.cache)?;
        // Releases since trixie ship /usr/sbin/tc where bookworm has /sbin/tc.
        let (path, file) = [path.to_string(), format!("usr/{path}")]
            .into_iter()
            .find_map(|p| resolve_in(&root, &p).map(|f| (p, f)))
            .ok_or_else(|| Unavailable(format!("{package} has no file {path} or usr/{path}")))?;
        self.files.push((path, file.clone(), 0o755));
        self.dependencies(package, &file)
    }

    /// What the ELF file `file` of `package` needs, placed with theirs.
    fn dependencies(&mut self, package: &str, file: &Path) -> Result<(), Unavailable> {
        let elf = ElfDynamic::read(&read(file))
            .map_err(|e| Unavailable(format!("{}: {e}", file.display())))?;
        if let Some(interp) = elf.interp {
            let rel = interp.trim_start_matches('/').to_string();
            if self.placed.insert(rel.clone()) {
                let (_, found) = self.find(package, &interp, |root| resolve_in(root, &rel))?;
                self.files.push((rel, found, 0o755));
            }
        }
        let dirs = [
            format!("lib/{}", self.arch.multiarch()),
            format!("usr/lib/{}", self.arch.multiarch()),
            "lib".to_string(),
            "usr/lib".to_string(),
        ];
        for soname in elf.needed {
            if !self.placed.insert(soname.clone()) {
                continue;
            }
            let (owner, (guest, found)) = self.find(package, &soname, |root| {
                dirs.iter().find_map(|d| {
                    let rel = format!("{d}/{soname}");
                    resolve_in(root, &rel).map(|f| (rel, f))
                })
            })?;
            self.files.push((guest, found.clone(), 0o644));
            self.dependencies(&owner, &found)?;
        }
        Ok(())
    }

    /// The first of `package` and its library dependencies in which
    /// `lookup` finds `what`: those whose name begins like the soname
    /// first (libbpf.so.1 in libbpf1), then the rest in apt's order, each
    /// fetched only when reached.
    fn find<T>(
        &mut self,
        package: &str,
        what: &str,
        lookup: impl Fn(&Path) -> Option<T>,
    ) -> Result<(String, T), Unavailable> {
        let stem = what
            .rsplit('/')
            .next()
            .unwrap()
            .split(".so")
            .next()
            .unwrap()
            .to_string();
        let mut candidates: Vec<String> = self
            .depends_of(package)
            .into_iter()
            .filter(|d| d.contains("lib"))
            .collect();
        // Debian names a library's package after its soname: libbpf1.
        candidates.sort_by_key(|d| {
            !d.strip_prefix(&stem)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '-'))
        });
        candidates.insert(0, package.to_string());
        for candidate in &candidates {
            let root = unpacked(self.arch, candidate, self.cache)?;
            if let Some(found) = lookup(&root) {
                return Ok((candidate.clone(), found));
            }
        }
        Err(Unavailable(format!(
            "{what}, which {package} needs, is in none of {candidates:?}{}",
            if candidates.len() == 1 {
                " (apt-cache depends listed none: apt-get update?)"
            } else {
                ""
            }
        )))
    }

    fn depends_of(&mut self, package: &str) -> Vec<String> {
        if let Some(known) = self.depends.get(package) {
            return known.clone();
        }
        let out = Command::new("apt-cache")
            .args(self.arch.apt_options(self.cache))
            .args(["depends", "--no-recommends", "--no-suggests"])
            .args(["--no-conflicts", "--no-breaks", "--no-replaces"])
            .args(["--no-enhances", package])
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let list = parse_depends(&text);
        self.depends.insert(package.to_string(), list.clone());
        list
    }
}

/// The real packages `apt-cache depends` lists as Depends or PreDepends
/// (alternatives included; virtual ones, in <>, left out), in its order.
pub fn parse_depends(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim_start().trim_start_matches('|');
        let Some(name) = line
            .strip_prefix("Depends: ")
            .or_else(|| line.strip_prefix("PreDepends: "))
        else {
            continue;
        };
        let name = name.trim();
        if name.starts_with('<') {
            continue;
        }
        let name = name.split(':').next().unwrap().to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// `rel` under `root`, following symbolic links as the guest will (an
/// absolute target is taken from `root`): the file's path here, or None.
pub fn resolve_in(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut rel = PathBuf::from(rel.trim_start_matches('/'));
    for _ in 0..40 {
        let here = root.join(&rel);
        let meta = std::fs::symlink_metadata(&here).ok()?;
        if !meta.file_type().is_symlink() {
            return meta.is_file().then_some(here);
        }
        let target = std::fs::read_link(&here).ok()?;
        let joined = if target.is_absolute() {
            target
        } else {
            rel.parent().unwrap_or(Path::new("")).join(target)
        };
        let mut normal = PathBuf::new();
        for part in joined.components() {
            match part {
                std::path::Component::Normal(p) => normal.push(p),
                std::path::Component::ParentDir => {
                    normal.pop();
                }
                _ => {}
            }
        }
        rel = normal;
    }
    None
}

/// What the dynamic loader reads of an ELF file: its interpreter
/// (`PT_INTERP`) and the libraries it needs (`DT_NEEDED`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ElfDynamic {
    pub interp: Option<String>,
    pub needed: Vec<String>,
}

impl ElfDynamic {
    /// Either class, either byte order; from the program headers, so a
    /// stripped file reads the same.
    pub fn read(b: &[u8]) -> Result<ElfDynamic, String> {
        if b.get(..4) != Some(b"\x7fELF") {
            return Err("not an ELF file".into());
        }
        let wide = match b.get(4) {
            Some(1) => false,
            Some(2) => true,
            other => return Err(format!("ELF class {other:?}")),
        };
        let big = b.get(5) == Some(&2);
        let num = |at: usize, len: usize| -> Result<u64, String> {
            let bytes = b
                .get(at..at + len)
                .ok_or_else(|| format!("truncated at {at}"))?;
            let mut v = 0u64;
            for i in 0..len {
                let byte = if big { bytes[i] } else { bytes[len - 1 - i] };
                v = v << 8 | byte as u64;
            }
            Ok(v)
        };
        let word = if wide { 8 } else { 4 };
        let (phoff, phentsize, phnum) = if wide {
            (num(0x20, 8)?, num(0x36, 2)?, num(0x38, 2)?)
        } else {
            (num(0x1c, 4)?, num(0x2a, 2)?, num(0x2c, 2)?)
        };
        // (type, offset, vaddr, filesz) of each program header.
        let mut headers = Vec::new();
        for i in 0..phnum {
            let h = (phoff + i * phentsize) as usize;
            headers.push(if wide {
                (num(h, 4)?, num(h + 8, 8)?, num(h + 16, 8)?, num(h + 32, 8)?)
            } else {
                (num(h, 4)?, num(h + 4, 4)?, num(h + 8, 4)?, num(h + 16, 4)?)
            });
        }
        let c_string = |at: u64| -> Result<String, String> {
            let rest = b.get(at as usize..).ok_or("string out of the file")?;
            let end = rest.iter().position(|&c| c == 0).ok_or("unterminated")?;
            Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        let mut out = ElfDynamic::default();
        const PT_LOAD: u64 = 1;
        const PT_DYNAMIC: u64 = 2;
        const PT_INTERP: u64 = 3;
        if let Some(&(_, offset, _, _)) = headers.iter().find(|h| h.0 == PT_INTERP) {
            out.interp = Some(c_string(offset)?);
        }
        let Some(&(_, dyn_off, _, dyn_size)) = headers.iter().find(|h| h.0 == PT_DYNAMIC) else {
            return Ok(out); // static
        };
        const DT_NEEDED: u64 = 1;
        const DT_STRTAB: u64 = 5;
        let mut needed = Vec::new();
        let mut strtab = None;
        let mut at = dyn_off;
        while at + 2 * word <= dyn_off + dyn_size {
            let (tag, val) = (
                num(at as usize, word as usize)?,
                num((at + word) as usize, word as usize)?,
            );
            match tag {
                0 => break,
                DT_NEEDED => needed.push(val),
                DT_STRTAB => strtab = Some(val),
                _ => {}
            }
            at += 2 * word;
        }
        // DT_STRTAB is an address: the file offset of the load segment holding it.
        let strtab = strtab.ok_or("no DT_STRTAB")?;
        let strtab_off = headers
            .iter()
            .filter(|h| h.0 == PT_LOAD)
            .find(|&&(_, _, vaddr, size)| strtab >= vaddr && strtab < vaddr + size)
            .map(|&(_, offset, vaddr, _)| strtab - vaddr + offset)
            .ok_or("DT_STRTAB outside every load segment")?;
        for n in needed {
            out.needed.push(c_string(strtab_off + n)?);
        }
        Ok(out)
    }
}
