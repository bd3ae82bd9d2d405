//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct PressureCollector;
impl PressureCollector {
    pub fn new(_paths: HostPaths) -> Self {
        PressureCollector
    }
}
impl Collector for PressureCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
