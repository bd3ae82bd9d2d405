//! automon: a host-level monitoring daemon. The binary in `main.rs` is a thin CLI over this
//! library; see ARCHITECTURE.md for the module map and data flow.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod alert;
pub mod alloc;
pub mod cli;
pub mod collector;
pub mod command;
pub mod config;
pub mod daemon;
pub mod doctor;
pub mod exposition;
pub mod health;
pub mod http;
pub mod logging;
pub mod model;
pub mod pipeline;
pub mod query;
pub mod repair;
pub mod selfmetrics;
pub mod statedb;
pub mod store;
pub mod systemd;
pub mod systemd_dbus;
pub mod worker;
