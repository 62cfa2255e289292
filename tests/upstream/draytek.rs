#![cfg(feature = "upstream")]
//! The `draytek` source against a mock DrayTek console on 127.0.0.1: the
//! telnet negotiation, `Account:`/`Password:`, the `--- MORE ---` pager
//! over several pages (both redraw styles, a late key hint), IAC bytes in
//! the middle of the output, a wrong password, a second session refused,
//! an ADSL model's `adsl` commands, malformed answers, and routers that
//! hang or trickle.

use crate::mock;

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use netmeter::clock::Moment;
use netmeter::config::Secret;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::telnet::{Pattern, Telnet};
use netmeter::upstream::sources::{
    Deadline, LineKind, LineValue, Reading, ScrapeError, Source, source_for,
};

const PASSWORD: &str = "Vigor-Secr3t-Pass";
const PAGER: &str = "--- MORE ---   ['q': Quit, 'Enter': New Lines, 'Space Bar': Next Page] ---";
const HINT: &str = "   ['q': Quit, 'Enter': New Lines, 'Space Bar': Next Page] ---";
const PROMPT: &str = "\r\nDrayTek> ";
/// The answer to a command the model lacks (the exact wording differs by
/// firmware; the source does not depend on it).
const UNKNOWN: &str = "% Unknown command\r\n";
const MORE_FIXTURE: &str = include_str!("../fixtures/upstream/draytek/vdsl_status_more.txt");
const STATUS_FIXTURE: &str = include_str!("../fixtures/upstream/draytek/vdsl_status.txt");
const WAN_FIXTURE: &str = include_str!("../fixtures/upstream/draytek/wan_status.txt");

const IAC: u8 = 255;
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const DONT: u8 = 254;

#[derive(Clone, Copy, PartialEq)]
enum Output {
    Full,
    Malformed,
    Nothing,
    /// The fixture as after a reboot: WAN1 up for 2 min 10 s.
    Rebooted,
}

#[derive(Clone)]
struct Router {
    /// None: the model asks only for a password.
    account: Option<&'static str>,
    password: &'static str,
    max_sessions: usize,
    /// false: an ADSL model that knows only `adsl …`.
    vdsl: bool,
    output: Output,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            account: Some("admin"),
            password: PASSWORD,
            max_sessions: 1,
            vdsl: true,
            output: Output::Full,
        }
    }
}

#[derive(Default)]
struct Log {
    commands: Vec<String>,
    /// The client's IAC verb and option, as it answered.
    negotiation: Vec<(u8, u8)>,
    /// Keys the pager received; each should be a space.
    pager_keys: Vec<u8>,
    logins: usize,
    active: usize,
}

struct Mock {
    port: u16,
    log: Arc<Mutex<Log>>,
}

impl Mock {
    fn start(router: Router) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let theirs = Arc::clone(&log);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (router, log) = (router.clone(), Arc::clone(&theirs));
                thread::spawn(move || session(stream, &router, &log));
            }
        });
        Mock { port, log }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no session is open (the last `exit` is in the log).
    fn wait_idle(&self) {
        while self.log().active > 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The client's side of the stream, IAC answers taken out and logged.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    log: Arc<Mutex<Log>>,
}

impl Client {
    fn byte(&mut self) -> Option<u8> {
        let mut one = [0u8];
        loop {
            self.reader.read_exact(&mut one).ok()?;
            if one[0] != IAC {
                return Some(one[0]);
            }
            let mut pair = [0u8; 2];
            self.reader.read_exact(&mut pair).ok()?;
            if pair[0] == IAC {
                return Some(IAC);
            }
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            log.negotiation.push((pair[0], pair[1]));
        }
    }

    fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        loop {
            match self.byte()? {
                b'\n' => return Some(String::from_utf8_lossy(&line).into_owned()),
                b'\r' => {}
                b => line.push(b),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Option<()> {
        self.writer.write_all(bytes).ok()
    }
}

/// Ends the session's slot when the connection ends, however it ends.
struct Slot(Arc<Mutex<Log>>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).active -= 1;
    }
}

