//! What an agent does inside its namespace: rtnetlink and nf_tables
//! requests built with netmeter's own netlink layer, sysctls, traffic.

use netmeter::netlink::message::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use netmeter::netlink::nftables::*;
use netmeter::netlink::route::*;
use netmeter::netlink::socket::{NETLINK_NETFILTER, NETLINK_ROUTE};
use netmeter::netlink::{MessageBuilder, NetlinkSocket};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

type R<T = ()> = Result<T, String>;

fn rtnl() -> R<NetlinkSocket> {
    NetlinkSocket::open(NETLINK_ROUTE).map_err(|e| e.to_string())
}

fn send(msg: MessageBuilder, what: &str) -> R {
    rtnl()?.request(msg, what).map_err(|e| e.to_string())
}

fn ifindex(name: &str) -> R<u32> {
    let links = netmeter::collect::links::read_links(&mut rtnl()?).map_err(|e| e.to_string())?;
    links
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.ifindex)
        .ok_or_else(|| format!("no interface {name}"))
}

const CREATE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/// A veth pair here, its peer moved into the namespace of process `peer_pid`.
pub fn veth(name: &str, peer: &str, peer_pid: u32) -> R {
    let mut m = MessageBuilder::new(RTM_NEWLINK, CREATE);
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    m.nest_start(IFLA_LINKINFO);
    m.attr_str(IFLA_INFO_KIND, "veth");
    m.nest_start(IFLA_INFO_DATA);
    m.nest_start(VETH_INFO_PEER);
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, peer);
    m.attr_u32(IFLA_NET_NS_PID, peer_pid);
    m.nest_end();
    m.nest_end();
    m.nest_end();
    send(m, &format!("creating veth {name}/{peer}"))
}

pub fn bridge(name: &str) -> R {
    let mut m = MessageBuilder::new(RTM_NEWLINK, CREATE);
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    m.nest_start(IFLA_LINKINFO);
    m.attr_str(IFLA_INFO_KIND, "bridge");
    m.nest_end();
    send(m, &format!("creating bridge {name}"))
}

pub fn set_master(name: &str, master: &str) -> R {
    const IFLA_MASTER: u16 = 10;
    let (index, master) = (ifindex(name)?, ifindex(master)?);
    let mut m = MessageBuilder::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.header(&ifinfomsg(index, 0, 0));
    m.attr_u32(IFLA_MASTER, master);
    send(m, &format!("enslaving {name}"))
}

fn set_flags(name: &str, up: bool) -> R {
    let index = ifindex(name)?;
    let mut m = MessageBuilder::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.header(&ifinfomsg(index, if up { IFF_UP } else { 0 }, IFF_UP));
    send(m, &format!("setting {name} up={up}"))
}

pub fn link_up(name: &str) -> R {
    set_flags(name, true)
}

pub fn link_down(name: &str) -> R {
    set_flags(name, false)
}

/// Renames an interface (down, rename, up: older kernels refuse live renames).
pub fn rename(old: &str, new: &str) -> R {
    set_flags(old, false)?;
    let index = ifindex(old)?;
    let mut m = MessageBuilder::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.header(&ifinfomsg(index, 0, 0));
    m.attr_str(IFLA_IFNAME, new);
    send(m, &format!("renaming {old} to {new}"))?;
    set_flags(new, true)
}

pub fn delete(name: &str) -> R {
    let mut m = MessageBuilder::new(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    send(m, &format!("deleting {name}"))
}

fn parse_cidr(cidr: &str) -> R<(IpAddr, u8)> {
    let (ip, len) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{cidr}: not ADDR/LEN"))?;
    Ok((
        ip.parse().map_err(|e| format!("{ip}: {e}"))?,
        len.parse().map_err(|e| format!("{len}: {e}"))?,
    ))
}

fn ip_bytes(ip: IpAddr) -> (u8, Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => (libc::AF_INET as u8, v4.octets().to_vec()),
        IpAddr::V6(v6) => (libc::AF_INET6 as u8, v6.octets().to_vec()),
    }
}

