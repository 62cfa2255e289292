//! The `/etc/config/netmeter` file: UCI syntax, typed settings, validation.
