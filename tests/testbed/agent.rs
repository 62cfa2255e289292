//! The agent: runs inside its namespaces and obeys one command per line.
//! Answers `ok [data]` or `err message` on one line.

use super::{bench, fw4, http, ops, upstream};
use std::io::{BufRead, Write};

pub fn run(name: &str) -> i32 {
    if let Err(e) = ops::link_up("lo") {
        eprintln!("testbed agent {name}: cannot bring up lo: {e}");
        return 1;
    }
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"exit") {
            break;
        }
        let answer = match dispatch(&words) {
            Ok(data) => format!("ok {data}"),
            Err(e) => format!("err {}", e.replace('\n', " ")),
        };
        if writeln!(stdout, "{answer}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    0
}

fn dispatch(w: &[&str]) -> Result<String, String> {
    let arg = |i: usize| {
        w.get(i)
            .copied()
            .ok_or_else(|| format!("'{}' needs argument {i}", w[0]))
    };
    let num = |i: usize| -> Result<u64, String> {
        arg(i)?.parse().map_err(|e| format!("argument {i}: {e}"))
    };
    let done = |r: Result<(), String>| r.map(|_| String::new());
    match *w.first().ok_or("empty command")? {
        "ping" => Ok(String::new()),
        "veth" => done(ops::veth(arg(1)?, arg(2)?, num(3)? as u32)),
        "bridge" => done(ops::bridge(arg(1)?)),
        "master" => done(ops::set_master(arg(1)?, arg(2)?)),
        "up" => done(ops::link_up(arg(1)?)),
        "down" => done(ops::link_down(arg(1)?)),
        "rename" => done(ops::rename(arg(1)?, arg(2)?)),
        "del" => done(ops::delete(arg(1)?)),
        "addr" => done(ops::address(arg(1)?, arg(2)?)),
        "route" => done(ops::route(arg(1)?, arg(2)?)),
        "sysctl" => done(ops::sysctl(arg(1)?, arg(2)?)),
        "sysctl_get" => ops::sysctl_get(arg(1)?),
        "cpu" => ops::cpu(),
        "masquerade" => done(ops::masquerade(arg(1)?)),
        "counters" => ops::counters(),
        "snmp6" => ops::snmp6(arg(1)?),
        "fw4_offload" => done(fw4::install(arg(1)?, arg(2).ok() != Some("nocounter"))),
        "forward_counter" => fw4::forward_counter(),
        "conntrack_offloaded" => fw4::conntrack_offloaded(),
        "serve" => done(ops::serve(num(1)? as u16)),
        "tcp_upload" => ops::tcp_transfer(arg(1)?, num(2)? as u16, b'U', num(3)?),
        "tcp_download" => ops::tcp_transfer(arg(1)?, num(2)? as u16, b'D', num(3)?),
        "tcp_hold" => ops::tcp_hold(arg(1)?, num(2)? as u16, num(3)?),
        "tcp_flows" => ops::tcp_flows(arg(1)?, num(2)? as u16, num(3)?, num(4)?),
        "tcp_paced" => ops::tcp_paced(arg(1)?, num(2)? as u16, num(3)?, num(4)?),
        "conntrack_dump_hex" => ops::conntrack_dump_hex(),
        "qdisc_dump_hex" => ops::qdisc_dump_hex(),
        "icmp_echo" => ops::icmp_echo(arg(1)?, num(2)?, num(3)? as usize),
        "udp_upload" => ops::udp_upload(arg(1)?, num(2)? as u16, num(3)?, num(4)? as usize),
        "udp_download" => ops::udp_download(arg(1)?, num(2)? as u16, num(3)?, num(4)? as usize),
        "nft_count_by_mac_ip" => done(ops::nft_count_by_mac_ip(arg(1)?)),
        "nft_elements" => ops::nft_elements(arg(1)?, arg(2)?),
        "mac" => ops::mac(arg(1)?),
        "nft_tables" => ops::nft_tables(),
        "nft_flush" => done(ops::nft_flush()),
        "http_get" => ops::http_get(arg(1)?, arg(2)?, arg(3).ok()),
        "http_save" => ops::http_save(arg(1)?, arg(2)?, arg(3)?),
        "tcp_probe" => done(ops::tcp_probe(arg(1)?)),
        "http_raw" => http::http_raw(arg(1)?, arg(2)?),
        "http_hammer" => http::http_hammer(
            arg(1)?,
            num(2)? as usize,
            num(3)? as usize,
            arg(4)?,
            arg(5)?,
        ),
        "http" => http::http_request(arg(1)?, arg(2)?, arg(3)?, arg(4)?),
        "received" => Ok(ops::received().to_string()),
        "exporter" => done(upstream::exporter(
            num(1)? as u16,
            w.get(2) == Some(&"stations"),
        )),
        "draytek" => done(upstream::draytek(num(1)? as u16)),
        "bypass" => done(upstream::bypass(num(1)?, num(2)?)),
        "scrapes" => Ok(upstream::scrapes().to_string()),
        "webhook" => done(super::hooks::webhook(num(1)? as u16)),
        "webhooks" => Ok(super::hooks::bodies()),
        "silent" => done(upstream::silent(num(1)? as u16)),
        "silent_accepted" => Ok(upstream::silent_accepted().to_string()),
        "peers" => Ok(ops::peers().join(",")),
        "netmeter_install" => done(bench::netmeter_install(arg(1)?, num(2)?, arg(3)?)),
        "netmeter_conntrack_install" => done(bench::netmeter_conntrack_install()),
        "netmeter_variant" => done(bench::netmeter_variant(arg(1)?, arg(2)?, num(3)?, arg(4)?)),
        "udp_blast" => bench::udp_blast(arg(1)?, num(2)? as u16, num(3)?, num(4)? as usize),
        "http_latency" => bench::http_latency(arg(1)?, arg(2)?, num(3)?),
        "nft_populate" => bench::nft_populate(arg(1)?, num(2)?),
        "nft_delete" => done(bench::nft_delete(arg(1)?, arg(2)?)),
        "yamon" => done(bench::yamon(num(1)?, arg(2)?)),
        "offload" => done(bench::offload(arg(1)?, arg(2)? == "on")),
        "bench_refresh" => bench::bench_refresh(num(1)?, num(2)?, num(3).unwrap_or(0)),
        other => Err(format!("unknown command '{other}'")),
    }
}
