//! docs/openapi.json against what the daemon really sends: real answers
//! from a daemon counting real devices, and a state with every optional
//! field filled, are validated against its schemas.
//!
//! The validator is a small one for the subset of JSON Schema the document
//! uses (type, including "null"; properties, required,
//! additionalProperties; items, minItems, maxItems; minimum; enum; $ref;
//! oneOf). A keyword it does not know is an error, so the document cannot
//! drift into constraints nobody checks. Every object in the document has
//! `additionalProperties: false` and lists its always-present fields as
//! `required`: a renamed field, a new field, or a changed type fails.

use crate::testbed;

use netmeter::account::attribution::Attribution;
use netmeter::serve::api::PerDeviceStatus;
use netmeter::serve::api::{
    self, ApiState, DeviceView, DevicesReport, InterfaceView, InterfacesReport,
};
use netmeter::serve::http::Request;
use serde_json::{Value, json};
use std::sync::Mutex;
use testbed::netmeter::{Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4, WAN_HOST_V6};
use testbed::{LanHost, Network, Topology};

const DOCUMENT: &str = include_str!("../../docs/openapi.json");

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON")
}

/// Every violation of `schema` in `value`, as "path: what".
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = schema.as_object().expect("a schema is an object");
    for key in schema.keys() {
        assert!(
            [
                "type",
                "properties",
                "required",
                "additionalProperties",
                "items",
                "minItems",
                "maxItems",
                "minimum",
                "enum",
                "$ref",
                "oneOf",
                "description",
            ]
            .contains(&key.as_str()),
            "docs/openapi.json uses '{key}' at {at}, which this validator does not check"
        );
    }
    let mut fail = |what: String| errors.push(format!("{at}: {what}"));
    if let Some(reference) = schema.get("$ref") {
        let name = reference
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "$ref to a missing schema {name}");
        validate(doc, target, value, at, errors);
        return;
    }
    if let Some(options) = schema.get("oneOf") {
        let passing = options
            .as_array()
            .unwrap()
            .iter()
            .filter(|option| {
                let mut e = Vec::new();
                validate(doc, option, value, at, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            fail(format!("{passing} of oneOf match {value}"));
        }
        return;
    }
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
            _ => panic!("bad type at {at}"),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("unknown type {other} at {at}"),
        };
        if !types.iter().any(|t| fits(t)) {
            return fail(format!("expected {}, got {value}", types.join(" or ")));
        }
    }
    if value.is_null() {
        return;
    }
    if let Some(allowed) = schema.get("enum")
        && !allowed.as_array().unwrap().contains(value)
    {
        fail(format!("{value} is not one of {allowed}"));
    }
    if let (Some(min), Some(n)) = (schema.get("minimum"), value.as_f64())
        && n < min.as_f64().unwrap()
    {
        fail(format!("{n} is below the minimum {min}"));
    }
    if let Some(items) = value.as_array() {
        let count = |key: &str| schema.get(key).and_then(Value::as_u64);
        if count("minItems").is_some_and(|m| (items.len() as u64) < m)
            || count("maxItems").is_some_and(|m| (items.len() as u64) > m)
        {
            fail(format!("{} items", items.len()));
        }
        if let Some(item) = schema.get("items") {
            for (i, v) in items.iter().enumerate() {
                validate(doc, item, v, &format!("{at}[{i}]"), errors);
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                errors.push(format!("{at}: required field '{name}' is missing"));
            }
        }
        for (name, v) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(s) => validate(doc, s, v, &format!("{at}.{name}"), errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{at}: field '{name}' is not in the schema"))
                    }
                    Some(Value::Bool(true)) | None => {}
                    Some(s) => validate(doc, s, v, &format!("{at}.{name}"), errors),
                },
            }
        }
    }
}

/// The violations of the named schema in `value`.
fn check(schema: &str, value: &Value) -> Vec<String> {
    let doc = document();
    let mut errors = Vec::new();
    validate(
        &doc,
        &json!({ "$ref": format!("#/components/schemas/{schema}") }),
        value,
        schema,
        &mut errors,
    );
    errors
}

fn assert_valid(schema: &str, value: &Value) {
    let errors = check(schema, value);
    assert!(
        errors.is_empty(),
        "{schema} does not match docs/openapi.json:\n  {}\nin {value:#}",
        errors.join("\n  ")
    );
}

