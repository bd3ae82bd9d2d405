//! Library side of the `automon query`, `import` and `test-notify` subcommands; `main.rs` only
//! parses arguments and prints.

pub mod alerts;
pub mod import;
pub mod query;
pub mod test_notify;
