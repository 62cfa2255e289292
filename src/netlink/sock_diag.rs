//! sock_diag (`NETLINK_SOCK_DIAG`): inet_diag dumps of this namespace's TCP
//! and UDP sockets, with `struct tcp_info` (INET_DIAG_INFO) for TCP.

use super::message::{NLM_F_DUMP, NLM_F_REQUEST};
use super::{AttrIter, Malformed, Message, MessageBuilder};
#[cfg(test)]
use serde::Deserialize;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const NETLINK_SOCK_DIAG: isize = 4;
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_MSG_LEN: usize = 72;
/// `TCP_ESTABLISHED`.
pub const TCP_ESTABLISHED: u8 = 1;

/// The request for every socket of one family and protocol whose state is
/// in `states` (a bit per `TCP_*` state), with tcp_info for TCP.
pub fn socket_dump_request(family: u8, protocol: u8, states: u32) -> MessageBuilder {
    let mut m = MessageBuilder::new(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP);
    // struct inet_diag_req_v2: family, protocol, ext, pad, states, sockid.
    let mut req = [0u8; 56];
    req[0] = family;
    req[1] = protocol;
    req[2] = 1 << (INET_DIAG_INFO - 1);
    req[4..8].copy_from_slice(&states.to_ne_bytes());
    m.header(&req);
    m
}

/// The part of `struct tcp_info` that `ss -ti` shows. Fields a kernel is
/// too old to send are None.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct TcpInfo {
    pub state: u8,
    pub retransmits: u8,
    pub rto_us: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub lost: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub total_retrans: u32,
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    pub segs_out: Option<u32>,
    pub segs_in: Option<u32>,
    pub min_rtt_us: Option<u32>,
    pub delivery_rate: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_retrans: Option<u64>,
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

impl TcpInfo {
    /// Offsets are those of `include/uapi/linux/tcp.h`; the struct only
    /// grows, so a shorter one is an older kernel's.
    pub fn parse(b: &[u8]) -> Result<TcpInfo, Malformed> {
        // Up to tcpi_total_retrans: every kernel since 2.6.
        if b.len() < 104 {
            return Err(Malformed(format!("tcp_info of {} bytes", b.len())));
        }
        let u = |o| u32_at(b, o).unwrap_or(0);
        Ok(TcpInfo {
            state: b[0],
            retransmits: b[2],
            rto_us: u(8),
            snd_mss: u(16),
            rcv_mss: u(20),
            unacked: u(24),
            lost: u(32),
            rtt_us: u(68),
            rttvar_us: u(72),
            snd_ssthresh: u(76),
            snd_cwnd: u(80),
            total_retrans: u(100),
            bytes_acked: u64_at(b, 120),
            bytes_received: u64_at(b, 128),
            segs_out: u32_at(b, 136),
            segs_in: u32_at(b, 140),
            min_rtt_us: u32_at(b, 148),
            delivery_rate: u64_at(b, 160),
            bytes_sent: u64_at(b, 200),
            bytes_retrans: u64_at(b, 208),
        })
    }
}

/// One socket of a dump (`struct inet_diag_msg` and its attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketMessage {
    pub family: u8,
    pub state: u8,
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// Bytes waiting to be read (TCP: not yet read by the application;
    /// UDP: the receive buffer's use).
    pub recv_q: u32,
    /// Bytes waiting to be sent (TCP: not yet acknowledged; UDP: the send
    /// buffer's use).
    pub send_q: u32,
    pub uid: u32,
    pub inode: u32,
    pub tcp: Option<TcpInfo>,
}

fn address(family: u8, b: &[u8]) -> Result<IpAddr, Malformed> {
    match family {
        2 => Ok(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(&b[..4]).unwrap(),
        ))),
        10 => Ok(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&b[..16]).unwrap(),
        ))),
        f => Err(Malformed(format!("inet_diag message of family {f}"))),
    }
}

impl SocketMessage {
    pub fn parse(msg: &Message<'_>) -> Result<SocketMessage, Malformed> {
        if msg.msg_type != SOCK_DIAG_BY_FAMILY {
            return Err(Malformed(format!(
                "expected SOCK_DIAG_BY_FAMILY, got type {}",
                msg.msg_type
            )));
        }
        Self::parse_payload(msg.payload)
    }

