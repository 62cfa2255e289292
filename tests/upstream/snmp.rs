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

/// The table with `sysUpTime.0` (TimeTicks, hundredths) as net-snmp has it.
fn table_up(rows: &[(&str, u64, u64)], uptime_secs: u64) -> BTreeMap<Vec<u32>, Value> {
    let mut t = table(rows, false);
    t.insert(
        vec![1, 3, 6, 1, 2, 1, 1, 3, 0],
        Value::Unsigned(ber::TIME_TICKS, uptime_secs * 100 + 37),
    );
    t
}

/// Scrapes the agent once per table a minute apart; the `sw` source.
fn count_through(tables: Vec<BTreeMap<Vec<u32>, Value>>) -> UpstreamAccounts {
    let agent = run(&[("wan", 0, 0)], false);
    let mut s = source(agent.port, COMMUNITY, Some("wan"));
    let mut accounts = UpstreamAccounts::default();
    for (step, t) in tables.into_iter().enumerate() {
        agent.agent.lock().unwrap().table = t;
        let reading = scrape(&mut s).unwrap();
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("sw", "snmp", now, &reading, None);
    }
    accounts
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
    // tx moves on, and starts over with rx when the agent restarts.
    for (step, (rx, tx)) in [
        (4_294_000_000u64, 10),
        (4_294_967_000, 20),
        (1_000, 30),
        (600, 5),
        (900, 8),
    ]
    .into_iter()
    .enumerate()
    {
        agent.agent.lock().unwrap().table = table(&[("wan", rx, tx)], false);
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
    assert_eq!(wan.tx_bytes(), 10 + 10 + 5 + 3);
}

#[test]
fn a_reboot_with_32_bit_counters_above_2_gib_adds_only_what_came_after() {
    let gib3 = 3u64 << 30;
    let accounts = count_through(vec![
        table_up(&[("wan", gib3, 5_000), ("lan", 10, gib3)], 86_400),
        table_up(&[("wan", gib3 + 700, 5_100), ("lan", 20, gib3 + 9)], 86_460),
        // Rebooted: sysUpTime went back; the lan's tx fell from above 2 GiB.
        table_up(&[("wan", 300, 40), ("lan", 30, 90)], 45),
    ]);
    let sw = accounts.get("sw").unwrap();
    let wan = sw.wan.as_ref().unwrap();
    assert_eq!((wan.rx_bytes(), wan.tx_bytes()), (700 + 300, 100 + 40));
    let lan = &sw.interfaces[0].1;
    assert_eq!(lan.tx_bytes(), 9 + 90, "no phantom wrap of about 1 GiB");
    assert_eq!(sw.uptime_secs, Some(45));
    let reset = sw.last_reset.clone().unwrap();
    assert_eq!(reset.reason.name(), "uptime");
    assert!(
        reset.detail.contains("from 86460 s to 45 s"),
        "{}",
        reset.detail
    );
}

#[test]
fn a_real_32_bit_wrap_counts_exactly_even_from_mid_range_while_uptime_carries_on() {
    // 3.5 GiB in a minute (500 Mbit/s): it wrapped, from below 2 GiB.
    let accounts = count_through(vec![
        table_up(&[("wan", 1 << 30, 5_000)], 1_000),
        table_up(
            &[("wan", (1 << 30) + 3_758_096_384 - (1 << 32), 5_100)],
            1_060,
        ),
    ]);
    let sw = accounts.get("sw").unwrap();
    assert_eq!(sw.wan.as_ref().unwrap().rx_bytes(), 3_758_096_384);
    assert_eq!(sw.last_reset, None);
}

#[test]
fn without_sys_up_time_every_counter_falling_at_once_is_a_reboot() {
    let gib3 = 3u64 << 30;
    let accounts = count_through(vec![
        table(&[("wan", gib3, gib3)], false),
        table(&[("wan", gib3 + 1, gib3 + 2)], false),
        table(&[("wan", 300, 40)], false),
        // tx wraps alone afterwards: a wrap.
        table(&[("wan", 400, (1 << 32) - 10)], false),
        table(&[("wan", 500, 5)], false),
    ]);
    let sw = accounts.get("sw").unwrap();
    let wan = sw.wan.as_ref().unwrap();
    assert_eq!(
        (wan.rx_bytes(), wan.tx_bytes()),
        (1 + 300 + 100 + 100, 2 + 40 + ((1 << 32) - 50) + 15)
    );
    assert_eq!(sw.uptime_secs, None);
    assert_eq!(
        sw.last_reset.clone().unwrap().reason.name(),
        "all_counters_fell"
    );
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
