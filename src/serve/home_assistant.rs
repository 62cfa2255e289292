//! What netmeter publishes over MQTT, topic by topic: availability, the
//! interfaces' and devices' states, and Home Assistant's MQTT discovery
//! configs (one HA device per LAN device, one for the router with its WAN
//! interfaces). Pure: the publisher (`serve::mqtt`) sends what this builds.
//!
//! Topics, with `P` the topic prefix and `D` the discovery prefix:
//! `P/status` (`online`/`offline`, retained; the will), `P/interface/NAME`
//! and `P/device/MAC` (JSON states, retained), `P/quota/NAME/alert` (not
//! retained), and `D/sensor/netmeter_ID/KEY/config` (retained; an empty
//! payload removes the entity when its device is forgotten).

use super::api::{DeviceView, InterfaceView};
use serde::Serialize;

/// One message to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Message {
    fn retained(topic: String, payload: Vec<u8>) -> Self {
        Message {
            topic,
            payload,
            retain: true,
        }
    }
}

/// The prefixes and names every message is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub prefix: String,
    pub discovery: String,
}

/// The four sensors of a device or interface: (key in the state, name,
/// unit, device class, state class).
const SENSORS: [(&str, &str, &str, &str, &str); 4] = [
    ("rx_bytes", "Download", "B", "data_size", "total_increasing"),
    ("tx_bytes", "Upload", "B", "data_size", "total_increasing"),
    (
        "rx_rate",
        "Download rate",
        "B/s",
        "data_rate",
        "measurement",
    ),
    ("tx_rate", "Upload rate", "B/s", "data_rate", "measurement"),
];

/// A MAC as a topic level and id part: `aabbccddeeff`.
fn mac_id(mac: &str) -> String {
    mac.chars().filter(|c| *c != ':').collect()
}

/// An interface name as a topic level: `/`, `+` and `#` would split or
/// match topics, so they become `_` (names rarely have them).
fn level(name: &str) -> String {
    name.chars()
        .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
        .collect()
}

impl Topics {
    pub fn availability(&self) -> String {
        format!("{}/status", self.prefix)
    }

    /// Home Assistant's birth and will topic: when it comes online it has
    /// lost nothing retained, but republishing then is what its docs ask.
    pub fn home_assistant_status(&self) -> String {
        format!("{}/status", self.discovery)
    }

    pub fn interface_state(&self, name: &str) -> String {
        format!("{}/interface/{}", self.prefix, level(name))
    }

    pub fn device_state(&self, mac: &str) -> String {
        format!("{}/device/{}", self.prefix, mac_id(mac))
    }

    pub fn quota_alert(&self, quota: &str) -> String {
        format!("{}/quota/{}/alert", self.prefix, level(quota))
    }

    /// The router's id in Home Assistant: one per netmeter (its prefix).
    fn router_id(&self) -> String {
        format!("netmeter_{}", self.prefix.replace('/', "_"))
    }

    fn config_topic(&self, object: &str, key: &str) -> String {
        format!("{}/sensor/{object}/{key}/config", self.discovery)
    }

    pub fn online(&self) -> Message {
        Message::retained(self.availability(), b"online".to_vec())
    }

    pub fn offline(&self) -> Message {
        Message::retained(self.availability(), b"offline".to_vec())
    }

    pub fn interface_states(&self, interfaces: &[InterfaceView]) -> Vec<Message> {
        interfaces
            .iter()
            .map(|i| {
                let state = State {
                    rx_bytes: i.rx_bytes,
                    tx_bytes: i.tx_bytes,
                    rx_rate: i.rx_rate,
                    tx_rate: i.tx_rate,
                    hostname: None,
                    ips: None,
                };
                Message::retained(self.interface_state(&i.name), encode(&state))
            })
            .collect()
    }

    pub fn device_states(&self, devices: &[DeviceView]) -> Vec<Message> {
        devices
            .iter()
            .map(|d| {
                let state = State {
                    rx_bytes: d.rx_bytes,
                    tx_bytes: d.tx_bytes,
                    rx_rate: d.rx_rate,
                    tx_rate: d.tx_rate,
                    hostname: Some(d.hostname.as_deref()),
                    ips: Some(&d.ips),
                };
                Message::retained(self.device_state(&d.mac), encode(&state))
            })
            .collect()
    }

    /// The router as a Home Assistant device, with sensors for each WAN
    /// interface.
    pub fn router_discovery(&self, wan: &[String]) -> Vec<Message> {
        let id = self.router_id();
        let device = HaDevice {
            identifiers: [id.clone()],
            name: "netmeter".into(),
            connections: None,
            via_device: None,
            manufacturer: Some("netmeter"),
            model: Some("bandwidth accounting"),
            sw_version: Some(env!("CARGO_PKG_VERSION")),
        };
        wan.iter()
            .flat_map(|name| {
                let object = format!("{id}_{}", level(name));
                let state_topic = self.interface_state(name);
                SENSORS.map(|sensor| {
                    let title = format!("WAN {name} {}", sensor.1.to_lowercase());
                    self.sensor(&object, &state_topic, sensor, &title, &device)
                })
            })
            .collect()
    }

