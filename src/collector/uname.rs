//! `uname` collector: `node_uname_info{sysname,release,version,machine,nodename,domainname} 1`,
//! read from `/proc/sys/kernel/*` so that it reports the host (and fixtures) under procfs.

use std::io;

use super::{Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// The fields of `uname(2)` that node_exporter exports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uname {
    /// `sysname`, e.g. `Linux`.
    pub sysname: String,
    /// `release`, e.g. `6.8.0-45-generic`.
    pub release: String,
    /// `version`, e.g. `#45-Ubuntu SMP PREEMPT_DYNAMIC ...`.
    pub version: String,
    /// `machine`, e.g. `x86_64`.
    pub machine: String,
    /// `nodename` (the hostname).
    pub nodename: String,
    /// `domainname` (NIS domain, `(none)` when unset).
    pub domainname: String,
}

/// Cleans one `/proc/sys/kernel/*` value: the kernel appends a newline.
pub fn parse_sysctl_string(s: &str) -> String {
    s.trim_end_matches('\n').to_owned()
}

/// Builds the info family.
pub fn uname_family(u: &Uname) -> Family {
    Family::gauge(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
    )
    .with(
        &[
            ("sysname", &u.sysname),
            ("release", &u.release),
            ("version", &u.version),
            ("machine", &u.machine),
            ("nodename", &u.nodename),
            ("domainname", &u.domainname),
        ],
        1.0,
    )
}

/// Reads the uname fields from procfs.
pub struct UnameCollector {
    paths: HostPaths,
}

impl UnameCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        UnameCollector { paths }
    }

    fn kernel(&self, name: &str) -> Result<String, CollectorError> {
        self.paths
            .read_proc(&format!("sys/kernel/{name}"))
            .map(|s| parse_sysctl_string(&s))
    }

    /// `/proc/sys/kernel/arch` exists only since Linux 6.1; before that the running
    /// process's own `uname()` is the best answer, which is the host's unless this runs under
    /// a foreign-architecture emulator.
    fn machine(&self) -> Result<String, CollectorError> {
        let path = self.paths.proc("sys/kernel/arch");
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(parse_sysctl_string(&s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => nix::sys::utsname::uname()
                .map(|u| u.machine().to_string_lossy().into_owned())
                .map_err(|e| CollectorError::Other(format!("uname(2): {e}"))),
            Err(source) => Err(CollectorError::Io { path, source }),
        }
    }
}

impl Collector for UnameCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let u = Uname {
            sysname: self.kernel("ostype")?,
            release: self.kernel("osrelease")?,
            version: self.kernel("version")?,
            machine: self.machine()?,
            nodename: self.kernel("hostname")?,
            domainname: self.kernel("domainname")?,
        };
        Ok(vec![uname_family(&u)].into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    #[test]
    fn strips_only_the_trailing_newline() {
        assert_eq!(
            parse_sysctl_string("#1 SMP PREEMPT_DYNAMIC @0\n"),
            "#1 SMP PREEMPT_DYNAMIC @0"
        );
        assert_eq!(parse_sysctl_string(""), "");
    }

    #[test]
    fn collects_fixture() {
        let out = UnameCollector::new(fixture_paths()).collect().unwrap();
        let s = &out.families[0].samples[0];
        assert_eq!(s.value, 1.0);
        let label = |k: &str| {
            s.labels
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(label("sysname"), Some("Linux"));
        assert_eq!(label("release"), Some("6.18.44-fc-v657"));
        assert_eq!(label("version"), Some("#1 SMP PREEMPT_DYNAMIC @0"));
        assert_eq!(label("machine"), Some("x86_64"));
        assert_eq!(label("nodename"), Some("fixture-host"));
        assert_eq!(label("domainname"), Some("(none)"));
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let mut p = fixture_paths();
        p.procfs = p.procfs.join("does-not-exist");
        assert!(matches!(
            UnameCollector::new(p).collect(),
            Err(CollectorError::Io { .. })
        ));
    }
}
