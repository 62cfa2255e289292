//! Routers' web servers answer whatever they like: any bytes must give a
//! Response within the size caps or a ScrapeError, never a panic, and any
//! WWW-Authenticate value a challenge or None.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::digest::parse_challenge;
use netmeter::upstream::sources::http::{MAX_BODY, parse_response, parse_url};

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = parse_response(data) {
        assert!(response.body.len() <= MAX_BODY);
        assert!(response.body.len() <= data.len());
        for (name, value) in &response.headers {
            if name.eq_ignore_ascii_case("www-authenticate") {
                let _ = parse_challenge(value);
            }
        }
        let _ = response.text();
    }
    let text = String::from_utf8_lossy(data);
    if let Some(challenge) = parse_challenge(&text) {
        assert!(text.len() >= challenge.realm.len() + challenge.nonce.len());
    }
    if let Ok(url) = parse_url(&text) {
        assert!(url.path.starts_with('/') && url.port > 0 && !url.host.is_empty());
    }
});
