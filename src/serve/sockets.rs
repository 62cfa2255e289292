//! `/api/v1/sockets` and `netmeter sockets`: the router's own established
//! TCP connections with what tcp_info says of them, and its UDP sockets
//! with their queues. Read from the kernel on request only.

use crate::netlink::NetlinkError;
use crate::netlink::sock_diag::{SocketMessage, TcpInfo};
#[cfg(test)]
use serde::Deserialize;
use serde::Serialize;

/// The whole answer. Field names are a contract: only add.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct SocketsReport {
    pub tcp: Vec<SocketView>,
    pub udp: Vec<SocketView>,
}

/// One socket. `recv_q`/`send_q` are `ss`'s Recv-Q and Send-Q.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct SocketView {
    /// `"127.0.0.1:5001"`, `"[::1]:5001"`.
    pub local: String,
    pub remote: String,
    pub recv_q: u32,
    pub send_q: u32,
    pub uid: u32,
    pub inode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_info: Option<TcpInfo>,
}

impl From<SocketMessage> for SocketView {
    fn from(s: SocketMessage) -> Self {
        SocketView {
            local: std::net::SocketAddr::new(s.local, s.local_port).to_string(),
            remote: std::net::SocketAddr::new(s.remote, s.remote_port).to_string(),
            recv_q: s.recv_q,
            send_q: s.send_q,
            uid: s.uid,
            inode: s.inode,
            tcp_info: s.tcp,
        }
    }
}

/// Reads this namespace's sockets now.
pub fn read_report() -> Result<SocketsReport, NetlinkError> {
    let (tcp, udp) = crate::collect::sockets::read_sockets()?;
    Ok(SocketsReport {
        tcp: tcp.into_iter().map(SocketView::from).collect(),
        udp: udp.into_iter().map(SocketView::from).collect(),
    })
}
