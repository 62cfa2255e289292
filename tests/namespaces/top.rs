//! `netmeter top` in a real terminal: tmux runs a shell in the router's
//! namespace, the test types into it and reads the screen back.

use crate::testbed;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::netmeter::{self, Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4};
use testbed::{Host, Network};

/// A tmux server on its own socket, killed when dropped (a failing test
/// must not leave it holding the namespace).
struct Tmux<'a> {
    host: &'a Host,
    tmux: PathBuf,
    socket: PathBuf,
}

impl Tmux<'_> {
    fn cmd(&self, args: &[&str]) -> String {
        let out = self
            .host
            .command(&self.tmux)
            // tmux runs a pane's command with $SHELL -c, and uid 65534's
            // login shell is nologin (CI's unprivileged pass).
            .env("SHELL", "/bin/sh")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// Waits for the screen to satisfy `what` (a deadline only against a
    /// hang, not a timing the test relies on).
    fn wait_for(&self, why: &str, what: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if what(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {why}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Tmux<'_> {
    /// Keys typed while top still runs would be top's: waits until the
    /// shell is the pane's foreground command again.
    fn wait_for_shell(&self, after: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .cmd(&["display", "-p", "-t", "t", "#{pane_current_command}"])
            .trim()
            != "sh"
        {
            assert!(
                Instant::now() < deadline,
                "top did not exit on {after}:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux<'_> {
    fn drop(&mut self) {
        let _ = self
            .host
            .command(&self.tmux)
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// The names of the view's rows, top to bottom.
fn row_names(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter(|l| l.starts_with("if ") || l.starts_with("dev "))
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect()
}

/// Whether a command's output `text` is on the screen (after a prompt, or
/// alone: the shell may echo typing before its prompt).
fn printed(screen: &str, text: &str) -> bool {
    screen
        .lines()
        .any(|l| l.trim_end().ends_with(text) && !l.contains("echo"))
}

fn file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn top_shows_a_busy_device_sorts_by_name_and_leaves_the_terminal_as_it_was_after_q_and_ctrl_c() {
    let Some(tmux) = testbed::require_tool("tmux", "tmux") else {
        return;
    };
    let net = Network::with_lan_hosts(&["laptop", "tv"]);
    let scratch = Scratch::new();
    let d = Daemon::start(
        &net.router,
        &scratch,
        "config netmeter 'main'\n\toption refresh_interval '1'\n\
         \tlist lan_interface 'lan0'\n\tlist lan_interface 'lan1'\n",
    );
    net.lan[0].run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 300000"));
    d.wait_refreshed(&net.router);
    let mac = net.lan[0].mac();

    let t = Tmux {
        host: &net.router,
        tmux,
        socket: scratch.file("tmux.sock", "").with_extension("s"),
    };
    t.cmd(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "150",
        "-y",
        "40",
        "sh",
    ]);
    let before = scratch.file("stty-before", "");
    let after = scratch.file("stty-after", "");
    t.keys(&[
        &format!("stty -a > {}; echo re''ady", before.display()),
        "Enter",
    ]);
    t.wait_for("the shell", |s| printed(s, "ready"));
    let shell_screen = t.screen();
    let top = format!(
        "{} top --url http://{} -c {}",
        netmeter::binary().display(),
        d.api,
        d.config_path().display()
    );
    t.keys(&[&top, "Enter"]);
    let screen = t.wait_for("the busy device in top", |s| s.contains(&mac));
    assert!(screen.contains("sort: sum"), "{screen}");
    assert!(row_names(&screen).contains(&"wan".to_string()), "{screen}");
    assert_eq!(
        t.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
        "1"
    );

    t.keys(&["n"]);
    let screen = t.wait_for("the name sort", |s| s.contains("sort: name"));
    let names = row_names(&screen);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "{screen}");
    assert!(names.len() >= 4, "lan0, lan1, wan and the device: {screen}");

    t.keys(&["q"]);
    t.wait_for_shell("q");
    // Ctrl-C quits as cleanly (raw mode reads it as a key).
    t.keys(&[&top, "Enter"]);
    t.wait_for("top again", |s| s.contains("sort: sum") && s.contains(&mac));
    t.keys(&["C-c"]);
    t.wait_for_shell("Ctrl-C");
    t.keys(&[
        &format!("echo ex''it $?; stty -a > {}", after.display()),
        "Enter",
    ]);
    let screen = t.wait_for("the shell after top", |s| printed(s, "exit 0"));
    assert!(
        !screen.contains("netmeter top  ("),
        "top's screen is gone: {screen}"
    );
    // The shell's screen is back as it was, with top's command line below it.
    for line in shell_screen.lines().filter(|l| !l.is_empty()) {
        assert!(
            screen.contains(line),
            "{line:?} missing after top:\n{screen}"
        );
    }
    assert_eq!(
        t.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
        "0"
    );
    assert_eq!(
        t.cmd(&["display", "-p", "-t", "t", "#{cursor_flag}"])
            .trim(),
        "1"
    );
    t.wait_for("stty -a after", |_| !file(&after).is_empty());
    assert_eq!(
        file(&after),
        file(&before),
        "the terminal's settings are restored"
    );
}
