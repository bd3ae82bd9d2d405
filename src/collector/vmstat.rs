//! `vmstat` collector: the `/proc/vmstat` fields selected by `collectors.vmstat.fields` as
//! untyped `node_vmstat_<field>` metrics, like node_exporter's vmstat collector.

use super::filter::NameFilter;

use super::{Collection, Collector, CollectorError, HostPaths};
use crate::config::VmstatConfig;
use crate::model::{Family, MetricKind};

/// Parses `/proc/vmstat` (`name value` per line) into `(name, value)` pairs in file order.
/// Lines that are not exactly a metric-safe name and an integer are skipped: the file has
/// hundreds of fields and one odd line should not cost the others. Returns the pairs and the
/// number of skipped lines.
pub fn parse_vmstat(s: &str) -> (Vec<(&str, f64)>, usize) {
    let mut out = Vec::with_capacity(256);
    let mut skipped = 0;
    for line in s.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (None, _, _) => {}
            (Some(name), Some(value), None)
                if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                match value.parse::<i64>() {
                    Ok(v) => out.push((name, v as f64)),
                    Err(_) => skipped += 1,
                }
            }
            _ => skipped += 1,
        }
    }
    (out, skipped)
}

/// Builds one untyped family per selected field. node_exporter leaves them untyped because
/// the file mixes counters (`pgfault`) and gauges (`nr_free_pages`) with no marker.
pub fn vmstat_families(fields: &[(&str, f64)], select: &NameFilter) -> Vec<Family> {
    fields
        .iter()
        .filter(|(name, _)| select.is_match(name))
        .map(|(name, v)| {
            Family::new(
                format!("node_vmstat_{name}"),
                format!("/proc/vmstat information field {name}."),
                MetricKind::Untyped,
            )
            .with(&[], *v)
        })
        .collect()
}

/// Reads `/proc/vmstat` and exports the fields matching a regex.
pub struct VmstatCollector {
    paths: HostPaths,
    fields: NameFilter,
}

impl VmstatCollector {
    /// A collector reading under `paths`; fails if `cfg.fields` is not a valid regex.
    pub fn new(paths: HostPaths, cfg: &VmstatConfig) -> Result<Self, CollectorError> {
        let fields = NameFilter::new(&cfg.fields).map_err(|e| {
            CollectorError::Other(format!(
                "collectors.vmstat.fields: invalid regular expression {:?}: {e}",
                cfg.fields
            ))
        })?;
        Ok(VmstatCollector { paths, fields })
    }
}

impl Collector for VmstatCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("vmstat");
        let text = super::read_to_string(&path)?;
        let (fields, skipped) = parse_vmstat(&text);
        if fields.is_empty() {
            return Err(super::parse_error(&path, "no parsable lines"));
        }
        Ok(Collection {
            families: vmstat_families(&fields, &self.fields),
            note: (skipped > 0)
                .then(|| format!("skipped {skipped} unparsable line(s) in {}", path.display())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;
    use crate::config::DEFAULT_VMSTAT_FIELDS;

    #[test]
    fn parses_real_vmstat() {
        let (fields, skipped) = parse_vmstat(include_str!("../../tests/fixtures/host/proc/vmstat"));
        assert_eq!(skipped, 0);
        assert_eq!(fields.len(), 192);
        assert!(fields.contains(&("pgmajfault", 1332.0)));
        assert!(fields.contains(&("pgpgin", 2147485.0)));
    }

    #[test]
    fn skips_malformed_lines() {
        let (fields, skipped) =
            parse_vmstat("pgfault 10\nbroken\npgmajfault x\nsome-field 3\na b c\n\nnr_x -2\n");
        assert_eq!(fields, vec![("pgfault", 10.0), ("nr_x", -2.0)]);
        assert_eq!(skipped, 4);
    }

    #[test]
    fn default_selection_matches_node_exporter() {
        let re = NameFilter::new(DEFAULT_VMSTAT_FIELDS).unwrap();
        let fields: Vec<(&str, f64)> = [
            "pgfault",
            "pgmajfault",
            "pgpgin",
            "pgpgout",
            "pswpin",
            "pswpout",
            "oom_kill",
            "nr_free_pages",
            "pgsteal_kswapd",
        ]
        .iter()
        .map(|n| (*n, 1.0))
        .collect();
        let names: Vec<String> = vmstat_families(&fields, &re)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            [
                "node_vmstat_pgfault",
                "node_vmstat_pgmajfault",
                "node_vmstat_pgpgin",
                "node_vmstat_pgpgout",
                "node_vmstat_pswpin",
                "node_vmstat_pswpout",
                "node_vmstat_oom_kill",
            ]
        );
    }

    #[test]
    fn invalid_regex_is_a_config_error() {
        let cfg = VmstatConfig {
            fields: "^(pg".into(),
            ..Default::default()
        };
        match VmstatCollector::new(fixture_paths(), &cfg) {
            Err(CollectorError::Other(m)) => assert!(m.contains("collectors.vmstat.fields")),
            _ => panic!("expected a config error"),
        }
    }

    #[test]
    fn collects_fixture() {
        let mut c = VmstatCollector::new(fixture_paths(), &VmstatConfig::default()).unwrap();
        let out = c.collect().unwrap();
        assert_eq!(out.note, None);
        let get = |n: &str| {
            out.families
                .iter()
                .find(|f| f.name == n)
                .map(|f| (f.kind, f.samples[0].value))
        };
        assert_eq!(
            get("node_vmstat_pgmajfault"),
            Some((MetricKind::Untyped, 1332.0))
        );
        assert_eq!(
            get("node_vmstat_pgfault"),
            Some((MetricKind::Untyped, 6763041.0))
        );
        assert_eq!(
            get("node_vmstat_oom_kill"),
            Some((MetricKind::Untyped, 0.0))
        );
        assert_eq!(get("node_vmstat_nr_free_pages"), None);
    }
}
