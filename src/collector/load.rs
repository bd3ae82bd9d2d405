//! `load` collector: `node_load1`, `node_load5`, `node_load15` from `/proc/loadavg`.

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// Reads `/proc/loadavg`.
pub struct LoadCollector {
    paths: HostPaths,
}

impl LoadCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        LoadCollector { paths }
    }
}

/// Parses the three load averages from the contents of `/proc/loadavg`.
pub fn parse_loadavg(s: &str) -> Option<[f64; 3]> {
    let mut it = s.split_whitespace().map(str::parse::<f64>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some([a, b, c]),
        _ => None,
    }
}

impl Collector for LoadCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("loadavg");
        let text = super::read_to_string(&path)?;
        let [l1, l5, l15] =
            parse_loadavg(&text).ok_or_else(|| parse_error(&path, "expected three numbers"))?;
        Ok(vec![
            Family::gauge("node_load1", "1m load average.").with(&[], l1),
            Family::gauge("node_load5", "5m load average.").with(&[], l5),
            Family::gauge("node_load15", "15m load average.").with(&[], l15),
        ]
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loadavg() {
        assert_eq!(
            parse_loadavg("0.21 0.37 0.39 1/187 2718\n"),
            Some([0.21, 0.37, 0.39])
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_loadavg("0.21 x 0.39"), None);
        assert_eq!(parse_loadavg(""), None);
    }
}
