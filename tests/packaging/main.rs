//! What ships, checked without namespaces: the OpenWrt packages of both
//! variants taken apart (`package`; builds the other variant with cargo and
//! needs shellcheck), the binary a new user runs first (`cli_help`), and the
//! state file a big-endian MIPS router writes (`state_fixture`). One crate,
//! so netmeter is linked once for the three.

mod cli_help;
mod install;
mod package;
mod state_fixture;