fn session(stream: TcpStream, router: &Router, log: &Arc<Mutex<Log>>) -> Option<()> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    // Each piece goes out at once, as from a router's console.
    stream.set_nodelay(true).ok()?;
    let mut client = Client {
        reader: BufReader::new(stream.try_clone().ok()?),
        writer: stream,
        log: Arc::clone(log),
    };
    {
        let mut l = log.lock().unwrap_or_else(PoisonError::into_inner);
        if l.active >= router.max_sessions {
            drop(l);
            client.send(b"\r\nSorry, the telnet session is full.\r\n")?;
            return None;
        }
        l.active += 1;
    }
    let _slot = Slot(Arc::clone(log));
    // WILL ECHO, WILL SGA, DO TTYPE, DO NAWS, as a telnetd opens.
    client.send(&[IAC, WILL, 1, IAC, WILL, 3, IAC, DO, 24, IAC, DO, 31])?;
    client.send(b"\r\n")?;
    let mut logged_in = false;
    for _ in 0..3 {
        let account = match router.account {
            Some(_) => {
                client.send(b"Account:")?;
                Some(client.line()?)
            }
            None => None,
        };
        client.send(b"Password: ")?;
        let password = client.line()?;
        if account.as_deref() == router.account && password == router.password {
            logged_in = true;
            break;
        }
        // Echoed back, as a careless console might: it must not reach a message.
        client.send(format!("\r\n{password}\r\n").as_bytes())?;
    }
    if !logged_in {
        return None;
    }
    log.lock().unwrap_or_else(PoisonError::into_inner).logins += 1;
    client.send(b"\r\n\r\nType ? for command help\r\n")?;
    client.send(PROMPT.as_bytes())?;
    loop {
        let command = client.line()?;
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .commands
            .push(command.clone());
        if command == "exit" {
            return Some(());
        }
        client.send(format!("{command}\r\n").as_bytes())?;
        let dsl = if router.vdsl { "vdsl" } else { "adsl" };
        let body: Vec<u8> = match router.output {
            Output::Nothing => UNKNOWN.into(),
            _ if command == format!("{dsl} status more") => more_output(router.output),
            _ if command == format!("{dsl} status") => status_output(router.output),
            _ if command == "wan status" => wan_output(router.output),
            _ => UNKNOWN.into(),
        };
        paged(&mut client, &body, 10)?;
        client.send(PROMPT.as_bytes())?;
    }
}

fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

fn replace(bytes: Vec<u8>, from: &str, to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from} not in the fixture"));
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&bytes[at + from.len()..]);
    out
}

/// `vdsl status more`, with telnet commands in the middle of numbers and
/// an escaped 0xFF in the heading: a client that did not strip them
/// would read other numbers or lose its place.
fn more_output(output: Output) -> Vec<u8> {
    if output == Output::Malformed {
        let head: String = MORE_FIXTURE
            .lines()
            .take(9)
            .map(|l| format!("{l}\n"))
            .collect();
        return crlf(&format!(
            "{head} CRC          :    ##              ##\n FECS         :\n ES           :     \
             5x              7 (seconds)\n"
        ));
    }
    let bytes = crlf(MORE_FIXTURE);
    // IAC NOP inside 287; a subnegotiation (with an escaped IAC) inside 19.
    let bytes = replace(bytes, "287", b"28\xff\xf17");
    let bytes = replace(bytes, "    19", b"    1\xff\xfa\x18\x01\xff\xff\xff\xf09");
    // WILL ECHO again (answered once only) inside 1214.
    let bytes = replace(bytes, "1214", b"12\xff\xfb\x0114");
    replace(bytes, "ATU-R Info", b"ATU-R Info \xff\xff")
}

fn status_output(output: Output) -> Vec<u8> {
    match output {
        Output::Malformed => crlf(
            "  Running Mode            :      17A       State                :\n  \
             DS Actual Rate          :   abc bps     US Actual Rate       :  1000000 bps\n",
        ),
        _ => crlf(STATUS_FIXTURE),
    }
}

fn wan_output(output: Output) -> Vec<u8> {
    match output {
        Output::Malformed => crlf("WAN1: Online, stall=N\n TX Packets=12, TX Rate(bps)=\n"),
        Output::Rebooted => crlf(&WAN_FIXTURE.replace("Up Time=27:13:05", "Up Time=0:02:10")),
        _ => crlf(WAN_FIXTURE),
    }
}

