//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct VmstatCollector;
impl VmstatCollector {
    pub fn new(
        _paths: HostPaths,
        _cfg: &crate::config::VmstatConfig,
    ) -> Result<Self, CollectorError> {
        Ok(VmstatCollector)
    }
}
impl Collector for VmstatCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
