//! `arp` collector: `node_arp_entries{device}`, the number of IPv4 neighbour (ARP) table
//! entries per interface, from `/proc/net/arp`, as node_exporter's arp collector exports it.
//!
//! Like node_exporter, a device appears only while it has entries: there is no sample with 0.

use std::collections::BTreeMap;

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// Columns of a data line: IP address, HW type, Flags, HW address, Mask, Device.
const DATA_COLUMNS: usize = 6;

/// Parses `/proc/net/arp` into entry counts per device, sorted by device name.
///
/// The first line is a header (`IP address  HW type  Flags ...`). Every other non-empty line
/// must have exactly six columns, as prometheus/procfs requires: the device is the last column,
/// and a line of another width would make "last column" a guess. Entries are counted whatever
/// their state (incomplete ones included), which is what the file lists and what
/// node_exporter counts.
pub fn parse_arp(s: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut counts = BTreeMap::new();
    for (n, line) in s.lines().enumerate() {
        if n == 0 && line.starts_with("IP address") {
            continue;
        }
        let columns: Vec<&str> = line.split_whitespace().collect();
        match columns.as_slice() {
            [] => {}
            [_, _, _, _, _, device] => *counts.entry((*device).to_owned()).or_insert(0) += 1,
            _ => {
                return Err(format!(
                    "line {}: {} columns, expected {DATA_COLUMNS}: {line:?}",
                    n + 1,
                    columns.len()
                ))
            }
        }
    }
    Ok(counts)
}

/// Builds `node_arp_entries` from the counts.
pub fn arp_family(counts: &BTreeMap<String, u64>) -> Family {
    let mut family = Family::gauge("node_arp_entries", "ARP entries by device");
    for (device, n) in counts {
        family.push(&[("device", device)], *n as f64);
    }
    family
}

/// Reads `/proc/net/arp`.
pub struct ArpCollector {
    paths: HostPaths,
}

impl ArpCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        ArpCollector { paths }
    }
}

impl Collector for ArpCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("net/arp");
        // A kernel built without IPv4 has no ARP table; that is not a failure.
        let Some(text) = super::read_optional(&path)? else {
            return Ok(Collection {
                families: vec![],
                note: Some(format!("{} not found; ARP metrics skipped", path.display())),
            });
        };
        let counts = parse_arp(&text).map_err(|m| parse_error(&path, m))?;
        Ok(vec![arp_family(&counts)].into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;
    use crate::model::MetricKind;

    const ARP: &str = include_str!("../../tests/fixtures/host/proc/net/arp");
    const HEADER: &str =
        "IP address       HW type     Flags       HW address            Mask     Device\n";

    #[test]
    fn parses_real_arp() {
        let counts = parse_arp(ARP).unwrap();
        assert_eq!(counts, BTreeMap::from([("eth0".to_owned(), 1)]));
    }

    #[test]
    fn counts_per_device_including_incomplete_entries() {
        let text = format!(
            "{HEADER}\
             10.0.0.1         0x1         0x2         52:54:00:12:34:56     *        eth0\n\
             10.0.0.2         0x1         0x0         00:00:00:00:00:00     *        eth0\n\
             192.168.1.1      0x1         0x2         52:54:00:ab:cd:ef     *        br-lan\n"
        );
        assert_eq!(
            parse_arp(&text).unwrap(),
            BTreeMap::from([("br-lan".to_owned(), 1), ("eth0".to_owned(), 2)])
        );
        // Only the header: no entries, no error.
        assert!(parse_arp(HEADER).unwrap().is_empty());
        assert!(parse_arp("").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "10.0.0.1 0x1 0x2 52:54:00:12:34:56 *\n",
            "10.0.0.1 0x1 0x2 52:54:00:12:34:56 * eth0 extra\n",
        ] {
            let err = parse_arp(&format!("{HEADER}{bad}")).unwrap_err();
            assert!(err.starts_with("line 2:"), "{err}");
        }
        // A header that is not on the first line is not skipped.
        assert!(parse_arp(&format!("\n{HEADER}")).is_err());
    }

    #[test]
    fn collects_fixture() {
        let out = ArpCollector::new(fixture_paths()).collect().unwrap();
        assert_eq!(out.note, None);
        let f = &out.families[0];
        assert_eq!(
            (f.name.as_str(), f.kind, f.help.as_str()),
            (
                "node_arp_entries",
                MetricKind::Gauge,
                "ARP entries by device"
            )
        );
        assert_eq!(f.samples.len(), 1);
        assert_eq!(
            f.samples[0].labels,
            vec![("device".to_owned(), "eth0".to_owned())]
        );
        assert_eq!(f.samples[0].value, 1.0);
    }

    #[test]
    fn missing_file_is_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths {
            procfs: dir.path().to_owned(),
            sysfs: dir.path().to_owned(),
            rootfs: dir.path().to_owned(),
        };
        let out = ArpCollector::new(paths).collect().unwrap();
        assert!(out.families.is_empty());
        assert!(out.note.unwrap().contains("net/arp"));
    }
}
