//! UCI file syntax, parsed natively so the daemon needs no libuci.
//!
//! Only syntax lives here: which section types and options mean something is
//! decided by the parent module. Parsing is line by line; a quoted value
//! cannot span lines and a trailing `\` does not continue a line.

use std::fmt;

use super::{closest, shown};

/// One `config TYPE ['NAME']` block with its options in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    /// `None` for an anonymous section.
    pub name: Option<String>,
    pub line: usize,
    pub options: Vec<Entry>,
}

/// One `option NAME VALUE` or `list NAME VALUE` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub value: String,
    pub is_list: bool,
    pub line: usize,
}

/// A syntax error; `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

const KEYWORDS: [&str; 4] = ["config", "option", "list", "package"];

/// Parses a whole file. Never panics, whatever the input.
pub fn parse(text: &str) -> Result<Vec<Section>, ParseError> {
    let mut sections: Vec<Section> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message: String| ParseError { line, message };
        let mut words = words(raw).map_err(error)?.into_iter();
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword.as_str() {
            "package" => {
                if words.next().is_none() {
                    return Err(error("expected a package name after 'package'".into()));
                }
            }
            "config" => {
                let Some(kind) = words.next() else {
                    return Err(error(
                        "expected a section type after 'config', as in 'config netmeter 'main''"
                            .into(),
                    ));
                };
                check_identifier(&kind, "a section type").map_err(error)?;
                let name = words.next();
                if let Some(name) = &name {
                    check_identifier(name, "a section name").map_err(error)?;
                }
                sections.push(Section {
                    kind,
                    name,
                    line,
                    options: Vec::new(),
                });
            }
            "option" | "list" => {
                let Some(section) = sections.last_mut() else {
                    return Err(error(format!(
                        "{keyword} outside a config section: add a 'config netmeter 'main'' line above it"
                    )));
                };
                let Some(name) = words.next() else {
                    return Err(error(format!("expected an option name after '{keyword}'")));
                };
                check_identifier(&name, "an option name").map_err(error)?;
                let Some(value) = words.next() else {
                    return Err(error(format!("expected a value after '{keyword} {name}'")));
                };
                let is_list = keyword == "list";
                if super::SECRET_OPTIONS.contains(&name.as_str()) && words.next().is_some() {
                    return Err(error(format!(
                        "expected the end of the line after the value of {keyword} {name} \
                         (not shown: it is a secret): quote values that contain spaces"
                    )));
                }
                section.options.push(Entry {
                    name,
                    value,
                    is_list,
                    line,
                });
            }
            other => {
                let hint = closest(other, KEYWORDS)
                    .map(|known| format!(": did you mean '{known}'?"))
                    .unwrap_or_default();
                return Err(error(format!(
                    "expected 'config', 'option', 'list' or 'package', got '{}'{hint}",
                    shown(other)
                )));
            }
        }
        if let Some(extra) = words.next() {
            return Err(error(format!(
                "expected the end of the line, got '{}': quote values that contain spaces",
                shown(&extra)
            )));
        }
    }
    Ok(sections)
}

/// uci's own rule for type, section and option names.
fn check_identifier(word: &str, what: &str) -> Result<(), String> {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "expected {what} of letters, digits and _, got '{}'",
            shown(word)
        ))
    }
}

/// uci's isspace(): ASCII only, so a no-break space stays part of a word.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

