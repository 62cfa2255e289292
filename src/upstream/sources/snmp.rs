//! `snmp`: SNMP v2c walks of IF-MIB, for prosumer routers and switches.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use super::ber::{self, Message, Value};
use super::{Counters, Deadline, Reading, ScrapeError, Source};
use crate::account::CounterWidth;
use crate::config::Secret;
use crate::upstream::UpstreamConfig;

const IF_NAME: [u32; 11] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1];
const IF_DESCR: [u32; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 2];
const IF_HC_IN: [u32; 11] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6];
const IF_HC_OUT: [u32; 11] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10];
const IF_IN: [u32; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 10];
const IF_OUT: [u32; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 16];
/// sysUpTime: hundredths of a second since the agent (re)started.
const SYS_UP_TIME: [u32; 8] = [1, 3, 6, 1, 2, 1, 1, 3];

/// Rows asked per GETBULK.
const REPETITIONS: i64 = 20;
/// Interfaces read at most.
const MAX_ROWS: usize = 1024;
/// Datagrams an agent's answers may take.
const MAX_DATAGRAM: usize = 65_507;

/// One column of a table: the row index (the OID's last part) and value.
type Column = Vec<(u32, Value)>;

/// The `snmp` source.
pub struct Snmp {
    host: String,
    port: u16,
    community: Secret,
    device: Option<String>,
    interfaces: Vec<String>,
    socket: Option<UdpSocket>,
    request_id: i32,
}

impl Snmp {
    pub fn new(config: &UpstreamConfig) -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        Snmp {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            community: config
                .community
                .clone()
                .unwrap_or_else(|| Secret::password("public").expect("a valid default")),
            device: config.device.clone(),
            interfaces: config.interfaces.clone(),
            socket: None,
            request_id: (seed & 0x3fff_ffff) as i32,
        }
    }

    fn socket(&mut self, deadline: Deadline) -> Result<&UdpSocket, ScrapeError> {
        if self.socket.is_none() {
            let addrs = crate::net::resolve(&self.host, self.port, deadline)?;
            let addr: SocketAddr = *addrs
                .first()
                .ok_or_else(|| ScrapeError::Dns(format!("'{}' has no address", self.host)))?;
            let local: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let connect = |e: std::io::Error| ScrapeError::Connect(format!("{addr}: {e}"));
            let socket = UdpSocket::bind(local).map_err(connect)?;
            socket.connect(addr).map_err(connect)?;
            self.socket = Some(socket);
        }
        Ok(self.socket.as_ref().expect("just set"))
    }

    /// One GETBULK for the rows after `after` in `column`; retried once.
    fn bulk(&mut self, after: &[u32], deadline: Deadline) -> Result<Message, ScrapeError> {
        self.request_id = self.request_id.wrapping_add(1) & 0x7fff_ffff;
        let request = ber::encode(&Message {
            community: self.community.expose().as_bytes().to_vec(),
            pdu: ber::GET_BULK,
            request_id: self.request_id,
            error_status: 0,
            error_index: REPETITIONS,
            bindings: vec![(after.to_vec(), Value::Null)],
        });
        let (id, host, port) = (self.request_id, self.host.clone(), self.port);
        let socket = self.socket(deadline)?;
        let silent = || {
            ScrapeError::Timeout(format!(
                "no SNMP answer from {host}:{port}: check option community and that SNMP v2c \
                 is enabled on the router"
            ))
        };
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        for attempt in 0..2 {
            let left = deadline.remaining("read").map_err(|_| silent())?;
            // The first try gets half the time left, the retry the rest.
            let wait = if attempt == 0 { left / 2 } else { left };
            let until = std::time::Instant::now() + wait.max(Duration::from_millis(1));
            socket.send(&request).map_err(|e| refused(&host, port, e))?;
            loop {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                socket
                    .set_read_timeout(Some(left))
                    .map_err(|e| ScrapeError::Connect(e.to_string()))?;
                let n = match socket.recv(&mut buffer) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    Err(e) => return Err(refused(&host, port, e)),
                };
                // Stray or late datagrams (another request's) are skipped.
                let Ok(answer) = ber::decode(&buffer[..n]) else {
                    continue;
                };
                if answer.request_id != id || answer.pdu != ber::GET_RESPONSE {
                    continue;
                }
                if answer.error_status != 0 {
                    return Err(ScrapeError::Protocol(format!(
                        "the SNMP agent answered {}",
                        error_name(answer.error_status)
                    )));
                }
                return Ok(answer);
            }
        }
        Err(silent())
    }

    /// Every row of `column`, by GETBULK until the walk leaves it.
    fn walk(&mut self, column: &[u32], deadline: Deadline) -> Result<Column, ScrapeError> {
        let mut rows = Vec::new();
        let mut after = column.to_vec();
        loop {
            let answer = self.bulk(&after, deadline)?;
            if answer.bindings.is_empty() {
                return Ok(rows);
            }
            for (name, value) in answer.bindings {
                let inside = name.len() == column.len() + 1 && name.starts_with(column);
                if !inside || matches!(value, Value::Exception(_)) {
                    return Ok(rows);
                }
                if name <= after {
                    return Err(ScrapeError::Protocol(
                        "the SNMP agent's walk went backwards".into(),
                    ));
                }
                rows.push((name[column.len()], value));
                after = name;
                if rows.len() == MAX_ROWS {
                    return Ok(rows);
                }
            }
        }
    }
}

