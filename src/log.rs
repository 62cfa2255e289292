//! The daemon's log: one line to stderr, which procd sends to syslog.

pub fn log(message: impl std::fmt::Display) {
    eprintln!("netmeter: {message}");
}
