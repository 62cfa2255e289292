//! The `config mqtt` section: the broker netmeter publishes its totals to,
//! with Home Assistant discovery.
//!
//! ```text
//! config mqtt 'ha'
//!     option host '192.168.1.10'
//!     option port '1883'
//!     option username 'netmeter'
//!     option password_file '/etc/netmeter/mqtt.pass'   # or: option password '…'
//!     option topic_prefix 'netmeter'
//!     option discovery_prefix 'homeassistant'
//!     option interval '30'
//! ```

use std::path::PathBuf;
use std::time::Duration;

use super::Secret;
use super::table::{Known, apply};
use super::uci;
use super::value::{
    PATH, USERNAME, absolute, boolean, describe, host, label, last, password, port, username, whole,
};

/// What the core build says of a `config mqtt` section it keeps but does
/// not act on.
pub const NEEDS_FULL: &str = "this netmeter is the core build, which does not publish to MQTT: \
     install the netmeter-full package for it";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttConfig {
    /// The section's name, for messages and the default client id.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Read at each connect, so a changed file needs no reload.
    pub password_file: Option<PathBuf>,
    /// Where states and availability go: `<prefix>/status`, …
    pub topic_prefix: String,
    /// Where Home Assistant looks for discovery configs.
    pub discovery_prefix: String,
    /// Whether to publish discovery configs at all.
    pub discovery: bool,
    /// How often states are published.
    pub interval: Duration,
    pub client_id: String,
    /// The line of the `config mqtt` statement, for messages.
    pub line: usize,
}

impl MqttConfig {
    pub const DEFAULT_PORT: u16 = 1883;

    pub fn new(name: &str, host: &str) -> Self {
        MqttConfig {
            name: name.to_owned(),
            host: host.to_owned(),
            port: Self::DEFAULT_PORT,
            username: None,
            password: None,
            password_file: None,
            topic_prefix: "netmeter".into(),
            discovery_prefix: "homeassistant".into(),
            discovery: true,
            interval: Duration::from_secs(30),
            client_id: format!("netmeter-{name}"),
            line: 0,
        }
    }
}

/// A topic prefix: levels of letters, digits, `-` and `_`, joined by `/`;
/// no wildcards, no empty level.
fn topic_prefix(text: &str) -> Option<String> {
    let level_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 64
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (text.len() <= 128 && text.split('/').all(level_ok)).then(|| text.to_owned())
}

const TOPIC: &str =
    "a topic prefix: letters, digits, - and _, levels joined by / (no +, #, or empty level)";

const MQTT_OPTIONS: &[Known<MqttConfig>] = &[
    Known {
        name: "host",
        many: false,
        expected: "the broker's host name or IP address, such as 192.168.1.10 (no mqtt://)",
        default: "",
        set: |m, v| {
            m.host = last(v, host)?;
            Ok(())
        },
    },
    Known {
        name: "port",
        many: false,
        expected: "a port from 1 to 65535",
        default: "1883",
        set: |m, v| {
            m.port = last(v, port)?;
            Ok(())
        },
    },
    Known {
        name: "username",
        many: false,
        expected: USERNAME,
        default: "",
        set: |m, v| {
            m.username = Some(last(v, username)?);
            Ok(())
        },
    },
    Known {
        name: "password",
        many: false,
        expected: "a password",
        default: "",
        // A secret: the message never quotes the value.
        set: |m, v| {
            m.password = Some(password(v)?);
            Ok(())
        },
    },
    Known {
        name: "password_file",
        many: false,
        expected: PATH,
        default: "",
        set: |m, v| {
            m.password_file = Some(last(v, absolute)?);
            Ok(())
        },
    },
    Known {
        name: "topic_prefix",
        many: false,
        expected: TOPIC,
        default: "netmeter",
        set: |m, v| {
            m.topic_prefix = last(v, topic_prefix)?;
            Ok(())
        },
    },
    Known {
        name: "discovery_prefix",
        many: false,
        expected: TOPIC,
        default: "homeassistant",
        set: |m, v| {
            m.discovery_prefix = last(v, topic_prefix)?;
            Ok(())
        },
    },
    Known {
        name: "discovery",
        many: false,
        expected: "0 or 1",
        default: "1",
        set: |m, v| {
            m.discovery = last(v, boolean)?;
            Ok(())
        },
    },
    Known {
        name: "interval",
        many: false,
        expected: "seconds from 1 to 3600",
        default: "30",
        set: |m, v| {
            m.interval = Duration::from_secs(last(v, |s| whole(s, 1..=3600))?);
            Ok(())
        },
    },
    Known {
        name: "client_id",
        many: false,
        expected: "1 to 64 characters",
        default: "netmeter-NAME",
        set: |m, v| {
            m.client_id = last(v, label)?;
            Ok(())
        },
    },
];

