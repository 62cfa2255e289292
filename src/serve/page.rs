//! The built-in page at `/`: one file with its CSS, script and SVG charts
//! inline, no external assets. It reads the JSON API like any client.
//!
//! Served before the token check (it carries no data and must load to ask
//! for the token), with a Content-Security-Policy that allows only its
//! inline script and style and `connect-src 'self'`. The script polls
//! status, interfaces and devices every refresh and the chart every 30 s,
//! updates rows in place (a refresh must not swallow a click), builds every
//! element with `textContent` (host names come from DHCP) and keeps the
//! token in sessionStorage. Unit tests keep it at most 40 KB and free of
//! external URLs; the browser test is `tests/namespaces/page.rs`.

use super::http::{Request, Response};

/// The page, as served.
pub const PAGE: &str = include_str!("page.html");

/// The page must stay small: it ships inside the binary.
pub const MAX_PAGE_BYTES: usize = 40 * 1024;

/// Nothing but the page's own inline script and style, and requests back
/// to the daemon that served it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// What the page is sent with.
const HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

/// The page.
pub fn response() -> Response {
    Response::new(200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec()).with_headers(HEADERS)
}

/// `GET` (or `HEAD`) `/` and `/index.html`; None for anything else. Asked
/// before the token check: the page carries no data, and asks for the
/// token itself when the API answers 401.
pub fn route(req: &Request) -> Option<Response> {
    let page = matches!(req.path.as_str(), "/" | "/index.html");
    (page && matches!(req.method.as_str(), "GET" | "HEAD")).then(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::ApiState;
    use std::sync::Mutex;

    #[test]
    fn the_page_stays_within_its_size_budget() {
        assert!(
            PAGE.len() <= MAX_PAGE_BYTES,
            "src/serve/page.html is {} bytes, over the {MAX_PAGE_BYTES}-byte budget",
            PAGE.len()
        );
    }

    /// Every value of `attribute=` in the page (quoted or not).
    fn values<'a>(page: &'a str, attribute: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut rest = page;
        while let Some(at) = rest.find(attribute) {
            let after = rest[at + attribute.len()..].trim_start_matches(['"', '\'', ' ']);
            let end = after
                .find(['"', '\'', ' ', '>', ')'])
                .unwrap_or(after.len());
            out.push(&after[..end]);
            rest = &rest[at + attribute.len()..];
        }
        out
    }

    #[test]
    fn the_page_references_nothing_outside_itself() {
        let lower = PAGE.to_ascii_lowercase();
        for needle in [
            "http://", "https://", "@import", "<iframe", "<object", "<embed",
        ] {
            assert!(!lower.contains(needle), "the page contains '{needle}'");
        }
        for attribute in ["src=", "href=", "url(", "action="] {
            for value in values(&lower, attribute) {
                assert!(
                    !value.starts_with("//") && !value.contains(':') || value.starts_with("data:"),
                    "the page loads '{value}' ({attribute})"
                );
            }
        }
        // The one link: an empty icon, so browsers do not ask for /favicon.ico.
        assert_eq!(values(&lower, "href="), ["data:,"]);
        assert!(values(&lower, "src=").is_empty());
    }

    fn get_with(state: ApiState, path: &str) -> Response {
        let req = Request {
            method: "GET".into(),
            path: path.into(),
            query: None,
            authorization: None,
        };
        crate::serve::api::route(&Mutex::new(state), &req, 0)
    }

    fn get(path: &str) -> Response {
        get_with(ApiState::default(), path)
    }

    #[test]
    fn slash_and_index_html_serve_the_page_as_html_with_a_strict_policy() {
        for path in ["/", "/index.html"] {
            let r = get(path);
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.content_type, "text/html; charset=utf-8");
            assert_eq!(r.body, PAGE.as_bytes());
            let csp = r
                .headers
                .iter()
                .find(|(name, _)| *name == "Content-Security-Policy")
                .map(|(_, v)| *v)
                .expect("a Content-Security-Policy header");
            assert!(csp.starts_with("default-src 'none';"), "{csp}");
            assert!(csp.contains("connect-src 'self'"), "{csp}");
            assert!(!csp.contains("unsafe-eval"), "{csp}");
        }
        // Only those two: the API's 404 stays JSON.
        let r = get("/index.htm");
        assert_eq!((r.status, r.content_type), (404, "application/json"));
    }

    #[test]
    fn with_a_token_the_page_still_loads_and_the_api_answers_401() {
        let with_token = || ApiState {
            token: crate::config::secret::Secret::token("0123456789abcdef0123"),
            ..ApiState::default()
        };
        assert!(with_token().token.is_some());
        assert_eq!(get_with(with_token(), "/").status, 200);
        assert_eq!(get_with(with_token(), "/api/v1/status").status, 401);
    }

    #[test]
    fn the_page_uses_the_api_by_relative_urls() {
        for path in [
            "\"/api/v1/status\"",
            "\"/api/v1/interfaces\"",
            "\"/api/v1/devices\"",
            "\"/api/v1/history?period=\"",
        ] {
            assert!(PAGE.contains(path), "the page does not fetch {path}");
        }
        assert!(PAGE.contains("Authorization: \"Bearer \""));
        assert!(!PAGE.contains("innerHTML = s") && !PAGE.contains(".innerHTML +"));
    }
}
