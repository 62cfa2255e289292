//! What ships, checked without namespaces: the OpenWrt packages of both
//! variants taken apart (`package`; builds the other variant with cargo and
//! needs shellcheck) and installed with the real apk and opkg (`install`),
//! luci-app-netmeter's packages taken apart and installed
//! with them beside either variant (`luci_package`), the Debian package installed
//! with the real dpkg (`deb`), the binary a
//! new user runs first (`cli_help`), and the state file a big-endian MIPS
//! router writes (`state_fixture`). One crate, so netmeter is linked once
//! for them all.

mod cli_help;
mod deb;
mod install;
mod luci_package;
mod package;
mod state_fixture;