/// A `config mqtt` section; None when it has problems, which are pushed.
pub(crate) fn mqtt(
    section: &uci::Section,
    problems: &mut Vec<(usize, String)>,
) -> Option<MqttConfig> {
    let before = problems.len();
    let name = section
        .name
        .as_deref()
        .and_then(topic_prefix)
        .unwrap_or_else(|| "mqtt".into());
    let mut m = MqttConfig::new(&name, "");
    m.line = section.line;
    let given = apply(&mut m, MQTT_OPTIONS, section, problems);
    let is_given = |option: &str| {
        MQTT_OPTIONS
            .iter()
            .zip(&given)
            .any(|(o, &given)| o.name == option && given)
    };
    if !is_given("host") {
        problems.push((
            section.line,
            format!(
                "{} has no option host: add the broker's address, such as option host '192.168.1.10'",
                describe(section)
            ),
        ));
    }
    if is_given("password") && is_given("password_file") {
        problems.push((
            section.line,
            format!(
                "{} has both option password and option password_file: keep one",
                describe(section)
            ),
        ));
    }
    if m.topic_prefix == m.discovery_prefix {
        problems.push((
            section.line,
            format!(
                "{}: option topic_prefix and option discovery_prefix are both '{}': give netmeter \
                 its own prefix",
                describe(section),
                m.topic_prefix
            ),
        ));
    }
    (problems.len() == before).then_some(m)
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{error, parse};

    #[test]
    fn a_broker_with_defaults_and_every_option() {
        let c = parse("config mqtt 'ha'\n\toption host '192.168.1.10'\n");
        let m = c.mqtt.unwrap();
        assert_eq!(
            (m.host.as_str(), m.port, m.topic_prefix.as_str()),
            ("192.168.1.10", 1883, "netmeter")
        );
        assert_eq!(m.discovery_prefix, "homeassistant");
        assert_eq!(m.client_id, "netmeter-ha");
        assert_eq!(m.interval.as_secs(), 30);
        assert!(m.discovery);

        let c = parse(
            "config mqtt 'ha'\n\toption host 'broker.lan'\n\toption port '8883'\n\
             \toption username 'nm'\n\toption password 'secret-pass'\n\
             \toption topic_prefix 'home/router'\n\toption discovery_prefix 'hass'\n\
             \toption discovery '0'\n\toption interval '10'\n\toption client_id 'gw'\n",
        );
        let m = c.mqtt.unwrap();
        assert_eq!((m.port, m.username.as_deref()), (8883, Some("nm")));
        assert_eq!(m.password.unwrap().expose(), "secret-pass");
        assert_eq!(
            (m.topic_prefix.as_str(), m.discovery_prefix.as_str()),
            ("home/router", "hass")
        );
        assert!(!m.discovery);
        assert_eq!((m.interval.as_secs(), m.client_id.as_str()), (10, "gw"));
    }

    #[test]
    fn bad_sections_say_what_to_write() {
        for (text, want) in [
            ("config mqtt 'ha'\n", "no option host"),
            ("config mqtt 'ha'\n\toption host 'mqtt://x'\n", "no mqtt://"),
            (
                "config mqtt 'ha'\n\toption host 'x'\n\toption topic_prefix 'a/#'\n",
                "no +, #",
            ),
            (
                "config mqtt 'ha'\n\toption host 'x'\n\toption topic_prefix 'a//b'\n",
                "empty level",
            ),
            (
                "config mqtt 'ha'\n\toption host 'x'\n\toption interval '0'\n",
                "1 to 3600",
            ),
            (
                "config mqtt 'ha'\n\toption host 'x'\n\toption password 'a'\n\toption password_file '/p'\n",
                "keep one",
            ),
            (
                "config mqtt 'ha'\n\toption host 'x'\n\toption topic_prefix 'homeassistant'\n",
                "its own prefix",
            ),
            (
                "config mqtt 'a'\n\toption host 'x'\nconfig mqtt 'b'\n\toption host 'y'\n",
                "second 'config mqtt'",
            ),
            (
                "config mqtt 'ha'\n\toption host 'x'\n\toption usrname 'nm'\n",
                "did you mean 'username'",
            ),
        ] {
            let e = error(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
