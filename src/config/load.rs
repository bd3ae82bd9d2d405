//! PLACEHOLDER loader.
#![allow(missing_docs)]
use super::Config;
use std::path::PathBuf;
#[derive(Debug, Clone)]
pub enum ConfigSource {
    Default,
    Explicit(PathBuf),
}
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub files: Vec<PathBuf>,
}
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}
#[derive(Debug, Clone, thiserror::Error)]
#[error("config errors")]
pub struct ConfigErrors(pub Vec<ConfigError>);
pub fn load(_s: &ConfigSource) -> Result<LoadedConfig, ConfigErrors> {
    Ok(LoadedConfig {
        config: Config::default(),
        files: vec![],
    })
}
