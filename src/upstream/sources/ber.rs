//! The subset of BER (X.690) that SNMP v2c messages use, both ways. Why
//! not a crate: docs/BENCHMARKS.md, "SNMP for upstream routers".

use super::ScrapeError;

pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;
pub const IP_ADDRESS: u8 = 0x40;
pub const COUNTER32: u8 = 0x41;
pub const GAUGE32: u8 = 0x42;
pub const TIME_TICKS: u8 = 0x43;
pub const COUNTER64: u8 = 0x46;
pub const NO_SUCH_OBJECT: u8 = 0x80;
pub const NO_SUCH_INSTANCE: u8 = 0x81;
pub const END_OF_MIB_VIEW: u8 = 0x82;
pub const GET_NEXT: u8 = 0xa1;
pub const GET_RESPONSE: u8 = 0xa2;
pub const GET_BULK: u8 = 0xa5;

/// Variable bindings one message may carry; an agent sends at most
/// max-repetitions × columns.
const MAX_VARBINDS: usize = 4096;
/// Sub-identifiers in one OID (RFC 2578 allows 128).
const MAX_OID_LEN: usize = 128;

/// A value in a variable binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    Octets(Vec<u8>),
    Null,
    Oid(Vec<u32>),
    /// Counter32, Gauge32, TimeTicks and IpAddress as their number; the
    /// tag says which.
    Unsigned(u8, u64),
    Counter64(u64),
    /// noSuchObject, noSuchInstance, endOfMibView.
    Exception(u8),
}

/// A decoded response PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub community: Vec<u8>,
    pub pdu: u8,
    pub request_id: i32,
    /// For GETBULK requests: non-repeaters; in responses: error-status.
    pub error_status: i64,
    /// For GETBULK: max-repetitions; in responses: error-index.
    pub error_index: i64,
    pub bindings: Vec<(Vec<u32>, Value)>,
}

fn length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    length(out, content.len());
    out.extend_from_slice(content);
}

/// Two's complement, shortest form.
fn integer(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// Unsigned, with a leading zero when the top bit is set.
fn unsigned(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    let mut out = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&bytes[skip..]);
    out
}

fn oid(parts: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, rest) = match parts {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        [a] => (a * 40, &[][..]),
        [] => (0, &[][..]),
    };
    for &n in std::iter::once(&first).chain(rest) {
        let mut chunk = [0u8; 5];
        let mut i = 5;
        let mut v = n;
        loop {
            i -= 1;
            chunk[i] = (v & 0x7f) as u8 | if i < 4 { 0x80 } else { 0 };
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        out.extend_from_slice(&chunk[i..]);
    }
    out
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Integer(n) => tlv(out, INTEGER, &integer(*n)),
        Value::Octets(b) => tlv(out, OCTET_STRING, b),
        Value::Null => tlv(out, NULL, &[]),
        Value::Oid(o) => tlv(out, OID, &oid(o)),
        Value::Unsigned(IP_ADDRESS, n) => tlv(out, IP_ADDRESS, &(*n as u32).to_be_bytes()),
        Value::Unsigned(tag, n) => tlv(out, *tag, &unsigned(*n)),
        Value::Counter64(n) => tlv(out, COUNTER64, &unsigned(*n)),
        Value::Exception(tag) => tlv(out, *tag, &[]),
    }
}

/// A whole v2c message.
pub fn encode(m: &Message) -> Vec<u8> {
    let mut bindings = Vec::new();
    for (name, v) in &m.bindings {
        let mut binding = Vec::new();
        tlv(&mut binding, OID, &oid(name));
        value(&mut binding, v);
        tlv(&mut bindings, SEQUENCE, &binding);
    }
    let mut pdu = Vec::new();
    tlv(&mut pdu, INTEGER, &integer(m.request_id.into()));
    tlv(&mut pdu, INTEGER, &integer(m.error_status));
    tlv(&mut pdu, INTEGER, &integer(m.error_index));
    tlv(&mut pdu, SEQUENCE, &bindings);
    let mut message = Vec::new();
    tlv(&mut message, INTEGER, &[1]); // version-2c
    tlv(&mut message, OCTET_STRING, &m.community);
    tlv(&mut message, m.pdu, &pdu);
    let mut out = Vec::with_capacity(message.len() + 4);
    tlv(&mut out, SEQUENCE, &message);
    out
}

