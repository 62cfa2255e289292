//! Kernel wire data turned into counter samples.

pub mod devices;
pub mod identity;
pub mod links;
pub mod neighbours;
