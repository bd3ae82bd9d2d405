//! `sockstat` collector: socket counts per protocol from `/proc/net/sockstat` and
//! `/proc/net/sockstat6` (`node_sockstat_sockets_used`, `node_sockstat_TCP_inuse`,
//! `node_sockstat_TCP_mem_bytes`, `node_sockstat_TCP6_inuse`, ...), named and typed as
//! node_exporter's sockstat collector names them.

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// One protocol line, e.g. `TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 0`. Only `inuse` is on
/// every line; the others exist for some protocols only, hence `Option`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SockstatProtocol {
    /// Protocol as the kernel names it: `TCP`, `UDP`, `UDPLITE`, `RAW`, `FRAG`, `TCP6`, ...
    pub protocol: String,
    /// Sockets in use.
    pub inuse: i64,
    /// Orphaned sockets (TCP).
    pub orphan: Option<i64>,
    /// Sockets in TIME_WAIT (TCP).
    pub tw: Option<i64>,
    /// Allocated sockets (TCP).
    pub alloc: Option<i64>,
    /// Memory in pages (TCP, UDP).
    pub mem: Option<i64>,
    /// Memory in bytes (FRAG).
    pub memory: Option<i64>,
}

/// The contents of one sockstat file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sockstat {
    /// `sockets: used N`; only the IPv4 file has it.
    pub used: Option<i64>,
    /// The protocol lines in file order.
    pub protocols: Vec<SockstatProtocol>,
}

/// Parses `/proc/net/sockstat` or `/proc/net/sockstat6`: `PROTO: key value key value ...` per
/// line. Like prometheus/procfs, a line needs a protocol and at least one pair, and every value
/// must be an integer; unknown keys are ignored, so a kernel that adds one still parses. A
/// protocol listed twice is an error, because it would export the same metric twice.
pub fn parse_sockstat(s: &str) -> Result<Sockstat, String> {
    let mut stat = Sockstat::default();
    for (n, line) in s.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some((first, kvs)) = fields.split_first() else {
            continue;
        };
        let protocol = first
            .strip_suffix(':')
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("line {}: no \"PROTOCOL:\" prefix in {line:?}", n + 1))?;
        if kvs.is_empty() || kvs.len() % 2 != 0 {
            return Err(format!(
                "line {}: expected key/value pairs after {protocol:?}: {line:?}",
                n + 1
            ));
        }
        let mut p = SockstatProtocol {
            protocol: protocol.to_owned(),
            ..Default::default()
        };
        let mut used = None;
        for pair in kvs.chunks_exact(2) {
            let (key, value) = (pair[0], pair[1]);
            let value: i64 = value.parse().map_err(|_| {
                format!("line {}: {protocol} {key}: invalid value {value:?}", n + 1)
            })?;
            match key {
                "inuse" => p.inuse = value,
                "orphan" => p.orphan = Some(value),
                "tw" => p.tw = Some(value),
                "alloc" => p.alloc = Some(value),
                "mem" => p.mem = Some(value),
                "memory" => p.memory = Some(value),
                "used" => used = Some(value),
                _ => {}
            }
        }
        if protocol == "sockets" {
            stat.used = used;
        } else if stat.protocols.iter().any(|q| q.protocol == protocol) {
            return Err(format!("line {}: protocol {protocol} listed twice", n + 1));
        } else {
            stat.protocols.push(p);
        }
    }
    Ok(stat)
}