/// Sends `body` a page of `per_page` lines at a time, waiting for a key
/// after each marker. Odd pages send the key hint late and redraw with
/// backspaces; even ones redraw with CR and blanks.
fn paged(client: &mut Client, body: &[u8], per_page: usize) -> Option<()> {
    let lines: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').collect();
    for (page, chunk) in lines.chunks(per_page).enumerate() {
        if page > 0 {
            if page % 2 == 1 {
                client.send(b"--- MORE ---")?;
                thread::sleep(Duration::from_millis(30));
                client.send(HINT.as_bytes())?;
            } else {
                client.send(PAGER.as_bytes())?;
            }
            let key = client.byte()?;
            client
                .log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pager_keys
                .push(key);
            let width = PAGER.len();
            if page % 2 == 1 {
                let back = vec![8u8; width];
                client.send(&back)?;
                client.send(" ".repeat(width).as_bytes())?;
                client.send(&back)?;
            } else {
                client.send(format!("\r{}\r", " ".repeat(width)).as_bytes())?;
            }
        }
        for line in chunk {
            client.send(line)?;
        }
    }
    Some(())
}

fn config(port: u16, username: Option<&str>, password: &str) -> UpstreamConfig {
    let mut c = UpstreamConfig::new("dsl", UpstreamKind::Draytek);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c.username = username.map(str::to_owned);
    c.password = Secret::password(password);
    c
}

fn source(port: u16) -> Box<dyn Source> {
    source_for(&config(port, Some("admin"), PASSWORD)).unwrap()
}

fn scrape(s: &mut Box<dyn Source>) -> Result<Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(3)))
}

fn value(reading: &Reading, name: &str, end: Option<&str>) -> Option<f64> {
    reading
        .line
        .iter()
        .find(|v| v.name == name && v.end == end)
        .map(|v| v.value)
}

fn kind(reading: &Reading, name: &str, end: Option<&str>) -> LineKind {
    let v: &LineValue = reading
        .line
        .iter()
        .find(|v| v.name == name && v.end == end)
        .unwrap();
    v.kind
}

/// Neither the error's Display nor its Debug holds the password.
fn assert_no_password(e: &ScrapeError) {
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(PASSWORD), "password in {text}");
    }
}

#[test]
fn the_wan_up_time_going_back_is_told_as_a_reboot() {
    let mut accounts = UpstreamAccounts::default();
    for (step, output) in [Output::Full, Output::Rebooted].into_iter().enumerate() {
        let mock = Mock::start(Router {
            output,
            ..Router::default()
        });
        let reading = scrape(&mut source(mock.port)).unwrap();
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("vigor", "draytek", now, &reading, None);
    }
    let vigor = accounts.get("vigor").unwrap();
    assert_eq!(vigor.uptime_secs, Some(130));
    let reset = vigor.last_reset.clone().unwrap();
    assert_eq!(reset.reason.name(), "uptime");
    assert!(
        reset.detail.contains("from 97985 s to 130 s"),
        "{}",
        reset.detail
    );
    // No byte counters: nothing was credited either way.
    assert!(vigor.wan.is_none() && vigor.devices.is_empty());
}

