//! PLACEHOLDER: replaced by the real collector.
#![allow(missing_docs, clippy::new_without_default)]
use super::{Collection, Collector, CollectorError, HostPaths};
pub struct NetdevCollector;
impl NetdevCollector {
    pub fn new(
        _paths: HostPaths,
        _cfg: &crate::config::NetdevConfig,
    ) -> Result<Self, CollectorError> {
        Ok(NetdevCollector)
    }
}
impl Collector for NetdevCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let _ = std::marker::PhantomData::<HostPaths>;
        Err(CollectorError::Other("placeholder".into()))
    }
}
