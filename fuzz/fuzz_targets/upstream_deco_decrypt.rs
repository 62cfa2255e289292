//! The Deco's decryption path: any text as the `data` of an answer is
//! decrypted (base64, AES-128-CBC, PKCS#7) and parsed, or refused, never
//! panics; and what is encrypted decrypts back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::deco::{AesKey, parse_clients, parse_login};

fuzz_target!(|data: &[u8]| {
    let aes = AesKey::new(b"1234567890123456", b"6543210987654321").unwrap();
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(plain) = aes.decrypt_b64(text)
    {
        let _ = parse_clients(&plain);
        let _ = parse_login(&plain);
    }
    let back = aes.decrypt_b64(&aes.encrypt_b64(data)).unwrap();
    assert_eq!(back, data);
});
