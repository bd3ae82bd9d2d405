//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct TimeCollector;
impl TimeCollector {
    pub fn new() -> Self {
        TimeCollector
    }
}
impl Collector for TimeCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
