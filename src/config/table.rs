//! Option tables: a row per option, and a section applied through its
//! table with a problem for every bad or unknown entry.

use super::spelling::closest;
use super::uci;
use super::value::{describe, shown};

/// A row of an option table: adding an option means adding a row. `T` is
/// what one section type fills in.
pub(crate) struct Known<T: 'static> {
    pub(crate) name: &'static str,
    /// Whether `list` may be used; `option` is always accepted.
    pub(crate) many: bool,
    /// Completes "expected ...".
    pub(crate) expected: &'static str,
    /// Shown in errors about single-valued options; empty for none.
    pub(crate) default: &'static str,
    /// Stores the values (file order, at least one), or says which one is bad.
    pub(crate) set: fn(&mut T, &[&str]) -> Result<(), Bad>,
}

/// The index of the bad value, and a message to use instead of the
/// generic "expected ..." when that would not say what to write.
pub(crate) struct Bad {
    pub(crate) at: usize,
    pub(crate) why: Option<String>,
}

impl From<usize> for Bad {
    fn from(at: usize) -> Bad {
        Bad { at, why: None }
    }
}

/// Stores a section's options into `target` through `table`, pushing a
/// problem for each bad entry; returns which rows the section set.
pub(crate) fn apply<T>(
    target: &mut T,
    table: &[Known<T>],
    section: &uci::Section,
    problems: &mut Vec<(usize, String)>,
) -> Vec<bool> {
    let mut given: Vec<Vec<&uci::Entry>> = vec![Vec::new(); table.len()];
    for entry in &section.options {
        let Some(index) = table.iter().position(|o| o.name == entry.name) else {
            let hint = match closest(&entry.name, table.iter().map(|o| o.name)) {
                Some(near) => format!("did you mean '{near}'?"),
                None => {
                    let names: Vec<_> = table.iter().map(|o| o.name).collect();
                    format!("known options are {}", names.join(", "))
                }
            };
            problems.push((
                entry.line,
                format!(
                    "unknown option '{}' in {}: {hint}",
                    shown(&entry.name),
                    describe(section)
                ),
            ));
            continue;
        };
        let known = &table[index];
        if entry.is_list && !known.many {
            problems.push((
                entry.line,
                format!(
                    "'list' used for option {0}, which takes one value: write 'option {0} ...'",
                    known.name
                ),
            ));
        }
        // As in uci: `option` replaces what came before, `list` appends.
        if !entry.is_list {
            given[index].clear();
        }
        given[index].push(entry);
    }
    for (known, entries) in table.iter().zip(&given) {
        if entries.is_empty() {
            continue;
        }
        let values: Vec<&str> = entries.iter().map(|e| e.value.as_str()).collect();
        if let Err(bad) = (known.set)(target, &values) {
            let entry = entries[bad.at];
            let message = match bad.why {
                Some(why) => why,
                None => {
                    let default = match known.many || known.default.is_empty() {
                        false => format!(" (default {})", known.default),
                        true => String::new(),
                    };
                    format!(
                        "expected {}, got '{}'{default}",
                        known.expected,
                        shown(&entry.value)
                    )
                }
            };
            problems.push((entry.line, format!("option {}: {message}", known.name)));
        }
    }
    given.iter().map(|entries| !entries.is_empty()).collect()
}
