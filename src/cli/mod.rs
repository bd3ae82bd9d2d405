//! Library side of the client subcommands (`query`, `import`, `alerts`, `silence`,
//! `test-notify`, `generate-assets`); `main.rs` only parses arguments and prints.

pub mod alerts;
pub mod docs;
pub mod import;
pub mod query;
pub mod repair;
pub mod test_notify;
