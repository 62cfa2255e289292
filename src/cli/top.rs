//! `netmeter top`: a live full-screen view of interfaces and devices with
//! their rates, from the daemon's API (or the kernel's interface counters
//! when no daemon runs).
//!
//! Plain ANSI only (cursor home, clear, alternate screen, reverse video:
//! what a serial console's VT100 and every SSH client understand), raw
//! keyboard input through termios (nix's `term`, no terminal crate: see
//! docs/BENCHMARKS.md), and the terminal restored on every way out: `q`,
//! Ctrl-C (read as a key, as ISIG is off), SIGTERM and SIGHUP (a flag the
//! loop checks). When stdout is not a terminal it prints a table per
//! second instead.

use super::{CliError, format};
use crate::account::InterfaceAccounts;
use crate::collect::links::{read_boot_id, read_links};
use crate::config::Config;
use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};
use crate::serve::api::{DevicesReport, InterfaceView, InterfacesReport};
use argh::FromArgs;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A live view of interfaces and devices with their rates (keys: r, t, s,
/// n sort by receive, transmit, sum or name; p pauses; q quits).
#[derive(FromArgs)]
#[argh(subcommand, name = "top")]
pub struct TopArgs {
    /// ask the daemon at this address (http://HOST:PORT) instead of the
    /// configured listen address
    #[argh(option)]
    url: Option<String>,
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// stop after this many screens (default: until q)
    #[argh(option)]
    iterations: Option<u64>,
}

/// What the rows are ordered by, highest rate first (name: A to Z).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Sum,
    Rx,
    Tx,
    Name,
}

impl Sort {
    fn label(self) -> &'static str {
        match self {
            Sort::Sum => "sum",
            Sort::Rx => "rx",
            Sort::Tx => "tx",
            Sort::Name => "name",
        }
    }
}

/// One line of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// "if" or "dev".
    pub kind: &'static str,
    pub name: String,
    pub rx_rate: u64,
    pub tx_rate: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Sort(Sort),
    Pause,
    Quit,
    Other,
}

pub fn key(b: u8) -> Key {
    match b {
        b'r' => Key::Sort(Sort::Rx),
        b't' => Key::Sort(Sort::Tx),
        b's' => Key::Sort(Sort::Sum),
        b'n' => Key::Sort(Sort::Name),
        b'p' | b' ' => Key::Pause,
        // q, Ctrl-C, Ctrl-D, Esc.
        b'q' | b'Q' | 3 | 4 | 0x1b => Key::Quit,
        _ => Key::Other,
    }
}

pub fn sort_rows(rows: &mut [Row], sort: Sort) {
    match sort {
        Sort::Sum => rows.sort_by_key(|r| std::cmp::Reverse(r.rx_rate.saturating_add(r.tx_rate))),
        Sort::Rx => rows.sort_by_key(|r| std::cmp::Reverse(r.rx_rate)),
        Sort::Tx => rows.sort_by_key(|r| std::cmp::Reverse(r.tx_rate)),
        Sort::Name => rows.sort_by(|a, b| a.name.cmp(&b.name)),
    }
}

/// The screen as lines: a title, a header, rows up to `height`, each cut
/// to `width` characters.
pub fn render(
    rows: &[Row],
    sort: Sort,
    paused: bool,
    source: &str,
    width: usize,
    height: usize,
) -> Vec<String> {
    let mut lines = vec![format!(
        "netmeter top  {source}  sort: {}{}  keys: r t s n sort, p pause, q quit",
        sort.label(),
        if paused { "  PAUSED" } else { "" }
    )];
    lines.push(format!(
        "{:<4} {:<28} {:>14} {:>14} {:>11} {:>11}",
        "", "name", "rx rate", "tx rate", "rx", "tx"
    ));
    for r in rows.iter().take(height.saturating_sub(2)) {
        lines.push(format!(
            "{:<4} {:<28} {:>14} {:>14} {:>11} {:>11}",
            r.kind,
            r.name,
            format::rate(r.rx_rate),
            format::rate(r.tx_rate),
            format::bytes(r.rx_bytes),
            format::bytes(r.tx_bytes)
        ));
    }
    for l in &mut lines {
        if let Some((cut, _)) = l.char_indices().nth(width) {
            l.truncate(cut);
        }
    }
    lines
}

