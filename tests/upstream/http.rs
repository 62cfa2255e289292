#![cfg(feature = "upstream")]
//! The upstream HTTP client against the mock server on 127.0.0.1: framing,
//! every failure stage, the deadline against silent and trickling
//! servers, and Digest auth checked by the mock's own computation.

use crate::mock;

use std::time::Duration;

use mock::{MockHttp, Reply};
use netmeter::config::Secret;
use netmeter::upstream::sources::http::{self, Request, Response};
use netmeter::upstream::sources::{Deadline, ScrapeError};

const HOST: &str = "127.0.0.1";
const PASSWORD: &str = "Zebra-Otter-4417!";

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

fn get(mock: &MockHttp, path: &str) -> Result<Response, ScrapeError> {
    http::send(HOST, mock.port(), &Request::get(path), soon())
}

fn password() -> Secret {
    Secret::password(PASSWORD).unwrap()
}

/// No error text and no request byte may hold the password in clear.
fn assert_password_hidden(result: &Result<Response, ScrapeError>, mock: &MockHttp) {
    if let Err(e) = result {
        assert!(!format!("{e} {e:?}").contains(PASSWORD));
    }
    for request in mock.requests() {
        assert!(!request.contains(PASSWORD), "{request:?}");
    }
}

#[test]
fn get_sends_host_agent_close_and_caller_headers() {
    let mock = MockHttp::start(|req| {
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/igddesc.xml?x=1")
        );
        Reply::status(
            200,
            &[
                ("Content-Type", "text/xml"),
                ("Set-Cookie", "a=1"),
                ("set-cookie", "b=2"),
            ],
            "<root/>",
        )
    });
    let request = Request::get("/igddesc.xml?x=1").header("Cookie", "asus_token=abc");
    let response = http::send(HOST, mock.port(), &request, soon()).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text().unwrap(), "<root/>");
    assert_eq!(response.header("SET-COOKIE"), Some("b=2"));
    let sent = &mock.requests()[0];
    assert_eq!(
        sent.header("host"),
        Some(format!("127.0.0.1:{}", mock.port()).as_str())
    );
    assert_eq!(sent.header("connection"), Some("close"));
    assert_eq!(
        sent.header("user-agent"),
        Some(concat!("netmeter/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(sent.header("cookie"), Some("asus_token=abc"));
    assert_eq!(sent.header("content-length"), None);
}

#[test]
fn post_sends_its_body_and_a_callers_user_agent() {
    let mock = MockHttp::start(|req| Reply::ok("application/json", req.body.clone()));
    let request = Request::post("/appGet.cgi", b"hook=netdev(appobj);")
        .header("User-Agent", "asusrouter--DUTUtil-")
        .header("Content-Type", "application/x-www-form-urlencoded");
    let response = http::send(HOST, mock.port(), &request, soon()).unwrap();
    assert_eq!(response.body, b"hook=netdev(appobj);");
    let sent = &mock.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.header("content-length"), Some("20"));
    assert_eq!(sent.header("user-agent"), Some("asusrouter--DUTUtil-"));
    let agents = sent
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("user-agent"));
    assert_eq!(agents.count(), 1);
}

#[test]
fn statuses_other_than_2xx_are_responses() {
    let mock = MockHttp::start(|_| Reply::status(404, &[], "no such page"));
    let response = get(&mock, "/nope").unwrap();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (404, &b"no such page"[..])
    );
}

#[test]
fn chunked_body() {
    let mock = MockHttp::start(|_| {
        Reply::chunked(
            "text/plain",
            &[b"node_network_", b"receive_bytes_total 1\n"],
        )
    });
    assert_eq!(
        get(&mock, "/metrics").unwrap().text().unwrap(),
        "node_network_receive_bytes_total 1\n"
    );
}

#[test]
fn content_length_body_ignores_what_follows() {
    let mock = MockHttp::start(|_| {
        Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more"[..])
    });
    assert_eq!(get(&mock, "/").unwrap().body, b"hello");
}

#[test]
fn body_until_the_close() {
    let mock =
        MockHttp::start(|_| Reply::raw(&b"HTTP/1.0 200 OK\r\nServer: httpd\r\n\r\nwhole page"[..]));
    assert_eq!(get(&mock, "/").unwrap().body, b"whole page");
}

