//! `softnet` collector: per-CPU packet-processing counters from `/proc/net/softnet_stat`
//! (`node_softnet_processed_total{cpu}`, `node_softnet_dropped_total{cpu}`,
//! `node_softnet_times_squeezed_total{cpu}` and the newer columns), as node_exporter's softnet
//! collector exports them.
//!
//! The file has one line per online CPU and one hexadecimal column per counter; kernels have
//! added columns over time (see the links in [`parse_softnet`]), so every column past the first
//! nine is optional.

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// One line of `/proc/net/softnet_stat`: one CPU's `softnet_data`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftnetStat {
    /// CPU number: the 13th column since Linux 5.14, the line number before (older kernels
    /// skip offline CPUs, so the line number can then be wrong; it is the best there is).
    pub cpu: u32,
    /// Packets processed.
    pub processed: u32,
    /// Packets dropped because the backlog queue was full.
    pub dropped: u32,
    /// Times `net_rx_action` ran out of budget or time with work left.
    pub time_squeezed: u32,
    /// Collisions taking the device lock while transmitting.
    pub cpu_collision: u32,
    /// Times this CPU was woken by an RPS inter-processor interrupt (Linux 2.6.39+).
    pub received_rps: Option<u32>,
    /// Times the flow limit was reached (Linux 4.18+).
    pub flow_limit_count: Option<u32>,
    /// Packets in the backlog queues (Linux 5.14+).
    pub backlog_len: Option<u32>,
}

/// Fewest columns any kernel prints (Linux 2.6.23).
const MIN_COLUMNS: usize = 9;

/// Parses `/proc/net/softnet_stat`. Column layout, as in prometheus/procfs:
///
/// - 0 processed, 1 dropped, 2 time_squeeze, 3..=7 always 0, 8 cpu_collision
///   (Linux 2.6.23, <https://elixir.bootlin.com/linux/v2.6.23/source/net/core/dev.c#L2347>)
/// - 9 received_rps (2.6.39), 10 flow_limit_count (4.18)
/// - 11 backlog length, 12 CPU id
///   (5.14, <https://elixir.bootlin.com/linux/v5.14/source/net/core/net-procfs.c#L169>)
/// - later kernels add more (input and process queue lengths); they are ignored.
///
/// Every counter is a 32-bit hexadecimal number; a line with fewer than nine columns or a
/// column that is not one is an error.
pub fn parse_softnet(s: &str) -> Result<Vec<SoftnetStat>, String> {
    let mut out = Vec::new();
    for (n, line) in s.lines().enumerate() {
        let columns: Vec<&str> = line.split_whitespace().collect();
        if columns.is_empty() {
            continue;
        }
        if columns.len() < MIN_COLUMNS {
            return Err(format!(
                "line {}: {} columns, expected at least {MIN_COLUMNS}",
                n + 1,
                columns.len()
            ));
        }
        let hex = |i: usize| -> Result<Option<u32>, String> {
            columns
                .get(i)
                .map(|c| {
                    u32::from_str_radix(c, 16).map_err(|_| {
                        format!("line {}: column {}: invalid hex value {c:?}", n + 1, i + 1)
                    })
                })
                .transpose()
        };
        let required = |i: usize| hex(i).map(Option::unwrap_or_default);
        let line_number = u32::try_from(out.len()).map_err(|_| "too many lines".to_owned())?;
        out.push(SoftnetStat {
            cpu: hex(12)?.unwrap_or(line_number),
            processed: required(0)?,
            dropped: required(1)?,
            time_squeezed: required(2)?,
            cpu_collision: required(8)?,
            received_rps: hex(9)?,
            flow_limit_count: hex(10)?,
            backlog_len: hex(11)?,
        });
    }
    Ok(out)
}

/// Builds the families, one sample per CPU each. The help texts are node_exporter's (without a
/// final period, as there). A column the kernel does not print yields no family at all, where
/// node_exporter would report 0 for every CPU.
pub fn softnet_families(stats: &[SoftnetStat]) -> Vec<Family> {
    type Get = fn(&SoftnetStat) -> Option<u32>;
    let specs: [(&str, &str, bool, Get); 7] = [
        (
            "node_softnet_processed_total",
            "Number of processed packets",
            true,
            |s| Some(s.processed),
        ),
        (
            "node_softnet_dropped_total",
            "Number of dropped packets",
            true,
            |s| Some(s.dropped),
        ),
        (
            "node_softnet_times_squeezed_total",
            "Number of times processing packets ran out of quota",
            true,
            |s| Some(s.time_squeezed),
        ),
        (
            "node_softnet_cpu_collision_total",
            "Number of collision occur while obtaining device lock while transmitting",
            true,
            |s| Some(s.cpu_collision),
        ),
        (
            "node_softnet_received_rps_total",
            "Number of times cpu woken up received_rps",
            true,
            |s| s.received_rps,
        ),
        (
            "node_softnet_flow_limit_count_total",
            "Number of times flow limit has been reached",
            true,
            |s| s.flow_limit_count,
        ),
        (
            "node_softnet_backlog_len",
            "Softnet backlog status",
            false,
            |s| s.backlog_len,
        ),
    ];
    specs
        .iter()
        .map(|(name, help, counter, get)| {
            let mut family = if *counter {
                Family::counter(*name, *help)
            } else {
                Family::gauge(*name, *help)
            };
            for s in stats {
                if let Some(v) = get(s) {
                    family.push(&[("cpu", &s.cpu.to_string())], f64::from(v));
                }
            }
            family
        })
        .filter(|f| !f.samples.is_empty())
        .collect()
}

