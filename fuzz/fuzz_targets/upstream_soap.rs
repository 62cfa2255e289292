//! Device descriptions and SOAP answers from IGD and TR-064 routers: any
//! bytes must be read or refused, never panic or loop.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::collect::upstream::soap::{
    IGD_WAN_COMMON, addon_counters, control_url, elements, fault,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = control_url(text, IGD_WAN_COMMON);
    let _ = fault(text);
    let _ = addon_counters(text);
    assert!(elements(text, "x").count() <= text.len());
});
