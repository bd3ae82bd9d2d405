//! `cpu` collector: per-CPU time by mode from `/proc/stat` (`node_cpu_seconds_total`,
//! `node_cpu_guest_seconds_total`), with node_exporter's guard against counters going backwards.

use std::collections::BTreeMap;

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// Clock ticks per second of the values in `/proc/stat`. The kernel exports them in USER_HZ,
/// which is 100 on every Linux ABI, so node_exporter hard-codes it as well.
pub const USER_HZ: f64 = 100.0;

/// If a CPU's idle time drops by at least this many seconds the CPU was most likely
/// hot-unplugged and plugged back in, so its remembered values are dropped (node_exporter's
/// `jumpBackSeconds`).
const JUMP_BACK_SECONDS: f64 = 3.0;

/// Seconds one CPU spent in each mode, from a `cpuN` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// Normal processes in user mode (includes `guest`).
    pub user: f64,
    /// Niced processes in user mode (includes `guest_nice`).
    pub nice: f64,
    /// Kernel mode.
    pub system: f64,
    /// Idle.
    pub idle: f64,
    /// Idle while waiting for I/O.
    pub iowait: f64,
    /// Servicing hard interrupts.
    pub irq: f64,
    /// Servicing soft interrupts.
    pub softirq: f64,
    /// Stolen by the hypervisor.
    pub steal: f64,
    /// Running a virtual CPU of a guest.
    pub guest: f64,
    /// Running a niced guest.
    pub guest_nice: f64,
}

impl CpuTimes {
    /// The eight `node_cpu_seconds_total` modes in node_exporter's order.
    fn modes(&self) -> [(&'static str, f64); 8] {
        [
            ("user", self.user),
            ("nice", self.nice),
            ("system", self.system),
            ("idle", self.idle),
            ("iowait", self.iowait),
            ("irq", self.irq),
            ("softirq", self.softirq),
            ("steal", self.steal),
        ]
    }

    fn fields_mut(&mut self) -> [&mut f64; 10] {
        [
            &mut self.user,
            &mut self.nice,
            &mut self.system,
            &mut self.idle,
            &mut self.iowait,
            &mut self.irq,
            &mut self.softirq,
            &mut self.steal,
            &mut self.guest,
            &mut self.guest_nice,
        ]
    }
}

/// Parses the per-CPU lines (`cpu0`, `cpu1`, ...) of `/proc/stat` into seconds per mode,
/// keyed by CPU number. The aggregate `cpu` line is skipped: node_exporter exports only
/// per-CPU series and leaves the sum to PromQL. Fields that older kernels lack (steal, guest,
/// guest_nice) read as zero; a `cpuN` line that is otherwise malformed is an error, because
/// silently dropping one CPU would skew every utilisation query.
pub fn parse_cpu_stat(s: &str) -> Result<BTreeMap<u32, CpuTimes>, String> {
    let mut cpus = BTreeMap::new();
    for line in s.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(id) = name.strip_prefix("cpu") else {
            continue;
        };
        if id.is_empty() {
            continue;
        }
        let id: u32 = id
            .parse()
            .map_err(|_| format!("unexpected CPU name {name:?}"))?;
        let mut times = CpuTimes::default();
        let mut seen = 0;
        for (slot, raw) in times.fields_mut().into_iter().zip(fields) {
            let ticks: u64 = raw
                .parse()
                .map_err(|_| format!("{name}: invalid value {raw:?}"))?;
            *slot = ticks as f64 / USER_HZ;
            seen += 1;
        }
        if seen < 4 {
            return Err(format!(
                "{name}: expected at least 4 values (user nice system idle), got {seen}"
            ));
        }
        if cpus.insert(id, times).is_some() {
            return Err(format!("{name} appears twice"));
        }
    }
    Ok(cpus)
}

/// Folds a new reading into the remembered one so exported counters never decrease.
///
/// Some kernels let individual fields (notably iowait) step backwards; node_exporter then
/// keeps the previous value for that field. A large drop in idle time means the CPU was
/// re-plugged and its history is discarded. CPUs absent from `new` are forgotten so that an
/// offlined CPU stops being reported.
pub fn merge_monotonic(prev: &mut BTreeMap<u32, CpuTimes>, new: &BTreeMap<u32, CpuTimes>) {
    prev.retain(|id, _| new.contains_key(id));
    for (id, n) in new {
        let mut cur = prev.get(id).copied().unwrap_or_default();
        if cur.idle - n.idle >= JUMP_BACK_SECONDS {
            cur = CpuTimes::default();
        }
        let mut n = *n;
        for (c, v) in cur.fields_mut().into_iter().zip(n.fields_mut()) {
            if *v >= *c {
                *c = *v;
            }
        }
        prev.insert(*id, cur);
    }
}