/// A reader over one level of TLVs.
struct Reader<'a>(&'a [u8]);

fn bad(what: &str) -> ScrapeError {
    ScrapeError::Parse(format!("malformed SNMP message: {what}"))
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<(u8, &'a [u8]), ScrapeError> {
        let (&tag, rest) = self.0.split_first().ok_or_else(|| bad("cut short"))?;
        let (&first, mut rest) = rest.split_first().ok_or_else(|| bad("cut short"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad("a length of an unsupported form"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(bad("a length beyond the message"));
        }
        let (content, rest) = rest.split_at(len);
        self.0 = rest;
        Ok((tag, content))
    }

    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], ScrapeError> {
        match self.next()? {
            (t, content) if t == tag => Ok(content),
            _ => Err(bad(what)),
        }
    }
}

fn read_integer(bytes: &[u8]) -> Result<i64, ScrapeError> {
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(bad("an integer of an unsupported size"));
    }
    let negative = bytes[0] & 0x80 != 0;
    Ok(bytes
        .iter()
        .fold(if negative { -1i64 } else { 0 }, |acc, &b| {
            acc << 8 | i64::from(b)
        }))
}

fn read_unsigned(bytes: &[u8]) -> Result<u64, ScrapeError> {
    let bytes = match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        b => b,
    };
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(bad("an unsigned number of an unsupported size"));
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

fn read_oid(bytes: &[u8]) -> Result<Vec<u32>, ScrapeError> {
    let mut parts = Vec::new();
    let mut n: u32 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        n = n
            .checked_mul(128)
            .map(|v| v | u32::from(b & 0x7f))
            .ok_or_else(|| bad("an OID part beyond 32 bits"))?;
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = n.min(80) / 40;
                parts.push(first);
                parts.push(n - first * 40);
            } else {
                parts.push(n);
            }
            n = 0;
            if parts.len() > MAX_OID_LEN {
                return Err(bad("an OID too long"));
            }
        } else if i + 1 == bytes.len() {
            return Err(bad("an OID cut short"));
        }
    }
    if parts.is_empty() {
        return Err(bad("an empty OID"));
    }
    Ok(parts)
}

fn read_value(tag: u8, content: &[u8]) -> Result<Value, ScrapeError> {
    Ok(match tag {
        INTEGER => Value::Integer(read_integer(content)?),
        OCTET_STRING => Value::Octets(content.to_vec()),
        NULL => Value::Null,
        OID => Value::Oid(read_oid(content)?),
        IP_ADDRESS if content.len() == 4 => Value::Unsigned(tag, read_unsigned(content)?),
        COUNTER32 | GAUGE32 | TIME_TICKS if content.len() <= 5 => {
            let n = read_unsigned(content)?;
            if n > u64::from(u32::MAX) {
                return Err(bad("a 32-bit value beyond 32 bits"));
            }
            Value::Unsigned(tag, n)
        }
        COUNTER64 if content.len() <= 9 => Value::Counter64(read_unsigned(content)?),
        NO_SUCH_OBJECT | NO_SUCH_INSTANCE | END_OF_MIB_VIEW => Value::Exception(tag),
        _ => return Err(bad("a value of an unknown type")),
    })
}

