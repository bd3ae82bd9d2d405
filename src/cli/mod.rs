//! Library side of the `automon query`, `automon import` and `automon generate-assets`
//! subcommands; `main.rs` only parses arguments and prints.

pub mod docs;
pub mod import;
pub mod query;
