//! automon: a host-level monitoring daemon.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod collector;
pub mod config;
pub mod model;
