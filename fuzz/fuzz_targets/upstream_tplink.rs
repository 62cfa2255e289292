//! TP-Link pages and cgi answers: any text must be read or refused, never
//! panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::tplink::{
    detect, js_array, login_page, login_token, page_count, parse_cgi, parse_dhcp, parse_statistics,
    parse_status_uptime,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_statistics(text);
    assert!((1..=64).contains(&page_count(text)));
    for (_, name) in parse_dhcp(text) {
        assert!(!name.is_empty() && name.chars().count() <= 64);
    }
    if let Some(token) = login_token(text) {
        assert!(token.len() == 16 && token.bytes().all(|b| b.is_ascii_uppercase()));
    }
    let _ = login_page(text);
    let _ = detect(401, Some(text), text);
    let _ = js_array(text, "statList");
    let _ = parse_cgi(text);
    let _ = parse_status_uptime(text);
});