/// The schema a path's 200 answer has, per the document.
fn schema_of(path: &str) -> String {
    let doc = document();
    let reference = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{path} has no JSON 200 answer in docs/openapi.json"))
        .to_string();
    reference
        .strip_prefix("#/components/schemas/")
        .unwrap()
        .to_string()
}

/// The documented routes this build answers, in the order of docs/API.md's
/// examples: the core build has no `/api/v1/upstream`.
const PATHS: &[&str] = &[
    "/api/v1/status",
    "/api/v1/interfaces",
    "/api/v1/devices",
    "/api/v1/history",
    "/api/v1/queues",
    "/api/v1/sockets",
    #[cfg(feature = "quota")]
    "/api/v1/quotas",
    #[cfg(feature = "upstream")]
    "/api/v1/upstream",
];

#[test]
fn a_running_daemons_answers_match_the_documented_schemas() {
    let net = Network::build(Topology {
        lan: vec![LanHost::dual("laptop"), LanHost::dual("tv")],
        bridge: Some("br-lan".into()),
    });
    let tv = net.lan[1].mac();
    let scratch = Scratch::new();
    let config = format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\tlist lan_interface 'br-lan'\n\
         \toption dhcp_leases '/nonexistent/leases'\n\toption ethers '/nonexistent/ethers'\n\
         \toption odhcpd_hosts '/nonexistent/hosts'\n\
         config device\n\toption mac '{tv}'\n\toption name 'tv'\n\toption group 'family'\n\
         config quota 'family'\n\toption group 'family'\n\toption limit '1K'\n\
         \toption action 'block'\n"
    );
    let d = Daemon::start(&net.router, &scratch, &config);
    for host in &net.lan {
        host.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 200000"));
        host.run(&format!("tcp_download {WAN_HOST_V6} {PORT} 300000"));
    }
    d.wait_refreshed(&net.router);

    let get = |path: &str| -> Value {
        let answer = net.router.run(&format!("http_get {} {path}", d.api));
        let (status, body) = answer.split_once(' ').unwrap();
        assert_eq!(status, "200", "{path}: {answer}");
        serde_json::from_str(body).unwrap()
    };
    for path in PATHS {
        assert_valid(&schema_of(path), &get(path));
    }
    // The answers held what the optional and nullable fields look like
    // when filled, so those were checked too.
    let devices = get("/api/v1/devices");
    let list = devices["devices"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{devices}");
    assert!(list.iter().any(|d| d["group"] == "family"), "{devices}");
    assert!(list.iter().any(|d| d["hostname"].is_null()), "{devices}");
    assert!(
        list.iter()
            .all(|d| !d["ips"].as_array().unwrap().is_empty())
    );
    #[cfg(feature = "quota")]
    {
        let quotas = get("/api/v1/quotas");
        assert_eq!(
            quotas["quotas"][0]["blocked_macs"][0],
            tv.as_str(),
            "{quotas}"
        );
    }
    let status = get("/api/v1/status");
    assert!(status["attribution"]["tx_share"].is_number(), "{status}");
    assert!(status["last_refresh"].is_u64(), "{status}");

    let answer = net.router.run(&format!("http_get {} /api/v1/nope", d.api));
    let (status, body) = answer.split_once(' ').unwrap();
    assert_eq!(status, "404");
    assert_valid("Error", &serde_json::from_str(body).unwrap());
}

fn interface(name: &str) -> InterfaceView {
    InterfaceView {
        name: name.into(),
        rx_bytes: u64::MAX,
        tx_bytes: 2,
        rx_packets: 3,
        tx_packets: 4,
        rx_errors: 5,
        tx_errors: 6,
        rx_dropped: 7,
        tx_dropped: 8,
        rx_rate: 9,
        tx_rate: 10,
        present: false,
        first_seen: 1_795_000_000,
        last_seen: 1_795_000_010,
    }
}

fn device(mac: &str, hostname: Option<&str>, group: Option<&str>) -> DeviceView {
    DeviceView {
        mac: mac.into(),
        ips: vec!["10.0.0.2".into(), "fd00::2".into()],
        hostname: hostname.map(str::to_string),
        group: group.map(str::to_string),
        random_mac: true,
        rx_bytes: 1,
        tx_bytes: 2,
        rx_packets: 3,
        tx_packets: 4,
        rx_rate: 5,
        tx_rate: 6,
        first_seen: 1_795_000_000,
        last_seen: 1_795_000_010,
        upstream: vec![netmeter::serve::api::UpstreamFigure {
            source: "isp".into(),
            rx_bytes: 7,
            tx_bytes: 8,
        }],
        protocols: vec![netmeter::serve::api::ProtocolFigure {
            class: "https".into(),
            rx_bytes: 9,
            tx_bytes: 10,
        }],
        today: Some(netmeter::serve::api::PeriodFigure {
            rx_bytes: 11,
            tx_bytes: 12,
        }),
        month: Some(netmeter::serve::api::PeriodFigure {
            rx_bytes: 13,
            tx_bytes: 14,
        }),
    }
}