/// Where the rows come from.
enum Source {
    Daemon {
        config: Config,
        url: Option<String>,
    },
    Kernel {
        socket: NetlinkSocket,
        accounts: Box<InterfaceAccounts>,
        boot_id: String,
        config: Config,
    },
}

impl Source {
    fn note(&self) -> &'static str {
        match self {
            Source::Daemon { .. } => "(daemon)",
            Source::Kernel { .. } => "(kernel: interfaces only, no daemon)",
        }
    }

    fn rows(&mut self) -> Result<Vec<Row>, CliError> {
        if let Source::Daemon { config, url } = self {
            let interfaces: Option<InterfacesReport> =
                super::ask_daemon(config, url.as_deref(), "/api/v1/interfaces")?;
            match interfaces {
                Some(i) => {
                    let devices: DevicesReport =
                        super::ask_daemon(config, url.as_deref(), "/api/v1/devices")?
                            .unwrap_or_default();
                    let mut rows: Vec<Row> = i
                        .interfaces
                        .iter()
                        .filter(|i| i.present)
                        .map(interface_row)
                        .collect();
                    rows.extend(devices.devices.iter().map(|d| Row {
                        kind: "dev",
                        name: match &d.hostname {
                            Some(h) => format!("{h} {}", d.mac),
                            None => d.mac.clone(),
                        },
                        rx_rate: d.rx_rate,
                        tx_rate: d.tx_rate,
                        rx_bytes: d.rx_bytes,
                        tx_bytes: d.tx_bytes,
                    }));
                    return Ok(rows);
                }
                None => {
                    let config = std::mem::take(config);
                    *self = Source::Kernel {
                        socket: NetlinkSocket::open(NETLINK_ROUTE)?,
                        accounts: Box::new(InterfaceAccounts::new(
                            crate::account::interfaces::MAX_INTERFACES,
                        )),
                        boot_id: read_boot_id().unwrap_or_default(),
                        config,
                    };
                }
            }
        }
        let Source::Kernel {
            socket,
            accounts,
            boot_id,
            config,
        } = self
        else {
            unreachable!("the daemon source returned above");
        };
        let mut samples = read_links(socket)?;
        samples.retain(|s| config.tracks_interface(&s.name));
        accounts.ingest(crate::clock::now(), boot_id, &samples);
        Ok(accounts
            .iter()
            .map(InterfaceView::from)
            .filter(|i| i.present)
            .map(|i| interface_row(&i))
            .collect())
    }
}

fn interface_row(i: &InterfaceView) -> Row {
    Row {
        kind: "if",
        name: i.name.clone(),
        rx_rate: i.rx_rate,
        tx_rate: i.tx_rate,
        rx_bytes: i.rx_bytes,
        tx_bytes: i.tx_bytes,
    }
}

/// Set by SIGTERM and SIGHUP: the loop restores the terminal and ends.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The terminal in raw mode on the alternate screen; dropping it puts back
/// the saved settings and the screen as it was.
struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    fn enter() -> Result<RawTerminal, CliError> {
        use nix::sys::termios::{
            LocalFlags, SetArg, SpecialCharacterIndices, tcgetattr, tcsetattr,
        };
        let stdin = std::io::stdin();
        let failed = |e: nix::Error| CliError::Failed(format!("cannot set up the terminal: {e}"));
        let saved = tcgetattr(stdin.as_fd()).map_err(failed)?;
        let mut raw = saved.clone();
        raw.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::IEXTEN);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).map_err(failed)?;
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[?1049h\x1b[?25l");
        let _ = out.flush();
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[0m\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Rows and columns of the terminal on stdout (80×24 when it will not say).
fn terminal_size() -> (usize, usize) {
    // SAFETY: winsize is plain data; TIOCGWINSZ writes only into it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a pointer to a winsize.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        (ws.ws_col as usize, ws.ws_row as usize)
    } else {
        (80, 24)
    }
}

const TICK: Duration = Duration::from_secs(1);

pub fn run(args: TopArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    let mut source = Source::Daemon {
        config,
        url: args.url.clone(),
    };
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return lines(&mut source, args.iterations);
    }
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let terminal = RawTerminal::enter()?;
    let result = interactive(&mut source, args.iterations);
    drop(terminal);
    result
}

/// Not a terminal: a plain table each second, no keys.
fn lines(source: &mut Source, iterations: Option<u64>) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let mut n = 0;
    while iterations.is_none_or(|max| n < max) {
        if n > 0 {
            std::thread::sleep(TICK);
        }
        n += 1;
        let mut rows = source.rows()?;
        sort_rows(&mut rows, Sort::Sum);
        let text = render(
            &rows,
            Sort::Sum,
            false,
            source.note(),
            usize::MAX,
            usize::MAX,
        )
        .join("\n")
            + "\n\n";
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return Ok(()); // a closed pipe ends it quietly
        }
    }
    Ok(())
}