/// Splits one line into unquoted, unescaped words, dropping any comment.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|&c| is_space(c)).is_some() {}
        if matches!(chars.peek(), None | Some('#')) {
            return Ok(words);
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|&c| !is_space(c) && c != '#') {
            match c {
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("expected a closing ' quote".into()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => word.push(c),
                            None => return Err("expected a closing \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("expected a closing \" quote".into()),
                    }
                },
                '\\' => match chars.next() {
                    Some(c) => word.push(c),
                    None => {
                        return Err("expected a character after '\\': \
                                    continuation lines are not supported"
                            .into());
                    }
                },
                c => word.push(c),
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String, bool)> {
        let sections = parse(text).unwrap();
        sections[0]
            .options
            .iter()
            .map(|e| (e.name.clone(), e.value.clone(), e.is_list))
            .collect()
    }

    fn value(text: &str) -> String {
        entries(&format!("config t\noption v {text}\n"))[0]
            .1
            .clone()
    }

    fn error(text: &str) -> ParseError {
        parse(text).unwrap_err()
    }

    #[test]
    fn the_documented_example_parses_with_lines_and_order() {
        let text = "# comment\npackage netmeter          # ignored\nconfig netmeter 'main'\n\
                    \toption refresh_interval '10'\n\tlist interface 'eth*'\n\
                    \tlist interface \"br-lan\"\n\
                    \toption listen 127.0.0.1:9750   # unquoted word\n\
                    config device\n\toption mac 'aa:bb:cc:dd:ee:ff'\n";
        let sections = parse(text).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].kind, "netmeter");
        assert_eq!(sections[0].name.as_deref(), Some("main"));
        assert_eq!(sections[0].line, 3);
        let got: Vec<_> = sections[0]
            .options
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str(), e.is_list, e.line))
            .collect();
        assert_eq!(
            got,
            [
                ("refresh_interval", "10", false, 4),
                ("interface", "eth*", true, 5),
                ("interface", "br-lan", true, 6),
                ("listen", "127.0.0.1:9750", false, 7),
            ]
        );
        assert_eq!(sections[1].name, None);
        assert_eq!(sections[1].options[0].value, "aa:bb:cc:dd:ee:ff");
    }

    #[test]
    fn single_quotes_keep_backslashes_and_double_quotes() {
        assert_eq!(value(r#"'a\b"c'"#), r#"a\b"c"#);
    }

    #[test]
    fn double_quotes_unescape_any_backslashed_character() {
        assert_eq!(value(r#""say \"hi\" \\ \n""#), r#"say "hi" \ n"#);
    }

    #[test]
    fn unquoted_words_allow_backslash_escapes() {
        assert_eq!(value(r"a\ b\#c"), "a b#c");
    }

    #[test]
    fn adjacent_pieces_concatenate_into_one_value() {
        assert_eq!(value(r#"'a'"b"c"#), "abc");
    }

    #[test]
    fn hash_inside_quotes_is_text_and_outside_starts_a_comment() {
        assert_eq!(value("'a # b' # comment"), "a # b");
        assert_eq!(value("ab#c"), "ab");
    }

    #[test]
    fn empty_quotes_are_an_empty_value() {
        assert_eq!(value("''"), "");
    }

    #[test]
    fn crlf_blank_lines_and_tabs_are_accepted() {
        let got = entries("\r\n  \t\r\nconfig t 'n'\r\n\toption a 'x'\r\n\t\r\nlist b y\r\n");
        assert_eq!(
            got,
            [
                ("a".into(), "x".into(), false),
                ("b".into(), "y".into(), true)
            ]
        );
    }

    #[test]
    fn anonymous_sections_have_no_name() {
        let sections = parse("config netmeter\nconfig device 'd1'\n").unwrap();
        assert_eq!(sections[0].name, None);
        assert_eq!(sections[1].name.as_deref(), Some("d1"));
    }

    #[test]
    fn unterminated_quotes_name_the_missing_quote_and_line() {
        assert_eq!(
            error("config t\noption a 'x\n"),
            ParseError {
                line: 2,
                message: "expected a closing ' quote".into()
            }
        );
        assert_eq!(error("config t\n\noption a \"x\\\"").line, 3);
        assert!(
            error("config t\noption a \"x")
                .message
                .contains("closing \" quote")
        );
    }

    #[test]
    fn lone_backslash_at_the_end_is_an_error() {
        let e = error("config t\noption a x\\");
        assert_eq!(e.line, 2);
        assert!(
            e.message.starts_with("expected a character after '\\'"),
            "{e}"
        );
    }

    #[test]
    fn option_outside_a_section_says_where_to_add_one() {
        assert_eq!(
            error("# top\noption a b\n"),
            ParseError {
                line: 2,
                message:
                    "option outside a config section: add a 'config netmeter 'main'' line above it"
                        .into()
            }
        );
    }

    #[test]
    fn misspelt_keyword_suggests_the_closest_one() {
        assert_eq!(
            error("config t\n\topton a b\n"),
            ParseError {
                line: 2,
                message: "expected 'config', 'option', 'list' or 'package', got 'opton': \
                          did you mean 'option'?"
                    .into()
            }
        );
        assert!(!error("frobnicate").message.contains("did you mean"));
    }

    #[test]
    fn bad_identifiers_are_reported() {
        assert_eq!(
            error("config net-meter").message,
            "expected a section type of letters, digits and _, got 'net-meter'"
        );
        assert!(error("config t 'a b'").message.contains("a section name"));
        assert!(
            error("config t\noption 'a.b' c")
                .message
                .contains("an option name")
        );
        assert!(error("config t ''").message.contains("got ''"));
    }

    #[test]
    fn missing_and_extra_words_are_reported() {
        assert_eq!(
            error("config t\noption a").message,
            "expected a value after 'option a'"
        );
        assert_eq!(error("config").line, 1);
        assert_eq!(error("package").line, 1);
        let e = error("config t\n\noption listen 127.0.0.1 9750");
        assert_eq!(e.line, 3);
        assert!(
            e.message
                .starts_with("expected the end of the line, got '9750'"),
            "{e}"
        );
    }

    #[test]
    fn nasty_inputs_never_panic() {
        let long = "x".repeat(100_000);
        let inputs = [
            String::new(),
            "'".into(),
            "\"".into(),
            "\\".into(),
            "config t\noption a \"\\".into(),
            format!("config t\noption a '{long}'"),
            format!("config t\noption a '{long}"),
            format!("{long}\n"),
            "config t 'ünïcödé'\noption ключ 'значение'".into(),
            "config t\noption a 'é🦀\u{0}\u{202e}'\n".into(),
            "\u{feff}config t".into(),
            "config\u{a0}t".into(),
            "\r\r\r\n\r".into(),
        ];
        for input in &inputs {
            let _ = parse(input);
        }
        let e = parse(&format!("{long}\n")).unwrap_err();
        assert!(e.message.len() < 200, "messages quote long words briefly");
        assert_eq!(
            parse("config t\noption a 'é🦀'").unwrap()[0].options[0].value,
            "é🦀"
        );
    }
}