/// Upstream accounts with every part filled: WAN, interfaces, a device,
/// the double-NAT difference and line statistics.
#[cfg(feature = "upstream")]
fn upstream_accounts() -> netmeter::upstream::UpstreamAccounts {
    use netmeter::account::CounterWidth::Bits64;
    use netmeter::upstream::sources::{Counters, DeviceReading, LineKind, LineValue, Reading};
    let mut accounts = netmeter::upstream::UpstreamAccounts::default();
    for step in 0..2u64 {
        let c = |n: u64| Counters {
            rx_bytes: n * (step + 1),
            tx_bytes: n * (step + 1),
            width: Bits64,
        };
        let reading = Reading {
            wan: Some(c(1000)),
            interfaces: vec![("WIRED".into(), c(100))],
            devices: vec![DeviceReading {
                mac: netmeter::mac::Mac([2, 0, 0, 0, 0, 9]),
                ip: Some("192.168.1.9".parse().unwrap()),
                hostname: Some("nas".into()),
                rx_bytes: 10 * (step + 1),
                tx_bytes: 20 * (step + 1),
                width: Bits64,
            }],
            line: vec![LineValue {
                name: "crc".into(),
                end: Some("near"),
                value: 12.0,
                kind: LineKind::Counter,
            }],
            // Up 1000 s, then 100 s: a reboot, for last_reset.
            uptime_secs: Some(1000 - step * 900),
        };
        let now = netmeter::clock::Moment {
            monotonic_ms: step * 60_000,
            unix_secs: 1_795_000_000 + step * 60,
        };
        accounts.ingest(
            "isp",
            "fritzbox",
            now,
            &reading,
            Some(netmeter::rxtx::RxTx::new(100, 100)),
        );
    }
    accounts
}

#[cfg(feature = "upstream")]
fn upstream_state() -> netmeter::store::state::State {
    let mut state = netmeter::store::state::State::new(16, 16);
    state.upstream.update(upstream_accounts().encode());
    state
}

#[cfg(not(feature = "upstream"))]
fn upstream_state() -> netmeter::store::state::State {
    netmeter::store::state::State::new(16, 16)
}

/// The sources' health and accounts, as the runner leaves them.
#[cfg(feature = "upstream")]
fn health() -> netmeter::upstream::Shared {
    let health = vec![netmeter::upstream::SourceStatus {
        name: "isp".into(),
        kind: "fritzbox".into(),
        ok: false,
        last_success: Some(1_795_000_060),
        last_error: Some("auth: the router answered 401".into()),
        error_stage: Some("auth".into()),
        failures: 1,
        next_attempt: Some(1_795_000_120),
        stopped: false,
    }];
    netmeter::upstream::Shared::new(health, upstream_accounts())
}

#[cfg(not(feature = "upstream"))]
fn health() -> netmeter::upstream::Shared {
    Default::default()
}