    /// A LAN device as a Home Assistant device with its four sensors.
    pub fn device_discovery(&self, d: &DeviceView) -> Vec<Message> {
        let object = format!("netmeter_{}", mac_id(&d.mac));
        let device = HaDevice {
            identifiers: [object.clone()],
            name: d.hostname.clone().unwrap_or_else(|| d.mac.clone()),
            connections: Some([["mac", &d.mac]]),
            via_device: Some(self.router_id()),
            manufacturer: None,
            model: None,
            sw_version: None,
        };
        let state_topic = self.device_state(&d.mac);
        SENSORS
            .map(|sensor| self.sensor(&object, &state_topic, sensor, sensor.1, &device))
            .to_vec()
    }

    /// Empty retained payloads: Home Assistant removes the entities, the
    /// broker the retained state.
    pub fn device_removal(&self, mac: &str) -> Vec<Message> {
        let object = format!("netmeter_{}", mac_id(mac));
        SENSORS
            .iter()
            .map(|(key, ..)| Message::retained(self.config_topic(&object, key), Vec::new()))
            .chain([Message::retained(self.device_state(mac), Vec::new())])
            .collect()
    }

    fn sensor(
        &self,
        object: &str,
        state_topic: &str,
        (key, _, unit, device_class, state_class): (&str, &str, &str, &str, &str),
        name: &str,
        device: &HaDevice,
    ) -> Message {
        let config = SensorConfig {
            name,
            unique_id: format!("{object}_{key}"),
            state_topic,
            value_template: format!("{{{{ value_json.{key} }}}}"),
            unit_of_measurement: unit,
            device_class,
            state_class,
            availability_topic: self.availability(),
            device,
        };
        Message::retained(self.config_topic(object, key), encode(&config))
    }
}

/// A state payload: what the sensors' value templates read.
#[derive(Serialize)]
struct State<'a> {
    rx_bytes: u64,
    tx_bytes: u64,
    rx_rate: u64,
    tx_rate: u64,
    /// Devices only (null when the name is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ips: Option<&'a [String]>,
}

/// Home Assistant's device block of a discovery config.
#[derive(Serialize)]
struct HaDevice<'a> {
    identifiers: [String; 1],
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections: Option<[[&'a str; 2]; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    via_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manufacturer: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sw_version: Option<&'static str>,
}

/// One sensor's discovery config (Home Assistant's MQTT sensor schema).
#[derive(Serialize)]
struct SensorConfig<'a> {
    name: &'a str,
    unique_id: String,
    state_topic: &'a str,
    value_template: String,
    unit_of_measurement: &'a str,
    device_class: &'a str,
    state_class: &'a str,
    availability_topic: String,
    device: &'a HaDevice<'a>,
}

/// Plain structs of strings and numbers always encode.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::samples as fixtures;
    use serde_json::{Value, json};

    fn topics() -> Topics {
        Topics {
            prefix: "netmeter".into(),
            discovery: "homeassistant".into(),
        }
    }

    fn json_of(m: &Message) -> Value {
        serde_json::from_slice(&m.payload).unwrap()
    }

    #[test]
    fn a_device_is_a_home_assistant_device_with_totals_and_rates() {
        let d = fixtures::device("aa:bb:cc:dd:ee:01", Some("laptop"), 1 << 30);
        let configs = topics().device_discovery(&d);
        assert_eq!(configs.len(), 4);
        let rx = &configs[0];
        assert_eq!(
            rx.topic,
            "homeassistant/sensor/netmeter_aabbccddee01/rx_bytes/config"
        );
        assert!(rx.retain);
        let c = json_of(rx);
        assert_eq!(c["state_topic"], "netmeter/device/aabbccddee01");
        assert_eq!(c["value_template"], "{{ value_json.rx_bytes }}");
        assert_eq!(
            (
                &c["unit_of_measurement"],
                &c["device_class"],
                &c["state_class"]
            ),
            (&json!("B"), &json!("data_size"), &json!("total_increasing"))
        );
        assert_eq!(c["unique_id"], "netmeter_aabbccddee01_rx_bytes");
        assert_eq!(c["availability_topic"], "netmeter/status");
        assert_eq!(c["device"]["name"], "laptop");
        assert_eq!(
            c["device"]["connections"],
            json!([["mac", "aa:bb:cc:dd:ee:01"]])
        );
        assert_eq!(c["device"]["via_device"], "netmeter_netmeter");
        let rate = json_of(&configs[3]);
        assert_eq!(
            (&rate["unit_of_measurement"], &rate["state_class"]),
            (&json!("B/s"), &json!("measurement"))
        );

        let states = topics().device_states(std::slice::from_ref(&d));
        let s = json_of(&states[0]);
        assert_eq!(s["rx_bytes"], 1u64 << 30);
        assert_eq!(s["hostname"], "laptop");
    }

    #[test]
    fn the_router_has_sensors_for_its_wan_and_a_forgotten_device_is_removed() {
        let configs = topics().router_discovery(&["wan".into(), "pppoe/x".into()]);
        assert_eq!(configs.len(), 8);
        let c = json_of(&configs[0]);
        assert_eq!(c["state_topic"], "netmeter/interface/wan");
        assert_eq!(c["name"], "WAN wan download");
        assert_eq!(c["device"]["identifiers"], json!(["netmeter_netmeter"]));
        assert_eq!(
            json_of(&configs[4])["state_topic"],
            "netmeter/interface/pppoe_x"
        );

        let gone = topics().device_removal("aa:bb:cc:dd:ee:01");
        assert_eq!(gone.len(), 5);
        assert!(gone.iter().all(|m| m.retain && m.payload.is_empty()));
        assert_eq!(gone[4].topic, "netmeter/device/aabbccddee01");
    }
}
