//! Library side of the `automon query` and `automon import` subcommands; `main.rs` only
//! parses arguments and prints.

pub mod alerts;
pub mod import;
pub mod query;
