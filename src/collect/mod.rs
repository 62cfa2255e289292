//! Kernel wire data turned into counter samples, and the names that go with them.

pub mod identity;
pub mod links;
