//! The `deco` source against a mock TP-Link Deco on 127.0.0.1 that speaks
//! the real protocol with its own RSA keys (tests/fixtures/upstream/deco/
//! keys.txt): the password arrives RSA-encrypted and is checked after
//! decryption with the private key; every signature is decrypted and its
//! `h=` (MD5 of admin + password) and `s=` (sequence number plus the data's
//! length) checked, the AES key and IV taken from the login's signature;
//! bodies are AES-128-CBC decrypted, answers encrypted. Sessions expire on
//! demand (empty `data`, as the Deco does), a second admin makes the login
//! answer 403, and answers can be cut short or garbled.

use crate::mock;

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use mock::{MockHttp, MockRequest, Reply};
use netmeter::clock::Moment;
use netmeter::config::Secret;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::deco::{BYTES_PER_RATE_UNIT, Deco};
use netmeter::upstream::sources::{
    Deadline, Reading, ScrapeError, Source, base64, md5, source_for,
};
use num_bigint::BigUint;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "deco-Secret-42";
const STOK: &str = "5d1e3b8a7c";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream/deco/");
const LAPTOP: &str = "3c:22:fb:10:20:30";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
}

fn key(name: &str) -> BigUint {
    let text = fixture("keys.txt");
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap();
    BigUint::parse_bytes(hex.as_bytes(), 16).unwrap()
}

/// RSA PKCS#1 v1.5 decryption of hex chunks with the private key; None
/// when a chunk is not a well-formed type-2 block.
fn rsa_decrypt(which: &str, hex: &str) -> Option<Vec<u8>> {
    let (n, d) = (key(&format!("{which}_n")), key(&format!("{which}_d")));
    let k = n.bits().div_ceil(8) as usize;
    if hex.is_empty() || hex.len() % (2 * k) != 0 {
        return None;
    }
    let mut out = Vec::new();
    for chunk in hex.as_bytes().chunks(2 * k) {
        let c = BigUint::parse_bytes(chunk, 16)?;
        let m = c.modpow(&d, &n).to_bytes_be();
        let mut block = vec![0u8; k.checked_sub(m.len())?];
        block.extend(m);
        if block[..2] != [0, 2] {
            return None;
        }
        let sep = block[2..].iter().position(|&b| b == 0)? + 2;
        if sep < 10 {
            return None;
        }
        out.extend_from_slice(&block[sep + 1..]);
    }
    Some(out)
}

fn aes_decrypt(key: &[u8; 16], iv: &[u8; 16], b64: &str) -> Option<Vec<u8>> {
    let bytes = base64::decode(b64)?;
    cbc::Decryptor::<aes::Aes128>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&bytes)
        .ok()
}

fn aes_encrypt(key: &[u8; 16], iv: &[u8; 16], plain: &[u8]) -> String {
    base64::encode(
        &cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plain),
    )
}

fn form_value<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn unescape(text: &str) -> String {
    text.replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=")
}

/// The signature's fields, `k=…&i=…&h=…&s=…`.
fn fields(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Good,
    /// The client list cut in the middle of its base64.
    Truncated,
    /// Decrypts, but is not JSON.
    Garbled,
    /// Not JSON at all.
    Html,
}

struct Router {
    seq: u64,
    /// The AES key and IV of the session the login opened.
    aes: Option<([u8; 16], [u8; 16])>,
    cookie: Option<String>,
    logins: usize,
    logouts: usize,
    /// Another admin (the Deco app's owner) holds the session.
    other_admin: bool,
    /// The next request finds the session ended.
    expire: bool,
    answer: Answer,
    /// What client_list answers: the fixture, with the laptop's down rate.
    laptop_down: u64,
    /// Why a request was refused, for the asserts.
    refusals: Vec<String>,
}

struct MockDeco {
    http: MockHttp,
    router: Arc<Mutex<Router>>,
}

fn encrypted(aes: &([u8; 16], [u8; 16]), plain: &Value) -> Reply {
    let data = aes_encrypt(&aes.0, &aes.1, plain.to_string().as_bytes());
    Reply::ok("application/json", json!({ "data": data }).to_string())
}

impl MockDeco {
    fn start() -> MockDeco {
        let router = Arc::new(Mutex::new(Router {
            seq: 868_144_931,
            aes: None,
            cookie: None,
            logins: 0,
            logouts: 0,
            other_admin: false,
            expire: false,
            answer: Answer::Good,
            laptop_down: 8000,
            refusals: Vec::new(),
        }));
        let shared = Arc::clone(&router);
        let http = MockHttp::start(move |req| handle(&mut shared.lock().unwrap(), req));
        MockDeco { http, router }
    }

    fn router(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router.lock().unwrap()
    }
}

