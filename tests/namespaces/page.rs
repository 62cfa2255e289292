//! The built-in page in a real browser: headless Chromium, driven over the
//! WebDriver protocol through chromedriver, loads `/` from a real daemon.
//!
//! Everything runs inside the test bed's router namespace: the daemon on
//! its loopback, chromedriver and the Chromium it starts (`Host::command`).
//! The test talks WebDriver to chromedriver through the router's agent
//! (`http METHOD ADDR PATH HEXBODY`), so no port is opened on the machine's
//! own network, and a browser that tried to reach the internet would find
//! only a loopback interface and the test's veths.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; or point NETMETER_CHROMIUM and NETMETER_CHROMEDRIVER at
//! them). Without them the test fails when CI=true and otherwise skips,
//! loudly.

use crate::testbed;

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testbed::http;
use testbed::netmeter::{Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4};
use testbed::{Host, LanHost, Network, Topology};

/// chromedriver's port inside the router namespace.
const DRIVER: &str = "127.0.0.1:9515";
const API: &str = "127.0.0.1:9750";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The flags that keep Chromium quiet on a closed network, and headless.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-default-browser-check",
    "--window-size=1100,900",
];

fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Chromium and chromedriver, or None (after saying so) when the test may skip.
pub(crate) fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    // Debian's /usr/bin/chromium is a shell wrapper: the real binary is preferred.
    let chromium = find_program(
        "NETMETER_CHROMIUM",
        &[
            "/usr/lib/chromium/chromium",
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
        ],
    );
    let driver = find_program(
        "NETMETER_CHROMEDRIVER",
        &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
    );
    if let (Some(c), Some(d)) = (&chromium, &driver) {
        return Some((c.clone(), d.clone()));
    }
    let msg = format!(
        "the page's browser test needs Chromium and chromedriver, and found {} and {}. \
         Install them (Debian: apt-get install chromium chromium-driver) or set \
         NETMETER_CHROMIUM and NETMETER_CHROMEDRIVER.",
        chromium.map_or("no chromium".into(), |p| p.display().to_string()),
        driver.map_or("no chromedriver".into(), |p| p.display().to_string()),
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true: {msg}");
    }
    // Straight to stderr: the test harness would capture eprintln!.
    let bar = "!".repeat(72);
    let _ = writeln!(std::io::stderr(), "\n{bar}\n!!! SKIPPED: {msg}\n{bar}\n");
    None
}

/// A chromedriver and its one browser session, in `host`'s namespaces.
pub(crate) struct Browser<'a> {
    host: &'a Host,
    driver: Child,
    session: String,
    log: PathBuf,
}