/// Whether `s` can be used inside a metric name as is.
fn is_name_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Builds the families of both files, in node_exporter's order: `sockets_used`, then per
/// protocol `inuse`, `orphan`, `tw`, `alloc`, `mem`, `memory` and `mem_bytes` (= `mem` ×
/// `page_size`), each only where the kernel reports it. A protocol name that cannot be part of
/// a metric name is skipped.
pub fn sockstat_families(
    v4: Option<&Sockstat>,
    v6: Option<&Sockstat>,
    page_size: u64,
) -> Vec<Family> {
    let mut out = Vec::new();
    if let Some(used) = v4.and_then(|s| s.used) {
        out.push(
            Family::gauge(
                "node_sockstat_sockets_used",
                "Number of IPv4 sockets in use.",
            )
            .with(&[], used as f64),
        );
    }
    for p in v4
        .into_iter()
        .chain(v6)
        .flat_map(|s| &s.protocols)
        .filter(|p| is_name_safe(&p.protocol))
    {
        let mem_bytes = p.mem.map(|m| m as f64 * page_size as f64);
        let values = [
            ("inuse", Some(p.inuse as f64)),
            ("orphan", p.orphan.map(|v| v as f64)),
            ("tw", p.tw.map(|v| v as f64)),
            ("alloc", p.alloc.map(|v| v as f64)),
            ("mem", p.mem.map(|v| v as f64)),
            ("memory", p.memory.map(|v| v as f64)),
            ("mem_bytes", mem_bytes),
        ];
        for (state, value) in values {
            if let Some(v) = value {
                out.push(
                    Family::gauge(
                        format!("node_sockstat_{}_{state}", p.protocol),
                        format!("Number of {} sockets in state {state}.", p.protocol),
                    )
                    .with(&[], v),
                );
            }
        }
    }
    out
}

/// The system page size, which `mem` is counted in.
fn page_size() -> Result<u64, CollectorError> {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => Ok(n as u64),
        Ok(_) => Err(CollectorError::Other(
            "sysconf(_SC_PAGESIZE) gave no page size".into(),
        )),
        Err(e) => Err(CollectorError::Other(format!("sysconf(_SC_PAGESIZE): {e}"))),
    }
}

/// Reads both sockstat files; either may be missing (a kernel without IPv6, or without IPv4),
/// which skips its metrics with a note rather than failing.
pub struct SockstatCollector {
    paths: HostPaths,
}

impl SockstatCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        SockstatCollector { paths }
    }

    fn read(
        &self,
        rel: &str,
        missing: &mut Vec<String>,
    ) -> Result<Option<Sockstat>, CollectorError> {
        let path = self.paths.proc(rel);
        match super::read_optional(&path)? {
            Some(text) => parse_sockstat(&text)
                .map(Some)
                .map_err(|m| parse_error(&path, m)),
            None => {
                missing.push(path.display().to_string());
                Ok(None)
            }
        }
    }
}

