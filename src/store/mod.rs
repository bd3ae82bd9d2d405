//! Metric storage: per-series samples kept in SQLite as compressed chunks (see [`codec`]).
pub mod codec;
