//! Auto-repair: rules that act on the host when a trigger holds (restart a unit, run a
//! command, clean files), with the safety owned by the engine (cooldowns, attempt limits,
//! one action per target, allowlists, dry runs) and every decision audited.

/// Where the shipped polkit rule that lets the `automon` user manage units is installed.
pub const POLKIT_RULE: &str = "/etc/polkit-1/rules.d/50-automon.rules";

pub mod action;
pub mod db;
pub mod engine;
pub mod metrics;
pub mod runner;
pub mod service;
pub mod trigger;