impl Collector for SockstatCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let mut missing = Vec::new();
        let v4 = self.read("net/sockstat", &mut missing)?;
        let v6 = self.read("net/sockstat6", &mut missing)?;
        Ok(Collection {
            families: sockstat_families(v4.as_ref(), v6.as_ref(), page_size()?),
            note: (!missing.is_empty())
                .then(|| format!("{} not found; skipped", missing.join(" and "))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;
    use crate::model::MetricKind;

    const SOCKSTAT: &str = include_str!("../../tests/fixtures/host/proc/net/sockstat");
    const SOCKSTAT6: &str = include_str!("../../tests/fixtures/host/proc/net/sockstat6");

    #[test]
    fn parses_real_sockstat() {
        let s = parse_sockstat(SOCKSTAT).unwrap();
        assert_eq!(s.used, Some(16));
        let names: Vec<&str> = s.protocols.iter().map(|p| p.protocol.as_str()).collect();
        assert_eq!(names, ["TCP", "UDP", "UDPLITE", "RAW", "FRAG"]);
        assert_eq!(
            s.protocols[0],
            SockstatProtocol {
                protocol: "TCP".into(),
                inuse: 1,
                orphan: Some(0),
                tw: Some(0),
                alloc: Some(1),
                mem: Some(90),
                memory: None,
            }
        );
        assert_eq!(s.protocols[4].memory, Some(0));
        assert_eq!(s.protocols[4].mem, None);
    }

    #[test]
    fn parses_real_sockstat6() {
        let s = parse_sockstat(SOCKSTAT6).unwrap();
        assert_eq!(s.used, None);
        let names: Vec<&str> = s.protocols.iter().map(|p| p.protocol.as_str()).collect();
        assert_eq!(names, ["TCP6", "UDP6", "UDPLITE6", "RAW6", "FRAG6"]);
    }

    #[test]
    fn rejects_malformed_sockstat() {
        let cases = [
            ("TCP: inuse\n", "key/value pairs"),
            ("TCP:\n", "key/value pairs"),
            ("TCP: inuse x\n", "invalid value \"x\""),
            ("TCP inuse 1\n", "prefix"),
            (": inuse 1\n", "prefix"),
            ("TCP: inuse 1\nTCP: inuse 2\n", "listed twice"),
        ];
        for (input, want) in cases {
            match parse_sockstat(input) {
                Err(e) => assert!(e.contains(want), "{input:?}: {e}"),
                Ok(s) => panic!("{input:?} parsed: {s:?}"),
            }
        }
        // Unknown keys are ignored; empty lines and an empty file are fine.
        let s = parse_sockstat("\nTCP: inuse 3 newkey 7\n").unwrap();
        assert_eq!(s.protocols[0].inuse, 3);
        assert_eq!(parse_sockstat("").unwrap(), Sockstat::default());
    }

    #[test]
    fn mem_bytes_is_mem_times_page_size() {
        let v4 =
            parse_sockstat("sockets: used 5\nTCP: inuse 2 mem 3\nUDP: inuse 1 mem 4\n").unwrap();
        let families = sockstat_families(Some(&v4), None, 4096);
        let got: Vec<(&str, f64)> = families
            .iter()
            .map(|f| (f.name.as_str(), f.samples[0].value))
            .collect();
        assert_eq!(
            got,
            [
                ("node_sockstat_sockets_used", 5.0),
                ("node_sockstat_TCP_inuse", 2.0),
                ("node_sockstat_TCP_mem", 3.0),
                ("node_sockstat_TCP_mem_bytes", 12288.0),
                ("node_sockstat_UDP_inuse", 1.0),
                ("node_sockstat_UDP_mem", 4.0),
                ("node_sockstat_UDP_mem_bytes", 16384.0),
            ]
        );
        assert!(families.iter().all(|f| f.kind == MetricKind::Gauge));
        assert_eq!(
            families[3].help,
            "Number of TCP sockets in state mem_bytes."
        );
    }

    #[test]
    fn page_size_is_known() {
        let p = page_size().unwrap();
        assert!(p >= 4096 && p.is_power_of_two(), "{p}");
    }

    #[test]
    fn collects_fixture() {
        let out = SockstatCollector::new(fixture_paths()).collect().unwrap();
        assert_eq!(out.note, None);
        let names: Vec<&str> = out.families.iter().map(|f| f.name.as_str()).collect();
        for want in [
            "node_sockstat_sockets_used",
            "node_sockstat_TCP_alloc",
            "node_sockstat_TCP_mem_bytes",
            "node_sockstat_UDP_mem_bytes",
            "node_sockstat_FRAG_memory",
            "node_sockstat_TCP6_inuse",
            "node_sockstat_FRAG6_inuse",
        ] {
            assert!(names.contains(&want), "{want} missing");
        }
        assert!(!names.contains(&"node_sockstat_FRAG_mem_bytes"));
    }

    #[test]
    fn missing_files_are_a_note_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("net")).unwrap();
        std::fs::write(dir.path().join("net/sockstat"), SOCKSTAT).unwrap();
        let paths = HostPaths {
            procfs: dir.path().to_owned(),
            sysfs: dir.path().to_owned(),
            rootfs: dir.path().to_owned(),
        };
        let out = SockstatCollector::new(paths).collect().unwrap();
        assert!(out.note.unwrap().contains("sockstat6"));
        assert!(out
            .families
            .iter()
            .any(|f| f.name == "node_sockstat_TCP_inuse"));
        assert!(!out.families.iter().any(|f| f.name.contains("6_")));
    }
}
