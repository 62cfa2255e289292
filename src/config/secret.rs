//! A configured secret (the API's bearer token, an upstream router's
//! password or SNMP community): never shown, compared in constant time.

use std::fmt;

/// A secret value. `Debug` prints a placeholder and there is no `Display`,
/// so it cannot end up in a log line or an error by accident.
#[derive(Clone)]
pub struct Secret(String);

/// Bearer tokens (RFC 6750 `b64token`): these characters, with `=` only at
/// the end. Base64 and hex output qualify.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/')
}

impl Secret {
    /// Shortest and longest token accepted.
    pub const MIN_LEN: usize = 16;
    pub const MAX_LEN: usize = 256;

    /// A bearer token of [`Self::MIN_LEN`] to [`Self::MAX_LEN`] token
    /// characters; None otherwise.
    pub fn token(text: &str) -> Option<Secret> {
        let body = text.trim_end_matches('=');
        let fits = (Self::MIN_LEN..=Self::MAX_LEN).contains(&text.len());
        (fits && !body.is_empty() && body.chars().all(is_token_char))
            .then(|| Secret(text.to_owned()))
    }

    /// A password as the admin wrote it: 1 to 1024 bytes, no line breaks
    /// or NUL (they cannot be sent in a login form or a header).
    pub fn password(text: &str) -> Option<Secret> {
        let fits = (1..=1024).contains(&text.len());
        (fits && !text.contains(['\n', '\r', '\0'])).then(|| Secret(text.to_owned()))
    }

    /// The value itself, to send it; never format it into text shown anywhere.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the secret. The time taken depends on the
    /// candidate's length only, never on the secret's content or length
    /// or on where the first difference is.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let secret = self.0.as_bytes();
        // Every candidate byte is compared with some secret byte (cycling):
        // the loop runs candidate.len() times whatever the secret is.
        let mut diff = (candidate.len() != secret.len()) as u8;
        for (i, &c) in candidate.iter().enumerate() {
            let s = secret.get(i % secret.len().max(1)).copied().unwrap_or(0);
            diff |= std::hint::black_box(c ^ s);
        }
        std::hint::black_box(diff) == 0 && !secret.is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.matches(other.0.as_bytes())
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<not shown>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "s3cr3t-t0ken-0123456789";

    #[test]
    fn only_the_same_bytes_match() {
        let s = Secret::token(T).unwrap();
        assert!(s.matches(T.as_bytes()));
        for other in [
            "",
            "s",
            "s3cr3t-t0ken-012345678",
            "s3cr3t-t0ken-01234567890",
            "s3cr3t-t0ken-0123456788",
            "S3cr3t-t0ken-0123456789",
            "s3cr3t-t0ken-0123456789s3cr3t-t0ken-0123456789",
        ] {
            assert!(!s.matches(other.as_bytes()), "{other}");
        }
        assert!(!Secret(String::new()).matches(b""));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::token(T).unwrap();
        let text = format!("{s:?} {:?}", Some(&s));
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn tokens_are_16_to_256_token_characters_with_padding_only_at_the_end() {
        for good in [
            "0123456789abcdef",
            "q83vEjRWeJq83vEjRWeJ+/==",
            "a.b-c_d~e+f/g.h-i_j",
            &"x".repeat(256),
        ] {
            assert!(Secret::token(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "short",
            "0123456789abcde",
            "0123456789 abcdef",
            "0123456789abcdef\r\n",
            "01234567=89abcdef",
            "================",
            "0123456789abcdéf",
            "0123456789\"abcdef",
            &"x".repeat(257),
        ] {
            assert!(Secret::token(bad).is_none(), "{bad:?}");
        }
    }
}