#[test]
fn reads_line_statistics_and_wan_status_through_the_pager() {
    let mock = Mock::start(Router::default());
    let mut s = source(mock.port);
    let r = scrape(&mut s).unwrap();

    // vdsl status more, with IAC sequences inside the numbers.
    assert_eq!(value(&r, "crc", Some("near")), Some(287.0));
    assert_eq!(value(&r, "crc", Some("far")), Some(19.0));
    assert_eq!(value(&r, "fecs", Some("far")), Some(1214.0));
    assert_eq!(value(&r, "es", Some("near")), Some(52.0));
    assert_eq!(value(&r, "ses", Some("far")), Some(1.0));
    assert_eq!(value(&r, "uas", Some("far")), Some(1502.0));
    assert_eq!(value(&r, "loss", Some("near")), Some(0.0));
    assert_eq!(value(&r, "lof", Some("far")), Some(0.0));
    assert_eq!(value(&r, "inp_symbols", Some("near")), Some(230.0));
    assert_eq!(value(&r, "aelem", Some("near")), Some(0.0));
    assert_eq!(kind(&r, "crc", Some("near")), LineKind::Counter);
    assert_eq!(kind(&r, "inp_symbols", Some("far")), LineKind::Gauge);
    // vdsl status.
    assert_eq!(value(&r, "ds_actual_rate_bps", None), Some(99_863_000.0));
    assert_eq!(
        value(&r, "us_attainable_rate_bps", None),
        Some(40_112_000.0)
    );
    assert_eq!(value(&r, "snr_margin_db", Some("near")), Some(11.0));
    assert_eq!(value(&r, "snr_margin_db", Some("far")), Some(8.0));
    assert_eq!(value(&r, "attenuation_db", Some("far")), Some(6.0));
    assert_eq!(value(&r, "showtime", None), Some(1.0));
    assert_eq!(kind(&r, "snr_margin_db", Some("near")), LineKind::Gauge);
    // wan status, over three pages.
    assert_eq!(value(&r, "wan1_online", None), Some(1.0));
    assert_eq!(value(&r, "wan1_tx_packets", None), Some(4_018_263.0));
    assert_eq!(value(&r, "wan1_rx_rate_bps", None), Some(1_225_480.0));
    assert_eq!(value(&r, "wan2_rx_packets", None), Some(1179.0));
    assert_eq!(value(&r, "usb_wan4_online", None), Some(0.0));
    assert_eq!(kind(&r, "wan1_tx_packets", None), LineKind::Counter);
    assert_eq!(kind(&r, "wan1_tx_rate_bps", None), LineKind::Gauge);
    // Everything each fixture holds: 55 + 13 + 20.
    assert_eq!(r.line.len(), 88);
    assert_eq!(r.wan, None, "the console has no byte counters");
    assert!(r.interfaces.is_empty() && r.devices.is_empty());
    assert!(!format!("{r:?}").contains(PASSWORD));

    mock.wait_idle();
    {
        let log = mock.log();
        assert_eq!(
            log.commands,
            ["vdsl status more", "vdsl status", "wan status", "exit"]
        );
        // 30 + 18 + 24 lines at 10 a page.
        assert_eq!(log.pager_keys, vec![b' '; 2 + 1 + 2]);
        let mut answers = log.negotiation.clone();
        answers.sort_unstable();
        assert_eq!(
            answers,
            [(WONT, 24), (WONT, 31), (DO, 3), (DONT, 1)],
            "SGA accepted, everything else refused, WILL ECHO answered once"
        );
    }

    // Each scrape logs in and out again; the vdsl commands are known now.
    let again = scrape(&mut s).unwrap();
    assert_eq!(again.line, r.line);
    mock.wait_idle();
    let log = mock.log();
    assert_eq!(log.logins, 2);
    assert_eq!(log.commands.len(), 8);
}

#[test]
fn a_model_that_asks_only_for_a_password() {
    let mock = Mock::start(Router {
        account: None,
        ..Router::default()
    });
    let mut s = source_for(&config(mock.port, None, PASSWORD)).unwrap();
    let r = scrape(&mut s).unwrap();
    assert_eq!(value(&r, "crc", Some("near")), Some(287.0));
    assert_eq!(mock.log().logins, 1);
}

#[test]
fn an_account_prompt_without_option_username_says_to_add_it() {
    let mock = Mock::start(Router::default());
    let mut s = source_for(&config(mock.port, None, PASSWORD)).unwrap();
    let e = scrape(&mut s).unwrap_err();
    assert!(matches!(e, ScrapeError::Auth(_)), "{e:?}");
    assert!(e.to_string().contains("option username"), "{e}");
}