/// A whole v2c message: never panics, allocates no more than the input.
pub fn decode(bytes: &[u8]) -> Result<Message, ScrapeError> {
    let mut outer = Reader(bytes);
    let mut message = Reader(outer.expect(SEQUENCE, "not a SEQUENCE")?);
    if read_integer(message.expect(INTEGER, "no version")?)? != 1 {
        return Err(bad("not SNMP v2c"));
    }
    let community = message.expect(OCTET_STRING, "no community")?.to_vec();
    let (pdu, content) = message.next()?;
    let mut fields = Reader(content);
    let request_id = read_integer(fields.expect(INTEGER, "no request id")?)?;
    let error_status = read_integer(fields.expect(INTEGER, "no error status")?)?;
    let error_index = read_integer(fields.expect(INTEGER, "no error index")?)?;
    let mut list = Reader(fields.expect(SEQUENCE, "no variable bindings")?);
    let mut bindings = Vec::new();
    while !list.0.is_empty() {
        if bindings.len() == MAX_VARBINDS {
            return Err(bad("too many variable bindings"));
        }
        let mut binding = Reader(list.expect(SEQUENCE, "a binding is not a SEQUENCE")?);
        let name = read_oid(binding.expect(OID, "a binding without a name")?)?;
        let (tag, content) = binding.next()?;
        bindings.push((name, read_value(tag, content)?));
    }
    Ok(Message {
        community,
        pdu,
        request_id: i32::try_from(request_id).map_err(|_| bad("a request id beyond 32 bits"))?,
        error_status,
        error_index,
        bindings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GetResponse for ifHCInOctets.2 = 1234567890123 (Counter64), as
    /// X.690 encodes it, written out by hand.
    const RESPONSE: &[u8] = &[
        0x30, 0x30, // message
        0x02, 0x01, 0x01, // version 2c
        0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', // community
        0xa2, 0x23, // GetResponse
        0x02, 0x02, 0x30, 0x39, // request id 12345
        0x02, 0x01, 0x00, // no error
        0x02, 0x01, 0x00, // index 0
        0x30, 0x17, // bindings
        0x30, 0x15, // one binding
        0x06, 0x0b, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x1f, 0x01, 0x01, 0x01, 0x06, 0x02, 0x46, 0x06,
        0x01, 0x1f, 0x71, 0xfb, 0x04, 0xcb,
    ];

    #[test]
    fn a_response_written_by_hand_decodes_and_encodes_back() {
        let m = decode(RESPONSE).unwrap();
        assert_eq!(
            (m.pdu, m.request_id, m.error_status),
            (GET_RESPONSE, 12345, 0)
        );
        assert_eq!(m.community, b"public");
        assert_eq!(m.bindings[0].0, [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 2]);
        assert_eq!(m.bindings[0].1, Value::Counter64(1_234_567_890_123));
        assert_eq!(encode(&m), RESPONSE);
        // A Counter64 with its top bit set carries a leading zero byte.
        let mut big = m.clone();
        big.bindings[0].1 = Value::Counter64(1 << 63);
        let bytes = encode(&big);
        assert!(bytes.ends_with(&[0x46, 0x09, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(decode(&bytes).unwrap(), big);
    }

    #[test]
    fn round_trips_of_every_value_type_and_long_lengths() {
        let m = Message {
            community: b"c".repeat(300),
            pdu: GET_RESPONSE,
            request_id: -7,
            error_status: 0,
            error_index: 0,
            bindings: vec![
                (
                    vec![1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1],
                    Value::Unsigned(COUNTER32, u64::from(u32::MAX)),
                ),
                (
                    vec![1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10, 1],
                    Value::Counter64(u64::MAX),
                ),
                (
                    vec![1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, 1],
                    Value::Octets(b"eth0".to_vec()),
                ),
                (vec![2, 999, 268_435_456, 0], Value::Integer(i64::MIN)),
                (vec![1, 3], Value::Integer(-129)),
                (vec![1, 3], Value::Unsigned(IP_ADDRESS, 0xc0a8_0101)),
                (vec![1, 3], Value::Oid(vec![1, 3, 6, 1, 4, 1, 2021])),
                (vec![1, 3], Value::Null),
                (vec![1, 3], Value::Exception(END_OF_MIB_VIEW)),
            ],
        };
        assert_eq!(decode(&encode(&m)).unwrap(), m);
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_refused_or_read_without_panic() {
        let bytes = RESPONSE.to_vec();
        for end in 0..bytes.len() {
            assert!(decode(&bytes[..end]).is_err(), "cut at {end}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let _ = decode(&b);
            }
        }
        assert!(decode(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(
            decode(&[0x30, 0x80]).is_err(),
            "indefinite lengths are not SNMP"
        );
    }
}
