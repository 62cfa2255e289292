//! Kernel wire data turned into counter samples.

pub mod links;
