//! Kernel wire data turned into counter samples.
