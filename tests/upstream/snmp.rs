#![cfg(feature = "upstream")]
//! The `snmp` source against an SNMP v2c agent over UDP on 127.0.0.1 (a
//! thread here answering GETBULK from an IF-MIB table, encoded with the
//! same BER codec; the codec itself is checked against hand-written bytes
//! in its unit tests).

use netmeter::account::CounterWidth;
use netmeter::clock::Moment;
use netmeter::config::Secret;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::ber::{self, Message, Value};
use netmeter::upstream::sources::{Deadline, Reading, ScrapeError, Source, source_for};
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const COMMUNITY: &str = "net-Secret-c0mm";

struct Agent {
    table: BTreeMap<Vec<u32>, Value>,
    requests: usize,
    /// Send a datagram with another request id before each answer.
    stray: bool,
}

fn table(rows: &[(&str, u64, u64)], hc: bool) -> BTreeMap<Vec<u32>, Value> {
    let mut t = BTreeMap::new();
    for (i, (name, rx, tx)) in rows.iter().enumerate() {
        let index = i as u32 + 1;
        let oid = |base: &[u32]| base.iter().copied().chain([index]).collect::<Vec<u32>>();
        t.insert(
            oid(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 2]),
            Value::Octets(format!("{name} descr").into_bytes()),
        );
        t.insert(
            oid(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 10]),
            Value::Unsigned(ber::COUNTER32, rx & 0xffff_ffff),
        );
        t.insert(
            oid(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 16]),
            Value::Unsigned(ber::COUNTER32, tx & 0xffff_ffff),
        );
        t.insert(
            oid(&[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1]),
            Value::Octets(name.as_bytes().to_vec()),
        );
        if hc {
            t.insert(
                oid(&[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6]),
                Value::Counter64(*rx),
            );
            t.insert(
                oid(&[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10]),
                Value::Counter64(*tx),
            );
        }
    }
    t.insert(vec![1, 3, 6, 1, 6, 3, 1], Value::Integer(1)); // something after IF-MIB
    t
}

/// Starts the agent; returns its port. It answers until the test ends.
fn start(agent: Arc<Mutex<Agent>>, stop: Arc<AtomicBool>) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65_535];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(request) = ber::decode(&buf[..n]) else {
                continue;
            };
            let mut a = agent.lock().unwrap();
            a.requests += 1;
            // A wrong community gets no answer, as real agents do.
            if request.community != COMMUNITY.as_bytes() || request.pdu != ber::GET_BULK {
                continue;
            }
            let start = request.bindings[0].0.clone();
            let mut bindings: Vec<(Vec<u32>, Value)> = a
                .table
                .range((
                    std::ops::Bound::Excluded(start.clone()),
                    std::ops::Bound::Unbounded,
                ))
                .take(request.error_index as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if bindings.is_empty() {
                bindings.push((start, Value::Exception(ber::END_OF_MIB_VIEW)));
            }
            let answer = |id| {
                ber::encode(&Message {
                    community: request.community.clone(),
                    pdu: ber::GET_RESPONSE,
                    request_id: id,
                    error_status: 0,
                    error_index: 0,
                    bindings: bindings.clone(),
                })
            };
            if a.stray {
                socket
                    .send_to(&answer(request.request_id.wrapping_add(1000)), from)
                    .unwrap();
                socket.send_to(b"\x30\x03garbage", from).unwrap();
            }
            socket.send_to(&answer(request.request_id), from).unwrap();
        }
    });
    port
}

fn source(port: u16, community: &str, device: Option<&str>) -> Box<dyn Source> {
    let mut c = UpstreamConfig::new("sw", UpstreamKind::Snmp);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c.community = Secret::password(community);
    c.device = device.map(str::to_owned);
    source_for(&c).unwrap()
}

fn scrape(s: &mut Box<dyn Source>) -> Result<Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(2)))
}