fn interactive(source: &mut Source, iterations: Option<u64>) -> Result<(), CliError> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let (mut sort, mut paused) = (Sort::Sum, false);
    let mut rows = Vec::new();
    let mut next = Instant::now();
    let mut screens = 0u64;
    let stdin = std::io::stdin();
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        let now = Instant::now();
        let mut redraw = false;
        if now >= next {
            if !paused {
                rows = source.rows()?;
            }
            next = now + TICK;
            redraw = true;
            if iterations.is_some_and(|max| screens >= max) {
                return Ok(());
            }
            screens += 1;
        }
        let wait = next.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        let timeout =
            PollTimeout::try_from(wait.as_millis() as i32 + 1).unwrap_or(PollTimeout::MAX);
        if !redraw && poll(&mut fds, timeout).unwrap_or(0) > 0 {
            let mut buf = [0u8; 16];
            let n = nix::unistd::read(stdin.as_fd(), &mut buf).unwrap_or(0);
            if n == 0
                && fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLHUP))
            {
                return Ok(()); // the terminal went away
            }
            for &b in &buf[..n] {
                match key(b) {
                    Key::Quit => return Ok(()),
                    Key::Pause => paused = !paused,
                    Key::Sort(s) => sort = s,
                    Key::Other => continue,
                }
                redraw = true;
            }
        }
        if redraw {
            sort_rows(&mut rows, sort);
            let (width, height) = terminal_size();
            let lines = render(&rows, sort, paused, source.note(), width, height);
            let mut screen = String::from("\x1b[H\x1b[2J");
            for (i, l) in lines.iter().enumerate() {
                if i == 1 {
                    screen.push_str(&format!("\x1b[7m{l}\x1b[0m\r\n"));
                } else {
                    screen.push_str(l);
                    screen.push_str("\r\n");
                }
            }
            let mut out = std::io::stdout().lock();
            if out
                .write_all(screen.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &'static str, name: &str, rx: u64, tx: u64) -> Row {
        Row {
            kind,
            name: name.into(),
            rx_rate: rx,
            tx_rate: tx,
            rx_bytes: rx * 10,
            tx_bytes: tx * 10,
        }
    }

    #[test]
    fn each_sort_key_orders_the_rows() {
        let mut rows = vec![
            row("if", "wan", 10, 500),
            row("dev", "tv", 900, 1),
            row("if", "lan0", 50, 100),
        ];
        let names = |rows: &[Row]| rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        sort_rows(&mut rows, Sort::Rx);
        assert_eq!(names(&rows), ["tv", "lan0", "wan"]);
        sort_rows(&mut rows, Sort::Tx);
        assert_eq!(names(&rows), ["wan", "lan0", "tv"]);
        sort_rows(&mut rows, Sort::Sum);
        assert_eq!(names(&rows), ["tv", "wan", "lan0"]);
        sort_rows(&mut rows, Sort::Name);
        assert_eq!(names(&rows), ["lan0", "tv", "wan"]);
    }

    #[test]
    fn keys_sort_pause_and_quit_and_ctrl_c_quits() {
        assert_eq!(key(b'n'), Key::Sort(Sort::Name));
        assert_eq!(key(b'p'), Key::Pause);
        assert_eq!(
            (key(b'q'), key(3), key(0x1b)),
            (Key::Quit, Key::Quit, Key::Quit)
        );
        assert_eq!(key(b'x'), Key::Other);
    }

    #[test]
    fn the_screen_fits_the_terminal() {
        let rows: Vec<Row> = (0..50)
            .map(|i| row("dev", &format!("d{i}"), i, i))
            .collect();
        let lines = render(&rows, Sort::Sum, true, "(daemon)", 40, 10);
        assert_eq!(lines.len(), 10);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        let wide = render(&rows[..1], Sort::Name, true, "(daemon)", 200, 10);
        assert!(wide[0].contains("sort: name  PAUSED"), "{wide:?}");
        assert!(wide[2].starts_with("dev  d0"), "{wide:?}");
    }
}
