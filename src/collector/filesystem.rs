//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct FilesystemCollector;
impl FilesystemCollector {
    pub fn new(
        _paths: HostPaths,
        _cfg: &crate::config::FilesystemConfig,
    ) -> Result<Self, CollectorError> {
        Ok(FilesystemCollector)
    }
}
impl Collector for FilesystemCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