/// Builds the two families from (monotonic) per-CPU times.
pub fn cpu_families(cpus: &BTreeMap<u32, CpuTimes>) -> Vec<Family> {
    let mut seconds = Family::counter(
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
    );
    let mut guest = Family::counter(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
    );
    for (id, t) in cpus {
        let cpu = id.to_string();
        for (mode, v) in t.modes() {
            seconds.push(&[("cpu", &cpu), ("mode", mode)], v);
        }
        // Guest time is also counted in user and nice; it is exported separately so that
        // dashboards do not count it twice.
        guest.push(&[("cpu", &cpu), ("mode", "user")], t.guest);
        guest.push(&[("cpu", &cpu), ("mode", "nice")], t.guest_nice);
    }
    vec![seconds, guest]
}

/// Reads `/proc/stat` and remembers the last exported values per CPU.
pub struct CpuCollector {
    paths: HostPaths,
    last: BTreeMap<u32, CpuTimes>,
}

impl CpuCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        CpuCollector {
            paths,
            last: BTreeMap::new(),
        }
    }
}

impl Collector for CpuCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("stat");
        let text = super::read_to_string(&path)?;
        let cpus = parse_cpu_stat(&text).map_err(|m| parse_error(&path, m))?;
        if cpus.is_empty() {
            return Err(parse_error(&path, "no per-CPU lines"));
        }
        merge_monotonic(&mut self.last, &cpus);
        Ok(cpu_families(&self.last).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    fn value(f: &Family, cpu: &str, mode: &str) -> Option<f64> {
        f.samples
            .iter()
            .find(|s| {
                s.labels.contains(&("cpu".into(), cpu.into()))
                    && s.labels.contains(&("mode".into(), mode.into()))
            })
            .map(|s| s.value)
    }

    #[test]
    fn parses_real_proc_stat() {
        let cpus = parse_cpu_stat(include_str!("../../tests/fixtures/host/proc/stat")).unwrap();
        assert_eq!(cpus.len(), 2);
        let c0 = cpus[&0];
        assert_eq!(c0.user, 95.63);
        assert_eq!(c0.system, 29.92);
        assert_eq!(c0.idle, 375.63);
        assert_eq!(c0.steal, 2.18);
        assert_eq!(c0.guest, 0.0);
    }

    #[test]
    fn old_kernel_without_steal_and_guest() {
        let cpus = parse_cpu_stat("cpu  1 2 3 4 5\ncpu0 1 2 3 4 5 6 7\n").unwrap();
        assert_eq!(cpus[&0].softirq, 0.07);
        assert_eq!(cpus[&0].steal, 0.0);
        assert_eq!(cpus[&0].guest_nice, 0.0);
    }

    #[test]
    fn rejects_malformed_cpu_lines() {
        assert!(parse_cpu_stat("cpu0 1 x 3 4\n").is_err());
        assert!(parse_cpu_stat("cpu0 1 2\n").is_err());
        assert!(parse_cpu_stat("cpuX 1 2 3 4\n").is_err());
        assert!(parse_cpu_stat("cpu0 1 2 3 4\ncpu0 1 2 3 4\n").is_err());
        // Lines that are not per-CPU are not this parser's business.
        assert!(parse_cpu_stat("intr garbage\n\n").unwrap().is_empty());
    }

    #[test]
    fn counters_never_go_backwards_and_replug_resets() {
        let t = |idle: f64, iowait: f64| CpuTimes {
            idle,
            iowait,
            ..Default::default()
        };
        let mut last = BTreeMap::new();
        merge_monotonic(
            &mut last,
            &BTreeMap::from([(0, t(100.0, 5.0)), (1, t(50.0, 1.0))]),
        );
        // iowait steps back a little: keep the old value.
        merge_monotonic(
            &mut last,
            &BTreeMap::from([(0, t(101.0, 4.5)), (1, t(51.0, 1.0))]),
        );
        assert_eq!(last[&0], t(101.0, 5.0));
        // idle drops by more than 3 s: the CPU was re-plugged, start over; CPU 1 went offline.
        merge_monotonic(&mut last, &BTreeMap::from([(0, t(2.0, 0.5))]));
        assert_eq!(last[&0], t(2.0, 0.5));
        assert!(!last.contains_key(&1));
    }

    #[test]
    fn collects_fixture() {
        let mut c = CpuCollector::new(fixture_paths());
        let out = c.collect().unwrap();
        assert_eq!(out.families.len(), 2);
        let secs = &out.families[0];
        assert_eq!(secs.name, "node_cpu_seconds_total");
        assert_eq!(secs.samples.len(), 16);
        assert_eq!(value(secs, "1", "user"), Some(103.24));
        assert_eq!(value(secs, "1", "softirq"), Some(1.02));
        let guest = &out.families[1];
        assert_eq!(guest.samples.len(), 4);
        assert_eq!(value(guest, "0", "nice"), Some(0.0));
    }
}
