//! The HTTP side: a bounded server, the JSON API, Prometheus metrics, the
//! built-in page, and the small client the CLI uses to ask a running daemon.

pub mod api;
pub mod client;
pub mod history;
pub mod http;
pub mod metrics;
pub mod page;
pub mod queues;
pub mod sockets;
