//! The test bed: throwaway networks in fresh user + network namespaces.
//!
//! Each namespace is held by an *agent*: this test binary executed again
//! with `NETMETER_TESTBED_AGENT` set, which an `.init_array` hook catches
//! before the test harness starts. The agent creates (or joins) the
//! namespaces in `pre_exec`, then obeys one-line commands on stdin: build
//! links and addresses over rtnetlink, install NAT over nf_tables, move
//! exact amounts of TCP/UDP traffic, read its own interface counters. No
//! external tool is used, nothing outside the test's namespaces is touched,
//! and an agent dies with its test (stdin closes; PR_SET_PDEATHSIG).
//!
//! Works as root and as an ordinary user where unprivileged user namespaces
//! are allowed: the first agent maps the caller's uid to root in a new user
//! namespace, and every other namespace of the network is owned by it.
#![allow(dead_code)]

mod agent;
mod bench;
mod fw4;
mod hooks;
pub mod http;
pub mod netmeter;
mod ops;
pub mod topology;
mod upstream;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

#[allow(unused_imports)]
pub use topology::{LanHost, Network, Topology};

const AGENT_ENV: &str = "NETMETER_TESTBED_AGENT";

#[used]
#[unsafe(link_section = ".init_array")]
static AGENT_ENTRY: extern "C" fn() = agent_entry;

extern "C" fn agent_entry() {
    if let Some(name) = std::env::var_os(AGENT_ENV) {
        let code = agent::run(&name.to_string_lossy());
        std::process::exit(code);
    }
}

/// Says loudly why the test bed cannot run here; in CI that is a failure.
pub fn require_namespaces() {
    if let Err(e) = probe_user_namespace() {
        let msg = format!(
            "the namespace test bed needs user + network namespaces, which this machine refuses ({e}). \
             Enable them (sysctl kernel.unprivileged_userns_clone=1 or run as root)."
        );
        panic!("{msg}");
    }
}

fn probe_user_namespace() -> std::io::Result<()> {
    let host = Host::spawn("probe", None)?;
    host.call("ping").map(|_| ())
}

/// One namespace with its agent.
pub struct Host {
    pub name: String,
    child: Child,
    io: std::sync::Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    userns: File,
    netns: File,
}

impl Host {
    /// Starts an agent in a new network namespace: in a new user namespace
    /// when `owner` is None, else inside `owner`'s user namespace.
    pub fn spawn(name: &str, owner: Option<&Host>) -> std::io::Result<Host> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.env(AGENT_ENV, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match owner {
            None => {
                let uid = unsafe { libc::geteuid() };
                let gid = unsafe { libc::getegid() };
                let uid_map = format!("0 {uid} 1\n");
                let gid_map = format!("0 {gid} 1\n");
                // SAFETY: only async-signal-safe syscalls between fork and exec.
                unsafe {
                    cmd.pre_exec(move || {
                        die_with_parent()?;
                        check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET))?;
                        write_file(c"/proc/self/setgroups", b"deny")?;
                        write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
                        write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
                        Ok(())
                    });
                }
            }
            Some(owner) => {
                let userns = owner.userns.as_raw_fd();
                // SAFETY: as above.
                unsafe {
                    cmd.pre_exec(move || {
                        die_with_parent()?;
                        check(libc::setns(userns, libc::CLONE_NEWUSER))?;
                        check(libc::unshare(libc::CLONE_NEWNET))?;
                        Ok(())
                    });
                }
            }
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let userns = File::open(format!("/proc/{pid}/ns/user"))?;
        let netns = File::open(format!("/proc/{pid}/ns/net"))?;
        let host = Host {
            name: name.to_string(),
            child,
            io: std::sync::Mutex::new((stdin, stdout)),
            userns,
            netns,
        };
        host.call("ping")?;
        Ok(host)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line to the agent; its `ok …` answer, or an error.
    pub fn call(&self, line: &str) -> std::io::Result<String> {
        let mut io = self.io.lock().unwrap();
        writeln!(io.0, "{line}")?;
        io.0.flush()?;
        let mut answer = String::new();
        if io.1.read_line(&mut answer)? == 0 {
            return Err(std::io::Error::other(format!(
                "agent {} died while running '{line}'",
                self.name
            )));
        }
        let answer = answer.trim_end();
        match answer.strip_prefix("ok") {
            Some(rest) => Ok(rest.trim_start().to_string()),
            None => Err(std::io::Error::other(format!(
                "{}: '{line}' failed: {}",
                self.name,
                answer.strip_prefix("err ").unwrap_or(answer)
            ))),
        }
    }

    /// Like `call`, panicking with the agent's message on failure.
    pub fn run(&self, line: &str) -> String {
        self.call(line).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A command that runs inside this host's namespaces, as root of the
    /// test's user namespace (so with CAP_NET_ADMIN over its network).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.command_in(program, true)
    }

