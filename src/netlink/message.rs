//! The netlink message header (`struct nlmsghdr`) and iteration over a
//! buffer of messages. Netlink uses the host's byte order for its headers.

use super::{Malformed, align4};

pub const HEADER_LEN: usize = 16;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;

/// One message: its header fields and the bytes after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub msg_type: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// For NLMSG_ERROR: the errno (positive; 0 is an acknowledgement) and
    /// the kernel's extended-ack text when it sent one.
    pub fn error_code(&self) -> Result<(i32, Option<&'a str>), Malformed> {
        let code = self
            .payload
            .get(..4)
            .ok_or_else(|| Malformed("NLMSG_ERROR shorter than its errno".into()))?;
        // The kernel sends a negative errno (or 0); anything else is not its reply.
        let errno = i32::from_ne_bytes(code.try_into().unwrap())
            .checked_neg()
            .filter(|e| *e >= 0)
            .ok_or_else(|| Malformed("NLMSG_ERROR with a positive or out-of-range errno".into()))?;
        // After the errno comes the offending request's header, then (with
        // NETLINK_EXT_ACK) attributes; NLMSGERR_ATTR_MSG = 1 is the text.
        let mut text = None;
        if self.flags & 0x100 != 0 || self.flags & 0x200 != 0 {
            // NLM_F_CAPPED (0x100): only the request header was echoed.
            // NLM_F_ACK_TLVS (0x200): extended-ack attributes follow.
            let echoed = if self.flags & 0x100 != 0 {
                HEADER_LEN
            } else {
                self.payload
                    .get(4..8)
                    .map(|l| u32::from_ne_bytes(l.try_into().unwrap()) as usize)
                    .unwrap_or(HEADER_LEN)
            };
            if self.flags & 0x200 != 0
                && let Some(tlvs) = self.payload.get(4 + align4(echoed)..)
            {
                for attr in super::AttrIter::new(tlvs).flatten() {
                    if attr.kind == 1 {
                        text = attr.str().ok();
                    }
                }
            }
        }
        Ok((errno, text))
    }
}

/// Iterates the messages in one datagram; stops at the first malformed one.
pub struct MessageIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> MessageIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        MessageIter {
            rest: buf,
            failed: false,
        }
    }
}

impl<'a> Iterator for MessageIter<'a> {
    type Item = Result<Message<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < HEADER_LEN {
            self.failed = true;
            return Some(Err(Malformed(format!(
                "{} trailing bytes, shorter than a message header",
                self.rest.len()
            ))));
        }
        let h = self.rest;
        let len = u32::from_ne_bytes(h[0..4].try_into().unwrap()) as usize;
        if len < HEADER_LEN || len > h.len() {
            self.failed = true;
            return Some(Err(Malformed(format!(
                "message length {len} outside 16..={}",
                h.len()
            ))));
        }
        let msg = Message {
            msg_type: u16::from_ne_bytes(h[4..6].try_into().unwrap()),
            flags: u16::from_ne_bytes(h[6..8].try_into().unwrap()),
            seq: u32::from_ne_bytes(h[8..12].try_into().unwrap()),
            pid: u32::from_ne_bytes(h[12..16].try_into().unwrap()),
            payload: &h[HEADER_LEN..len],
        };
        self.rest = h.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::MessageBuilder;

    #[test]
    fn built_messages_iterate_back_with_their_fields() {
        let mut a = MessageBuilder::new(18, NLM_F_REQUEST | NLM_F_DUMP);
        a.header(&[0u8; 16]);
        let mut b = MessageBuilder::new(NLMSG_DONE, NLM_F_MULTI);
        b.header(&0u32.to_ne_bytes());
        let mut buf = a.finish(7);
        buf.extend(b.finish(8));
        let msgs: Vec<_> = MessageIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0].msg_type, msgs[0].seq, msgs[0].payload.len()),
            (18, 7, 16)
        );
        assert_eq!((msgs[1].msg_type, msgs[1].flags), (NLMSG_DONE, NLM_F_MULTI));
    }

    #[test]
    fn a_length_beyond_the_buffer_is_malformed_not_a_panic() {
        let mut buf = MessageBuilder::new(16, 0).finish(1);
        buf[0] = 200;
        let first = MessageIter::new(&buf).next().unwrap();
        assert!(first.is_err());
        assert!(MessageIter::new(&buf[..10]).next().unwrap().is_err());
    }

    #[test]
    fn an_errno_of_i32_min_or_a_positive_one_is_malformed_not_a_panic() {
        for errno in [i32::MIN, 5] {
            let mut m = MessageBuilder::new(NLMSG_ERROR, 0);
            m.header(&errno.to_ne_bytes());
            let buf = m.finish(1);
            let msg = MessageIter::new(&buf).next().unwrap().unwrap();
            assert!(msg.error_code().is_err());
        }
    }

    #[test]
    fn an_error_message_yields_errno_and_extended_ack_text() {
        // NLMSG_ERROR, flags NLM_F_CAPPED|NLM_F_ACK_TLVS, errno -17, echoed
        // header, then NLMSGERR_ATTR_MSG "File exists".
        let mut m = MessageBuilder::new(NLMSG_ERROR, 0x300);
        let mut payload = (-17i32).to_ne_bytes().to_vec();
        payload.extend(MessageBuilder::new(16, 0).finish(3));
        m.header(&payload);
        m.attr_str(1, "File exists");
        let buf = m.finish(3);
        let msg = MessageIter::new(&buf).next().unwrap().unwrap();
        assert_eq!(msg.error_code().unwrap(), (17, Some("File exists")));
    }
}
