//! The upstream routers' protocols (the `upstream` feature, so the core
//! build `--no-default-features` compiles none of this): each source
//! against a mock router on 127.0.0.1 (`tests/mock/` for the HTTP ones, a
//! UDP agent for SNMP, a telnet server for DrayTek). No namespaces, no
//! privileges. One crate, so the mock is compiled and netmeter linked once;
//! one module per protocol (`asus::…`, `snmp::…` in the output).
#![cfg(feature = "upstream")]

#[path = "../mock/mod.rs"]
mod mock;

mod asus;
mod deco;
mod draytek;
mod fritzbox;
mod http;
mod igd;
mod prometheus;
mod snmp;
mod tplink;
mod ubus;
mod vnstat;
