//! Netlink attributes (`struct nlattr`): a checked iterator for reading and
//! a builder that writes whole messages with nested attributes.

use super::{Malformed, align4, message::HEADER_LEN};

pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// One attribute: its type (flags stripped) and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    pub kind: u16,
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    fn fixed<const N: usize>(&self, what: &str) -> Result<[u8; N], Malformed> {
        self.payload
            .get(..N)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                Malformed(format!(
                    "attribute {} holds {} bytes, {what} needs {N}",
                    self.kind,
                    self.payload.len()
                ))
            })
    }
    pub fn u8(&self) -> Result<u8, Malformed> {
        Ok(self.fixed::<1>("u8")?[0])
    }
    pub fn u32(&self) -> Result<u32, Malformed> {
        Ok(u32::from_ne_bytes(self.fixed("u32")?))
    }
    pub fn u64(&self) -> Result<u64, Malformed> {
        Ok(u64::from_ne_bytes(self.fixed("u64")?))
    }
    pub fn be32(&self) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(self.fixed("be32")?))
    }
    pub fn be64(&self) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(self.fixed("be64")?))
    }
    /// A NUL-terminated (or unterminated) string.
    pub fn str(&self) -> Result<&'a str, Malformed> {
        let bytes = match self.payload.iter().position(|&b| b == 0) {
            Some(end) => &self.payload[..end],
            None => self.payload,
        };
        std::str::from_utf8(bytes)
            .map_err(|_| Malformed(format!("attribute {} is not UTF-8", self.kind)))
    }
    pub fn nested(&self) -> AttrIter<'a> {
        AttrIter::new(self.payload)
    }
}

/// Iterates attributes; yields one error and stops at the first bad one.
pub struct AttrIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> AttrIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        AttrIter {
            rest: buf,
            failed: false,
        }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<Attr<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        let len = match r.get(0..2) {
            Some(b) => u16::from_ne_bytes([b[0], b[1]]) as usize,
            None => 0,
        };
        if r.len() < 4 || len < 4 || len > r.len() {
            self.failed = true;
            return Some(Err(Malformed(format!(
                "attribute length {len} with {} bytes left",
                r.len()
            ))));
        }
        let kind = u16::from_ne_bytes([r[2], r[3]]) & NLA_TYPE_MASK;
        self.rest = r.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(Attr {
            kind,
            payload: &r[4..len],
        }))
    }
}

/// Writes one netlink message: header, fixed family header, attributes.
pub struct MessageBuilder {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl MessageBuilder {
    pub fn new(msg_type: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&[0; 8]);
        MessageBuilder {
            buf,
            nests: Vec::new(),
        }
    }

    /// Raw bytes (a family header such as `ifinfomsg`), padded to 4.
    pub fn header(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = 4 + payload.len();
        assert!(len <= u16::MAX as usize, "netlink attribute too long");
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    pub fn attr_u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.attr(kind, &[v])
    }
    pub fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_ne_bytes())
    }
    pub fn attr_be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_be_bytes())
    }
    pub fn attr_be64(&mut self, kind: u16, v: u64) -> &mut Self {
        self.attr(kind, &v.to_be_bytes())
    }
    /// A string with its terminating NUL, as the kernel expects.
    pub fn attr_str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        self.attr(kind, &b)
    }

    pub fn nest_start(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn nest_end(&mut self) -> &mut Self {
        let start = self.nests.pop().expect("nest_end without nest_start");
        let len = self.buf.len() - start;
        assert!(len <= u16::MAX as usize, "netlink nest too long");
        self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        self
    }

    /// The finished message with its length and sequence number filled in.
    pub fn finish(mut self, seq: u32) -> Vec<u8> {
        assert!(self.nests.is_empty(), "unclosed netlink nest");
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        debug_assert!(self.buf.len() >= HEADER_LEN);
        self.buf
    }

    fn pad(&mut self) {
        let padded = align4(self.buf.len());
        self.buf.resize(padded, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::MessageIter;

    #[test]
    fn nested_attributes_round_trip_through_builder_and_iterator() {
        let mut m = MessageBuilder::new(16, 0);
        m.header(&[1, 2, 3]); // padded to 4
        m.attr_str(3, "veth0");
        m.nest_start(18);
        m.attr_str(1, "veth");
        m.attr_be32(2, 0x0102_0304);
        m.nest_end();
        let buf = m.finish(1);
        let msg = MessageIter::new(&buf).next().unwrap().unwrap();
        assert_eq!(&msg.payload[..4], &[1, 2, 3, 0]);
        let attrs: Vec<_> = AttrIter::new(&msg.payload[4..])
            .map(Result::unwrap)
            .collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].str().unwrap(), "veth0");
        assert_eq!(attrs[1].kind, 18, "nested flag is stripped from the type");
        let inner: Vec<_> = attrs[1].nested().map(Result::unwrap).collect();
        assert_eq!(inner[0].str().unwrap(), "veth");
        assert_eq!(inner[1].be32().unwrap(), 0x0102_0304);
    }

    #[test]
    fn short_or_overlong_attributes_are_malformed() {
        assert!(AttrIter::new(&[8, 0, 1]).next().unwrap().is_err());
        assert!(
            AttrIter::new(&[9, 0, 1, 0, 0, 0, 0, 0])
                .next()
                .unwrap()
                .is_err()
        );
        assert!(AttrIter::new(&[2, 0, 1, 0]).next().unwrap().is_err());
        let a = Attr {
            kind: 1,
            payload: &[1, 2],
        };
        assert!(a.u32().is_err());
        assert!(a.u64().is_err());
    }
}
