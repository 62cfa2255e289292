//! What the daemon serves: over HTTP a bounded server, the JSON API,
//! Prometheus metrics, the built-in page, and the small client the CLI
//! uses to ask a running daemon; over MQTT the states and Home Assistant
//! discovery (`mqtt`, `home_assistant`).

pub mod api;
pub mod client;
pub mod history;
#[cfg(feature = "mqtt")]
pub mod home_assistant;
pub mod http;
pub mod metrics;
#[cfg(feature = "mqtt")]
pub mod mqtt;
pub mod page;
pub mod queues;
#[cfg(feature = "quota")]
pub mod quota;
pub mod sockets;
