//! An upstream router inside a namespace (the WAN host), for end-to-end
//! upstream tests: a node_exporter-style endpoint whose WAN counters are
//! this namespace's real eth0 counters, mirrored (what the router forwards
//! to and from netmeter goes on to the ISP), plus bytes of devices that
//! bypass netmeter, set by the test. And a port that accepts connections
//! and never answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

type R<T = ()> = Result<T, String>;

/// Bytes beside netmeter (rx, tx); a mutex, as MIPS (where the VM
/// scenario builds this file) has no 64-bit atomics.
static BYPASS: Mutex<(u64, u64)> = Mutex::new((0, 0));
static SCRAPES: AtomicUsize = AtomicUsize::new(0);
static SILENT: AtomicUsize = AtomicUsize::new(0);
/// Accepted and held open, never answered.
static HELD: Mutex<Vec<std::net::TcpStream>> = Mutex::new(Vec::new());

/// Wifi stations the exporter lists after `exporter PORT stations`.
static STATIONS: AtomicUsize = AtomicUsize::new(0);
/// Bytes of the one station, download and upload from its view.
pub const STATION_MAC: &str = "02:00:00:00:00:99";
const STATION_RX: u64 = 3_000_000;
const STATION_TX: u64 = 400_000;

/// `exporter PORT [stations]`: serves `/metrics` with `isp0` as the WAN;
/// with `stations`, also a wifi station (STATION_MAC) whose bytes grow a
/// little with every scrape, as the ucode exporter's wifi collector
/// writes them.
pub fn exporter(port: u16, stations: bool) -> R {
    if stations {
        STATIONS.store(1, Ordering::SeqCst);
    }
    let listener = TcpListener::bind(("0.0.0.0", port)).map_err(|e| format!("bind {port}: {e}"))?;
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = match eth0() {
                Ok((rx, tx)) => {
                    SCRAPES.fetch_add(1, Ordering::SeqCst);
                    // Download from the ISP is what went on to netmeter, and more.
                    let (bypass_rx, bypass_tx) = *BYPASS.lock().unwrap();
                    let isp_rx = tx + bypass_rx;
                    let isp_tx = rx + bypass_tx;
                    format!(
                        "# HELP node_network_receive_bytes_total Network device statistic receive_bytes.\n\
                         # TYPE node_network_receive_bytes_total counter\n\
                         node_network_receive_bytes_total{{device=\"isp0\"}} {isp_rx}\n\
                         node_network_receive_bytes_total{{device=\"eth0\"}} {rx}\n\
                         # HELP node_network_transmit_bytes_total Network device statistic transmit_bytes.\n\
                         # TYPE node_network_transmit_bytes_total counter\n\
                         node_network_transmit_bytes_total{{device=\"isp0\"}} {isp_tx}\n\
                         node_network_transmit_bytes_total{{device=\"eth0\"}} {tx}\n{}",
                        station_lines()
                    )
                }
                Err(e) => e,
            };
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(())
}

/// `bypass RX TX`: bytes that devices beside netmeter moved so far.
pub fn bypass(rx: u64, tx: u64) -> R {
    *BYPASS.lock().unwrap() = (rx, tx);
    Ok(())
}

/// Scrapes the exporter answered.
pub fn scrapes() -> usize {
    SCRAPES.load(Ordering::SeqCst)
}

/// `silent PORT`: accepts, never reads or answers.
pub fn silent(port: u16) -> R {
    let listener = TcpListener::bind(("0.0.0.0", port)).map_err(|e| format!("bind {port}: {e}"))?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            SILENT.fetch_add(1, Ordering::SeqCst);
            HELD.lock().unwrap().push(conn);
        }
    });
    Ok(())
}

/// Connections the silent port accepted.
pub fn silent_accepted() -> usize {
    SILENT.load(Ordering::SeqCst)
}

/// This namespace's eth0 byte counters (rx, tx).
fn eth0() -> Result<(u64, u64), String> {
    let text = std::fs::read_to_string("/proc/self/net/dev").map_err(|e| e.to_string())?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("eth0:"))
        .ok_or("no eth0")?;
    let f: Vec<&str> = line.split_once(':').unwrap().1.split_whitespace().collect();
    let num = |i: usize| f[i].parse::<u64>().map_err(|e| e.to_string());
    Ok((num(0)?, num(8)?))
}

/// The station's lines, if any: the access point receives its upload.
fn station_lines() -> String {
    if STATIONS.load(Ordering::SeqCst) == 0 {
        return String::new();
    }
    let n = SCRAPES.load(Ordering::SeqCst) as u64;
    format!(
        "# TYPE wifi_station_receive_bytes_total counter\n\
         wifi_station_receive_bytes_total{{ifname=\"wlan0\",mac=\"{STATION_MAC}\"}} {}\n\
         # TYPE wifi_station_transmit_bytes_total counter\n\
         wifi_station_transmit_bytes_total{{ifname=\"wlan0\",mac=\"{STATION_MAC}\"}} {}\n",
        STATION_TX + n * 1000,
        STATION_RX + n * 10_000
    )
}

/// `draytek PORT`: a DrayTek Vigor's telnet console, as plain as one can
/// be (no option negotiation, no pager): `Password:`, then the prompt, and
/// the recorded answers to `vdsl status more`, `vdsl status` and `wan
/// status` (tests/fixtures/upstream/draytek). Any password is taken.
pub fn draytek(port: u16) -> R {
    const MORE: &str = include_str!("../fixtures/upstream/draytek/vdsl_status_more.txt");
    const STATUS: &str = include_str!("../fixtures/upstream/draytek/vdsl_status.txt");
    const WAN: &str = include_str!("../fixtures/upstream/draytek/wan_status.txt");
    let listener = TcpListener::bind(("0.0.0.0", port)).map_err(|e| format!("bind {port}: {e}"))?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let crlf = |t: &str| t.replace('\n', "\r\n");
                let mut reader = std::io::BufReader::new(conn.try_clone().ok()?);
                let mut writer = conn;
                let mut line = String::new();
                writer.write_all(b"\r\nPassword: ").ok()?;
                std::io::BufRead::read_line(&mut reader, &mut line).ok()?;
                writer.write_all(b"\r\n\r\nDrayTek> ").ok()?;
                loop {
                    line.clear();
                    if std::io::BufRead::read_line(&mut reader, &mut line).ok()? == 0 {
                        return Some(());
                    }
                    let command = line.trim();
                    let answer = match command {
                        "exit" => return Some(()),
                        "vdsl status more" => crlf(MORE),
                        "vdsl status" => crlf(STATUS),
                        "wan status" => crlf(WAN),
                        _ => "% Unknown command\r\n".to_string(),
                    };
                    let reply = format!("{command}\r\n{answer}\r\nDrayTek> ");
                    writer.write_all(reply.as_bytes()).ok()?;
                }
            });
        }
    });
    Ok(())
}
