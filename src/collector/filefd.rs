//! `filefd` collector: allocated and maximum file handles from `/proc/sys/fs/file-nr`
//! (`node_filefd_allocated`, `node_filefd_maximum`), as node_exporter's filefd collector.

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// Parses `/proc/sys/fs/file-nr`: three numbers, allocated handles, free allocated handles
/// (always 0 since Linux 2.6) and the maximum. Returns `(allocated, maximum)`.
pub fn parse_file_nr(s: &str) -> Option<(f64, f64)> {
    let mut it = s.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(Ok(allocated)), Some(Ok(_)), Some(Ok(maximum)), None) => {
            Some((allocated as f64, maximum as f64))
        }
        _ => None,
    }
}

/// Reads `/proc/sys/fs/file-nr`.
pub struct FilefdCollector {
    paths: HostPaths,
}

impl FilefdCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        FilefdCollector { paths }
    }
}

impl Collector for FilefdCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("sys/fs/file-nr");
        let text = super::read_to_string(&path)?;
        let (allocated, maximum) = parse_file_nr(&text)
            .ok_or_else(|| parse_error(&path, "expected three unsigned integers"))?;
        Ok(vec![
            Family::gauge(
                "node_filefd_allocated",
                "File descriptor statistics: allocated.",
            )
            .with(&[], allocated),
            Family::gauge(
                "node_filefd_maximum",
                "File descriptor statistics: maximum.",
            )
            .with(&[], maximum),
        ]
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn parses_file_nr() {
        assert_eq!(
            parse_file_nr(include_str!(
                "../../tests/fixtures/host/proc/sys/fs/file-nr"
            )),
            Some((414.0, 2466186.0))
        );
        assert_eq!(
            parse_file_nr("1024\t0\t9223372036854775807\n"),
            Some((1024.0, 9223372036854775807.0))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_file_nr("414\t0\n"), None);
        assert_eq!(parse_file_nr("414 0 x"), None);
        assert_eq!(parse_file_nr("1 2 3 4"), None);
        assert_eq!(parse_file_nr(""), None);
    }

    #[test]
    fn collects_fixture() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host");
        let paths = HostPaths {
            procfs: root.join("proc"),
            sysfs: root.join("sys"),
            rootfs: root,
        };
        let out = FilefdCollector::new(paths).collect().unwrap();
        assert_eq!(out.families[0].name, "node_filefd_allocated");
        assert_eq!(out.families[0].samples[0].value, 414.0);
        assert_eq!(out.families[1].name, "node_filefd_maximum");
        assert_eq!(out.families[1].samples[0].value, 2466186.0);
    }
}
