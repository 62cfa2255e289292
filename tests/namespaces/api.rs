//! The HTTP API with real sockets: the token, errors as JSON with the right
//! status, `/metrics`, stalled clients, and load against the daemon's
//! threads and memory.
//!
//! Server-only behaviour runs `serve::http::serve` in this process on
//! 127.0.0.1 port 0; everything else asks a real daemon in a namespace.
//!
//! Raw requests go from inside the router namespace (agent commands
//! `http_raw`, and `http_hammer` for many clients at once); the daemon's
//! `Threads` and `VmRSS` are read from `/proc/PID/status`.

use crate::testbed;

use netmeter::serve::api::{self, ApiState, InterfaceView, InterfacesReport};
use netmeter::serve::http::{self, Limits, Request};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testbed::Network;
use testbed::http::{Answer, raw, threads_and_rss};
use testbed::netmeter::{self as nm, Daemon, Scratch};

const TOKEN: &str = "q83vEjRWeJ-test-token-7f3a9c";

fn config(extra: &str) -> String {
    format!(
        "config netmeter 'main'\n\toption refresh_interval '3600'\n\toption listen '127.0.0.1:9750'\n{extra}"
    )
}

fn with_token() -> String {
    config(&format!("\toption token '{TOKEN}'\n"))
}

