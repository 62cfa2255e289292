//! Prometheus' text exposition format 0.0.4: the lines every family of
//! `/metrics` is written with, netmeter's own (`serve/metrics.rs`) and the
//! upstream slice's (`upstream/metrics.rs`), so both escape alike.

use std::fmt::Write;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A sample's labels, in the order written.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// A family's HELP and TYPE lines, written once before its samples.
pub fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape(help, false));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub fn sample(out: &mut String, name: &str, labels: Labels, value: u64) {
    series(out, name, labels);
    let _ = writeln!(out, " {value}");
}

/// A sample's name and labels, before its value.
pub fn series(out: &mut String, name: &str, labels: Labels) {
    out.push_str(name);
    for (i, (label, text)) in labels.iter().enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        let _ = write!(out, "{label}=\"{}\"", escape(text, true));
    }
    if !labels.is_empty() {
        out.push('}');
    }
}

/// The format's escapes: backslash and line feed in HELP text, and double
/// quotes too in label values.
fn escape(text: &str, label_value: bool) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\\', '\n', '"']) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label_value => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape(r#"a\b"c"#, true), r#"a\\b\"c"#);
        assert_eq!(escape("two\nlines", true), r"two\nlines");
        assert_eq!(escape(r#"say "hi"\n"#, false), r#"say "hi"\\n"#);
        assert_eq!(escape("plain-name ü", true), "plain-name ü");
    }

    #[test]
    fn a_sample_without_labels_has_no_braces() {
        let mut out = String::new();
        sample(&mut out, "up", &[], 1);
        series(&mut out, "x", &[("a", "1"), ("b", "2")]);
        assert_eq!(out, "up 1\nx{a=\"1\",b=\"2\"}");
    }
}
