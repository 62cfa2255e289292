//! The router's own TCP and UDP sockets from sock_diag, read on request
//! (never in the refresh loop): what `ss -tinu` shows.

use crate::netlink::sock_diag::{
    IPPROTO_TCP, IPPROTO_UDP, NETLINK_SOCK_DIAG, SocketMessage, TCP_ESTABLISHED,
    socket_dump_request,
};
use crate::netlink::{NetlinkError, NetlinkSocket};

/// Most sockets kept per protocol: a busy router has a few hundred.
pub const MAX_SOCKETS: usize = 8192;

/// Established TCP sockets (with tcp_info) and every UDP socket, IPv4 then IPv6.
pub fn read_sockets() -> Result<(Vec<SocketMessage>, Vec<SocketMessage>), NetlinkError> {
    let mut socket = NetlinkSocket::open(NETLINK_SOCK_DIAG)?;
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        for (protocol, states, out) in [
            (IPPROTO_TCP, 1u32 << TCP_ESTABLISHED, &mut tcp),
            (IPPROTO_UDP, u32::MAX, &mut udp),
        ] {
            let what = if protocol == IPPROTO_TCP {
                "TCP"
            } else {
                "UDP"
            };
            socket.dump(
                socket_dump_request(family, protocol, states),
                &format!("reading {what} sockets (sock_diag)"),
                |msg| {
                    if out.len() < MAX_SOCKETS {
                        out.push(SocketMessage::parse(msg)?);
                    }
                    Ok(())
                },
            )?;
        }
    }
    Ok((tcp, udp))
}