    pub fn parse_payload(p: &[u8]) -> Result<SocketMessage, Malformed> {
        let h = p.get(..INET_DIAG_MSG_LEN).ok_or_else(|| {
            Malformed(format!(
                "inet_diag message of {} bytes, shorter than inet_diag_msg",
                p.len()
            ))
        })?;
        let family = h[0];
        let port = |o: usize| u16::from_be_bytes([h[o], h[o + 1]]);
        let mut s = SocketMessage {
            family,
            state: h[1],
            local_port: port(4),
            remote_port: port(6),
            local: address(family, &h[8..24])?,
            remote: address(family, &h[24..40])?,
            recv_q: u32_at(h, 56).unwrap_or(0),
            send_q: u32_at(h, 60).unwrap_or(0),
            uid: u32_at(h, 64).unwrap_or(0),
            inode: u32_at(h, 68).unwrap_or(0),
            tcp: None,
        };
        for a in AttrIter::new(&p[INET_DIAG_MSG_LEN..]) {
            let a = a?;
            if a.kind == INET_DIAG_INFO {
                s.tcp = Some(TcpInfo::parse(a.payload)?);
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::MessageIter;

    fn diag_msg(family: u8, extra: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let mut h = [0u8; INET_DIAG_MSG_LEN];
        h[0] = family;
        h[1] = TCP_ESTABLISHED;
        h[4..6].copy_from_slice(&5001u16.to_be_bytes());
        h[6..8].copy_from_slice(&40000u16.to_be_bytes());
        h[8..12].copy_from_slice(&[127, 0, 0, 1]);
        h[24..28].copy_from_slice(&[10, 0, 0, 2]);
        h[56..60].copy_from_slice(&7u32.to_ne_bytes());
        h[60..64].copy_from_slice(&9u32.to_ne_bytes());
        let mut m = MessageBuilder::new(SOCK_DIAG_BY_FAMILY, 2);
        m.header(&h);
        extra(&mut m);
        m.finish(1)
    }

    fn parse(buf: &[u8]) -> Result<SocketMessage, Malformed> {
        SocketMessage::parse(&MessageIter::new(buf).next().unwrap().unwrap())
    }

    #[test]
    fn a_tcp_socket_gives_its_addresses_queues_and_tcp_info() {
        let mut info = vec![0u8; 232];
        info[0] = TCP_ESTABLISHED;
        info[68..72].copy_from_slice(&1234u32.to_ne_bytes());
        info[72..76].copy_from_slice(&617u32.to_ne_bytes());
        info[80..84].copy_from_slice(&10u32.to_ne_bytes());
        info[100..104].copy_from_slice(&3u32.to_ne_bytes());
        info[120..128].copy_from_slice(&1_000_000u64.to_ne_bytes());
        info[128..136].copy_from_slice(&2_000u64.to_ne_bytes());
        let s = parse(&diag_msg(2, |m| {
            m.attr(INET_DIAG_INFO, &info);
        }))
        .unwrap();
        assert_eq!(s.local, IpAddr::from([127, 0, 0, 1]));
        assert_eq!((s.local_port, s.remote_port), (5001, 40000));
        assert_eq!(s.remote, IpAddr::from([10, 0, 0, 2]));
        assert_eq!((s.recv_q, s.send_q), (7, 9));
        let t = s.tcp.unwrap();
        assert_eq!((t.rtt_us, t.rttvar_us, t.snd_cwnd), (1234, 617, 10));
        assert_eq!(t.total_retrans, 3);
        assert_eq!(
            (t.bytes_acked, t.bytes_received),
            (Some(1_000_000), Some(2_000))
        );
    }

    #[test]
    fn an_old_kernels_short_tcp_info_leaves_the_newer_fields_out() {
        let s = parse(&diag_msg(10, |m| {
            m.attr(INET_DIAG_INFO, &[0u8; 104]);
        }))
        .unwrap();
        assert_eq!(s.tcp.unwrap().bytes_acked, None);
        assert!(s.local.is_ipv6());
    }

    #[test]
    fn a_real_dump_of_an_established_loopback_connection_parses() {
        // Both ends of a 127.0.0.1 connection after 1000 bytes one way,
        // dumped on Linux 6.18 (the fuzz seed).
        let dump = include_bytes!("../../fuzz/seeds/sock_diag/tcp_established_dump.bin");
        let sockets: Vec<SocketMessage> = MessageIter::new(dump)
            .map(|m| m.unwrap())
            .filter(|m| m.msg_type == SOCK_DIAG_BY_FAMILY)
            .map(|m| SocketMessage::parse(&m).unwrap())
            .collect();
        assert_eq!(sockets.len(), 2);
        let received: Vec<u64> = sockets
            .iter()
            .map(|s| s.tcp.unwrap().bytes_received.unwrap())
            .collect();
        assert!(received.contains(&1000), "{received:?}");
    }

    #[test]
    fn a_short_message_an_unknown_family_or_a_tiny_tcp_info_is_malformed() {
        assert!(SocketMessage::parse_payload(&[0; 40]).is_err());
        assert!(parse(&diag_msg(7, |_| {})).is_err());
        assert!(
            parse(&diag_msg(2, |m| {
                m.attr(INET_DIAG_INFO, &[0u8; 50]);
            }))
            .is_err()
        );
    }
}