struct Running {
    agent: Arc<Mutex<Agent>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run(rows: &[(&str, u64, u64)], hc: bool) -> Running {
    let agent = Arc::new(Mutex::new(Agent {
        table: table(rows, hc),
        requests: 0,
        stray: false,
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let port = start(agent.clone(), stop.clone());
    Running { agent, stop, port }
}

#[test]
fn walks_if_mib_with_64_bit_counters_across_several_getbulks() {
    let mut rows = vec![
        ("lo", 5, 5),
        ("eth0", 6_000_000_000, 1_000),
        ("ppp0", 81_234_567_890, 9_876_543_210),
    ];
    for i in 0..40 {
        rows.push(("veth", i, i));
    }
    let names: Vec<String> = (0..40).map(|i| format!("veth{i}")).collect();
    let rows: Vec<(&str, u64, u64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if i >= 3 {
                (names[i - 3].as_str(), r.1, r.2)
            } else {
                *r
            }
        })
        .collect();
    let agent = run(&rows, true);
    agent.agent.lock().unwrap().stray = true;
    let reading = scrape(&mut source(agent.port, COMMUNITY, Some("ppp0"))).unwrap();
    let wan = reading.wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes, wan.width),
        (81_234_567_890, 9_876_543_210, CounterWidth::Bits64)
    );
    assert_eq!(
        reading.interfaces.len(),
        41,
        "eth0 and 40 veths; lo left out"
    );
    assert_eq!(reading.interfaces[0].1.rx_bytes, 6_000_000_000);
    // 43 rows, 20 per GETBULK: at least three round trips per column.
    assert!(agent.agent.lock().unwrap().requests >= 9);

    let mut c = UpstreamConfig::new("sw", UpstreamKind::Snmp);
    c.host = Some("127.0.0.1".into());
    c.port = agent.port;
    c.community = Secret::password(COMMUNITY);
    c.interfaces = vec!["eth0".into()];
    let only = scrape(&mut source_for(&c).unwrap()).unwrap();
    assert_eq!(only.interfaces.len(), 1);
}

#[test]
fn without_hc_counters_the_32_bit_ones_wrap_and_a_reboot_resets() {
    let agent = run(&[("wan", 4_294_000_000, 10)], false);
    let mut s = source(agent.port, COMMUNITY, Some("wan"));
    let mut accounts = UpstreamAccounts::default();
    for (step, rx) in [4_294_000_000u64, 4_294_967_000, 1_000, 600, 900]
        .into_iter()
        .enumerate()
    {
        agent.agent.lock().unwrap().table = table(&[("wan", rx, 10)], false);
        let reading = scrape(&mut s).unwrap();
        assert_eq!(reading.wan.unwrap().width, CounterWidth::Bits32);
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("sw", "snmp", now, &reading, None);
    }
    let wan = accounts.get("sw").unwrap().wan.clone().unwrap();
    // 967,000 of growth, a wrap (296 to the top, then 1,000), then the
    // agent restarted (600 since, then 300 more).
    assert_eq!(wan.rx_bytes(), 967_000 + 296 + 1_000 + 600 + 300);
}

#[test]
fn a_wrong_community_gets_silence_and_a_hint_without_the_community() {
    let agent = run(&[("wan", 1, 1)], true);
    let e = scrape(&mut source(agent.port, "Wrong-c0mmunity", None)).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    assert!(e.to_string().contains("option community"), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("Wrong-c0mmunity") && !shown.contains(COMMUNITY),
        "{shown}"
    );
    // One retransmission, no more.
    assert_eq!(agent.agent.lock().unwrap().requests, 2);
    let e = scrape(&mut source(agent.port, COMMUNITY, Some("eth9"))).unwrap_err();
    assert!(
        e.to_string().contains("'eth9'") && e.to_string().contains("wan"),
        "{e}"
    );
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = scrape(&mut source(port, COMMUNITY, None)).unwrap_err();
    assert!(matches!(e.stage(), "connect" | "timeout"), "{e}");
}