#[test]
fn a_wrong_password_is_an_auth_error_naming_the_options() {
    let mock = Mock::start(Router {
        password: "the-real-one",
        ..Router::default()
    });
    let e = scrape(&mut source(mock.port)).unwrap_err();
    assert!(matches!(e, ScrapeError::Auth(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("asked for the login again"), "{text}");
    assert!(
        text.contains("option username and option password"),
        "{text}"
    );
    assert_no_password(&e);
    assert_eq!(mock.log().logins, 0);
}

#[test]
fn a_second_session_refused_then_served_when_the_first_ends() {
    let mock = Mock::start(Router::default());
    // Someone's telnet session holds the only slot.
    let held = TcpStream::connect(("127.0.0.1", mock.port)).unwrap();
    while mock.log().active == 0 {
        thread::sleep(Duration::from_millis(5));
    }
    let e = scrape(&mut source(mock.port)).unwrap_err();
    assert!(matches!(e, ScrapeError::Auth(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("before asking for a login")
            && text.contains("Sorry, the telnet session is full.")
            && text.contains("few telnet sessions"),
        "{text}"
    );
    assert_no_password(&e);

    drop(held);
    mock.wait_idle();
    let r = scrape(&mut source(mock.port)).unwrap();
    assert_eq!(value(&r, "crc", Some("far")), Some(19.0));
    // The scrape said exit, so the slot is free again.
    mock.wait_idle();
    scrape(&mut source(mock.port)).unwrap();
}

#[test]
fn an_adsl_model_answers_the_adsl_commands() {
    let mock = Mock::start(Router {
        vdsl: false,
        ..Router::default()
    });
    let mut s = source(mock.port);
    let r = scrape(&mut s).unwrap();
    assert_eq!(value(&r, "crc", Some("near")), Some(287.0));
    assert_eq!(value(&r, "ds_actual_rate_bps", None), Some(99_863_000.0));
    assert_eq!(value(&r, "wan1_tx_packets", None), Some(4_018_263.0));
    // One session at a time: the first must have said exit.
    mock.wait_idle();
    scrape(&mut s).unwrap();
    mock.wait_idle();
    assert_eq!(
        mock.log().commands,
        [
            "vdsl status more",
            "vdsl status",
            "adsl status more",
            "adsl status",
            "wan status",
            "exit",
            // Remembered: straight to adsl.
            "adsl status more",
            "adsl status",
            "wan status",
            "exit",
        ]
    );
}

#[test]
fn malformed_answers_give_the_values_that_could_be_read() {
    let mock = Mock::start(Router {
        output: Output::Malformed,
        ..Router::default()
    });
    let r = scrape(&mut source(mock.port)).unwrap();
    assert_eq!(value(&r, "los", Some("near")), Some(0.0));
    assert_eq!(value(&r, "trellis", Some("far")), Some(1.0));
    assert_eq!(value(&r, "crc", Some("near")), None);
    assert_eq!(value(&r, "fecs", Some("near")), None);
    assert_eq!(value(&r, "es", Some("near")), None);
    assert_eq!(value(&r, "es", Some("far")), Some(7.0));
    assert_eq!(value(&r, "ds_actual_rate_bps", None), None);
    assert_eq!(value(&r, "us_actual_rate_bps", None), Some(1_000_000.0));
    assert_eq!(value(&r, "showtime", None), None);
    assert_eq!(value(&r, "wan1_tx_packets", None), Some(12.0));
    assert_eq!(value(&r, "wan1_tx_rate_bps", None), None);
}

#[test]
fn nothing_readable_is_a_parse_error() {
    let mock = Mock::start(Router {
        output: Output::Nothing,
        ..Router::default()
    });
    let e = scrape(&mut source(mock.port)).unwrap_err();
    assert!(matches!(e, ScrapeError::Parse(_)), "{e:?}");
    assert!(e.to_string().contains("DrayTek"), "{e}");
    assert_no_password(&e);
}

#[test]
fn a_router_that_never_prompts_times_out() {
    let silent = mock::silent_listener();
    let mut s = source(silent.port());
    let e = s
        .scrape(Deadline::after(Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(e, ScrapeError::Timeout(_)), "{e:?}");
    assert!(e.to_string().contains("login prompt"), "{e}");
    assert_no_password(&e);
}

#[test]
fn a_router_that_trickles_bytes_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        for b in b"Welcome to the console of this router. ".iter().cycle() {
            if stream.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let e = source(port)
        .scrape(Deadline::after(Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(e, ScrapeError::Timeout(_)), "{e:?}");
    assert_no_password(&e);
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    let e = scrape(&mut source(mock::closed_port())).unwrap_err();
    assert!(matches!(e, ScrapeError::Connect(_)), "{e:?}");
}

#[test]
fn the_telnet_client_keeps_an_escaped_ff_and_answers_negotiation() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .write_all(b"\xff\xfd\x18a\xff\xffb\r\n\xff\xfa\x18\x01\xff\xf0Vigor> ")
            .unwrap();
        let mut answer = [0u8; 3];
        stream.read_exact(&mut answer).unwrap();
        answer
    });
    let deadline = Deadline::after(Duration::from_secs(3));
    let mut telnet = Telnet::connect("127.0.0.1", port, deadline).unwrap();
    let found = telnet
        .expect(&[Pattern::Prompt], "a prompt", deadline)
        .unwrap();
    assert_eq!(found.pattern, Some(0));
    assert_eq!(found.before, b"a\xffb\n");
    assert_eq!(server.join().unwrap(), [IAC, WONT, 24]);
}