/// Adds an address; IPv6 ones skip duplicate address detection so they
/// work at once.
pub fn address(name: &str, cidr: &str) -> R {
    let (ip, len) = parse_cidr(cidr)?;
    let (family, bytes) = ip_bytes(ip);
    let mut m = MessageBuilder::new(RTM_NEWADDR, CREATE);
    m.header(&ifaddrmsg(family, len, ifindex(name)?));
    m.attr(IFA_LOCAL, &bytes);
    m.attr(IFA_ADDRESS, &bytes);
    m.attr_u32(IFA_FLAGS, IFA_F_NODAD);
    send(m, &format!("adding {cidr} to {name}"))
}

/// A route to `dst` (ADDR/LEN, or `default4`/`default6`) via `gateway`.
pub fn route(dst: &str, gateway: &str) -> R {
    let gw: IpAddr = gateway.parse().map_err(|e| format!("{gateway}: {e}"))?;
    let (family, gw_bytes) = ip_bytes(gw);
    let (dst_bytes, dst_len) = match dst {
        "default" => (None, 0),
        cidr => {
            let (ip, len) = parse_cidr(cidr)?;
            (Some(ip_bytes(ip).1), len)
        }
    };
    let mut m = MessageBuilder::new(RTM_NEWROUTE, CREATE);
    m.header(&rtmsg(family, dst_len));
    if let Some(d) = dst_bytes {
        m.attr(RTA_DST, &d);
    }
    m.attr(RTA_GATEWAY, &gw_bytes);
    send(m, &format!("adding route {dst} via {gateway}"))
}

/// Writes a sysctl of this namespace (/proc/sys/net resolves per namespace).
pub fn sysctl(path: &str, value: &str) -> R {
    if !path.starts_with("net/") {
        return Err(format!(
            "{path}: the test bed only sets net/ sysctls of its own namespace"
        ));
    }
    std::fs::write(format!("/proc/sys/{path}"), value).map_err(|e| format!("{path}: {e}"))
}

/// CPU time of this agent, every thread it ran (live or ended) included,
/// user + system, in nanoseconds (`getrusage`, from the scheduler's
/// nanosecond sums).
pub fn cpu() -> R<String> {
    // SAFETY: rusage is plain data, filled in by the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    Ok((ns(usage.ru_utime) + ns(usage.ru_stime)).to_string())
}

/// Reads a sysctl of this namespace.
pub fn sysctl_get(path: &str) -> R<String> {
    std::fs::read_to_string(format!("/proc/sys/{path}"))
        .map(|v| v.trim().to_string())
        .map_err(|e| format!("{path}: {e}"))
}

/// IPv4 masquerade of everything leaving through `oif`.
pub fn masquerade(oif: &str) -> R {
    let mut b = Batch::new();
    let chain = BaseChain {
        hook: Hook::Postrouting as u32,
        priority: 100,
        chain_type: "nat",
        device: None,
    };
    b.add_table(Family::Ipv4, "testbed_nat")
        .add_chain(Family::Ipv4, "testbed_nat", "postrouting", Some(&chain))
        .add_rule(
            Family::Ipv4,
            "testbed_nat",
            "postrouting",
            &[
                Expr::Meta {
                    key: MetaKey::OifName,
                    dreg: NFT_REG_1,
                },
                Expr::Cmp {
                    sreg: NFT_REG_1,
                    op: CmpOp::Eq,
                    data: Expr::ifname(oif),
                },
                Expr::Masquerade,
            ],
        );
    NetlinkSocket::open(NETLINK_NETFILTER)
        .and_then(|mut s| s.batch(b.finish(), "installing the test bed's masquerade"))
        .map_err(|e| e.to_string())
}

/// This namespace's /proc/net/dev as `name,rxB,rxP,rxErr,rxDrop,txB,txP,txErr,txDrop;…`.
pub fn counters() -> R<String> {
    let text = std::fs::read_to_string("/proc/self/net/dev").map_err(|e| e.to_string())?;
    let mut out = String::new();
    for line in text.lines().skip(2) {
        let (name, rest) = line.split_once(':').ok_or("bad /proc/net/dev line")?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop …
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{};",
            name.trim(),
            f[0],
            f[1],
            f[2],
            f[3],
            f[8],
            f[9],
            f[10],
            f[11]
        ));
    }
    Ok(out)
}

/// One counter of this namespace's /proc/net/snmp6 (`Icmp6OutMLDv2Reports`, …).
pub fn snmp6(name: &str) -> R<String> {
    let text = std::fs::read_to_string("/proc/self/net/snmp6").map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(char::is_whitespace))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("no {name} in /proc/net/snmp6"))
}

