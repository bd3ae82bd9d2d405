//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct MdadmCollector;
impl MdadmCollector {
    pub fn new(_paths: HostPaths) -> Self {
        MdadmCollector
    }
}
impl Collector for MdadmCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
