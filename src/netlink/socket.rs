//! A blocking netlink socket: one request at a time, replies matched by
//! sequence number, kernel errors turned into messages a person can act on.

use super::message::{self, Message, MessageIter, NLMSG_DONE, NLMSG_ERROR};
use super::{Malformed, MessageBuilder};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

pub use netlink_sys::protocols::{NETLINK_NETFILTER, NETLINK_ROUTE};

/// Kernel replies come in datagrams of at most about 32 KiB (NLMSG_GOODSIZE).
const RECV_BUFFER: usize = 64 * 1024;
/// A kernel that does not answer within this is treated as an error, so a
/// wedged netlink family cannot freeze the daemon's loop.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum NetlinkError {
    /// The socket itself failed (open, send, receive).
    Io { context: String, source: io::Error },
    /// The kernel refused a request.
    Kernel {
        context: String,
        errno: i32,
        detail: Option<String>,
    },
    /// The kernel's reply could not be parsed.
    Malformed { context: String, source: Malformed },
    /// The dump changed while it was read; reading it again gives a consistent copy.
    Interrupted { context: String },
}

impl NetlinkError {
    /// The errno for kernel refusals and socket errors, for callers that
    /// react to a specific one (EPERM: no privilege; ENOENT: object gone).
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub fn is_permission_denied(&self) -> bool {
        matches!(self.errno(), Some(libc::EPERM) | Some(libc::EACCES))
    }
}

impl std::fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetlinkError::Io { context, source } => write!(f, "{context}: {source}"),
            NetlinkError::Kernel {
                context,
                errno,
                detail,
            } => {
                let text = io::Error::from_raw_os_error(*errno);
                write!(f, "{context}: the kernel answered: {text}")?;
                if let Some(d) = detail {
                    write!(f, " ({d})")?;
                }
                if *errno == libc::EPERM {
                    write!(
                        f,
                        "; run netmeter as root or give it CAP_NET_ADMIN (procd starts it as root)"
                    )?;
                }
                Ok(())
            }
            NetlinkError::Malformed { context, source } => write!(f, "{context}: {source}"),
            NetlinkError::Interrupted { context } => {
                write!(f, "{context}: the kernel's table changed during the dump")
            }
        }
    }
}

impl std::error::Error for NetlinkError {}

pub struct NetlinkSocket {
    socket: netlink_sys::Socket,
    seq: u32,
    port: u32,
    buf: Vec<u8>,
}

impl NetlinkSocket {
    pub fn open(protocol: isize) -> Result<Self, NetlinkError> {
        let io_err = |what: &str, source| NetlinkError::Io {
            context: format!("cannot {what} a netlink socket"),
            source,
        };
        let mut socket = netlink_sys::Socket::new(protocol).map_err(|e| io_err("open", e))?;
        let addr = socket.bind_auto().map_err(|e| io_err("bind", e))?;
        // Extended acks give the kernel's own words for a refusal; best effort.
        let _ = socket.set_ext_ack(true);
        set_receive_timeout(&socket, REPLY_TIMEOUT).map_err(|e| io_err("configure", e))?;
        Ok(NetlinkSocket {
            socket,
            seq: 1,
            port: addr.port_number(),
            buf: Vec::with_capacity(RECV_BUFFER),
        })
    }

    /// A socket that listens to one multicast group (kernel events), with
    /// a receive buffer of `buffer` bytes so bursts between two drains fit:
    /// forced past the system's limit with CAP_NET_ADMIN, else as large as
    /// it allows.
    pub fn subscribe(protocol: isize, group: u32, buffer: usize) -> Result<Self, NetlinkError> {
        let socket = Self::open(protocol)?;
        socket
            .socket
            .add_membership(group)
            .map_err(|source| NetlinkError::Io {
                context: format!("cannot listen to netlink group {group}"),
                source,
            })?;
        if set_receive_buffer(&socket.socket, libc::SO_RCVBUFFORCE, buffer).is_err() {
            let _ = socket.socket.set_rx_buf_sz(buffer);
        }
        Ok(socket)
    }