/// Checks a signed request: the signature decrypts with the signing key,
/// `h` is MD5(admin + password), `s` the sequence number plus the data's
/// length; at login it carries `k` and `i`. The data's plaintext, or why not.
fn verify(r: &mut Router, req: &MockRequest, login: bool) -> Result<(Value, bool), String> {
    let body = req.body_text();
    let sign = form_value(&body, "sign").ok_or("no sign")?;
    let data = unescape(form_value(&body, "data").ok_or("no data")?);
    let text = rsa_decrypt("sign", sign).ok_or("the signature does not decrypt")?;
    let fields = fields(&String::from_utf8(text).map_err(|_| "signature not text")?);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    // At login the password is checked first (a wrong one is -5002).
    let h_ok = get("h") == Some(md5::hex(format!("admin{PASSWORD}").as_bytes()));
    if !login && !h_ok {
        return Err("h is not md5(admin + password)".into());
    }
    if get("s") != Some((r.seq + data.len() as u64).to_string()) {
        return Err(format!("s is not seq + {}", data.len()));
    }
    if login {
        let (Some(k), Some(i)) = (get("k"), get("i")) else {
            return Err("the login's signature has no k and i".into());
        };
        let (Ok(k), Ok(i)) = (k.as_bytes().try_into(), i.as_bytes().try_into()) else {
            return Err("k and i are not 16 bytes".into());
        };
        r.aes = Some((k, i));
    }
    let (k, i) = r.aes.ok_or("no session key")?;
    let plain = aes_decrypt(&k, &i, &data).ok_or("the data does not decrypt")?;
    let value = serde_json::from_slice(&plain).map_err(|_| "the data is not JSON")?;
    Ok((value, h_ok))
}

fn handle(r: &mut Router, req: &MockRequest) -> Reply {
    if req.method != "POST" {
        return Reply::status(405, &[], "");
    }
    match req.path.as_str() {
        "/cgi-bin/luci/;stok=/login?form=keys" => {
            Reply::ok("application/json", fixture("keys.json"))
        }
        "/cgi-bin/luci/;stok=/login?form=auth" => {
            // A new sequence number with every auth read.
            r.seq += 1000;
            let auth = fixture("auth.json").replace("868144931", &r.seq.to_string());
            Reply::ok("application/json", auth)
        }
        "/cgi-bin/luci/;stok=/login?form=login" => {
            if r.other_admin {
                return Reply::status(403, &[], "");
            }
            let (request, h_ok) = match verify(r, req, true) {
                Ok(v) => v,
                Err(why) => {
                    r.refusals.push(why);
                    return Reply::status(400, &[], "");
                }
            };
            let aes = r.aes.unwrap();
            let hex = request["params"]["password"].as_str().unwrap_or("");
            if request["operation"] != "login"
                || rsa_decrypt("password", hex).as_deref() != Some(PASSWORD.as_bytes())
            {
                return encrypted(
                    &aes,
                    &json!({"error_code": -5002, "result": {"attemptsAllowed": 9}}),
                );
            }
            if !h_ok {
                r.refusals.push("h is not md5(admin + password)".into());
                return Reply::status(400, &[], "");
            }
            r.logins += 1;
            let cookie = format!("a1b2c3d4e5f6{:04}", r.logins);
            r.cookie = Some(cookie.clone());
            let data = aes_encrypt(
                &aes.0,
                &aes.1,
                json!({"error_code": 0, "result": {"stok": STOK}})
                    .to_string()
                    .as_bytes(),
            );
            Reply::status(
                200,
                &[
                    ("Content-Type", "application/json"),
                    (
                        "Set-Cookie",
                        &format!("sysauth={cookie}; path=/cgi-bin/luci"),
                    ),
                ],
                json!({ "data": data }).to_string(),
            )
        }
        path if path == format!("/cgi-bin/luci/;stok={STOK}/admin/client?form=client_list") => {
            let session = r.cookie.as_ref().map(|c| format!("sysauth={c}"));
            if r.expire || session.is_none() || req.header("Cookie") != session.as_deref() {
                r.expire = false;
                r.cookie = None;
                return Reply::ok("application/json", r#"{"data":""}"#);
            }
            let request = match verify(r, req, false) {
                Ok((v, _)) => v,
                Err(why) => {
                    r.refusals.push(why);
                    return Reply::status(400, &[], "");
                }
            };
            assert_eq!(
                request,
                json!({"operation": "read", "params": {"device_mac": "default"}})
            );
            let aes = r.aes.unwrap();
            let list = fixture("client_list.json").replace(
                "\"down_speed\": 8000",
                &format!("\"down_speed\": {}", r.laptop_down),
            );
            match r.answer {
                Answer::Good => encrypted(&aes, &serde_json::from_str::<Value>(&list).unwrap()),
                Answer::Truncated => {
                    let data = aes_encrypt(&aes.0, &aes.1, list.as_bytes());
                    let cut = &data[..data.len() / 2];
                    Reply::ok("application/json", json!({ "data": cut }).to_string())
                }
                Answer::Garbled => {
                    let data = aes_encrypt(&aes.0, &aes.1, &list.as_bytes()[..list.len() - 40]);
                    Reply::ok("application/json", json!({ "data": data }).to_string())
                }
                Answer::Html => Reply::ok("text/html", "<html><body>busy</body></html>"),
            }
        }
        path if path == format!("/cgi-bin/luci/;stok={STOK}/admin/system?form=logout") => {
            match verify(r, req, false) {
                Ok((request, _)) if request == json!({"operation": "logout"}) => {
                    r.cookie = None;
                    r.logouts += 1;
                    encrypted(&r.aes.unwrap(), &json!({"error_code": 0}))
                }
                Ok(_) => Reply::status(400, &[], ""),
                Err(why) => {
                    r.refusals.push(why);
                    Reply::status(400, &[], "")
                }
            }
        }
        _ => Reply::status(404, &[], ""),
    }
}

/// The source, with the clock the test moves (milliseconds).
fn source(port: u16, password: &str, clock: &Arc<AtomicU64>) -> Deco {
    let mut c = UpstreamConfig::new("mesh", UpstreamKind::Deco);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c.password = Secret::password(password);
    let clock = Arc::clone(clock);
    Deco::with_clock(
        &c,
        c.password.clone(),
        Box::new(move || clock.load(Ordering::SeqCst)),
    )
}

fn scrape(s: &mut Deco) -> Result<Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(5)))
}