static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static PEERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn received() -> usize {
    RECEIVED.load(Ordering::SeqCst)
}

pub fn peers() -> Vec<String> {
    PEERS.lock().unwrap().clone()
}

fn note_peer(peer: SocketAddr) {
    let ip = match peer.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let mut p = PEERS.lock().unwrap();
    if !p.contains(&ip.to_string()) {
        p.push(ip.to_string());
    }
}

/// A TCP and UDP server on `[::]:port` (dual stack). TCP: a 9-byte request,
/// `U`+len (the client sends len bytes, answered by one `K`) or `D`+len (the
/// server sends len bytes). UDP: `U…` datagrams are counted; `D`+count+size
/// is answered with count datagrams of size bytes.
pub fn serve(port: u16) -> R {
    let tcp = TcpListener::bind(("::", port)).map_err(|e| format!("tcp bind {port}: {e}"))?;
    let udp = UdpSocket::bind(("::", port)).map_err(|e| format!("udp bind {port}: {e}"))?;
    std::thread::spawn(move || {
        for conn in tcp.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve_tcp(conn);
            });
        }
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            note_peer(from);
            match buf.first() {
                Some(b'U') => {
                    RECEIVED.fetch_add(n, Ordering::SeqCst);
                }
                Some(b'D') if n >= 13 => {
                    let count = u64::from_be_bytes(buf[1..9].try_into().unwrap());
                    let size = u32::from_be_bytes(buf[9..13].try_into().unwrap()) as usize;
                    let payload = vec![b'd'; size.min(65507)];
                    for _ in 0..count {
                        let _ = udp.send_to(&payload, from);
                        // Pace so the receiver's socket buffer keeps up.
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                _ => {}
            }
        }
    });
    Ok(())
}

fn serve_tcp(mut conn: TcpStream) -> std::io::Result<()> {
    if let Ok(peer) = conn.peer_addr() {
        note_peer(peer);
    }
    let mut head = [0u8; 9];
    conn.read_exact(&mut head)?;
    let len = u64::from_be_bytes(head[1..9].try_into().unwrap());
    match head[0] {
        b'U' => {
            let got = std::io::copy(&mut (&mut conn).take(len), &mut std::io::sink())?;
            RECEIVED.fetch_add(got as usize, Ordering::SeqCst);
            conn.write_all(b"K")?;
        }
        b'D' => {
            send_bytes(&mut conn, len)?;
            conn.shutdown(std::net::Shutdown::Write)?;
        }
        // `tcp_hold`: an upload whose connection stays open until the
        // client closes it.
        b'H' => {
            let got = std::io::copy(&mut (&mut conn).take(len), &mut std::io::sink())?;
            RECEIVED.fetch_add(got as usize, Ordering::SeqCst);
            conn.write_all(b"K")?;
            std::io::copy(&mut conn, &mut std::io::sink())?;
        }
        _ => {}
    }
    Ok(())
}

fn send_bytes(w: &mut impl Write, mut len: u64) -> std::io::Result<()> {
    let chunk = vec![b'x'; 64 * 1024];
    while len > 0 {
        let n = len.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])?;
        len -= n as u64;
    }
    Ok(())
}

fn target(addr: &str, port: u16) -> R<SocketAddr> {
    let ip: IpAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Uploads (`U`) or downloads (`D`) exactly `len` payload bytes over TCP.
pub fn tcp_transfer(addr: &str, port: u16, mode: u8, len: u64) -> R<String> {
    let io = |e: std::io::Error| format!("tcp {addr}:{port}: {e}");
    let mut conn =
        TcpStream::connect_timeout(&target(addr, port)?, Duration::from_secs(5)).map_err(io)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let mut head = [mode; 9];
    head[1..9].copy_from_slice(&len.to_be_bytes());
    conn.write_all(&head).map_err(io)?;
    if mode == b'U' {
        send_bytes(&mut conn, len).map_err(io)?;
        let mut ack = [0u8; 1];
        conn.read_exact(&mut ack).map_err(io)?;
        Ok(len.to_string())
    } else {
        let got = std::io::copy(&mut conn, &mut std::io::sink()).map_err(io)?;
        if got != len {
            return Err(format!("downloaded {got} of {len} bytes"));
        }
        Ok(got.to_string())
    }
}

/// Connections `tcp_hold` keeps open, idle, for the life of the agent.
static HELD: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());

