//! Device descriptions and SOAP answers from IGD and TR-064 routers: any
//! bytes must be read or refused, never panic or loop.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::soap::{
    IGD_WAN_COMMON, addon_counters, control_url, element, elements, fault,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(path) = control_url(text, IGD_WAN_COMMON) {
        assert!(path.starts_with('/') && !path.contains(char::is_whitespace));
    }
    let _ = fault(text);
    let inner = element(text, "GetAddonInfosResponse").unwrap_or_default();
    assert!(inner.len() <= text.len());
    for had_64 in [false, true] {
        let _ = addon_counters(&inner, had_64);
        let _ = addon_counters(text, had_64);
    }
    assert!(elements(text, "x").count() <= text.len());
});