/// Every optional field present, every nullable one non-null.
fn full_state() -> ApiState {
    let totals = netmeter::account::UnattributedTotals {
        tx_bytes: 1,
        tx_packets: 2,
        rx_bytes: 3,
        rx_packets: 4,
    };
    ApiState {
        started_unix: 1_795_000_000,
        refresh_interval_secs: 10,
        last_refresh_unix: Some(1_795_000_010),
        refreshes: 7,
        interfaces: InterfacesReport {
            interfaces: vec![interface("wan"), interface("br-lan")],
        },
        devices: DevicesReport {
            devices: vec![
                device("aa:bb:cc:dd:ee:01", Some("laptop"), Some("kids")),
                device("aa:bb:cc:dd:ee:02", None, None),
            ],
            unattributed: totals,
            protocols_since: Some(1_795_000_000),
            periods: Some(netmeter::serve::api::RunningPeriods {
                day_start: 1_794_960_000,
                month_start: 1_793_577_600,
            }),
            other: Some(totals),
            upstream_only: vec![netmeter::serve::api::UpstreamOnlyDevice {
                mac: "aa:bb:cc:dd:ee:09".into(),
                ip: Some("192.168.178.20".into()),
                hostname: Some("printer".into()),
                source: "isp".into(),
                rx_bytes: 1,
                tx_bytes: 2,
                rx_rate: 3,
                tx_rate: 4,
                last_seen: 1_795_000_010,
            }],
        },
        per_device: PerDeviceStatus {
            active: false,
            placement: "off".into(),
            placement_kind: "off".into(),
            off_reason: Some("no CAP_NET_ADMIN".into()),
            unknown_gaps: 2,
            last_gap: Some((1_795_000_001, 1_795_000_002)),
            tracked_elements: 12,
            missing_devices: vec!["br-guest".into()],
            conntrack: Some(netmeter::serve::api::ConntrackStatus {
                accounting: "on".into(),
                tracked_flows: 3,
                max_flows: 65536,
                untracked_flows: 0,
                ended_unseen: 1,
                event_overruns: 0,
                flows_without_counters: 0,
                uncounted_flowtables: vec!["flowtable ft has no 'counter' flag".into()],
            }),
        },
        attribution: Some(Attribution {
            wan: vec!["wan".into()],
            since: 1_795_000_000,
            wan_tx_bytes: 100,
            wan_rx_bytes: 200,
            device_tx_bytes: 95,
            device_rx_bytes: 190,
            tx_share: Some(0.95),
            rx_share: Some(0.95),
        }),
        last_error: Some("reading links: EINTR".into()),
        token: None,
        store: netmeter::store::persist::StoreStatus {
            spool_directory: "/var/lib/netmeter".into(),
            database_directory: "/etc/netmeter".into(),
            loaded_from: "/etc/netmeter/netmeter.state (saved …, sequence 9)".into(),
            last_spool: Some(1_795_000_005),
            last_spool_error: Some("cannot write the spool copy".into()),
            last_commit: Some(1_795_000_001),
            last_commit_error: Some("cannot commit to flash".into()),
            last_checkpoint: Some(1_795_000_000),
            commits: 3,
            checkpoints: 1,
            flash_bytes_written: 12_345,
            journal_bytes: 2_000,
            checkpoint_bytes: 10_345,
        },
        clock: Some(netmeter::store::timeline::ClockState::Behind),
        history: Some(std::sync::Arc::new(Mutex::new(upstream_state()))),
        wan: vec!["wan".into()],
        month_rotate: 1,
        upstream: health(),
        mqtt: Some(netmeter::serve::api::MqttStatus {
            broker: "192.168.1.10:1883".into(),
            connected: false,
            last_connect: Some(1_795_000_000),
            last_error: Some("the broker closed the connection".into()),
            reconnects: 2,
            messages_published: 420,
            alerts_dropped: 0,
        }),
        #[cfg(feature = "quota")]
        quotas: quotas_report(),
    }
}

#[cfg(feature = "quota")]
fn quotas_report() -> netmeter::serve::quota::QuotasReport {
    use netmeter::serve::quota::{AlertCounts, QuotaView, QuotasReport};
    QuotasReport {
        quotas: vec![QuotaView {
            name: "kids".into(),
            target: "kids".into(),
            target_kind: "group".into(),
            direction: "total".into(),
            period: "week".into(),
            period_start: 1_794_700_800,
            period_end: 1_795_305_600,
            limit_bytes: 1_000_000,
            used_bytes: 1_200_000,
            thresholds: vec![80, 100],
            fired: vec![80, 100],
            action: "block".into(),
            blocked: true,
            blocked_macs: vec!["aa:bb:cc:dd:ee:01".into()],
            lifted: false,
            exec: true,
            webhook: true,
            mqtt: true,
        }],
        alerts: AlertCounts {
            exec_started: 2,
            exec_failed: 0,
            webhook_delivered: 1,
            webhook_failed: 1,
        },
    }
}

