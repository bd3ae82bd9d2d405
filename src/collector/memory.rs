//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct MemoryCollector;
impl MemoryCollector {
    pub fn new(_paths: HostPaths) -> Self {
        MemoryCollector
    }
}
impl Collector for MemoryCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
