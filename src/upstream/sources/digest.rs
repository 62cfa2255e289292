//! HTTP Digest authentication (RFC 7616 with MD5, and RFC 2069 without
//! qop), as FRITZ!Box TR-064 asks for it: reading the challenge, the
//! `Authorization` value that answers it, and the client nonce;
//! `http::send_digest` does the round trip.

use std::io::Read;

use super::md5;
use crate::config::Secret;

/// A `WWW-Authenticate: Digest …` challenge we can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// qop=auth offered; without it, the RFC 2069 form is used.
    pub qop_auth: bool,
    /// MD5-sess rather than MD5.
    pub session: bool,
}

/// The Digest challenge in one `WWW-Authenticate` value, if it has one
/// with MD5 (or no algorithm) and qop "auth" (or no qop). Other schemes,
/// algorithms (SHA-256) and qop=auth-int only give None.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    // Challenges are `Scheme param=value, param="value", Scheme2 …`.
    let mut rest = value.trim_start();
    let mut in_digest = false;
    let (mut realm, mut nonce, mut opaque, mut qop, mut algorithm) = (None, None, None, None, None);
    loop {
        // Whitespace of any kind: the token below then is never empty, so
        // every turn consumes input.
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            break;
        }
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (token, after) = rest.split_at(token_end);
        let after_ws = after.trim_start();
        if let Some(value_text) = after_ws.strip_prefix('=') {
            // A token68 (`Basic abc==`) ends in '=' with nothing after it;
            // treat what follows as a parameter value either way.
            let (value, remaining) = param_value(value_text.trim_start())?;
            rest = remaining;
            if in_digest {
                let slot = match token.to_ascii_lowercase().as_str() {
                    "realm" => &mut realm,
                    "nonce" => &mut nonce,
                    "opaque" => &mut opaque,
                    "qop" => &mut qop,
                    "algorithm" => &mut algorithm,
                    _ => continue,
                };
                slot.get_or_insert(value);
            }
        } else {
            // A new scheme starts: stop after the Digest one.
            if in_digest {
                break;
            }
            in_digest = token.eq_ignore_ascii_case("digest");
            rest = after;
        }
    }
    let session = match algorithm.as_deref() {
        None => false,
        Some(a) if a.eq_ignore_ascii_case("md5") => false,
        Some(a) if a.eq_ignore_ascii_case("md5-sess") => true,
        Some(_) => return None,
    };
    let qop_auth = match &qop {
        None => false,
        Some(list) => {
            if !list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                return None;
            }
            true
        }
    };
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        opaque,
        qop_auth,
        session,
    })
}

/// A parameter value (token or quoted string) and what follows it.
fn param_value(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((value, &quoted[i + 1..])),
                '\\' => value.push(chars.next()?.1),
                _ => value.push(c),
            }
        }
        None // unterminated
    } else {
        let end = text
            .find(|c: char| c == ',' || c.is_ascii_whitespace())
            .unwrap_or(text.len());
        Some((text[..end].to_owned(), &text[end..]))
    }
}

/// The `Authorization` value answering `challenge` (RFC 7616 §3.4).
pub fn authorization(
    challenge: &Challenge,
    username: &str,
    password: &Secret,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let Challenge {
        realm,
        nonce,
        opaque,
        qop_auth,
        session,
    } = challenge;
    let mut ha1 = md5::hex(format!("{username}:{realm}:{}", password.expose()).as_bytes());
    if *session {
        ha1 = md5::hex(format!("{ha1}:{nonce}:{cnonce}").as_bytes());
    }
    let ha2 = md5::hex(format!("{method}:{uri}").as_bytes());
    let nc = "00000001";
    let response = if *qop_auth {
        md5::hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes())
    } else {
        md5::hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
    };
    let algorithm = if *session { "MD5-sess" } else { "MD5" };
    let mut value = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, algorithm={algorithm}, response=\"{response}\"",
        quote(username),
        quote(realm),
        quote(nonce),
        quote(uri),
    );
    if *qop_auth {
        value.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quote(cnonce)));
    }
    if let Some(opaque) = opaque {
        value.push_str(&format!(", opaque={}", quote(opaque)));
    }
    value
}

/// A quoted-string: `"` and `\` escaped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A client nonce nobody can predict from outside: 8 bytes of the
/// kernel's randomness, or of the clock if /dev/urandom is unreadable.
pub(super) fn cnonce() -> String {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mixed = now.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
        bytes = mixed.to_le_bytes();
    }
    md5::hex(&bytes)[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a FRITZ!Box sends on TR-064's first, unauthenticated POST.
    const FRITZ_CHALLENGE: &str = r#"Digest realm="F!Box SOAP-Auth", nonce="3E1D5C7B9A0F2846", qop="auth", charset="utf-8", algorithm="MD5""#;

    #[test]
    fn digest_challenges() {
        let c = parse_challenge(FRITZ_CHALLENGE).unwrap();
        assert_eq!(
            c,
            Challenge {
                realm: "F!Box SOAP-Auth".into(),
                nonce: "3E1D5C7B9A0F2846".into(),
                opaque: None,
                qop_auth: true,
                session: false
            }
        );
        let rfc = parse_challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(
            rfc.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        // After a Basic challenge in the same header; escapes; no qop.
        let both = parse_challenge(
            r#"Basic realm="x", DIGEST realm="a\"b", nonce=abc, algorithm=MD5-sess"#,
        )
        .unwrap();
        assert_eq!((both.realm.as_str(), both.nonce.as_str()), ("a\"b", "abc"));
        assert!(both.session && !both.qop_auth);
        // Stops at the next scheme: its parameters are not Digest's.
        let next = parse_challenge(r#"Digest realm="r", nonce="n", Bearer realm="other""#);
        assert_eq!(next.unwrap().realm, "r");
        let folded = parse_challenge("Digest\r\n realm=r,\r\n\tnonce=\"n\"\r\n").unwrap();
        assert_eq!((folded.realm.as_str(), folded.nonce.as_str()), ("r", "n"));
        for unusable in [
            r#"Basic realm="router""#,
            r#"Digest realm="r", nonce="n", algorithm=SHA-256"#,
            r#"Digest realm="r", nonce="n", qop="auth-int""#,
            r#"Digest realm="r""#,
            r#"Digest realm="r", nonce="n"#,
            r#"Bearer realm="r", nonce="n""#,
            "Basic\r\n\x0bx\x0c=",
            "",
            "Digest",
        ] {
            assert_eq!(parse_challenge(unusable), None, "{unusable}");
        }
    }

    #[test]
    fn digest_responses_match_the_rfc_examples() {
        let password = |p| Secret::password(p).unwrap();
        // RFC 2617 §3.5.
        let c = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            qop_auth: true,
            session: false,
        };
        let value = authorization(
            &c,
            "Mufasa",
            &password("Circle Of Life"),
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert_eq!(
            value,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             algorithm=MD5, response=\"6629fae49393a05397450978507c4ef1\", qop=auth, \
             nc=00000001, cnonce=\"0a4f113b\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
        // RFC 7616 §3.9.1, MD5.
        let c = Challenge {
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            opaque: None,
            qop_auth: true,
            session: false,
        };
        let value = authorization(
            &c,
            "Mufasa",
            &password("Circle of Life"),
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert!(
            value.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""),
            "{value}"
        );
        assert!(!value.contains("Circle"));
    }

    #[test]
    fn cnonces_differ() {
        let (a, b) = (cnonce(), cnonce());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