fn assert_clean(e: &ScrapeError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[test]
fn deco_login_and_two_reads_integrate_rates_into_totals() {
    let deco = MockDeco::start();
    let clock = Arc::new(AtomicU64::new(1_000));
    let mut s = source(deco.http.port(), PASSWORD, &clock);
    let first = scrape(&mut s).unwrap();
    assert_eq!(deco.router().refusals, Vec::<String>::new());
    assert_eq!(first.devices.len(), 3);
    let laptop = first
        .devices
        .iter()
        .find(|d| d.mac.to_string() == LAPTOP)
        .unwrap();
    assert_eq!(laptop.hostname.as_deref(), Some("laptop"));
    assert_eq!(laptop.ip, Some("192.168.68.101".parse().unwrap()));
    // The first reading only starts the clock.
    assert_eq!((laptop.rx_bytes, laptop.tx_bytes), (0, 0));

    // Thirty seconds on, the laptop's rate rose from 8000 to 12000 kbit/s.
    // Had it risen steadily, it moved (8000 + 12000) / 2 × 30 s; the
    // estimate takes the rate read at the end for the whole interval: the
    // error is within |r2 − r1| × Δt, as docs/UPSTREAM.md states.
    deco.router().laptop_down = 12_000;
    clock.store(31_000, Ordering::SeqCst);
    let second = scrape(&mut s).unwrap();
    assert_eq!(deco.router().logins, 1, "the session is reused");
    let laptop = second
        .devices
        .iter()
        .find(|d| d.mac.to_string() == LAPTOP)
        .unwrap();
    let estimate = laptop.rx_bytes;
    assert_eq!(estimate, 12_000 * BYTES_PER_RATE_UNIT * 30);
    let steady = (8_000 + 12_000) / 2 * BYTES_PER_RATE_UNIT * 30;
    let bound = (12_000 - 8_000) * BYTES_PER_RATE_UNIT * 30;
    assert!(estimate.abs_diff(steady) <= bound, "{estimate} vs {steady}");
    assert_eq!(laptop.tx_bytes, 240 * BYTES_PER_RATE_UNIT * 30);
    let nas = second
        .devices
        .iter()
        .find(|d| d.hostname.as_deref() == Some("nas"))
        .unwrap();
    assert_eq!((nas.rx_bytes, nas.tx_bytes), (40 * 125 * 30, 16 * 125 * 30));
    // The password never crossed the wire in the clear.
    assert!(deco.http.requests().iter().all(|r| !r.contains(PASSWORD)));
}

#[test]
fn deco_wrong_password_stops_with_an_actionable_message() {
    let deco = MockDeco::start();
    let clock = Arc::new(AtomicU64::new(0));
    let mut s = source(deco.http.port(), "not-the-password", &clock);
    let e = scrape(&mut s).unwrap_err();
    assert!(
        matches!(&e, ScrapeError::WrongCredentials(m) if m.contains("check option password")),
        "{e:?}"
    );
    assert!(e.to_string().contains("not retrying"), "{e}");
    assert_clean(&e);
    // Refused on the decrypted password, before the signature's h.
    assert_eq!(deco.router().logins, 0);
    assert_eq!(deco.router().refusals, Vec::<String>::new());
}

#[test]
fn deco_expired_session_logs_in_again_within_the_scrape() {
    let deco = MockDeco::start();
    let clock = Arc::new(AtomicU64::new(0));
    let mut s = source(deco.http.port(), PASSWORD, &clock);
    scrape(&mut s).unwrap();
    deco.router().expire = true;
    clock.store(30_000, Ordering::SeqCst);
    let reading = scrape(&mut s).unwrap();
    assert_eq!(reading.devices.len(), 3);
    assert_eq!(deco.router().logins, 2);
    assert_eq!(deco.router().refusals, Vec::<String>::new());
}

#[test]
fn deco_second_admin_is_retried_later() {
    let deco = MockDeco::start();
    let clock = Arc::new(AtomicU64::new(0));
    let mut s = source(deco.http.port(), PASSWORD, &clock);
    deco.router().other_admin = true;
    let e = scrape(&mut s).unwrap_err();
    assert!(
        matches!(&e, ScrapeError::Auth(m) if m.contains("retry later")),
        "{e:?}"
    );
    assert_clean(&e);
    // Once the owner has gone, the next scrape logs in.
    deco.router().other_admin = false;
    assert_eq!(scrape(&mut s).unwrap().devices.len(), 3);
}

#[test]
fn deco_malformed_and_truncated_answers_are_parse_errors() {
    for answer in [Answer::Truncated, Answer::Garbled, Answer::Html] {
        let deco = MockDeco::start();
        let clock = Arc::new(AtomicU64::new(0));
        let mut s = source(deco.http.port(), PASSWORD, &clock);
        deco.router().answer = answer;
        let e = scrape(&mut s).unwrap_err();
        assert_eq!(e.stage(), "parse", "{e:?}");
        assert_clean(&e);
        // Good again: the source recovers by itself.
        deco.router().answer = Answer::Good;
        assert_eq!(scrape(&mut s).unwrap().devices.len(), 3);
    }
}

#[test]
fn deco_close_logs_out_with_a_signed_request() {
    let deco = MockDeco::start();
    let clock = Arc::new(AtomicU64::new(0));
    let mut s = source(deco.http.port(), PASSWORD, &clock);
    scrape(&mut s).unwrap();
    s.close(Deadline::after(Duration::from_secs(5)));
    assert_eq!(deco.router().logouts, 1);
    assert_eq!(deco.router().refusals, Vec::<String>::new());
    // Nothing to end twice.
    s.close(Deadline::after(Duration::from_secs(5)));
    assert_eq!(deco.router().logouts, 1);
}

#[test]
fn deco_is_what_option_type_deco_builds() {
    let deco = MockDeco::start();
    let mut c = UpstreamConfig::new("mesh", UpstreamKind::Deco);
    c.host = Some("127.0.0.1".into());
    c.port = deco.http.port();
    c.password = Secret::password(PASSWORD);
    let mut s = source_for(&c).unwrap();
    let reading = s.scrape(Deadline::after(Duration::from_secs(5))).unwrap();
    assert_eq!(reading.devices.len(), 3);
    assert_eq!(deco.router().logins, 1);
}

/// The estimates through the accounting, across a restart of netmeter:
/// the new source's totals start at zero, every counter falls at once,
/// and the accounting counts them from there instead of waiting for them
/// to pass the old ones.
#[test]
fn deco_totals_survive_a_restart_of_the_source_in_the_accounts() {
    let deco = MockDeco::start();
    let clock = Arc::new(AtomicU64::new(0));
    let mut accounts = UpstreamAccounts::default();
    let mut ingest = |s: &mut Deco, secs: u64| {
        clock.store(secs * 1000, Ordering::SeqCst);
        let reading = scrape(s).unwrap();
        let now = Moment {
            monotonic_ms: secs * 1000,
            unix_secs: 1_795_000_000 + secs,
        };
        accounts.ingest("mesh", "deco", now, &reading, None);
    };
    let mut first = source(deco.http.port(), PASSWORD, &clock);
    ingest(&mut first, 0);
    ingest(&mut first, 30);
    ingest(&mut first, 60);
    // netmeter restarts: a new source, its totals from zero.
    let mut second = source(deco.http.port(), PASSWORD, &clock);
    ingest(&mut second, 300);
    ingest(&mut second, 330);
    let laptop = accounts
        .get("mesh")
        .unwrap()
        .devices
        .iter()
        .find(|d| d.mac.to_string() == LAPTOP)
        .unwrap()
        .totals
        .rx_bytes();
    // 30 s + 30 s before, 30 s after; the time netmeter was down is not counted.
    assert_eq!(laptop, 3 * 8_000 * BYTES_PER_RATE_UNIT * 30);
}
