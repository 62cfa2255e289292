//! MQTT 3.1.1's wire format (OASIS standard, 2014), the part a publisher
//! needs: CONNECT with a will and credentials, PUBLISH at QoS 0, SUBSCRIBE,
//! PINGREQ and DISCONNECT out; CONNACK, PUBLISH, SUBACK and PINGRESP in.
//! Written here rather than taken from a crate: see docs/BENCHMARKS.md
//! ("MQTT client"). Parsing is incremental ([`decode`] says when more bytes
//! are needed) and bounded ([`MAX_PACKET`]).

use std::fmt;

/// The largest packet read back; a broker sends us little (acks, the
/// Home Assistant birth message), so anything bigger is refused.
pub const MAX_PACKET: usize = 64 << 10;

/// The fixed headers of the packets without a body.
pub const PINGREQ: [u8; 2] = [0xc0, 0];
pub const DISCONNECT: [u8; 2] = [0xe0, 0];

/// What the broker sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// 0 accepted; 1–5 refused, see [`refusal`].
    ConnAck {
        session_present: bool,
        code: u8,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        /// Present at QoS 1 and 2.
        packet_id: Option<u16>,
    },
    SubAck {
        packet_id: u16,
        codes: Vec<u8>,
    },
    PingResp,
    /// A packet type a publisher has no use for (PUBACK, UNSUBACK, …),
    /// already skipped.
    Other {
        kind: u8,
    },
}

/// Bytes that are not MQTT 3.1.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedPacket(pub String);

impl fmt::Display for MalformedPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not MQTT 3.1.1: {}", self.0)
    }
}

impl std::error::Error for MalformedPacket {}

/// What a refused CONNACK's code means, and what to do about it.
pub fn refusal(code: u8) -> &'static str {
    match code {
        1 => "the broker does not speak MQTT 3.1.1",
        2 => "the broker refused the client id: set another option client_id",
        3 => "the broker is unavailable",
        4 | 5 => "bad username or password: check option username and option password",
        _ => "the broker refused the connection with an unknown code",
    }
}

/// One last message the broker publishes for us when the connection breaks.
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub retain: bool,
}

pub struct Connect<'a> {
    pub client_id: &'a str,
    pub keep_alive_secs: u16,
    pub will: Option<Will<'a>>,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

/// A CONNECT with a clean session.
pub fn connect(c: &Connect) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    string(&mut body, b"MQTT");
    body.push(4); // protocol level 3.1.1
    let mut flags = 0x02; // clean session
    if let Some(w) = &c.will {
        flags |= 0x04 | if w.retain { 0x20 } else { 0 };
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&c.keep_alive_secs.to_be_bytes());
    string(&mut body, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        string(&mut body, w.topic.as_bytes());
        string(&mut body, w.payload);
    }
    if let Some(u) = c.username {
        string(&mut body, u.as_bytes());
    }
    if let Some(p) = c.password {
        string(&mut body, p);
    }
    packet(0x10, &body)
}

/// A PUBLISH at QoS 0 (no packet id, nothing acknowledged).
pub fn publish(topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 2);
    string(&mut body, topic.as_bytes());
    body.extend_from_slice(payload);
    packet(0x30 | retain as u8, &body)
}

/// A SUBSCRIBE to one topic filter at QoS 0.
pub fn subscribe(packet_id: u16, filter: &str) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    string(&mut body, filter.as_bytes());
    body.push(0);
    packet(0x82, &body)
}

/// A string or binary field: two bytes of length, then the bytes. Callers
/// keep fields under 64 KiB (topics and payloads the publisher builds).
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// Fixed header (type and flags, the remaining length) and the body.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// The first packet in `buf` and how many bytes it took; None while it is
/// incomplete.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet, usize)>, MalformedPacket> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut at = 1;
    loop {
        let Some(&byte) = buf.get(at) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << (7 * (at - 1));
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return Err(MalformedPacket(
                "remaining length longer than 4 bytes".into(),
            ));
        }
    }
    if len > MAX_PACKET {
        return Err(MalformedPacket(format!(
            "a packet of {len} bytes, more than the {MAX_PACKET} accepted"
        )));
    }
    let Some(body) = buf.get(at..at + len) else {
        return Ok(None);
    };
    let kind = first >> 4;
    let flags = first & 0x0f;
    let bad = |why: &str| Err(MalformedPacket(why.into()));
    let packet = match kind {
        2 => {
            if body.len() != 2 || body[0] > 1 {
                return bad("CONNACK is 2 bytes: flags 0 or 1, then the code");
            }
            Packet::ConnAck {
                session_present: body[0] == 1,
                code: body[1],
            }
        }
        3 => {
            let qos = (flags >> 1) & 3;
            if qos == 3 {
                return bad("PUBLISH with QoS 3");
            }
            let Some((topic, rest)) = field(body) else {
                return bad("PUBLISH shorter than its topic");
            };
            let Ok(topic) = String::from_utf8(topic.to_vec()) else {
                return bad("PUBLISH topic is not UTF-8");
            };
            let (packet_id, payload) = if qos > 0 {
                if rest.len() < 2 {
                    return bad("PUBLISH at QoS 1 or 2 without a packet id");
                }
                (Some(u16::from_be_bytes([rest[0], rest[1]])), &rest[2..])
            } else {
                (None, rest)
            };
            Packet::Publish {
                topic,
                payload: payload.to_vec(),
                qos,
                retain: flags & 1 == 1,
                packet_id,
            }
        }
        9 => {
            if body.len() < 3 {
                return bad("SUBACK without a return code");
            }
            Packet::SubAck {
                packet_id: u16::from_be_bytes([body[0], body[1]]),
                codes: body[2..].to_vec(),
            }
        }
        13 => {
            if !body.is_empty() {
                return bad("PINGRESP with a body");
            }
            Packet::PingResp
        }
        0 | 15 => return bad("reserved packet type"),
        // CONNECT, SUBSCRIBE, … are client packets; PUBACK & co. are
        // skipped whole.
        1 | 8 | 10 | 12 | 14 => return bad("a client's packet from the broker"),
        kind => Packet::Other { kind },
    };
    Ok(Some((packet, at + len)))
}