    /// Hands every message queued on a subscribed socket to `each`, without
    /// waiting. Returns whether the kernel dropped events since the last
    /// drain because the buffer was full (ENOBUFS): the caller must then
    /// learn the current state another way.
    pub fn drain(
        &mut self,
        context: &str,
        mut each: impl FnMut(&Message<'_>) -> Result<(), Malformed>,
    ) -> Result<bool, NetlinkError> {
        let mut overrun = false;
        loop {
            match self.receive(context, true) {
                Ok(Some(())) => {}
                Ok(None) => return Ok(overrun),
                Err(e) if e.errno() == Some(libc::ENOBUFS) => {
                    overrun = true;
                    continue;
                }
                Err(e) => return Err(e),
            }
            for msg in MessageIter::new(&self.buf) {
                let msg = msg.map_err(|source| NetlinkError::Malformed {
                    context: context.to_string(),
                    source,
                })?;
                if msg.msg_type != NLMSG_DONE && msg.msg_type != NLMSG_ERROR {
                    each(&msg).map_err(|source| NetlinkError::Malformed {
                        context: context.to_string(),
                        source,
                    })?;
                }
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send(&mut self, bytes: &[u8], context: &str) -> Result<(), NetlinkError> {
        self.socket
            .send(bytes, 0)
            .map_err(|source| NetlinkError::Io {
                context: context.to_string(),
                source,
            })?;
        Ok(())
    }

    /// Receives one datagram into the internal buffer; `None` when
    /// `dont_wait` and nothing is queued.
    fn receive(&mut self, context: &str, dont_wait: bool) -> Result<Option<()>, NetlinkError> {
        self.buf.clear();
        let flags = if dont_wait { libc::MSG_DONTWAIT } else { 0 };
        match self.socket.recv(&mut self.buf, flags) {
            Ok(n) if n > RECV_BUFFER => Err(NetlinkError::Malformed {
                context: context.to_string(),
                source: Malformed(format!("a {n}-byte reply did not fit the buffer")),
            }),
            Ok(_) => Ok(Some(())),
            Err(e) if dont_wait && e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(NetlinkError::Io {
                context: context.to_string(),
                source: io::Error::new(io::ErrorKind::TimedOut, "no reply from the kernel"),
            }),
            Err(source) => Err(NetlinkError::Io {
                context: context.to_string(),
                source,
            }),
        }
    }

    /// Sends a dump request and hands every reply message to `each` until
    /// the kernel says done.
    pub fn dump(
        &mut self,
        request: MessageBuilder,
        context: &str,
        mut each: impl FnMut(&Message<'_>) -> Result<(), Malformed>,
    ) -> Result<(), NetlinkError> {
        let seq = self.next_seq();
        let bytes = request.finish(seq);
        self.send(&bytes, context)?;
        let mut interrupted = false;
        loop {
            self.receive(context, false)?;
            let malformed = |source| NetlinkError::Malformed {
                context: context.to_string(),
                source,
            };
            for msg in MessageIter::new(&self.buf) {
                let msg = msg.map_err(malformed)?;
                if msg.seq != seq || (msg.pid != 0 && msg.pid != self.port) {
                    continue; // a stale reply to an earlier, timed-out request
                }
                if msg.flags & message::NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg.msg_type {
                    NLMSG_DONE => {
                        return if interrupted {
                            Err(NetlinkError::Interrupted {
                                context: context.to_string(),
                            })
                        } else {
                            Ok(())
                        };
                    }
                    NLMSG_ERROR => {
                        let (errno, detail) = msg.error_code().map_err(malformed)?;
                        if errno != 0 {
                            return Err(NetlinkError::Kernel {
                                context: context.to_string(),
                                errno,
                                detail: detail.map(str::to_string),
                            });
                        }
                    }
                    message::NLMSG_NOOP => {}
                    _ => each(&msg).map_err(malformed)?,
                }
            }
        }
    }

    /// Sends one request with NLM_F_ACK set and waits for the acknowledgement.
    pub fn request(&mut self, request: MessageBuilder, context: &str) -> Result<(), NetlinkError> {
        self.batch(vec![request], context)
    }

    /// Sends several messages in one datagram (an nf_tables batch is one
    /// such) and waits for an acknowledgement of each; the first refusal
    /// wins. Every message must carry NLM_F_ACK, except nfnetlink's batch
    /// begin/end markers, which the kernel never acknowledges.
    pub fn batch(
        &mut self,
        requests: Vec<MessageBuilder>,
        context: &str,
    ) -> Result<(), NetlinkError> {
        let mut bytes = Vec::new();
        let mut pending = Vec::new();
        let mut sent = Vec::new();
        for r in requests {
            let seq = self.next_seq();
            let msg = r.finish(seq);
            let flags = u16::from_ne_bytes([msg[6], msg[7]]);
            if flags & message::NLM_F_ACK != 0 {
                pending.push(seq);
            }
            sent.push(seq);
            bytes.extend_from_slice(&msg);
        }
        self.send(&bytes, context)?;
        let mut first_error = None;
        // The kernel handles a send synchronously, so after the first reply
        // anything still missing is already queued or will never come.
        let mut dont_wait = false;
        while !pending.is_empty() {
            if self.receive(context, dont_wait)?.is_none() {
                break;
            }
            dont_wait = first_error.is_some();
            for msg in MessageIter::new(&self.buf) {
                let msg = msg.map_err(|source| NetlinkError::Malformed {
                    context: context.to_string(),
                    source,
                })?;
                if msg.msg_type != NLMSG_ERROR {
                    continue;
                }
                // A refusal may answer a message that asked for no ack (the
                // kernel refuses a whole batch at its BEGIN without privilege).
                if !sent.contains(&msg.seq) {
                    continue;
                }
                if let Some(pos) = pending.iter().position(|&s| s == msg.seq) {
                    pending.swap_remove(pos);
                }
                let (errno, detail) =
                    msg.error_code().map_err(|source| NetlinkError::Malformed {
                        context: context.to_string(),
                        source,
                    })?;
                if errno != 0 && first_error.is_none() {
                    first_error = Some(NetlinkError::Kernel {
                        context: context.to_string(),
                        errno,
                        detail: detail.map(str::to_string),
                    });
                    dont_wait = true;
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn set_receive_buffer(socket: &netlink_sys::Socket, option: i32, bytes: usize) -> io::Result<()> {
    let value = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: a valid socket fd and a correctly sized c_int.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_receive_timeout(socket: &netlink_sys::Socket, timeout: Duration) -> io::Result<()> {
    // SAFETY: timeval is plain data; zeroed is a valid value. Filling it by
    // field avoids naming time_t, whose width differs between targets.
    let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
    // Clamped to fit a 32-bit time_t; microseconds are below 10^6.
    tv.tv_sec = timeout.as_secs().min(i32::MAX as u64) as _;
    tv.tv_usec = timeout.subsec_micros() as _;
    // SAFETY: a valid socket fd and a correctly sized, initialised timeval.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