/// Uploads `len` bytes and keeps the connection open and idle (for socket
/// statistics that must hold still); answers its local port.
pub fn tcp_hold(addr: &str, port: u16, len: u64) -> R<String> {
    let io = |e: std::io::Error| format!("tcp {addr}:{port}: {e}");
    let mut conn =
        TcpStream::connect_timeout(&target(addr, port)?, Duration::from_secs(5)).map_err(io)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let mut head = [b'H'; 9];
    head[1..9].copy_from_slice(&len.to_be_bytes());
    conn.write_all(&head).map_err(io)?;
    send_bytes(&mut conn, len).map_err(io)?;
    let mut ack = [0u8; 1];
    conn.read_exact(&mut ack).map_err(io)?;
    let local = conn.local_addr().map_err(io)?.port();
    HELD.lock().unwrap().push(conn);
    Ok(local.to_string())
}

fn udp_socket(addr: &SocketAddr) -> R<UdpSocket> {
    let bind = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    s.connect(addr).map_err(|e| e.to_string())?;
    Ok(s)
}

/// Sends `count` datagrams of `size` bytes (first byte `U`).
pub fn udp_upload(addr: &str, port: u16, count: u64, size: usize) -> R<String> {
    let s = udp_socket(&target(addr, port)?)?;
    let mut payload = vec![b'u'; size.max(1)];
    payload[0] = b'U';
    for _ in 0..count {
        s.send(&payload).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(count.to_string())
}

/// Asks for `count` datagrams of `size` bytes; answers how many arrived.
pub fn udp_download(addr: &str, port: u16, count: u64, size: usize) -> R<String> {
    let s = udp_socket(&target(addr, port)?)?;
    let mut req = vec![b'D'];
    req.extend_from_slice(&count.to_be_bytes());
    req.extend_from_slice(&(size as u32).to_be_bytes());
    s.send(&req).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65536];
    let mut got = 0;
    while got < count {
        match s.recv(&mut buf) {
            Ok(_) => got += 1,
            Err(_) => break,
        }
    }
    Ok(got.to_string())
}

/// GETs `path` from `addr` (IP:PORT) with netmeter's own client; answers
/// `STATUS BODY` on one line.
/// `token`: sent as `Authorization: Bearer <token>`.
pub fn http_get(addr: &str, path: &str, token: Option<&str>) -> R<String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let (status, body) = netmeter::serve::client::get(addr, path, token, Duration::from_secs(3))
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{status} {}",
        String::from_utf8_lossy(&body).replace('\n', " ")
    ))
}

/// `tcp_probe ADDR`: whether something listens there (connects, then closes).
pub fn tcp_probe(addr: &str) -> R {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map(drop)
        .map_err(|e| format!("{addr}: {e}"))
}

/// `http_save ADDR PATH FILE`: GETs PATH and writes the body, as sent, to
/// FILE (http_get folds lines); answers the status.
pub fn http_save(addr: &str, path: &str, file: &str) -> R<String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let (status, body) = netmeter::serve::client::get(addr, path, None, Duration::from_secs(3))
        .map_err(|e| e.to_string())?;
    std::fs::write(file, body).map_err(|e| format!("{file}: {e}"))?;
    Ok(status.to_string())
}

