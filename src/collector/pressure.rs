//! `pressure` collector: pressure stall information (PSI) from `/proc/pressure/{cpu,io,memory,irq}`
//! as node_exporter's `node_pressure_*_seconds_total` counters.

use std::io;

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// Cumulative stall totals of one PSI file, in microseconds as the kernel prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PsiTotals {
    /// `total=` of the `some` line: time at least one task was stalled.
    pub some: Option<u64>,
    /// `total=` of the `full` line: time all non-idle tasks were stalled at once.
    pub full: Option<u64>,
}

/// Parses one `/proc/pressure/<resource>` file. Only the cumulative `total=` fields are kept;
/// the kernel's own averages are not exported because PromQL's `rate()` recomputes them over
/// any window. Unknown lines are ignored; a `some`/`full` line without a numeric `total=` is an
/// error.
pub fn parse_psi(s: &str) -> Result<PsiTotals, String> {
    let mut out = PsiTotals::default();
    for line in s.lines() {
        let mut fields = line.split_whitespace();
        let slot = match fields.next() {
            Some("some") => &mut out.some,
            Some("full") => &mut out.full,
            _ => continue,
        };
        let total = fields
            .find_map(|f| f.strip_prefix("total="))
            .ok_or_else(|| format!("no total= in {line:?}"))?;
        *slot = Some(
            total
                .parse()
                .map_err(|_| format!("invalid total {total:?} in {line:?}"))?,
        );
    }
    Ok(out)
}

/// One exported series: which resource, which line, and the family it goes to.
struct Series {
    resource: &'static str,
    full: bool,
    name: &'static str,
    help: &'static str,
}

/// node_exporter's series. The cpu `full` line is not exported: at the system level it is
/// meaningless (the kernel prints zeros there only for format compatibility). irq has only a
/// `full` line.
const SERIES: &[Series] = &[
    Series {
        resource: "cpu",
        full: false,
        name: "node_pressure_cpu_waiting_seconds_total",
        help: "Total time in seconds that processes have waited for CPU time",
    },
    Series {
        resource: "io",
        full: false,
        name: "node_pressure_io_waiting_seconds_total",
        help: "Total time in seconds that processes have waited due to IO congestion",
    },
    Series {
        resource: "io",
        full: true,
        name: "node_pressure_io_stalled_seconds_total",
        help: "Total time in seconds no process could make progress due to IO congestion",
    },
    Series {
        resource: "memory",
        full: false,
        name: "node_pressure_memory_waiting_seconds_total",
        help: "Total time in seconds that processes have waited for memory",
    },
    Series {
        resource: "memory",
        full: true,
        name: "node_pressure_memory_stalled_seconds_total",
        help: "Total time in seconds no process could make progress due to memory congestion",
    },
    Series {
        resource: "irq",
        full: true,
        name: "node_pressure_irq_stalled_seconds_total",
        help: "Total time in seconds no process could make progress due to IRQ congestion",
    },
];

/// The resources in the order they are read.
const RESOURCES: &[&str] = &["cpu", "io", "memory", "irq"];

/// Builds the families for the resources that were read (`(resource, totals)` pairs).
/// Errors name the resource whose file lacked a required line.
pub fn psi_families(read: &[(&str, PsiTotals)]) -> Result<Vec<Family>, String> {
    let mut out = Vec::new();
    for s in SERIES {
        let Some((_, totals)) = read.iter().find(|(r, _)| *r == s.resource) else {
            continue;
        };
        let v = if s.full { totals.full } else { totals.some };
        let us = v.ok_or_else(|| {
            format!(
                "{}: missing '{}' line",
                s.resource,
                if s.full { "full" } else { "some" }
            )
        })?;
        out.push(Family::counter(s.name, s.help).with(&[], us as f64 / 1e6));
    }
    Ok(out)
}