    /// Like `command`, but the program runs with no capabilities at all
    /// (as an ordinary user would on the router), and cannot regain them.
    pub fn command_without_privileges(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.command_in(program, false)
    }

    /// Like `command`, but the program runs as uid and gid `id` in a user
    /// namespace of its own inside the test's (so an ordinary user, not
    /// root, to whatever looks at its uid), with no capabilities over this
    /// host's network.
    pub fn command_as_user(&self, program: impl AsRef<std::ffi::OsStr>, id: u32) -> Command {
        let mut cmd = Command::new(program);
        let userns = self.userns.as_raw_fd();
        let netns = self.netns.as_raw_fd();
        // Formatted before the fork: only syscalls after it.
        let map = format!("{id} 0 1\n").into_bytes();
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                die_with_parent()?;
                check(libc::setns(userns, libc::CLONE_NEWUSER))?;
                check(libc::setns(netns, libc::CLONE_NEWNET))?;
                check(libc::unshare(libc::CLONE_NEWUSER))?;
                for (file, text) in [
                    (c"/proc/self/setgroups", &b"deny"[..]),
                    (c"/proc/self/uid_map", &map[..]),
                    (c"/proc/self/gid_map", &map[..]),
                ] {
                    let fd = libc::open(file.as_ptr(), libc::O_WRONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let written = libc::write(fd, text.as_ptr().cast(), text.len());
                    libc::close(fd);
                    if written != text.len() as isize {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd
    }

    fn command_in(&self, program: impl AsRef<std::ffi::OsStr>, privileged: bool) -> Command {
        let mut cmd = Command::new(program);
        let userns = self.userns.as_raw_fd();
        let netns = self.netns.as_raw_fd();
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                die_with_parent()?;
                check(libc::setns(userns, libc::CLONE_NEWUSER))?;
                check(libc::setns(netns, libc::CLONE_NEWNET))?;
                if !privileged {
                    drop_capabilities()?;
                }
                Ok(())
            });
        }
        cmd
    }

    /// `eth0`'s MAC as netmeter prints it: `aa:bb:cc:dd:ee:ff`.
    pub fn mac(&self) -> String {
        let hex = self.run("mac eth0");
        hex.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap_or("??"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The kernel's own counters of every interface here, from /proc/net/dev
    /// (read inside the namespace: an independent path from netmeter's netlink).
    pub fn counters(&self) -> BTreeMap<String, Counters> {
        let text = self.run("counters");
        text.split(';')
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let mut it = entry.split(',');
                let name = it.next().unwrap().to_string();
                let v: Vec<u64> = it.map(|n| n.parse().unwrap()).collect();
                (
                    name,
                    Counters {
                        rx_bytes: v[0],
                        rx_packets: v[1],
                        rx_errors: v[2],
                        rx_dropped: v[3],
                        tx_bytes: v[4],
                        tx_packets: v[5],
                        tx_errors: v[6],
                        tx_dropped: v[7],
                    },
                )
            })
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One interface's counters as the kernel reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

impl Counters {
    /// IP-layer bytes received: veth counts the 14-byte Ethernet header.
    pub fn rx_l3_bytes(&self) -> u64 {
        self.rx_bytes - 14 * self.rx_packets
    }
    pub fn tx_l3_bytes(&self) -> u64 {
        self.tx_bytes - 14 * self.tx_packets
    }
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Leaves the process with no capability, now or after exec: uid 0 would
/// get every capability back at exec, so that is forbidden first.
fn drop_capabilities() -> std::io::Result<()> {
    const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
    const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
    unsafe {
        check(libc::prctl(
            libc::PR_SET_SECUREBITS,
            SECBIT_NOROOT | SECBIT_NOROOT_LOCKED,
        ))?;
        check(libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ))?;
        for cap in 0..64 {
            // Drop from the bounding set; EINVAL past the last capability.
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 {
                break;
            }
        }
    }
    Ok(())
}

fn die_with_parent() -> std::io::Result<()> {
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) })
}

/// Async-signal-safe whole-buffer write (for use between fork and exec).
fn write_file(path: &std::ffi::CStr, data: &[u8]) -> std::io::Result<()> {
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if n != data.len() as isize {
            return Err(err);
        }
    }
    Ok(())
}

/// The path of an external tool a test compares netmeter with (`tc`, `ss`,
/// `tmux`), searched in PATH and the sbin directories. Without it the test
/// says so loudly and skips (None), or fails when CI=true.
pub fn require_tool(name: &str, package: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let msg = format!(
            "this test compares netmeter with `{name}`, which is not installed \
             (Debian: apt-get install {package})"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true: {msg}");
        }
        let bar = "!".repeat(72);
        let _ = writeln!(std::io::stderr(), "\n{bar}\n!!! SKIPPED: {msg}\n{bar}\n");
    }
    found
}
