//! Integration tests on the real kernel, in the namespace test bed
//! (`tests/testbed/`: throwaway user + network namespaces, no root needed
//! where unprivileged user namespaces are allowed). One crate, so the test
//! bed is compiled and netmeter linked once; one module per subject, so a
//! test reads `devices::…`, `persistence::…` in the output.
//!
//! `page` also needs Chromium and chromedriver (it skips loudly without
//! them, and fails when CI=true), `grafana` Debian's prometheus and
//! promtool (likewise); `upstream_daemon` is in the full build
//! only (the `upstream` feature).

#[path = "../testbed/mod.rs"]
mod testbed;

mod api;
mod conntrack;
mod daemon;
mod devices;
mod grafana;
mod interfaces;
mod luci;
#[cfg(feature = "mqtt")]
mod mqtt;
mod nftables;
mod openapi;
mod page;
mod persistence;
mod queues;
#[cfg(feature = "quota")]
mod quota;
mod sockets;
mod testbed_selftest;
mod top;
#[cfg(feature = "upstream")]
mod upstream_daemon;
mod watch;
