//! The `config device` sections: names and groups for MACs.

use super::table::{Known, apply};
use super::value::{LABEL, describe, label, last};
use super::{DeviceName, uci};
use crate::mac::Mac;

/// The options of a `config device` section.
pub(crate) const DEVICE_OPTIONS: &[Known<DeviceName>] = &[
    Known {
        name: "mac",
        many: false,
        expected: "a MAC address such as aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff",
        default: "",
        set: |d, v| {
            d.mac = last(v, |s| s.parse::<Mac>().ok())?;
            Ok(())
        },
    },
    Known {
        name: "name",
        many: false,
        expected: LABEL,
        default: "",
        set: |d, v| {
            d.name = last(v, label)?;
            Ok(())
        },
    },
    Known {
        name: "group",
        many: false,
        expected: LABEL,
        default: "",
        set: |d, v| {
            d.group = Some(last(v, label)?);
            Ok(())
        },
    },
];

/// Options a device section cannot do without, with a line to suggest.
pub(crate) const DEVICE_REQUIRED: [(&str, &str); 2] = [
    ("mac", "option mac 'aa:bb:cc:dd:ee:ff'"),
    ("name", "option name 'laptop'"),
];

/// A `config device` section, with the line of its `option mac`; None when
/// it has problems, which are pushed.
pub(crate) fn device(
    section: &uci::Section,
    problems: &mut Vec<(usize, String)>,
) -> Option<(DeviceName, usize)> {
    let before = problems.len();
    let mut device = DeviceName::default();
    let given = apply(&mut device, DEVICE_OPTIONS, section, problems);
    let is_given = |name: &str| {
        DEVICE_OPTIONS
            .iter()
            .zip(&given)
            .any(|(o, &given)| o.name == name && given)
    };
    let (missing, examples): (Vec<_>, Vec<_>) = DEVICE_REQUIRED
        .iter()
        .filter(|(name, _)| !is_given(name))
        .map(|(name, example)| (format!("option {name}"), *example))
        .unzip();
    // Only for an otherwise clean section: a misspelt `option nmae` is the
    // line to point at, not the `config device` line above it.
    if !missing.is_empty() && problems.len() == before {
        let lines = if missing.len() == 1 {
            "a line"
        } else {
            "lines"
        };
        problems.push((
            section.line,
            format!(
                "{} is missing {}: add {lines} such as {}",
                describe(section),
                missing.join(" and "),
                examples.join(" and ")
            ),
        ));
    }
    let mac_line = section
        .options
        .iter()
        .rev()
        .find(|e| e.name == "mac")
        .map_or(section.line, |e| e.line);
    (problems.len() == before).then_some((device, mac_line))
}