const NO_PSI_NOTE: &str = "kernel lacks PSI (/proc/pressure missing); pressure metrics skipped";
const PSI_DISABLED_NOTE: &str =
    "PSI is disabled in this kernel (boot with psi=1 to enable); pressure metrics skipped";

/// Reads `/proc/pressure/*`; a kernel without PSI is reported as a note, not an error.
pub struct PressureCollector {
    paths: HostPaths,
}

impl PressureCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        PressureCollector { paths }
    }
}

fn skipped(note: &str) -> Collection {
    Collection {
        families: vec![],
        note: Some(note.into()),
    }
}

impl Collector for PressureCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        if !self.paths.proc("pressure").is_dir() {
            return Ok(skipped(NO_PSI_NOTE));
        }
        let mut read = Vec::new();
        for res in RESOURCES {
            let path = self.paths.proc(&format!("pressure/{res}"));
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                // irq pressure only exists since Linux 6.1 (and with CONFIG_IRQ_TIME_ACCOUNTING).
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                // With CONFIG_PSI_DEFAULT_DISABLED the files exist but refuse reads.
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EOPNOTSUPP as i32) => {
                    return Ok(skipped(PSI_DISABLED_NOTE));
                }
                Err(source) => return Err(CollectorError::Io { path, source }),
            };
            let totals = parse_psi(&text).map_err(|m| parse_error(&path, m))?;
            read.push((*res, totals));
        }
        if read.is_empty() {
            return Ok(skipped(NO_PSI_NOTE));
        }
        let families =
            psi_families(&read).map_err(|m| parse_error(&self.paths.proc("pressure"), m))?;
        Ok(families.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    #[test]
    fn parses_real_files() {
        let io = parse_psi(include_str!("../../tests/fixtures/host/proc/pressure/io")).unwrap();
        assert_eq!(
            io,
            PsiTotals {
                some: Some(6071779),
                full: Some(4145619)
            }
        );
        let cpu = parse_psi(include_str!("../../tests/fixtures/host/proc/pressure/cpu")).unwrap();
        assert_eq!(cpu.some, Some(26284767));
    }

    #[test]
    fn parses_irq_with_only_full() {
        let irq = parse_psi("full avg10=0.00 avg60=0.00 avg300=0.00 total=1234\n").unwrap();
        assert_eq!(
            irq,
            PsiTotals {
                some: None,
                full: Some(1234)
            }
        );
        let fams = psi_families(&[("irq", irq)]).unwrap();
        assert_eq!(fams[0].name, "node_pressure_irq_stalled_seconds_total");
        assert_eq!(fams[0].samples[0].value, 0.001234);
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(parse_psi("some avg10=0.00 avg60=0.00\n").is_err());
        assert!(parse_psi("full total=-3\n").is_err());
        assert!(parse_psi("some total=abc\n").is_err());
        // A memory file without its full line cannot give memory_stalled.
        let m = parse_psi("some total=5\n").unwrap();
        assert!(psi_families(&[("memory", m)]).is_err());
    }

    #[test]
    fn collects_fixture() {
        let out = PressureCollector::new(fixture_paths()).collect().unwrap();
        assert_eq!(out.note, None);
        let names: Vec<&str> = out.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "node_pressure_cpu_waiting_seconds_total",
                "node_pressure_io_waiting_seconds_total",
                "node_pressure_io_stalled_seconds_total",
                "node_pressure_memory_waiting_seconds_total",
                "node_pressure_memory_stalled_seconds_total",
            ]
        );
        assert_eq!(out.families[0].samples[0].value, 26.284767);
        assert_eq!(out.families[2].samples[0].value, 4.145619);
        assert_eq!(out.families[4].samples[0].value, 0.0);
    }

    #[test]
    fn missing_proc_pressure_is_a_note() {
        let mut p = fixture_paths();
        p.procfs = p.procfs.join("does-not-exist");
        let out = PressureCollector::new(p).collect().unwrap();
        assert!(out.families.is_empty());
        assert_eq!(out.note.as_deref(), Some(NO_PSI_NOTE));
    }
}
