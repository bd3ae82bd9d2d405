//! `bonding` collector: configured and MII-up slaves of each Linux bonding interface,
//! `node_bonding_slaves{master}` and `node_bonding_active{master}` (the node-mixin's
//! `NodeBondingDegraded` alert fires when they differ).

use std::io;

use super::{Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// Splits the whitespace-separated interface list of `bonding_masters` or
/// `<bond>/bonding/slaves`.
pub fn parse_interface_list(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// Whether a `mii_status` file says the link is up.
pub fn mii_is_up(s: &str) -> bool {
    s.trim() == "up"
}

/// Slave counts of one bond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondStatus {
    /// Bond interface name.
    pub master: String,
    /// Slaves listed in `bonding/slaves`.
    pub slaves: u64,
    /// Slaves whose MII status is `up`.
    pub active: u64,
}

/// Reads `/sys/class/net/bonding_masters` and each bond's slaves.
pub struct BondingCollector {
    paths: HostPaths,
}

impl BondingCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        BondingCollector { paths }
    }

    /// The MII status of `slave` in `master`. Current kernels link `<bond>/lower_<slave>` to
    /// the slave's directory; older ones used `slave_<slave>`; the slave's own
    /// `bonding_slave` directory is the same data and is tried last.
    fn mii_status(&self, master: &str, slave: &str) -> Result<String, CollectorError> {
        let candidates = [
            format!("class/net/{master}/lower_{slave}/bonding_slave/mii_status"),
            format!("class/net/{master}/slave_{slave}/bonding_slave/mii_status"),
            format!("class/net/{slave}/bonding_slave/mii_status"),
        ];
        let mut last = None;
        for rel in &candidates {
            match self.paths.read_sys(rel) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| CollectorError::Other("no mii_status path".into())))
    }

    /// Counts one bond's slaves. Problems are returned as notes, not errors: one bond being
    /// reconfigured while we read must not hide the others.
    fn bond(&self, master: &str, notes: &mut Vec<String>) -> Option<BondStatus> {
        let slaves = match self
            .paths
            .read_sys(&format!("class/net/{master}/bonding/slaves"))
        {
            Ok(s) => parse_interface_list(&s),
            Err(e) => {
                notes.push(e.to_string());
                return None;
            }
        };
        let mut active = 0;
        for slave in &slaves {
            match self.mii_status(master, slave) {
                Ok(s) if mii_is_up(&s) => active += 1,
                Ok(_) => {}
                // Counted as configured but not active: a slave whose state cannot be read
                // is not known to carry traffic.
                Err(e) => notes.push(e.to_string()),
            }
        }
        Some(BondStatus {
            master: master.to_owned(),
            slaves: slaves.len() as u64,
            active,
        })
    }
}

impl Collector for BondingCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let masters = match self.paths.read_sys("class/net/bonding_masters") {
            Ok(s) => parse_interface_list(&s),
            // The file only exists while the bonding driver is loaded.
            Err(CollectorError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(Collection::default())
            }
            Err(e) => return Err(e),
        };
        let mut notes = Vec::new();
        let mut slaves = Family::gauge(
            "node_bonding_slaves",
            "Number of configured slaves per bonding interface.",
        );
        let mut active = Family::gauge(
            "node_bonding_active",
            "Number of active slaves per bonding interface.",
        );
        for master in &masters {
            if let Some(b) = self.bond(master, &mut notes) {
                slaves.push(&[("master", &b.master)], b.slaves as f64);
                active.push(&[("master", &b.master)], b.active as f64);
            }
        }
        let mut families = vec![slaves, active];
        families.retain(|f| !f.samples.is_empty());
        Ok(Collection {
            families,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    fn values(c: &Collection, name: &str) -> Vec<(String, f64)> {
        c.families
            .iter()
            .filter(|f| f.name == name)
            .flat_map(|f| &f.samples)
            .map(|s| (s.labels[0].1.clone(), s.value))
            .collect()
    }

    #[test]
    fn parses_lists_and_status() {
        assert_eq!(
            parse_interface_list("bond0 bond1\n"),
            vec!["bond0", "bond1"]
        );
        assert_eq!(parse_interface_list("\n"), Vec::<String>::new());
        assert!(mii_is_up("up\n"));
        assert!(!mii_is_up("down\n"));
        assert!(!mii_is_up("going back\n"));
        assert!(!mii_is_up(""));
    }

    #[test]
    fn collects_fixture() {
        let out = BondingCollector::new(fixture_paths()).collect().unwrap();
        assert_eq!(out.note, None);
        // bond0: eth1 up (via lower_eth1), eth2 down (via eth2/bonding_slave); bond1: none.
        assert_eq!(
            values(&out, "node_bonding_slaves"),
            vec![("bond0".to_owned(), 2.0), ("bond1".to_owned(), 0.0)]
        );
        assert_eq!(
            values(&out, "node_bonding_active"),
            vec![("bond0".to_owned(), 1.0), ("bond1".to_owned(), 0.0)]
        );
        assert!(out
            .families
            .iter()
            .all(|f| f.samples[0].labels[0].0 == "master"));
    }

    #[test]
    fn no_bonding_driver_is_empty_not_an_error() {
        let mut paths = fixture_paths();
        paths.sysfs = paths.sysfs.join("nowhere");
        let out = BondingCollector::new(paths).collect().unwrap();
        assert_eq!(out, Collection::default());
    }

    #[test]
    fn unreadable_parts_become_notes() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("class/net");
        std::fs::create_dir_all(net.join("bond0/bonding")).unwrap();
        std::fs::write(net.join("bonding_masters"), "bond0 bondX\n").unwrap();
        std::fs::write(net.join("bond0/bonding/slaves"), "eth7\n").unwrap();
        let paths = HostPaths {
            procfs: dir.path().join("proc"),
            sysfs: dir.path().to_owned(),
            rootfs: dir.path().to_owned(),
        };
        let out = BondingCollector::new(paths).collect().unwrap();
        // bond0 is still reported (its slave counted, not active); bondX has no directory.
        assert_eq!(
            values(&out, "node_bonding_slaves"),
            vec![("bond0".to_owned(), 1.0)]
        );
        assert_eq!(
            values(&out, "node_bonding_active"),
            vec![("bond0".to_owned(), 0.0)]
        );
        let note = out.note.unwrap();
        assert!(note.contains("eth7") && note.contains("bondX"), "{note}");
    }
}