fn get(path: &str, authorization: Option<&str>) -> Vec<u8> {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: router\r\n{auth}Connection: close\r\n\r\n").into_bytes()
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// An error answer: that status, JSON `{"error": "…"}`, no token anywhere.
fn assert_error(a: &Answer, status: u16) -> String {
    assert_eq!(a.status, status, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert!(!a.text().contains(TOKEN), "the token leaked: {}", a.text());
    let v = a.json();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    v["error"].as_str().expect("an error message").to_string()
}

// ------------------------------------------------------- the real daemon

#[test]
fn with_a_token_every_request_needs_it_and_it_never_shows() {
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &with_token());
    let ask = |req: &[u8]| raw(&net.router, &d.api, req);

    for path in ["/api/v1/status", "/api/v1/interfaces", "/metrics", "/nope"] {
        let missing = ask(&get(path, None));
        assert_error(&missing, 401);
        assert!(
            missing
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{}",
            missing.text()
        );
        for wrong in [
            "Bearer wrong-token-wrong-token".to_string(),
            format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
            format!("Bearer {TOKEN}x"),
            format!("Basic {TOKEN}"),
            TOKEN.to_string(),
        ] {
            let a = ask(&get(path, Some(&wrong)));
            assert_error(&a, 401);
            assert!(a.header("www-authenticate").unwrap().starts_with("Bearer"));
        }
    }
    // POST without the token is refused for the token, not the method.
    assert_error(
        &ask(b"POST /api/v1/status HTTP/1.1\r\nHost: r\r\n\r\n"),
        401,
    );

    let ok = ask(&get("/api/v1/interfaces", Some(&bearer())));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.json()["interfaces"].is_array());
    let lower = ask(&get("/api/v1/status", Some(&format!("bearer  {TOKEN}"))));
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");
    assert!(!lower.text().contains(TOKEN));

    // The CLI sends the token of the config file it reads...
    let cfg = d.config_path().to_str().unwrap();
    let report = nm::json(&net.router, &["interfaces", "--json", "-c", cfg]);
    assert!(report["interfaces"].is_array(), "{report}");
    // ... and without one it says what the daemon wants, in one line.
    let tokenless = scratch.file("tokenless.conf", &config(""));
    let out = nm::run(
        &net.router,
        &["interfaces", "--json", "-c", tokenless.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a token"), "{err}");
    assert!(!err.contains(TOKEN));

    // check says it is set, never what it is.
    let out = nm::run(&net.router, &["check", "--json", "-c", cfg]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let token = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["topic"] == "token")
        .unwrap_or_else(|| panic!("no token finding: {report}"));
    assert!(token["message"].as_str().unwrap().starts_with("set"));
    assert_eq!(token["ok"], true);
    assert!(!stdout.contains(TOKEN) && !String::from_utf8_lossy(&out.stderr).contains(TOKEN));
    let text = nm::run(&net.router, &["check", "-c", cfg]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("token        set"));

    // A new token takes effect on SIGHUP; the old one stops working.
    let new_token = "0123456789abcdef-new";
    std::fs::write(
        d.config_path(),
        config(&format!("\toption token '{new_token}'\n")),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("configuration reloaded", Duration::from_secs(10));
    assert_error(&ask(&get("/api/v1/status", Some(&bearer()))), 401);
    let a = ask(&get("/api/v1/status", Some(&format!("Bearer {new_token}"))));
    assert_eq!(a.status, 200, "{}", a.text());

    // A bad token in a reload is refused without quoting it.
    std::fs::write(d.config_path(), config("\toption token 'hunter2'\n")).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log("keeping the old configuration", Duration::from_secs(10));

    let log = d.log_text();
    assert!(log.contains("(token required)"), "{log}");
    for secret in [TOKEN, new_token, "hunter2"] {
        assert!(!log.contains(secret), "the log shows a token:\n{log}");
    }
}

#[test]
fn errors_are_json_with_the_right_status() {
    let net = Network::with_lan_hosts(&[]);
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config(""));
    let ask = |req: &[u8]| raw(&net.router, &d.api, req);

    let oversized = format!(
        "GET /api/v1/status HTTP/1.1\r\nHost: r\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert_error(&ask(oversized.as_bytes()), 431);
    let many_headers: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
    let many = format!("GET /api/v1/status HTTP/1.1\r\nHost: r\r\n{many_headers}\r\n");
    assert_error(&ask(many.as_bytes()), 431);

    let message = assert_error(&ask(&get("/api/v1/nope", None)), 404);
    assert!(message.contains("/api/v1/nope"), "{message}");
    assert_error(&ask(&get("/favicon.ico", None)), 404);

    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let a = ask(format!("{method} /api/v1/status HTTP/1.1\r\nHost: r\r\n\r\n").as_bytes());
        assert_error(&a, 405);
        assert_eq!(a.header("allow"), Some("GET, HEAD"));
    }
    let post =
        b"POST /api/v1/status HTTP/1.1\r\nHost: r\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n";
    assert_error(&ask(post), 413);

    assert_error(&ask(b"\x16\x03\x01\x02\x00 TLS hello\r\n\r\n"), 400);
    assert_error(&ask(b"GET /api/v1/status HTTP/1.1\r\n\r\n"), 400);
    assert_error(&ask(b"GET api/v1/status HTTP/1.1\r\nHost: r\r\n\r\n"), 400);
    let message = assert_error(&ask(&get("/api/v1/interfaces?sort=rx", None)), 400);
    assert!(message.contains("'sort'"), "{message}");
    assert_error(&ask(&get("/metrics?x=%zz", None)), 400);

    // HEAD: GET's headers, Content-Length included, and no body.
    let got = ask(&get("/api/v1/interfaces", None));
    assert_eq!(got.status, 200);
    let head = ask(b"HEAD /api/v1/interfaces HTTP/1.1\r\nHost: r\r\n\r\n");
    assert_eq!(head.status, 200, "{}", head.text());
    assert!(head.body.is_empty(), "{}", head.text());
    assert_eq!(
        head.header("content-length").unwrap(),
        got.body.len().to_string()
    );
    // HTTP/1.0 needs no Host; an absolute target is a path.
    assert_eq!(ask(b"GET /api/v1/status HTTP/1.0\r\n\r\n").status, 200);
    let absolute = ask(b"GET http://router:9750/api/v1/interfaces HTTP/1.1\r\nHost: r\r\n\r\n");
    assert_eq!(absolute.body, got.body);
}

#[test]
fn metrics_are_prometheus_text_from_the_published_state() {
    let net = Network::with_lan_hosts(&["laptop"]);
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &with_token());
    let a = raw(&net.router, &d.api, &get("/metrics", Some(&bearer())));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(a.body.clone()).unwrap();
    let interfaces = raw(
        &net.router,
        &d.api,
        &get("/api/v1/interfaces", Some(&bearer())),
    );
    for i in interfaces.json()["interfaces"].as_array().unwrap() {
        let name = i["name"].as_str().unwrap();
        for (family, field) in [
            ("netmeter_interface_receive_bytes_total", "rx_bytes"),
            ("netmeter_interface_transmit_bytes_total", "tx_bytes"),
            ("netmeter_interface_receive_packets_total", "rx_packets"),
            ("netmeter_interface_transmit_packets_total", "tx_packets"),
        ] {
            let line = format!("{family}{{interface=\"{name}\"}} {}\n", i[field]);
            assert!(text.contains(&line), "no {line:?} in\n{text}");
        }
    }
    assert!(text.contains("netmeter_interface_receive_bytes_total{interface=\"wan\"} "));
    assert!(text.contains("\nnetmeter_up 1\n"), "{text}");
    assert!(text.contains("\nnetmeter_refreshes_total 1\n"), "{text}");
    assert!(text.contains(&format!(
        "netmeter_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    )));
    // No br-lan in this network: per-device accounting is off.
    assert!(text.contains("\nnetmeter_per_device_active 0\n"), "{text}");
    // 14 families of the state, 7 of the qdiscs and tcp_limit_output_bytes.
    assert_eq!(text.matches("# TYPE ").count(), 22, "{text}");
    assert!(
        text.contains("netmeter_qdisc_packets_total{interface=\"lo\",kind=\"noqueue\""),
        "{text}"
    );
}

#[test]
fn ten_thousand_sequential_and_32_concurrent_clients_get_right_answers_without_growing_threads_or_memory()
 {
    let net = Network::with_lan_hosts(&["laptop"]);
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &with_token());
    let paths = "/api/v1/interfaces,/api/v1/status,/api/v1/devices,/metrics";
    let hammer = |threads: usize, each: usize| -> u64 {
        let answer = net.router.run(&format!(
            "http_hammer {} {threads} {each} {TOKEN} {paths}",
            d.api
        ));
        let (good, total) = answer.split_once(' ').unwrap();
        assert_eq!(good, total, "{answer}");
        good.parse().unwrap()
    };
    // The answers the hammer compares with are the right ones.
    let interfaces = raw(
        &net.router,
        &d.api,
        &get("/api/v1/interfaces", Some(&bearer())),
    );
    let names: Vec<String> = interfaces.json()["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{}", interfaces.text());
    assert!(names.contains(&"wan".into()) && names.contains(&"lan0".into()));

    // Warm up: the allocator's arenas and the server's buffers reach their size.
    hammer(1, 500);
    hammer(32, 20);
    let pid = d.child.id();
    let (threads_before, rss_before) = threads_and_rss(pid);
    assert_eq!(
        threads_before, 2,
        "the main loop and the HTTP thread, nothing else"
    );

    assert_eq!(hammer(1, 10_000), 10_000);
    assert_eq!(hammer(32, 300), 9_600);

    let (threads_after, rss_after) = threads_and_rss(pid);
    assert_eq!(threads_after, threads_before, "threads grew");
    assert!(
        rss_after <= rss_before + 512,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
    eprintln!("daemon RSS {rss_before} kB -> {rss_after} kB, {threads_after} threads");
    assert!(!d.log_text().contains("panicked"), "{}", d.log_text());
}

// ------------------------------------------------ the server, in process

/// A state whose `/api/v1/interfaces` answer is known.
fn refreshed_state() -> ApiState {
    ApiState {
        started_unix: 1_795_000_000,
        refresh_interval_secs: 10,
        last_refresh_unix: Some(1_795_000_010),
        refreshes: 1,
        interfaces: InterfacesReport {
            interfaces: vec![InterfaceView {
                name: "wan".into(),
                rx_bytes: 123_456,
                tx_bytes: 7_890,
                rx_packets: 100,
                tx_packets: 90,
                rx_errors: 0,
                tx_errors: 0,
                rx_dropped: 0,
                tx_dropped: 0,
                rx_rate: 0,
                tx_rate: 0,
                present: true,
                first_seen: 1_795_000_000,
                last_seen: 1_795_000_010,
            }],
        },
        ..ApiState::default()
    }
}

/// `serve` on 127.0.0.1, port 0, in a thread; stopped on drop.
struct InProcess {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    fn start(limits: Limits, state: ApiState) -> InProcess {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let state = Mutex::new(state);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                http::serve(
                    vec![listener],
                    limits,
                    move |req: &Request| api::route(&state, req, 1_795_000_020),
                    stop,
                )
            })
        };
        InProcess {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads until the server closes; a hang guard, not a measurement.
fn read_answer(mut s: &TcpStream) -> Answer {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes)
        .expect("an answer, then the close");
    testbed::http::parse(bytes)
}

/// Open, nothing answered, not closed: the server is still holding it.
fn is_held(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let held = matches!(s.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    held
}

/// Waits until at least `count` of `conns` have an answer or were closed
/// (the limit is a hang guard, not a measurement); their indices.
fn wait_answered(conns: &[TcpStream], count: usize) -> Vec<usize> {
    let start = std::time::Instant::now();
    loop {
        let answered: Vec<usize> = (0..conns.len()).filter(|&i| !is_held(&conns[i])).collect();
        if answered.len() >= count {
            return answered;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {} of {count} connections answered",
            answered.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn stalled_clients_cannot_lock_out_a_fresh_request_they_are_shed() {
    // The deadline is out of the picture: only shedding can let the fresh
    // request through while the stalled connections are held.
    let limits = Limits {
        deadline: Duration::from_secs(3600),
        ..Limits::default()
    };
    let cap = limits.max_connections;
    assert_eq!(cap, 32);
    let state = refreshed_state();
    let expected = serde_json::to_vec(&state.interfaces).unwrap();
    let server = InProcess::start(limits, state);

    let stall = || {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(b"GET /api/v1/interfaces HTTP/1.1\r\nHo")
            .unwrap();
        s
    };
    let stalled: Vec<TcpStream> = (0..200).map(|_| stall()).collect();
    // Each connection past the limit took the slot of the oldest stalled
    // one, which was told 503 and closed. (Oldest by the server's accept
    // order, which a full listen backlog can make differ from ours.)
    let shed = wait_answered(&stalled, 200 - cap);
    assert_eq!(shed.len(), 200 - cap);
    for &i in &shed {
        let a = read_answer(&stalled[i]);
        assert_eq!(a.status, 503, "stalled connection {i}: {}", a.text());
        assert!(a.json()["error"].is_string());
    }
    // 168 sheddings mean all 200 were accepted: the other 32 fill every
    // slot, unanswered.
    let mut held: Vec<TcpStream> = stalled
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !shed.contains(i))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(held.len(), cap);
    assert!(held.iter().all(is_held));

    let mut answered = Vec::new();
    for round in 0..5 {
        if round > 0 {
            // Fill the slot the last fresh client left.
            held.push(stall());
        }
        let s = TcpStream::connect(server.addr).unwrap();
        (&s).write_all(&get("/api/v1/interfaces", None)).unwrap();
        let a = read_answer(&s);
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.body, expected);
        // It took one stalled connection's slot; the other 31 stay held, so
        // the server was full when it answered.
        let gone = wait_answered(&held, answered.len() + 1);
        assert_eq!(gone.len(), answered.len() + 1, "one shed per fresh client");
        let new = *gone.iter().find(|i| !answered.contains(*i)).unwrap();
        assert_eq!(read_answer(&held[new]).status, 503);
        answered.push(new);
        assert_eq!(held.iter().filter(|s| is_held(s)).count(), cap - 1);
    }
}

#[test]
fn data_routes_answer_503_until_the_first_refresh_and_status_answers_at_once() {
    let state = Mutex::new(ApiState::default());
    let req = |path: &str| Request {
        method: "GET".into(),
        path: path.into(),
        query: None,
        authorization: None,
    };
    for path in ["/api/v1/interfaces", "/api/v1/devices", "/metrics"] {
        let r = api::route(&state, &req(path), 0);
        assert_eq!(r.status, 503, "{path}");
        assert_eq!(r.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("first refresh"));
    }
    let status = api::route(&state, &req("/api/v1/status"), 0);
    assert_eq!(status.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(v["refreshes"], 0);
    assert!(v["last_refresh"].is_null());
}