/// A length-prefixed field and what follows it.
fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
    let value = bytes.get(2..2 + len)?;
    Some((value, &bytes[2 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_with_a_retained_will_and_credentials_is_laid_out_as_the_standard_says() {
        let bytes = connect(&Connect {
            client_id: "nm",
            keep_alive_secs: 60,
            will: Some(Will {
                topic: "a/s",
                payload: b"off",
                retain: true,
            }),
            username: Some("u"),
            password: Some(b"pw"),
        });
        let mut want = vec![0x10, 0];
        want.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4]);
        want.push(0x80 | 0x40 | 0x20 | 0x04 | 0x02);
        want.extend_from_slice(&[0, 60]);
        want.extend_from_slice(&[0, 2, b'n', b'm']);
        want.extend_from_slice(&[0, 3, b'a', b'/', b's', 0, 3, b'o', b'f', b'f']);
        want.extend_from_slice(&[0, 1, b'u', 0, 2, b'p', b'w']);
        want[1] = (want.len() - 2) as u8;
        assert_eq!(bytes, want);
    }

    #[test]
    fn a_long_publish_has_a_multi_byte_remaining_length() {
        let payload = vec![7u8; 200];
        let bytes = publish("t", &payload, true);
        // 2 + 1 + 200 = 203 = 0xcb: 0x4b | 0x80, then 1.
        assert_eq!(&bytes[..3], &[0x31, 0xcb, 0x01]);
        assert_eq!(&bytes[3..6], &[0, 1, b't']);
        assert_eq!(bytes.len(), 3 + 203);
    }

    #[test]
    fn packets_decode_whole_and_say_when_they_are_incomplete() {
        let bytes = [0x20, 2, 0, 5, 0xd0, 0];
        assert_eq!(
            decode(&bytes).unwrap(),
            Some((
                Packet::ConnAck {
                    session_present: false,
                    code: 5
                },
                4
            ))
        );
        assert_eq!(decode(&bytes[4..]).unwrap(), Some((Packet::PingResp, 2)));
        for cut in 0..4 {
            assert_eq!(decode(&bytes[..cut]).unwrap(), None, "{cut} bytes");
        }
        let mut incoming = vec![0x33, 0];
        incoming.extend_from_slice(&[0, 2, b'h', b'a', 0, 9]);
        incoming.extend_from_slice(b"online");
        incoming[1] = (incoming.len() - 2) as u8;
        assert_eq!(
            decode(&incoming).unwrap(),
            Some((
                Packet::Publish {
                    topic: "ha".into(),
                    payload: b"online".to_vec(),
                    qos: 1,
                    retain: true,
                    packet_id: Some(9)
                },
                incoming.len()
            ))
        );
        assert_eq!(
            decode(&[0x90, 3, 0, 1, 0]).unwrap(),
            Some((
                Packet::SubAck {
                    packet_id: 1,
                    codes: vec![0]
                },
                5
            ))
        );
    }

    #[test]
    fn what_we_write_reads_back() {
        let bytes = publish("netmeter/status", b"online", true);
        let (p, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(
            p,
            Packet::Publish {
                topic: "netmeter/status".into(),
                payload: b"online".to_vec(),
                qos: 0,
                retain: true,
                packet_id: None
            }
        );
    }

    #[test]
    fn malformed_packets_are_refused_with_a_reason() {
        for (bytes, why) in [
            (&[0x20, 0x80, 0x80, 0x80, 0x80, 1][..], "longer than 4"),
            (&[0x20, 0xff, 0xff, 0x7f][..], "more than"),
            (&[0x20, 1, 0][..], "CONNACK"),
            (&[0x36, 2, 0, 0][..], "QoS 3"),
            (&[0x30, 3, 0, 5, b'x'][..], "shorter than its topic"),
            (&[0x30, 3, 0, 1, 0xff][..], "UTF-8"),
            (&[0x32, 3, 0, 0, 1][..], "packet id"),
            (&[0xd0, 1, 0][..], "PINGRESP"),
            (&[0x00, 0][..], "reserved"),
            (&[0x10, 0][..], "client's packet"),
        ] {
            let e = decode(bytes).unwrap_err().to_string();
            assert!(e.contains(why), "{bytes:?}: {e}");
        }
    }

    #[test]
    fn a_refused_login_says_what_to_check() {
        assert!(refusal(5).contains("option username and option password"));
        assert!(refusal(2).contains("client_id"));
    }
}