#[test]
fn bodies_over_4_mib_are_refused() {
    let mock = MockHttp::start(|req| {
        let mut bytes = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        bytes.resize(bytes.len() + http::MAX_BODY + 1, b'x');
        if req.path == "/declared" {
            Reply::ok("text/plain", &bytes[19..])
        } else {
            Reply::raw(bytes)
        }
    });
    for path in ["/declared", "/until-close"] {
        match get(&mock, path) {
            Err(ScrapeError::Protocol(m)) => assert!(m.contains("too large"), "{m}"),
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[test]
fn refused_connection_is_a_connect_error() {
    let port = mock::closed_port();
    match http::send(HOST, port, &Request::get("/"), soon()) {
        Err(ScrapeError::Connect(m)) => {
            assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
            assert!(m.contains("refused"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    let silent = mock::silent_listener();
    let deadline = Deadline::after(Duration::from_secs(1));
    let got = http::send(HOST, silent.port(), &Request::get("/"), deadline);
    assert!(matches!(got, Err(ScrapeError::Timeout(_))), "{got:?}");

    let hanging = MockHttp::start(|_| Reply::hang());
    let deadline = Deadline::after(Duration::from_secs(1));
    let got = http::send(HOST, hanging.port(), &Request::get("/"), deadline);
    assert!(
        matches!(got, Err(ScrapeError::Timeout(ref m)) if m.starts_with("read")),
        "{got:?}"
    );
}

#[test]
fn a_trickling_server_times_out() {
    // 200 ms a byte: the head alone would take 4 s, the deadline is 1 s,
    // and each read returns a byte well inside its own timeout.
    let mock = MockHttp::start(|_| {
        Reply::trickle(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
            Duration::from_millis(200),
        )
    });
    let deadline = Deadline::after(Duration::from_secs(1));
    let got = http::send(HOST, mock.port(), &Request::get("/"), deadline);
    assert!(matches!(got, Err(ScrapeError::Timeout(_))), "{got:?}");
}

#[test]
fn malformed_or_cut_answers_are_protocol_errors() {
    let mock = MockHttp::start(|req| match req.path.as_str() {
        "/not-http" => Reply::raw(&b"<html>hello</html>\r\n\r\n"[..]),
        "/cut-head" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Ty"[..]),
        "/cut-chunked" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly eight"[..],
        ),
        "/bad-chunk" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nab\r\n0\r\n\r\n"[..],
        ),
        "/cut-length" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"[..]),
        _ => Reply::close(),
    });
    for path in [
        "/not-http",
        "/cut-head",
        "/cut-chunked",
        "/bad-chunk",
        "/cut-length",
        "/closed",
    ] {
        let got = get(&mock, path);
        assert!(
            matches!(got, Err(ScrapeError::Protocol(_))),
            "{path}: {got:?}"
        );
    }
}

const REALM: &str = "F!Box SOAP-Auth";
const NONCE: &str = "3E1D5C7B9A0F2846";

/// A TR-064 control URL behind Digest auth for dslf-config / PASSWORD.
fn fritz_mock() -> MockHttp {
    MockHttp::start(|req| {
        if mock::digest_valid(req, REALM, NONCE, "dslf-config", PASSWORD) {
            Reply::ok("text/xml; charset=\"utf-8\"", "<s:Envelope/>")
        } else {
            let challenge = mock::digest_challenge(REALM, NONCE);
            Reply::status(401, &[("WWW-Authenticate", &challenge)], "")
        }
    })
}

fn soap_request() -> Request<'static> {
    Request::post("/upnp/control/wancommonifconfig1", b"<s:Envelope/>")
        .header("Content-Type", "text/xml; charset=\"utf-8\"")
        .header(
            "SOAPAction",
            "urn:dslforum-org:service:WANCommonInterfaceConfig:1#GetAddonInfos",
        )
}

#[test]
fn digest_auth_answers_the_challenge() {
    let mock = fritz_mock();
    let got = http::send_digest(
        HOST,
        mock.port(),
        &soap_request(),
        "dslf-config",
        &password(),
        soon(),
    );
    assert_password_hidden(&got, &mock);
    let response = got.unwrap();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"<s:Envelope/>"[..])
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("authorization"), None);
    let authorization = requests[1].header("authorization").unwrap();
    assert!(
        authorization.contains("qop=auth, nc=00000001"),
        "{authorization}"
    );
    assert_eq!(
        requests[1].header("soapaction"),
        requests[0].header("soapaction")
    );
    assert_eq!(requests[1].body, b"<s:Envelope/>");
}

#[test]
fn a_wrong_password_gives_back_the_second_401() {
    let mock = fritz_mock();
    let wrong = Secret::password("not-the-password").unwrap();
    let got = http::send_digest(
        HOST,
        mock.port(),
        &soap_request(),
        "dslf-config",
        &wrong,
        soon(),
    );
    assert_eq!(got.as_ref().unwrap().status, 401);
    assert_eq!(mock.requests().len(), 2, "one retry only");
    let got = http::send_digest(
        HOST,
        mock.port(),
        &soap_request(),
        "someone",
        &password(),
        soon(),
    );
    assert_eq!(got.as_ref().unwrap().status, 401);
    assert_password_hidden(&got, &mock);
}

#[test]
fn a_challenge_other_than_digest_gives_back_the_401() {
    let mock = MockHttp::start(|_| {
        Reply::status(401, &[("WWW-Authenticate", "Basic realm=\"router\"")], "")
    });
    let got = http::send_digest(
        HOST,
        mock.port(),
        &Request::get("/"),
        "admin",
        &password(),
        soon(),
    );
    assert_eq!(got.as_ref().unwrap().status, 401);
    assert_eq!(
        mock.requests().len(),
        1,
        "no retry without a Digest challenge"
    );
    assert_password_hidden(&got, &mock);
}

#[test]
fn an_unresolvable_name_is_a_dns_error() {
    // .invalid never resolves (RFC 6761); a sandbox whose resolver hangs
    // instead gives a Timeout at the deadline.
    let deadline = Deadline::after(Duration::from_secs(2));
    match http::send("router.invalid", 80, &Request::get("/"), deadline) {
        Err(ScrapeError::Dns(m)) => assert!(m.contains("cannot resolve 'router.invalid'"), "{m}"),
        Err(ScrapeError::Timeout(m)) => assert!(m.starts_with("dns"), "{m}"),
        other => panic!("{other:?}"),
    }
}
