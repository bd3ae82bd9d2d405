//! `conntrack` collector: netfilter connection-tracking table usage
//! (`node_nf_conntrack_entries`, `node_nf_conntrack_entries_limit`) from
//! `/proc/sys/net/netfilter/nf_conntrack_{count,max}`.

use std::io;

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// Parses a sysctl file holding one unsigned integer.
pub fn parse_sysctl_uint(s: &str) -> Option<f64> {
    s.trim().parse::<u64>().ok().map(|v| v as f64)
}

/// Reads the nf_conntrack sysctls; when the module is not loaded they do not exist and the
/// collector reports a note instead of failing.
pub struct ConntrackCollector {
    paths: HostPaths,
}

impl ConntrackCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        ConntrackCollector { paths }
    }

    /// Reads one sysctl; `Ok(None)` if it does not exist.
    fn read(&self, name: &str) -> Result<Option<f64>, CollectorError> {
        let path = self.paths.proc(&format!("sys/net/netfilter/{name}"));
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_sysctl_uint(&text)
                .map(Some)
                .ok_or_else(|| parse_error(&path, "expected one unsigned integer")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CollectorError::Io { path, source }),
        }
    }
}

impl Collector for ConntrackCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let (Some(count), Some(max)) = (
            self.read("nf_conntrack_count")?,
            self.read("nf_conntrack_max")?,
        ) else {
            return Ok(Collection {
                families: vec![],
                note: Some(
                    "nf_conntrack not loaded (/proc/sys/net/netfilter/nf_conntrack_* missing); \
                     conntrack metrics skipped"
                        .into(),
                ),
            });
        };
        Ok(vec![
            Family::gauge(
                "node_nf_conntrack_entries",
                "Number of currently allocated flow entries for connection tracking.",
            )
            .with(&[], count),
            Family::gauge(
                "node_nf_conntrack_entries_limit",
                "Maximum size of connection tracking table.",
            )
            .with(&[], max),
        ]
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    #[test]
    fn parses_sysctl() {
        assert_eq!(parse_sysctl_uint("262144\n"), Some(262144.0));
        assert_eq!(parse_sysctl_uint(" 0 "), Some(0.0));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_sysctl_uint(""), None);
        assert_eq!(parse_sysctl_uint("-1"), None);
        assert_eq!(parse_sysctl_uint("12 13"), None);
    }

    #[test]
    fn collects_fixture() {
        let out = ConntrackCollector::new(fixture_paths()).collect().unwrap();
        assert_eq!(out.note, None);
        assert_eq!(out.families[0].name, "node_nf_conntrack_entries");
        assert_eq!(out.families[0].samples[0].value, 0.0);
        assert_eq!(out.families[1].name, "node_nf_conntrack_entries_limit");
        assert_eq!(out.families[1].samples[0].value, 262144.0);
    }

    #[test]
    fn module_not_loaded_is_a_note() {
        let mut p = fixture_paths();
        p.procfs = p.procfs.join("does-not-exist");
        let out = ConntrackCollector::new(p).collect().unwrap();
        assert!(out.families.is_empty());
        assert!(out.note.unwrap().contains("nf_conntrack not loaded"));
    }
}
