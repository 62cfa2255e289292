//! TP-Link pages and cgi answers: any text must be read or refused, never
//! panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::collect::upstream::tplink::{
    login_token, page_count, parse_cgi, parse_dhcp, parse_statistics,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_statistics(text);
    assert!((1..=64).contains(&page_count(text)));
    let _ = parse_dhcp(text);
    if let Some(token) = login_token(text) {
        assert_eq!(token.len(), 16);
    }
    let _ = parse_cgi(text);
});