/// A netdev table `probe` counting per (MAC, IP) on `dev`: ingress at
/// priority -500 (what the device sent), egress (what it received). Wire
/// layer check only; netmeter's own placement lives in the product.
pub fn nft_count_by_mac_ip(dev: &str) -> R {
    let mut b = Batch::new();
    b.add_table(Family::Netdev, "probe");
    let sets = [
        ("tx4", TYPE_IPADDR, 4),
        ("rx4", TYPE_IPADDR, 4),
        ("tx6", TYPE_IP6ADDR, 16),
        ("rx6", TYPE_IP6ADDR, 16),
    ];
    for (id, (name, ty, len)) in sets.iter().enumerate() {
        b.add_set(
            Family::Netdev,
            "probe",
            &SetSpec {
                name: name.to_string(),
                key_type: concat_type(TYPE_ETHERADDR, *ty),
                key_len: 8 + len,
                flags: NFT_SET_TIMEOUT | NFT_SET_EVAL,
                timeout_ms: Some(600_000),
                size: Some(1024),
                id: id as u32 + 1,
            },
        );
    }
    for (chain, hook) in [("in", NetdevHook::Ingress), ("out", NetdevHook::Egress)] {
        let base = BaseChain {
            hook: hook as u32,
            priority: -500,
            chain_type: "filter",
            device: Some(dev.to_string()),
        };
        b.add_chain(Family::Netdev, "probe", chain, Some(&base));
        // Ingress: the device's source MAC and IP; egress: destination.
        let (mac_off, v4_off, v6_off, dir) = match hook {
            NetdevHook::Ingress => (6, 12, 8, "tx"),
            NetdevHook::Egress => (0, 16, 24, "rx"),
        };
        for (proto, ip_off, ip_len, set) in [
            ([0x08u8, 0x00], v4_off, 4, "4"),
            ([0x86, 0xdd], v6_off, 16, "6"),
        ] {
            b.add_rule(
                Family::Netdev,
                "probe",
                chain,
                &[
                    Expr::Meta {
                        key: MetaKey::Protocol,
                        dreg: NFT_REG_1,
                    },
                    Expr::Cmp {
                        sreg: NFT_REG_1,
                        op: CmpOp::Eq,
                        data: proto.to_vec(),
                    },
                    Expr::Payload {
                        base: PayloadBase::LinkLayer,
                        offset: mac_off,
                        len: 6,
                        dreg: NFT_REG32_00,
                    },
                    Expr::Payload {
                        base: PayloadBase::Network,
                        offset: ip_off,
                        len: ip_len,
                        dreg: NFT_REG32_00 + 2,
                    },
                    Expr::DynsetUpdateCounter {
                        set: format!("{dir}{set}"),
                        sreg_key: NFT_REG32_00,
                        timeout_ms: None,
                    },
                ],
            );
        }
    }
    NetlinkSocket::open(NETLINK_NETFILTER)
        .and_then(|mut s| s.batch(b.finish(), "installing the probe table"))
        .map_err(|e| e.to_string())
}