fn answer(state: ApiState, path: &str) -> Value {
    let state = Mutex::new(state);
    let r = api::route(
        &state,
        &Request {
            method: "GET".into(),
            path: path.into(),
            query: None,
            authorization: None,
        },
        1_795_000_020,
    );
    assert_eq!(r.status, 200, "{path}");
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn every_optional_and_nullable_field_filled_matches_too() {
    for &path in PATHS {
        let value = answer(full_state(), path);
        assert_valid(&schema_of(path), &value);
    }
    let devices = answer(full_state(), "/api/v1/devices");
    assert!(devices["other"].is_object() && devices["devices"][0]["group"].is_string());
    let status = answer(full_state(), "/api/v1/status");
    assert!(status["per_device"]["last_gap"].is_array() && status["last_error"].is_string());
    #[cfg(feature = "upstream")]
    {
        let upstream = answer(full_state(), "/api/v1/upstream");
        let isp = &upstream["sources"][0];
        assert!(
            isp["bypass"].is_object()
                && isp["wan"].is_object()
                && isp["line"][0]["end"] == "near"
                && isp["devices"][0]["hostname"] == "nas"
                && isp["interfaces"][0]["name"] == "WIRED",
            "{upstream}"
        );
    }
    // And with every nullable field null, before the first refresh.
    let starting = ApiState {
        started_unix: 1_795_000_000,
        refresh_interval_secs: 10,
        ..ApiState::default()
    };
    let empty = answer(starting, "/api/v1/status");
    assert!(empty["attribution"].is_null() && empty["last_refresh"].is_null());
    assert_valid("Status", &empty);
}

#[test]
fn renamed_fields_changed_types_and_new_fields_fail_validation() {
    let good = answer(full_state(), "/api/v1/devices");
    assert_valid("DevicesReport", &good);
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        check("DevicesReport", &v)
    };
    let renamed = mutate(&|v| {
        let d = v["devices"][0].as_object_mut().unwrap();
        let x = d.remove("rx_bytes").unwrap();
        d.insert("rx_byte".into(), x);
    });
    assert!(
        renamed.iter().any(|e| e.contains("'rx_bytes' is missing"))
            && renamed
                .iter()
                .any(|e| e.contains("'rx_byte' is not in the schema")),
        "{renamed:?}"
    );
    for (what, change) in [
        ("a number as a string", json!("12")),
        ("a negative number", json!(-1)),
        ("a fraction", json!(1.5)),
        ("null", Value::Null),
    ] {
        let errors = mutate(&|v| v["devices"][0]["tx_bytes"] = change.clone());
        assert!(!errors.is_empty(), "{what} passed");
    }
    assert!(!mutate(&|v| v["devices"][1]["hostname"] = json!(7)).is_empty());
    assert!(!mutate(&|v| v["devices"][1]["group"] = Value::Null).is_empty());
    assert!(!mutate(&|v| v["devices"][0]["ips"] = json!("10.0.0.2")).is_empty());
    assert!(!mutate(&|v| v["devices"][0]["ips"][0] = json!(10)).is_empty());
    assert!(!mutate(&|v| v["unattributed"]["extra"] = json!(1)).is_empty());
    assert!(!mutate(&|v| v["other"] = Value::Null).is_empty());
    assert!(
        mutate(&|v| {
            v.as_object_mut().unwrap().remove("other");
        })
        .is_empty()
    );

    let status = answer(full_state(), "/api/v1/status");
    let mutate_status = |f: &dyn Fn(&mut Value)| {
        let mut v = status.clone();
        f(&mut v);
        check("Status", &v)
    };
    assert!(!mutate_status(&|v| v["per_device"]["placement_kind"] = json!("nft")).is_empty());
    assert!(!mutate_status(&|v| v["per_device"]["last_gap"] = json!([1])).is_empty());
    assert!(!mutate_status(&|v| v["attribution"] = json!({})).is_empty());
    assert!(!mutate_status(&|v| v["attribution"]["tx_share"] = json!("0.9")).is_empty());
    assert!(!mutate_status(&|v| v["refreshes"] = Value::Null).is_empty());
    assert!(mutate_status(&|v| v["attribution"] = Value::Null).is_empty());
}

#[test]
fn the_examples_in_api_md_match_the_schemas() {
    let text = include_str!("../../docs/API.md");
    let examples: Vec<Value> = text
        .split("```json\n")
        .skip(1)
        .map(|block| serde_json::from_str(block.split("```").next().unwrap()).unwrap())
        .collect();
    let documented = [
        "/api/v1/status",
        "/api/v1/interfaces",
        "/api/v1/devices",
        "/api/v1/history",
        "/api/v1/queues",
        "/api/v1/sockets",
        "/api/v1/upstream",
        "/api/v1/quotas",
    ];
    assert_eq!(examples.len(), documented.len(), "{documented:?}");
    for (path, example) in documented.iter().zip(&examples) {
        assert_valid(&schema_of(path), example);
    }
}
