//! `memory` collector: every line of `/proc/meminfo` as a `node_memory_*` gauge, named the way
//! node_exporter's meminfo collector names them (`Active(anon)` -> `node_memory_Active_anon_bytes`).

use std::collections::HashSet;

use super::{Collection, Collector, CollectorError, HostPaths};
use crate::model::{Family, MetricKind};

/// One parsed `/proc/meminfo` line.
#[derive(Debug, Clone, PartialEq)]
pub struct MeminfoField {
    /// Metric name without the `node_memory_` prefix, e.g. `Active_anon_bytes` or
    /// `HugePages_Total`.
    pub name: String,
    /// The value, in bytes for lines with a `kB` unit, else as printed (a page count).
    pub value: f64,
}

/// What [`parse_meminfo`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meminfo {
    /// Fields in file order.
    pub fields: Vec<MeminfoField>,
    /// Lines that could not be parsed and were skipped, verbatim.
    pub skipped: Vec<String>,
}

/// Turns a meminfo key into node_exporter's metric suffix: a parenthesised part becomes an
/// underscore-prefixed part (`Active(anon)` -> `Active_anon`), and `_bytes` is added when the
/// line had a unit. Returns `None` for keys that would not make a valid metric name.
fn metric_suffix(key: &str, has_unit: bool) -> Option<String> {
    let mut name = match (key.find('('), key.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            format!(
                "{}_{}{}",
                &key[..open],
                &key[open + 1..close],
                &key[close + 1..]
            )
        }
        _ => key.to_owned(),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    if has_unit {
        name.push_str("_bytes");
    }
    Some(name)
}

/// Parses `/proc/meminfo`. A line is `Key: value` or `Key: value kB`; kB values are converted
/// to bytes. Lines of any other shape (or a repeated key) are skipped and reported in
/// [`Meminfo::skipped`] rather than failing the whole collection, because one odd line from
/// a patched kernel should not hide `MemAvailable`.
pub fn parse_meminfo(s: &str) -> Meminfo {
    let mut out = Meminfo::default();
    let mut seen = HashSet::new();
    for line in s.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        let parsed = (|| {
            let key = parts[0].strip_suffix(':')?;
            let value: f64 = parts.get(1)?.parse().ok()?;
            let (value, has_unit) = match parts.get(2..)? {
                [] => (value, false),
                ["kB"] => (value * 1024.0, true),
                _ => return None,
            };
            Some(MeminfoField {
                name: metric_suffix(key, has_unit)?,
                value,
            })
        })();
        match parsed {
            Some(f) if seen.insert(f.name.clone()) => out.fields.push(f),
            _ => out.skipped.push(line.to_owned()),
        }
    }
    out
}

/// Builds one gauge per field. node_exporter makes fields ending in `_total` counters; no
/// Linux meminfo key does (`HugePages_Total` is capitalised), but the rule is kept so names and
/// types stay identical if one appears.
pub fn meminfo_families(m: &Meminfo) -> Vec<Family> {
    m.fields
        .iter()
        .map(|f| {
            let kind = if f.name.ends_with("_total") {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            };
            Family::new(
                format!("node_memory_{}", f.name),
                format!("Memory information field {}.", f.name),
                kind,
            )
            .with(&[], f.value)
        })
        .collect()
}

/// Reads `/proc/meminfo`.
pub struct MemoryCollector {
    paths: HostPaths,
}

impl MemoryCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        MemoryCollector { paths }
    }
}

impl Collector for MemoryCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("meminfo");
        let text = super::read_to_string(&path)?;
        let m = parse_meminfo(&text);
        if m.fields.is_empty() {
            return Err(super::parse_error(&path, "no parsable lines"));
        }
        let note = (!m.skipped.is_empty()).then(|| {
            format!(
                "skipped {} unparsable line(s) in {}: {:?}",
                m.skipped.len(),
                path.display(),
                m.skipped
            )
        });
        Ok(Collection {
            families: meminfo_families(&m),
            note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    fn get(m: &Meminfo, name: &str) -> Option<f64> {
        m.fields.iter().find(|f| f.name == name).map(|f| f.value)
    }

    #[test]
    fn parses_real_meminfo() {
        let m = parse_meminfo(include_str!("../../tests/fixtures/host/proc/meminfo"));
        assert!(m.skipped.is_empty(), "{:?}", m.skipped);
        assert_eq!(m.fields.len(), 54);
        assert_eq!(get(&m, "MemTotal_bytes"), Some(24684092.0 * 1024.0));
        assert_eq!(get(&m, "Active_anon_bytes"), Some(1524.0 * 1024.0));
        assert_eq!(get(&m, "Inactive_file_bytes"), Some(2114436.0 * 1024.0));
        assert_eq!(get(&m, "Committed_AS_bytes"), Some(55708.0 * 1024.0));
        assert_eq!(get(&m, "NFS_Unstable_bytes"), Some(0.0));
        assert_eq!(get(&m, "VmallocTotal_bytes"), Some(34359738367.0 * 1024.0));
        assert_eq!(get(&m, "HugePages_Total"), Some(0.0));
        assert_eq!(get(&m, "Hugepagesize_bytes"), Some(2048.0 * 1024.0));
    }

    #[test]
    fn skips_malformed_lines() {
        let m = parse_meminfo(
            "MemTotal: 10 kB\nBroken 5 kB\nMemFree: x kB\nOdd: 1 MB\nBad-Name: 1\n\
             MemTotal: 20 kB\nHugePages_Free: 3\n\n",
        );
        assert_eq!(
            m.fields,
            vec![
                MeminfoField {
                    name: "MemTotal_bytes".into(),
                    value: 10240.0
                },
                MeminfoField {
                    name: "HugePages_Free".into(),
                    value: 3.0
                },
            ]
        );
        assert_eq!(m.skipped.len(), 5);
    }

    #[test]
    fn collects_fixture() {
        let out = MemoryCollector::new(fixture_paths()).collect().unwrap();
        assert_eq!(out.note, None);
        let fam = |n: &str| out.families.iter().find(|f| f.name == n);
        let avail = fam("node_memory_MemAvailable_bytes").unwrap();
        assert_eq!(avail.kind, MetricKind::Gauge);
        assert_eq!(avail.help, "Memory information field MemAvailable_bytes.");
        assert_eq!(avail.samples[0].value, 24254236.0 * 1024.0);
        assert!(fam("node_memory_HugePages_Total").is_some());
        assert!(fam("node_memory_Active_file_bytes").is_some());
    }
}