/// Reads `/proc/net/softnet_stat`.
pub struct SoftnetCollector {
    paths: HostPaths,
}

impl SoftnetCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        SoftnetCollector { paths }
    }
}

impl Collector for SoftnetCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("net/softnet_stat");
        let text = super::read_to_string(&path)?;
        let stats = parse_softnet(&text).map_err(|m| parse_error(&path, m))?;
        // Every running kernel has at least one CPU, so an empty file means a broken read.
        if stats.is_empty() {
            return Err(parse_error(&path, "no CPU lines"));
        }
        Ok(softnet_families(&stats).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;
    use crate::model::MetricKind;

    const SOFTNET: &str = include_str!("../../tests/fixtures/host/proc/net/softnet_stat");

    #[test]
    fn parses_real_softnet_stat() {
        // Linux 6.x: 15 columns, CPU id in column 13.
        let stats = parse_softnet(SOFTNET).unwrap();
        assert_eq!(
            stats,
            vec![
                SoftnetStat {
                    cpu: 0,
                    processed: 0x341,
                    dropped: 0,
                    time_squeezed: 1,
                    cpu_collision: 0,
                    received_rps: Some(0),
                    flow_limit_count: Some(0),
                    backlog_len: Some(0),
                },
                SoftnetStat {
                    cpu: 1,
                    processed: 0x1a01,
                    dropped: 0,
                    time_squeezed: 0,
                    cpu_collision: 0,
                    received_rps: Some(0),
                    flow_limit_count: Some(0),
                    backlog_len: Some(0),
                },
            ]
        );
    }

    #[test]
    fn cpu_id_comes_from_column_13_when_present() {
        // CPU 1 offline: the second line is CPU 2.
        let text = "1 0 0 0 0 0 0 0 0 0 0 0 0\n2 0 0 0 0 0 0 0 0 0 0 0 2\n";
        let cpus: Vec<u32> = parse_softnet(text).unwrap().iter().map(|s| s.cpu).collect();
        assert_eq!(cpus, [0, 2]);
    }

    #[test]
    fn old_kernels_have_fewer_columns() {
        // Linux 2.6.23: nine columns, CPU = line number, no newer counters.
        let text = "0000000a 00000001 00000002 0 0 0 0 0 00000003\n\
                    0000000b 00000000 00000000 0 0 0 0 0 00000000\n";
        let stats = parse_softnet(text).unwrap();
        assert_eq!(
            stats[0],
            SoftnetStat {
                cpu: 0,
                processed: 10,
                dropped: 1,
                time_squeezed: 2,
                cpu_collision: 3,
                received_rps: None,
                flow_limit_count: None,
                backlog_len: None,
            }
        );
        assert_eq!(stats[1].cpu, 1);
        let names: Vec<String> = softnet_families(&stats)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            [
                "node_softnet_processed_total",
                "node_softnet_dropped_total",
                "node_softnet_times_squeezed_total",
                "node_softnet_cpu_collision_total",
            ]
        );
    }

    #[test]
    fn rejects_malformed_softnet_stat() {
        let cases = [
            ("00000001 00000002\n", "2 columns"),
            (
                "0000000g 0 0 0 0 0 0 0 0\n",
                "column 1: invalid hex value \"0000000g\"",
            ),
            ("1 0 0 0 0 0 0 0 0 0 0 0 zz\n", "column 13"),
            // Larger than the kernel's unsigned int.
            ("100000000 0 0 0 0 0 0 0 0\n", "invalid hex"),
            ("-1 0 0 0 0 0 0 0 0\n", "invalid hex"),
        ];
        for (input, want) in cases {
            match parse_softnet(input) {
                Err(e) => assert!(e.contains(want), "{input:?}: {e}"),
                Ok(s) => panic!("{input:?} parsed: {s:?}"),
            }
        }
        assert_eq!(parse_softnet("\n").unwrap(), vec![]);
    }

    #[test]
    fn collects_fixture() {
        let out = SoftnetCollector::new(fixture_paths()).collect().unwrap();
        let find = |n: &str| out.families.iter().find(|f| f.name == n).unwrap();
        let processed = find("node_softnet_processed_total");
        assert_eq!(processed.kind, MetricKind::Counter);
        assert_eq!(processed.help, "Number of processed packets");
        let samples: Vec<(String, f64)> = processed
            .samples
            .iter()
            .map(|s| (s.labels[0].1.clone(), s.value))
            .collect();
        assert_eq!(samples, [("0".into(), 833.0), ("1".into(), 6657.0)]);
        assert_eq!(find("node_softnet_backlog_len").kind, MetricKind::Gauge);
        assert_eq!(out.families.len(), 7);
    }

    #[test]
    fn empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("net")).unwrap();
        std::fs::write(dir.path().join("net/softnet_stat"), "").unwrap();
        let paths = HostPaths {
            procfs: dir.path().to_owned(),
            sysfs: dir.path().to_owned(),
            rootfs: dir.path().to_owned(),
        };
        assert!(matches!(
            SoftnetCollector::new(paths).collect(),
            Err(CollectorError::Parse { .. })
        ));
    }
}
