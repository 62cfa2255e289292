//! A new user's first commands: `--help` everywhere, and mistakes that say
//! what was wrong and where to read on. Runs the real binary.

use std::process::{Command, Output};

fn netmeter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmeter"))
        .args(args)
        .output()
        .expect("the netmeter binary runs")
}

fn stdout(args: &[&str]) -> String {
    let out = netmeter(args);
    assert!(out.status.success(), "netmeter {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every subcommand with every option it takes (the long form).
const SUBCOMMANDS: &[(&str, &[&str])] = &[
    ("check", &["--json", "--url", "--config"]),
    ("commit", &["--config"]),
    ("daemon", &["--config"]),
    ("devices", &["--json", "--sort", "--url", "--config"]),
    (
        "history",
        &[
            "--fiveminute",
            "--hourly",
            "--daily",
            "--monthly",
            "--yearly",
            "--limit",
            "--json",
            "--csv",
            "--url",
            "--config",
        ],
    ),
    ("interfaces", &["--json", "--url", "--config"]),
    ("queues", &["--json"]),
    ("sockets", &["--json"]),
    ("teardown", &[]),
    ("top", &["--url", "--config", "--iterations"]),
    #[cfg(feature = "upstream")]
    ("upstream", &["--json", "--url", "--config"]),
    ("version", &[]),
    ("watch", &["--interface", "--frequency", "--time", "--json"]),
];

#[test]
fn the_top_level_help_lists_every_subcommand_with_what_it_does() {
    for args in [&["--help"][..], &["help"]] {
        let text = stdout(args);
        assert!(text.starts_with("Usage: netmeter"), "{text}");
        for (name, _) in SUBCOMMANDS {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} is not in `netmeter {args:?}`:\n{text}"));
            assert!(
                line.split_whitespace().count() > 2,
                "{name} has no description: {line}"
            );
        }
    }
}

#[test]
fn every_subcommands_help_lists_each_of_its_options_with_a_line_of_what_it_does() {
    for (name, options) in SUBCOMMANDS {
        let text = stdout(&[name, "--help"]);
        assert_eq!(
            stdout(&["help", name]),
            text,
            "`help {name}` and `{name} --help`"
        );
        assert!(
            text.starts_with(&format!("Usage: netmeter {name}")),
            "{text}"
        );
        for option in *options {
            let line = text
                .lines()
                .find(|l| l.split([' ', ',']).any(|w| w == *option))
                .unwrap_or_else(|| panic!("`{name} --help` does not list {option}:\n{text}"));
            let described = line.split_once(option).unwrap().1.trim();
            assert!(
                !described.is_empty(),
                "`{name} --help`: {option} has no description: {line}"
            );
        }
    }
}

#[test]
fn an_unknown_flag_says_which_and_points_at_the_subcommands_help() {
    let out = netmeter(&["devices", "--colour"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--colour"), "{err}");
    assert!(err.contains("Run 'netmeter devices --help'"), "{err}");
}

#[test]
fn an_unknown_subcommand_or_none_points_at_the_help() {
    for (args, says) in [
        (&["devcies"][..], "Unknown subcommand: devcies"),
        (&[], "subcommands must be present"),
        (&["help", "devcies"], "devcies"),
    ] {
        let out = netmeter(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains("Run 'netmeter --help'"), "{args:?}: {err}");
    }
}

#[test]
fn version_names_the_variant_and_its_features() {
    let text = stdout(&["version"]);
    assert!(text.starts_with(&format!("netmeter {}\n", env!("CARGO_PKG_VERSION"))));
    if cfg!(feature = "upstream") {
        assert!(
            text.contains("variant: full (package netmeter-full)"),
            "{text}"
        );
        assert!(text.contains("features: upstream mqtt"), "{text}");
    } else {
        assert!(text.contains("variant: core (package netmeter)"), "{text}");
        assert!(text.contains("features: none"), "{text}");
    }
}

#[cfg(not(feature = "upstream"))]
#[test]
fn the_core_build_says_which_package_has_the_upstream_subcommand() {
    let out = netmeter(&["upstream"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("install the netmeter-full package"), "{err}");
}
