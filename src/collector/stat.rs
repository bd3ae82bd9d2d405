//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct StatCollector;
impl StatCollector {
    pub fn new(_paths: HostPaths) -> Self {
        StatCollector
    }
}
impl Collector for StatCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