/// Elements of a netdev set as `hexkey,bytes,packets;…`.
pub fn nft_elements(table: &str, set: &str) -> R<String> {
    let mut out = String::new();
    let mut sock = NetlinkSocket::open(NETLINK_NETFILTER).map_err(|e| e.to_string())?;
    sock.dump(
        set_elements_request(Family::Netdev, table, set),
        "dumping set elements",
        |msg| {
            parse_set_elements(msg, |e| {
                let hex: String = e.key.iter().map(|b| format!("{b:02x}")).collect();
                out.push_str(&format!("{hex},{},{};", e.bytes, e.packets));
            })
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// An interface's MAC address as plain hex.
pub fn mac(name: &str) -> R<String> {
    let mut found = None;
    let mut sock = rtnl()?;
    sock.dump(link_dump_request(), "reading links", |msg| {
        let link = LinkMessage::parse(msg)?;
        if link.name == name {
            found = link
                .mac
                .map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<String>());
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    found.ok_or_else(|| format!("no MAC for {name}"))
}

/// Every nftables table here as `family:name,…`.
pub fn nft_tables() -> R<String> {
    let mut out = Vec::new();
    let mut sock = NetlinkSocket::open(NETLINK_NETFILTER).map_err(|e| e.to_string())?;
    sock.dump(tables_request(), "listing tables", |msg| {
        let (family, name) = parse_table(msg)?;
        out.push(format!("{family}:{name}"));
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(out.join(","))
}

/// What `nft flush ruleset` does to netmeter: every table deleted.
pub fn nft_flush() -> R {
    let tables = nft_tables()?;
    let mut b = Batch::new();
    for t in tables.split(',').filter(|t| !t.is_empty()) {
        let (family, name) = t.split_once(':').unwrap();
        let family = match family {
            "1" => Family::Inet,
            "2" => Family::Ipv4,
            "5" => Family::Netdev,
            "10" => Family::Ipv6,
            other => return Err(format!("unexpected family {other}")),
        };
        b.delete_table(family, name);
    }
    NetlinkSocket::open(NETLINK_NETFILTER)
        .and_then(|mut s| s.batch(b.finish(), "flushing the ruleset"))
        .map_err(|e| e.to_string())
}

/// `count` short TCP connections one after another, each uploading `len`
/// bytes: as many conntrack flows, each begun and ended within moments.
pub fn tcp_flows(addr: &str, port: u16, count: u64, len: u64) -> R<String> {
    for _ in 0..count {
        tcp_transfer(addr, port, b'U', len)?;
    }
    Ok(count.to_string())
}

/// One TCP upload of `len` bytes spread over `secs` seconds: a flow that
/// spans many refreshes.
pub fn tcp_paced(addr: &str, port: u16, len: u64, secs: u64) -> R<String> {
    const STEPS: u64 = 20;
    let io = |e: std::io::Error| format!("tcp {addr}:{port}: {e}");
    let mut conn =
        TcpStream::connect_timeout(&target(addr, port)?, Duration::from_secs(5)).map_err(io)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let mut head = [b'U'; 9];
    head[1..9].copy_from_slice(&len.to_be_bytes());
    conn.write_all(&head).map_err(io)?;
    for step in 0..STEPS {
        let part = len / STEPS + if step == STEPS - 1 { len % STEPS } else { 0 };
        send_bytes(&mut conn, part).map_err(io)?;
        std::thread::sleep(Duration::from_millis(secs * 1000 / STEPS));
    }
    let mut ack = [0u8; 1];
    conn.read_exact(&mut ack).map_err(io)?;
    Ok(len.to_string())
}

/// `count` ICMP (or ICMPv6) echo requests with `size` payload bytes, each
/// waiting for its reply; answers how many replies came. Uses the kernel's
/// ping sockets, allowed here for every group of this namespace.
pub fn icmp_echo(addr: &str, count: u64, size: usize) -> R<String> {
    let ip: IpAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 0")
        .map_err(|e| format!("ping_group_range: {e}"))?;
    let (domain, protocol, echo) = match ip {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128u8),
    };
    // SAFETY: plain socket calls on a descriptor owned here and closed below;
    // the address structs are zeroed and filled by field.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_DGRAM, protocol);
        if fd < 0 {
            return Err(format!("ping socket: {}", std::io::Error::last_os_error()));
        }
        let rc = match ip {
            IpAddr::V4(a) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
                libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            IpAddr::V6(a) => {
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_addr.s6_addr = a.octets();
                libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        };
        let mut tv: libc::timeval = std::mem::zeroed();
        tv.tv_sec = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(format!("ping connect {addr}: {e}"));
        }
        let mut replies = 0;
        let mut buf = vec![0u8; size + 64];
        for seq in 0..count {
            let mut packet = vec![echo, 0, 0, 0, 0, 0];
            packet.extend_from_slice(&(seq as u16).to_be_bytes());
            packet.resize(8 + size, b'p');
            if libc::send(fd, packet.as_ptr().cast(), packet.len(), 0) < 0 {
                break;
            }
            if libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) > 0 {
                replies += 1;
            }
        }
        libc::close(fd);
        Ok(replies.to_string())
    }
}

/// The raw bytes of a conntrack dump as the kernel sends them, in hex:
/// every datagram up to NLMSG_DONE (for the parser's tests and fuzz seeds).
pub fn conntrack_dump_hex() -> R<String> {
    raw_dump_hex(
        NETLINK_NETFILTER,
        netmeter::netlink::conntrack::dump_request(),
    )
}

/// The same of a dump of every qdisc (RTM_GETQDISC).
pub fn qdisc_dump_hex() -> R<String> {
    raw_dump_hex(
        NETLINK_ROUTE,
        netmeter::netlink::qdisc::qdisc_dump_request(),
    )
}

fn raw_dump_hex(protocol: isize, request: MessageBuilder) -> R<String> {
    use netmeter::netlink::MessageIter;
    use netmeter::netlink::message::NLMSG_DONE;
    let mut socket = netlink_sys::Socket::new(protocol).map_err(|e| e.to_string())?;
    socket.bind_auto().map_err(|e| e.to_string())?;
    let request = request.finish(1);
    socket.send(&request, 0).map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    loop {
        let mut buf = Vec::with_capacity(64 * 1024);
        socket.recv(&mut buf, 0).map_err(|e| e.to_string())?;
        let done = MessageIter::new(&buf)
            .flatten()
            .any(|m| m.msg_type == NLMSG_DONE);
        all.extend_from_slice(&buf);
        if done {
            break;
        }
    }
    Ok(all.iter().map(|b| format!("{b:02x}")).collect())
}