impl<'a> Browser<'a> {
    pub(crate) fn start(
        host: &'a Host,
        chromium: &Path,
        chromedriver: &Path,
        scratch: &Scratch,
    ) -> Self {
        let home = scratch.0.join("home");
        let profile = scratch.0.join("profile");
        std::fs::create_dir_all(&home).unwrap();
        let log = scratch.0.join("chromedriver.log");
        let port = DRIVER.rsplit(':').next().unwrap();
        let driver = host
            .command(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let mut b = Browser {
            host,
            driver,
            session: String::new(),
            log,
        };
        let start = Instant::now();
        loop {
            if let Ok((200, v)) = b.request("GET", "/status", None)
                && v["value"]["ready"] == true
            {
                break;
            }
            if let Ok(Some(st)) = b.driver.try_wait() {
                panic!("chromedriver exited ({st}):\n{}", b.log_tail());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver never became ready:\n{}",
                b.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));

        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // Debian's Chromium would open a search engine's start page first.
            "goog:chromeOptions": {"binary": chromium, "args": args, "prefs": {
                "session": {"restore_on_startup": 4, "startup_urls": ["about:blank"]},
            }},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = b.call("POST", "/session", Some(capabilities));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_string();
        b
    }

    /// One WebDriver request through the agent: (status, JSON answer).
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let hex = body.map_or("-".into(), |b| http::hex(b.to_string().as_bytes()));
        let answer = self
            .host
            .call(&format!("http {method} {DRIVER} {path} {hex}"))
            .map_err(|e| e.to_string())?;
        let (status, hex) = answer.split_once(' ').unwrap_or((&answer, ""));
        let text = http::unhex(hex)?;
        let value = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{method} {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&text)
            )
        })?;
        Ok((status.parse().unwrap_or(0), value))
    }

    /// A session command; its `value`, or the WebDriver error's name and message.
    pub(crate) fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let path = if path.starts_with("/session") {
            path.to_string()
        } else {
            format!("/session/{}{path}", self.session)
        };
        let (status, v) = self
            .request(method, &path, body)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log_tail()));
        if status != 200 {
            return Err(format!(
                "WebDriver {method} {path}: {status} {}: {}",
                v["value"]["error"], v["value"]["message"]
            ));
        }
        Ok(v["value"].clone())
    }

    /// Like `try_call`, panicking on an error.
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log_tail()))
    }

    pub(crate) fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Runs `script` until it returns something truthy; panics with the page's text after 30 s.
    pub(crate) fn wait_for(&self, what: &str, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.execute(script);
            if !(v.is_null() || v == false || v == 0 || v == "" || v == json!([])) {
                return v;
            }
            if start.elapsed() > Duration::from_secs(30) {
                self.fail(&format!("waited 30 s for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `css` selects, as a user would (the WebDriver
    /// element click: scrolled into view, at its centre). Found again if
    /// the page replaced it in between.
    pub(crate) fn click(&self, css: &str) {
        let mut tries = 0;
        loop {
            let id = self.element(css);
            match self.try_call("POST", &format!("/element/{id}/click"), Some(json!({}))) {
                Ok(_) => return,
                Err(e) if e.contains("stale element") && tries < 5 => tries += 1,
                Err(e) => panic!("clicking {css}: {e}\n{}", self.log_tail()),
            }
        }
    }

    /// The WebDriver id of the element `css` selects.
    pub(crate) fn element(&self, css: &str) -> String {
        let el = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        el[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element for {css}: {el}"))
            .to_owned()
    }

    /// Types `text` into the (emptied) field `css` selects.
    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// The browser console's errors so far (chromedriver's "browser" log).
    pub(crate) fn console_errors(&self) -> Vec<String> {
        let v = self.call("POST", "/se/log", Some(json!({"type": "browser"})));
        v.as_array()
            .unwrap_or_else(|| panic!("no browser log: {v}"))
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// With NETMETER_PAGE_SCREENSHOTS=DIR, saves what the browser shows as DIR/NAME.
    pub(crate) fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("NETMETER_PAGE_SCREENSHOTS") else {
            return;
        };
        let png = self.call("GET", "/screenshot", None);
        let path = Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, base64(png.as_str().unwrap())).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "----- chromedriver log, last 30 lines -----\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    pub(crate) fn fail(&self, what: &str) -> ! {
        let text = self.execute("return document.body ? document.body.innerText : ''");
        let errors = self.console_errors();
        panic!(
            "{what}\n----- the page's text -----\n{}\n----- console errors -----\n{}",
            text.as_str().unwrap_or_default(),
            errors.join("\n")
        );
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn api(router: &Host, path: &str) -> Value {
    let answer = router.run(&format!("http_get {API} {path}"));
    let (code, body) = answer.split_once(' ').unwrap_or(("", ""));
    assert_eq!(code, "200", "{path}: {answer}");
    serde_json::from_str(body).unwrap()
}

fn texts(b: &Browser, css: &str) -> Vec<String> {
    let v = b.execute(&format!(
        "return Array.from(document.querySelectorAll({})).map(e => e.textContent)",
        json!(css)
    ));
    serde_json::from_value(v).unwrap()
}

#[test]
fn the_page_in_headless_chromium_shows_tables_sorts_and_charts_without_errors() {
    let Some((chromium, chromedriver)) = browser_programs() else {
        return;
    };
    let net = Network::build(Topology {
        lan: vec![LanHost::dual("laptop")],
        bridge: Some("br-lan".into()),
    });
    let scratch = Scratch::new();
    let mac = net.lan[0].mac();
    let d = Daemon::start(
        &net.router,
        &scratch,
        &format!(
            "config netmeter 'main'\n\toption refresh_interval '1'\n\tlist lan_interface 'br-lan'\n\
             config quota 'laptop'\n\toption device '{mac}'\n\toption limit '10K'\n"
        ),
    );
    // Traffic, so the history has bars, the device table a device and
    // the quota its 100 %.
    net.lan[0].run(&format!("udp_upload {WAN_HOST_V4} {PORT} 50 1000"));
    d.wait_refreshed(&net.router);
    let names: Vec<String> = api(&net.router, "/api/v1/interfaces")["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "wan"), "{names:?}");

    let b = Browser::start(&net.router, &chromium, &chromedriver, &scratch);
    b.call(
        "POST",
        "/url",
        Some(json!({"url": format!("http://{API}/")})),
    );
    assert_eq!(b.execute("return document.title"), "netmeter");

    // The header, from /api/v1/status.
    let version = b.wait_for(
        "the version in the header",
        "return document.getElementById('version').textContent",
    );
    assert_eq!(
        version,
        format!("version {}", env!("CARGO_PKG_VERSION")),
        "header"
    );

    // The interfaces table lists what the daemon reports, by name ascending.
    let mut sorted = names.clone();
    sorted.sort();
    b.wait_for(
        "the interfaces table",
        &format!(
            "return JSON.stringify(Array.from(document.querySelectorAll('#interfaces tbody tr')).map(r => r.dataset.id)) === {}",
            json!(serde_json::to_string(&sorted).unwrap())
        ),
    );
    let shown = texts(&b, "#interfaces tbody tr td:first-child");
    assert_eq!(shown.len(), names.len(), "{shown:?}");

    // The devices table exists and shows the LAN host.
    b.wait_for(
        "the laptop in the devices table",
        &format!(
            "return !!document.querySelector('#devices tbody tr[data-id={}]')",
            json!(mac)
        ),
    );
    // The quotas table, shown because there is one (netmeter-full); the
    // core build has none to show and hides it.
    #[cfg(feature = "quota")]
    {
        b.wait_for(
            "the quota in the quotas table",
            "return document.querySelector('#quotatable tbody th')?.textContent === 'laptop'",
        );
        let cells = texts(&b, "#quotatable tbody td");
        assert_eq!(
            cells[0],
            format!("device {mac}, total per month"),
            "{cells:?}"
        );
        assert_eq!(cells[3], "100 %", "{cells:?}");
    }
    #[cfg(not(feature = "quota"))]
    assert_eq!(
        b.execute("return document.getElementById('quotas').hidden"),
        json!(true)
    );
    let headers = texts(&b, "#devices thead th");
    assert_eq!(
        headers,
        [
            "Name", "MAC", "IPs", "rx", "tx", "total", "rx now", "tx now"
        ]
    );

    // A click on a column title sorts by it, and again the other way.
    let ids = "return Array.from(document.querySelectorAll('#interfaces tbody tr')).map(r => r.dataset.id)";
    let sort_state =
        "return document.querySelector('#interfaces th[data-k=name]').getAttribute('aria-sort')";
    assert_eq!(b.execute(sort_state), "ascending");
    b.click("#interfaces th[data-k=name] button");
    assert_eq!(b.execute(sort_state), "descending");
    let mut descending = sorted.clone();
    descending.reverse();
    assert_eq!(b.execute(ids), json!(descending));
    b.click("#interfaces th[data-k=name] button");
    assert_eq!(b.execute(ids), json!(sorted));
    b.click("#interfaces th[data-k=tx_bytes] button");
    assert_eq!(
        b.execute("return document.querySelector('#interfaces th[data-k=tx_bytes]').getAttribute('aria-sort')"),
        "descending"
    );
    assert_eq!(b.execute(sort_state), "none");

    // Selecting an interface charts it: five-minute bars, rx and tx.
    b.click("#interfaces tbody tr[data-id=wan]");
    b.click("#periods button[data-p=fiveminute]");
    b.wait_for(
        "wan's five-minute chart with a bar",
        "const h = document.getElementById('selected').textContent, \
         bars = document.querySelectorAll('#chart svg rect.bar'); \
         return h === 'wan' && bars.length > 0 && document.querySelector('#chart svg').getAttribute('aria-label').startsWith('wan,') \
           && Array.from(bars).some(r => +r.getAttribute('height') > 0 && +r.dataset.bytes > 0)",
    );
    assert_eq!(
        b.execute("return document.querySelector('#interfaces tbody tr[data-id=wan]').getAttribute('aria-current')"),
        "true"
    );
    let bars = b.execute(
        "return ['rx', 'tx'].map(c => document.querySelectorAll('#chart svg rect.bar.' + c).length)",
    );
    assert_eq!(bars[0], bars[1], "as many rx bars as tx bars: {bars}");
    // Its queues, as /api/v1/queues has them (a veth has none by default:
    // the page says so, or lists what the kernel gave it).
    b.wait_for(
        "wan's queues",
        "const q = document.getElementById('queues').textContent; \
         return q.includes('Queues of wan now') || q.includes('No qdiscs on wan.')",
    );
    assert!(
        !texts(&b, "#chart svg text").is_empty(),
        "axis labels on the chart"
    );

    // Selecting the device charts it (devices keep hours, not five minutes).
    b.click(&format!("#devices tbody tr[data-id=\"{mac}\"]"));
    b.click("#periods button[data-p=hour]");
    b.wait_for(
        "the laptop's hourly chart with a bar",
        &format!(
            "return document.getElementById('selected').textContent.includes({}) \
             && Array.from(document.querySelectorAll('#chart svg rect.bar.tx')).some(r => +r.dataset.bytes > 0)",
            json!(mac)
        ),
    );
    // The netdev placement has no protocol view, and the page says so.
    b.wait_for(
        "the note that the protocol breakdown needs conntrack",
        "return document.getElementById('protocols').textContent.includes(\"placement 'conntrack'\")",
    );
    b.screenshot("page-desktop.png");

    // On a phone's width the page itself does not scroll sideways (wide
    // tables scroll in their own box) and the chart is drawn to fit.
    // (A window cannot be that narrow: the phone is emulated.)
    b.call(
        "POST",
        "/goog/cdp/execute",
        Some(
            json!({"cmd": "Emulation.setDeviceMetricsOverride", "params":
            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}}),
        ),
    );
    b.wait_for(
        "the chart redrawn for a phone's width",
        "const svg = document.querySelector('#chart svg'); \
         return innerWidth === 390 && svg && +svg.getAttribute('width') <= innerWidth",
    );
    assert_eq!(
        b.execute("return document.documentElement.scrollWidth <= innerWidth"),
        true,
        "the page is wider than the phone"
    );
    b.screenshot("page-phone.png");
    // The laptop's bars are drawn there, not squeezed to nothing: every bar
    // with bytes has a rendered width and height, on the screen, inside
    // the chart's rendered box, and is what the browser finds at its
    // centre. (Chromium still gives a bar its unscaled box when its svg is
    // squeezed to 0 px wide, so the bar's own box is not enough.)
    let bars = b.execute(
        "document.getElementById('chart').scrollIntoView({block: 'nearest'}); \
         const s = document.querySelector('#chart svg').getBoundingClientRect(); \
         return Array.from(document.querySelectorAll('#chart svg rect.bar')) \
           .filter(r => +r.dataset.bytes > 0).map(r => { const b = r.getBoundingClientRect(); \
             const hit = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2); \
             return [r.getAttribute('class'), b.left, b.width, b.height, b.left >= s.left && b.right <= s.right \
               && b.top >= s.top && b.bottom <= s.bottom && s.width > 0 && s.height > 0, hit === r]; })",
    );
    let bars: Vec<(String, f64, f64, f64, bool, bool)> = serde_json::from_value(bars).unwrap();
    assert!(!bars.is_empty(), "no bar with bytes on the phone");
    for (class, left, width, height, inside, hit) in &bars {
        assert!(
            *width > 0.0 && *height > 0.0 && *left >= 0.0 && left + width <= 390.0 && *inside && *hit,
            "on the phone a bar ({class}) is {width} x {height} px at x = {left}, inside its \
             chart: {inside}, found at its centre: {hit}; every bar with bytes: {bars:?}; {}",
            b.execute(
                "const c = document.getElementById('chart'), s = c.querySelector('svg').getBoundingClientRect(); \
                 return 'the chart box is ' + c.clientWidth + ' px wide, its svg ' + s.width + ' x ' + s.height"
            )
        );
    }

    let errors = b.console_errors();
    assert!(
        errors.is_empty(),
        "the browser console has errors:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_page_in_headless_chromium_breaks_a_selected_device_down_by_protocol_under_conntrack() {
    let Some((chromium, chromedriver)) = browser_programs() else {
        return;
    };
    let net = Network::build(Topology {
        lan: vec![LanHost::dual("laptop")],
        bridge: Some("br-lan".into()),
    });
    net.wan.run("serve 443");
    let scratch = Scratch::new();
    let d = Daemon::start(
        &net.router,
        &scratch,
        "config netmeter 'main'\n\toption refresh_interval '1'\n\tlist lan_interface 'br-lan'\n\
         \toption placement 'conntrack'\n",
    );
    d.wait_for_log(
        "per-device accounting: conntrack",
        std::time::Duration::from_secs(10),
    );
    net.lan[0].run(&format!("tcp_upload {WAN_HOST_V4} 443 300000"));
    net.lan[0].run(&format!("udp_upload {WAN_HOST_V4} {PORT} 50 1000"));
    d.wait_refreshed(&net.router);
    let mac = net.lan[0].mac();

    let b = Browser::start(&net.router, &chromium, &chromedriver, &scratch);
    b.call(
        "POST",
        "/url",
        Some(json!({"url": format!("http://{API}/")})),
    );
    b.wait_for(
        "the laptop in the devices table",
        &format!(
            "return !!document.querySelector('#devices tbody tr[data-id={}]')",
            json!(mac)
        ),
    );
    b.click(&format!("#devices tbody tr[data-id=\"{mac}\"]"));
    let classes = b.wait_for(
        "the laptop's protocol breakdown",
        "const rows = Array.from(document.querySelectorAll('#protocol-table tbody th')).map(t => t.textContent); \
         return rows.length >= 2 ? rows : null",
    );
    let classes: Vec<String> = serde_json::from_value(classes).unwrap();
    // Largest first: 300 KB to 443 before 50 KB to the test port.
    assert_eq!(classes, ["https", "other"]);
    b.screenshot("page-protocols.png");
    let errors = b.console_errors();
    assert!(
        errors.is_empty(),
        "the browser console has errors:\n{}",
        errors.join("\n")
    );
}

/// Decodes standard base64 (WebDriver's screenshots).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c.iter().fold(0u32, |n, &d| n << 6 | u32::from(d)) << (6 * (4 - c.len()));
            let bytes = n.to_be_bytes();
            bytes[1..c.len()].to_vec()
        })
        .collect()
}

#[test]
fn the_page_in_headless_chromium_asks_for_the_token_and_keeps_it_for_the_tab() {
    let Some((chromium, chromedriver)) = browser_programs() else {
        return;
    };
    const TOKEN: &str = "page-test-token-0123456789";
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let _d = Daemon::start(
        &net.router,
        &scratch,
        &format!(
            "config netmeter 'main'\n\toption refresh_interval '1'\n\toption token '{TOKEN}'\n"
        ),
    );
    let b = Browser::start(&net.router, &chromium, &chromedriver, &scratch);
    b.call(
        "POST",
        "/url",
        Some(json!({"url": format!("http://{API}/")})),
    );
    // The page itself needs no token; the API answers 401 and the page asks.
    b.wait_for(
        "the token field",
        "return !document.getElementById('auth').hidden",
    );
    assert_eq!(
        b.execute("return document.querySelectorAll('#interfaces tbody tr').length"),
        0
    );

    b.type_into("#token", "not-the-token-0123456789");
    b.click("#auth button");
    b.wait_for(
        "the page to say the token was refused",
        "return !document.getElementById('auth').hidden \
         && document.getElementById('authwhy').textContent.includes('refused')",
    );

    b.type_into("#token", TOKEN);
    b.click("#auth button");
    let tables = "return document.getElementById('auth').hidden \
         && document.querySelectorAll('#interfaces tbody tr').length > 0 \
         && document.getElementById('version').textContent !== ''";
    b.wait_for("the tables, with the token", tables);
    assert_eq!(
        b.execute("return sessionStorage.getItem('netmeter-token')"),
        TOKEN
    );

    // A reload in the same tab keeps it: no question asked again.
    b.call("POST", "/refresh", Some(json!({})));
    b.wait_for("the tables after a reload", tables);
    b.wait_for(
        "the chart after a reload",
        "return document.querySelectorAll('#chart svg rect.bar').length > 0",
    );

    // Only the expected refusals: the browser logs every 401 it receives.
    let errors: Vec<String> = b
        .console_errors()
        .into_iter()
        .filter(|e| !e.contains("status of 401"))
        .collect();
    assert!(
        errors.is_empty(),
        "the browser console has errors:\n{}",
        errors.join("\n")
    );
}