fn refused(host: &str, port: u16, e: std::io::Error) -> ScrapeError {
    ScrapeError::Connect(format!(
        "{host}:{port}: {e}: is SNMP enabled on the router, and the port right?"
    ))
}

/// RFC 3416's error-status, named where a router admin can act on it.
fn error_name(status: i64) -> String {
    let name = match status {
        1 => " (tooBig)",
        2 => " (noSuchName)",
        5 => " (genErr)",
        6 => " (noAccess: check the community's view)",
        16 => " (authorizationError: check option community)",
        _ => "",
    };
    format!("error-status {status}{name}")
}

/// Seconds from the walked sysUpTime column (`sysUpTime.0`, TimeTicks).
pub fn uptime(column: &Column) -> Option<u64> {
    match column.first() {
        Some((0, Value::Unsigned(ber::TIME_TICKS, ticks))) => Some(ticks / 100),
        _ => None,
    }
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Unsigned(_, n) | Value::Counter64(n) => Some(*n),
        Value::Integer(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// The reading from the walked columns: names (ifName, else ifDescr) and
/// octets (64-bit columns, else 32-bit).
pub fn reading(
    names: &Column,
    octets: (&Column, &Column),
    width: CounterWidth,
    device: Option<&str>,
    wanted: &[String],
) -> Result<Reading, ScrapeError> {
    let mut reading = Reading::default();
    for (index, name) in names {
        let Value::Octets(bytes) = name else {
            continue;
        };
        let name = String::from_utf8_lossy(bytes).trim().to_owned();
        let value = |column: &Column| {
            column
                .iter()
                .find(|(i, _)| i == index)
                .and_then(|(_, v)| number(v))
        };
        let (Some(rx), Some(tx)) = (value(octets.0), value(octets.1)) else {
            continue;
        };
        let counters = Counters {
            rx_bytes: rx,
            tx_bytes: tx,
            width,
        };
        if Some(name.as_str()) == device {
            reading.wan = Some(counters);
        } else if match wanted.is_empty() {
            true => name != "lo",
            false => wanted.contains(&name),
        } && reading.interfaces.len()
            < crate::upstream::account::MAX_INTERFACES_PER_SOURCE
        {
            reading.interfaces.push((name, counters));
        }
    }
    if let Some(device) = device
        && reading.wan.is_none()
    {
        let known: Vec<String> = names
            .iter()
            .filter_map(|(_, v)| match v {
                Value::Octets(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect();
        return Err(ScrapeError::Parse(format!(
            "option device '{device}' is not among the agent's interfaces ({})",
            known.join(", ")
        )));
    }
    Ok(reading)
}

impl Source for Snmp {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let mut names = self.walk(&IF_NAME, deadline)?;
        if names.is_empty() {
            names = self.walk(&IF_DESCR, deadline)?;
        }
        if names.is_empty() {
            return Err(ScrapeError::Protocol(
                "the SNMP agent lists no interfaces (ifName, ifDescr): check its view".into(),
            ));
        }
        let hc_in = self.walk(&IF_HC_IN, deadline)?;
        let (rx, tx, width) = if hc_in.is_empty() {
            (
                self.walk(&IF_IN, deadline)?,
                self.walk(&IF_OUT, deadline)?,
                CounterWidth::Bits32,
            )
        } else {
            (
                hc_in,
                self.walk(&IF_HC_OUT, deadline)?,
                CounterWidth::Bits64,
            )
        };
        let mut reading = reading(
            &names,
            (&rx, &tx),
            width,
            self.device.as_deref(),
            &self.interfaces,
        )?;
        // An agent whose view leaves out the system group gives none:
        // reboots are then told by the counters.
        reading.uptime_secs = self
            .walk(&SYS_UP_TIME, deadline)
            .ok()
            .and_then(|c| uptime(&c));
        Ok(reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_up_time_is_hundredths_of_a_second() {
        let column = vec![(0, Value::Unsigned(ber::TIME_TICKS, 8_640_055))];
        assert_eq!(uptime(&column), Some(86_400));
        // Another type, another row or none: no uptime rather than a wrong one.
        assert_eq!(uptime(&vec![(0, Value::Unsigned(ber::GAUGE32, 5))]), None);
        assert_eq!(
            uptime(&vec![(1, Value::Unsigned(ber::TIME_TICKS, 5))]),
            None
        );
        assert_eq!(uptime(&Vec::new()), None);
    }
}
