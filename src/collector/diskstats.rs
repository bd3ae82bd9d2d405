//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct DiskstatsCollector;
impl DiskstatsCollector {
    pub fn new(
        _paths: HostPaths,
        _cfg: &crate::config::DiskstatsConfig,
    ) -> Result<Self, CollectorError> {
        Ok(DiskstatsCollector)
    }
}
impl Collector for DiskstatsCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
