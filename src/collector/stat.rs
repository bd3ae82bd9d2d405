//! `stat` collector: boot time, context switches, forks, interrupts and running/blocked
//! process counts from `/proc/stat`, named as node_exporter's stat collector names them.

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// The system-wide lines of `/proc/stat` this collector exports; `None` when the kernel did
/// not print the line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KernelStat {
    /// `btime`: boot time in seconds since the epoch.
    pub boot_time: Option<f64>,
    /// `ctxt`: context switches since boot.
    pub context_switches: Option<f64>,
    /// `processes`: forks since boot.
    pub forks: Option<f64>,
    /// First number of `intr`: interrupts serviced since boot.
    pub interrupts: Option<f64>,
    /// `procs_running`.
    pub procs_running: Option<f64>,
    /// `procs_blocked`.
    pub procs_blocked: Option<f64>,
}

/// Parses the system-wide counters of `/proc/stat`. Lines it does not know (cpu, softirq,
/// future additions) are ignored; a known line with a non-numeric value is an error, since
/// that means the format changed and the value cannot be trusted.
pub fn parse_kernel_stat(s: &str) -> Result<KernelStat, String> {
    let mut out = KernelStat::default();
    for line in s.lines() {
        let mut fields = line.split_whitespace();
        let Some(key) = fields.next() else { continue };
        let slot = match key {
            "btime" => &mut out.boot_time,
            "ctxt" => &mut out.context_switches,
            "processes" => &mut out.forks,
            "intr" => &mut out.interrupts,
            "procs_running" => &mut out.procs_running,
            "procs_blocked" => &mut out.procs_blocked,
            _ => continue,
        };
        let raw = fields.next().unwrap_or("");
        let v: u64 = raw
            .parse()
            .map_err(|_| format!("{key}: invalid value {raw:?}"))?;
        *slot = Some(v as f64);
    }
    if out == KernelStat::default() {
        return Err("none of btime, ctxt, processes, intr, procs_* found".into());
    }
    Ok(out)
}

/// Builds the families for the lines present in `k`.
pub fn stat_families(k: &KernelStat) -> Vec<Family> {
    let defs: [(Option<f64>, Family); 6] = [
        (
            k.boot_time,
            Family::gauge("node_boot_time_seconds", "Node boot time, in unixtime."),
        ),
        (
            k.context_switches,
            Family::counter(
                "node_context_switches_total",
                "Total number of context switches.",
            ),
        ),
        (
            k.forks,
            Family::counter("node_forks_total", "Total number of forks."),
        ),
        (
            k.interrupts,
            Family::counter("node_intr_total", "Total number of interrupts serviced."),
        ),
        (
            k.procs_running,
            Family::gauge(
                "node_procs_running",
                "Number of processes in runnable state.",
            ),
        ),
        (
            k.procs_blocked,
            Family::gauge(
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
            ),
        ),
    ];
    defs.into_iter()
        .filter_map(|(v, f)| v.map(|v| f.with(&[], v)))
        .collect()
}

/// Reads `/proc/stat`.
pub struct StatCollector {
    paths: HostPaths,
}

impl StatCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        StatCollector { paths }
    }
}

impl Collector for StatCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("stat");
        let text = super::read_to_string(&path)?;
        let k = parse_kernel_stat(&text).map_err(|m| parse_error(&path, m))?;
        Ok(stat_families(&k).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    #[test]
    fn parses_real_proc_stat() {
        let k = parse_kernel_stat(include_str!("../../tests/fixtures/host/proc/stat")).unwrap();
        assert_eq!(
            k,
            KernelStat {
                boot_time: Some(1795385047.0),
                context_switches: Some(347905.0),
                forks: Some(7565.0),
                interrupts: Some(221031.0),
                procs_running: Some(1.0),
                procs_blocked: Some(0.0),
            }
        );
    }

    #[test]
    fn missing_lines_are_not_exported() {
        let k = parse_kernel_stat("cpu 1 2 3 4\nbtime 100\n").unwrap();
        let fams = stat_families(&k);
        assert_eq!(fams.len(), 1);
        assert_eq!(fams[0].name, "node_boot_time_seconds");
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(parse_kernel_stat("ctxt lots\n").is_err());
        assert!(parse_kernel_stat("btime\n").is_err());
        assert!(parse_kernel_stat("").is_err());
        assert!(parse_kernel_stat("garbage 1 2 3\n").is_err());
    }

    #[test]
    fn collects_fixture() {
        let out = StatCollector::new(fixture_paths()).collect().unwrap();
        let get = |n: &str| {
            out.families
                .iter()
                .find(|f| f.name == n)
                .map(|f| (f.kind, f.samples[0].value))
        };
        use crate::model::MetricKind::{Counter, Gauge};
        assert_eq!(get("node_boot_time_seconds"), Some((Gauge, 1795385047.0)));
        assert_eq!(
            get("node_context_switches_total"),
            Some((Counter, 347905.0))
        );
        assert_eq!(get("node_forks_total"), Some((Counter, 7565.0)));
        assert_eq!(get("node_intr_total"), Some((Counter, 221031.0)));
        assert_eq!(get("node_procs_running"), Some((Gauge, 1.0)));
        assert_eq!(get("node_procs_blocked"), Some((Gauge, 0.0)));
    }
}
