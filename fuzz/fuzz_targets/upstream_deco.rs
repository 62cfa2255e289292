//! TP-Link Deco answers, before and after decryption: any bytes must be
//! read or refused, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::deco::{
    parse_auth, parse_clients, parse_envelope, parse_keys, parse_login,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = parse_keys(data) {
        assert!((64..=512).contains(&key.len()));
    }
    let _ = parse_auth(data);
    if let Ok(Some(inner)) = parse_envelope(data) {
        assert!(!inner.is_empty());
    }
    if let Ok(stok) = parse_login(data) {
        assert!(!stok.is_empty() && stok.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    if let Ok(clients) = parse_clients(data) {
        for c in clients {
            assert!(
                c.name
                    .is_none_or(|n| !n.is_empty() && n.chars().count() <= 64)
            );
            assert!(c.connection.chars().count() <= 32);
        }
    }
});
