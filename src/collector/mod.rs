//! Collectors: the [`Collector`] trait, the registry that builds enabled collectors from the
//! config (one explicit `match`, no macro magic), shared helpers for reading `/proc` and `/sys`
//! under configurable roots, and the per-collector scheduler in [`scheduler`].

pub mod scheduler;

pub mod arp;
pub mod bonding;
pub mod conntrack;
pub mod cpu;
pub mod diskstats;
pub mod exec;
pub mod filefd;
pub mod filesystem;
pub mod filter;
pub mod kubernetes;
pub mod load;
pub mod mdadm;
pub mod memory;
pub mod netdev;
pub mod netstat;
pub mod os;
pub mod pressure;
pub mod probe;
pub mod process;
pub mod quantum;
pub mod sockstat;
pub mod softnet;
pub mod stat;
pub mod systemd;
pub mod textfile;
pub mod threads;
pub mod time;
pub mod timex;
pub mod uname;
pub mod vmstat;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BasicCollectorConfig, Config, HumanDuration, PathsConfig};
use crate::model::Family;

/// Why one collection failed. The scheduler records it in `/health` and in
/// `automon_collector_success`; it never propagates further.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file had an unexpected shape.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Anything else, described for an operator.
    #[error("{0}")]
    Other(String),
}

/// What one successful collection returns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Collection {
    /// The metric families.
    pub families: Vec<Family>,
    /// Something an operator should know that is not a failure, e.g. "kernel lacks PSI".
    pub note: Option<String>,
}

impl From<Vec<Family>> for Collection {
    fn from(families: Vec<Family>) -> Self {
        Collection {
            families,
            note: None,
        }
    }
}

/// A source of metrics. `collect` runs on a blocking thread under a deadline, so it may do
/// plain blocking I/O; `&mut self` lets collectors keep state between runs (previous
/// counters, cached documents). It must not retry internally: the next tick is the retry.
pub trait Collector: Send + 'static {
    /// Collects once.
    fn collect(&mut self) -> Result<Collection, CollectorError>;
}

/// Where the host's pseudo filesystems are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// procfs mount point (`/proc`).
    pub procfs: PathBuf,
    /// sysfs mount point (`/sys`).
    pub sysfs: PathBuf,
    /// Host root (`/`).
    pub rootfs: PathBuf,
}

impl HostPaths {
    /// From the `[paths]` config table.
    pub fn from_config(p: &PathsConfig) -> Self {
        HostPaths {
            procfs: p.procfs.clone(),
            sysfs: p.sysfs.clone(),
            rootfs: p.rootfs.clone(),
        }
    }

    /// A path under procfs, e.g. `proc("net/dev")`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.procfs.join(rel)
    }

    /// A path under sysfs.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }

    /// Maps an absolute host path (e.g. a mount point) under rootfs.
    pub fn root(&self, abs: &Path) -> PathBuf {
        match abs.strip_prefix("/") {
            Ok(rel) => self.rootfs.join(rel),
            Err(_) => self.rootfs.join(abs),
        }
    }

    /// Reads a procfs file to a string.
    pub fn read_proc(&self, rel: &str) -> Result<String, CollectorError> {
        read_to_string(&self.proc(rel))
    }

    /// Reads a sysfs file to a string.
    pub fn read_sys(&self, rel: &str) -> Result<String, CollectorError> {
        read_to_string(&self.sys(rel))
    }
}

/// The fixture `/proc` + `/sys` tree under `tests/fixtures/host`, for collector tests.
#[cfg(test)]
pub(crate) fn fixture_paths() -> HostPaths {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host");
    HostPaths {
        procfs: root.join("proc"),
        sysfs: root.join("sys"),
        rootfs: root,
    }
}

/// Reads a file, mapping errors to [`CollectorError::Io`] with the path.
pub fn read_to_string(path: &Path) -> Result<String, CollectorError> {
    read_small_file(path).map_err(|source| CollectorError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a whole procfs or sysfs file into a string.
///
/// Why not `std::fs::read_to_string`: it asks the file's size first (a `statx`, and these
/// files report 0 anyway) and starts with a small buffer; collectors read a few hundred such
/// files a second at a short interval.
fn read_small_file(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::with_capacity(4096);
    // `Take` hides the `File`, so no size hint is asked for.
    file.take(u64::MAX).read_to_string(&mut text)?;
    Ok(text)
}

/// Reads a file that may legitimately be absent (`/proc/net/snmp6` without IPv6, say):
/// `Ok(None)` if it does not exist, any other error as [`CollectorError::Io`].
pub fn read_optional(path: &Path) -> Result<Option<String>, CollectorError> {
    match read_small_file(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CollectorError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A parse error for `path`.
pub fn parse_error(path: &Path, message: impl Into<String>) -> CollectorError {
    CollectorError::Parse {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Builds a collector; called at start and again if a previous instance panicked.
pub type Factory = Arc<dyn Fn() -> Result<Box<dyn Collector>, CollectorError> + Send + Sync>;

/// An enabled collector with its schedule, as the scheduler needs it.
#[derive(Clone)]
pub struct CollectorSpec {
    /// Collector name (also the config key and the `collector` label).
    pub name: String,
    /// Time between collections.
    pub interval: Duration,
    /// Deadline of one collection.
    pub timeout: Duration,
    /// Builds the collector.
    pub factory: Factory,
}

impl std::fmt::Debug for CollectorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorSpec")
            .field("name", &self.name)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Names of the host collectors, in the order they are listed everywhere.
pub const HOST_COLLECTORS: &[&str] = &[
    "cpu",
    "stat",
    "memory",
    "load",
    "pressure",
    "diskstats",
    "filesystem",
    "netdev",
    "netstat",
    "sockstat",
    "softnet",
    "arp",
    "filefd",
    "conntrack",
    "timex",
    "vmstat",
    "mdadm",
    "bonding",
    "time",
    "os",
    "uname",
    "textfile",
];

fn schedule(
    cfg: &Config,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
) -> (Duration, Duration) {
    let interval = interval.unwrap_or(cfg.collectors.default_interval).0;
    let timeout = timeout.unwrap_or(cfg.collectors.default_timeout).0;
    // A deadline longer than the interval would let runs overlap; the scheduler never runs
    // two collections of one collector at once, so cap it.
    (interval, timeout.min(interval))
}

fn basic<C, F>(cfg: &Config, name: &str, c: &BasicCollectorConfig, make: F) -> Option<CollectorSpec>
where
    C: Collector,
    F: Fn() -> Result<C, CollectorError> + Send + Sync + 'static,
{
    if !c.enabled {
        return None;
    }
    let (interval, timeout) = schedule(cfg, c.interval, c.timeout);
    Some(CollectorSpec {
        name: name.to_owned(),
        interval,
        timeout,
        factory: Arc::new(move || make().map(|c| Box::new(c) as Box<dyn Collector>)),
    })
}

fn spec<C, F>(
    cfg: &Config,
    name: &str,
    enabled: bool,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    make: F,
) -> Option<CollectorSpec>
where
    C: Collector,
    F: Fn() -> Result<C, CollectorError> + Send + Sync + 'static,
{
    basic(
        cfg,
        name,
        &BasicCollectorConfig {
            enabled,
            interval,
            timeout,
        },
        make,
    )
}

/// Builds the specs of every enabled collector. Each factory is checked once here so that a
/// bad setting (an invalid regex) is an error before anything runs.
pub fn build(cfg: &Config) -> Result<Vec<CollectorSpec>, Vec<(String, CollectorError)>> {
    let paths = HostPaths::from_config(&cfg.paths);
    let c = &cfg.collectors;
    let mut specs: Vec<Option<CollectorSpec>> = Vec::new();
    {
        let p = paths.clone();
        specs.push(basic(cfg, "cpu", &c.cpu, move || {
            Ok(cpu::CpuCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "stat", &c.stat, move || {
            Ok(stat::StatCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "memory", &c.memory, move || {
            Ok(memory::MemoryCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "load", &c.load, move || {
            Ok(load::LoadCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "pressure", &c.pressure, move || {
            Ok(pressure::PressureCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        let d = c.diskstats.clone();
        specs.push(spec(
            cfg,
            "diskstats",
            d.enabled,
            d.interval,
            d.timeout,
            move || diskstats::DiskstatsCollector::new(p.clone(), &d),
        ));
    }
    {
        let p = paths.clone();
        let f = c.filesystem.clone();
        specs.push(spec(
            cfg,
            "filesystem",
            f.enabled,
            f.interval,
            f.timeout,
            move || filesystem::FilesystemCollector::new(p.clone(), &f),
        ));
    }
    {
        let p = paths.clone();
        let n = c.netdev.clone();
        specs.push(spec(
            cfg,
            "netdev",
            n.enabled,
            n.interval,
            n.timeout,
            move || netdev::NetdevCollector::new(p.clone(), &n),
        ));
    }
    {
        let p = paths.clone();
        let n = c.netstat.clone();
        specs.push(spec(
            cfg,
            "netstat",
            n.enabled,
            n.interval,
            n.timeout,
            move || netstat::NetstatCollector::new(p.clone(), &n),
        ));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "sockstat", &c.sockstat, move || {
            Ok(sockstat::SockstatCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "softnet", &c.softnet, move || {
            Ok(softnet::SoftnetCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "arp", &c.arp, move || {
            Ok(arp::ArpCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "filefd", &c.filefd, move || {
            Ok(filefd::FilefdCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "conntrack", &c.conntrack, move || {
            Ok(conntrack::ConntrackCollector::new(p.clone()))
        }));
    }
    specs.push(basic(cfg, "timex", &c.timex, || {
        Ok(timex::TimexCollector::new())
    }));
    {
        let p = paths.clone();
        let v = c.vmstat.clone();
        specs.push(spec(
            cfg,
            "vmstat",
            v.enabled,
            v.interval,
            v.timeout,
            move || vmstat::VmstatCollector::new(p.clone(), &v),
        ));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "mdadm", &c.mdadm, move || {
            Ok(mdadm::MdadmCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "bonding", &c.bonding, move || {
            Ok(bonding::BondingCollector::new(p.clone()))
        }));
    }
    specs.push(basic(cfg, "time", &c.time, || {
        Ok(time::TimeCollector::new())
    }));
    {
        let p = paths.clone();
        specs.push(basic(cfg, "os", &c.os, move || {
            Ok(os::OsCollector::new(p.clone()))
        }));
    }
    {
        let p = paths.clone();
        specs.push(basic(cfg, "uname", &c.uname, move || {
            Ok(uname::UnameCollector::new(p.clone()))
        }));
    }
    {
        let k = c.kubernetes.clone();
        let (_, timeout) = schedule(cfg, k.interval, k.timeout);
        specs.push(spec(
            cfg,
            "kubernetes",
            k.enabled,
            k.interval,
            k.timeout,
            move || kubernetes::KubernetesCollector::new(&k, timeout),
        ));
    }

    {
        let q = c.quantum.clone();
        let (_, timeout) = schedule(cfg, q.interval, q.timeout);
        specs.push(spec(
            cfg,
            "quantum",
            q.enabled,
            q.interval,
            q.timeout,
            move || quantum::QuantumCollector::new(&q, timeout),
        ));
    }
    {
        let p = c.probe.clone();
        let (_, timeout) = schedule(cfg, p.interval, p.timeout);
        specs.push(spec(
            cfg,
            "probe",
            p.is_enabled(),
            p.interval,
            p.timeout,
            move || probe::ProbeCollector::new(&p, timeout),
        ));
    }
    {
        let p = paths.clone();
        let pc = c.process.clone();
        specs.push(spec(
            cfg,
            "process",
            pc.enabled,
            pc.interval,
            pc.timeout,
            move || process::ProcessCollector::new(p.clone(), &pc),
        ));
    }
    {
        let sd = c.systemd.clone();
        let (_, timeout) = schedule(cfg, sd.interval, sd.timeout);
        specs.push(spec(
            cfg,
            "systemd",
            sd.enabled,
            sd.interval,
            sd.timeout,
            move || systemd::SystemdCollector::new(&sd, timeout),
        ));
    }
    // Filled once every collector is wrapped to publish its family names (below), before any
    // factory runs.
    let exec_owners: Arc<std::sync::OnceLock<Arc<textfile::FamilyOwners>>> = Arc::default();
    {
        let x = c.exec.clone();
        let (_, timeout) = schedule(cfg, x.interval, x.timeout);
        let owners = exec_owners.clone();
        specs.push(spec(
            cfg,
            "exec",
            x.enabled,
            x.interval,
            x.timeout,
            move || exec::ExecCollector::new(&x, timeout, owners.get().cloned()),
        ));
    }

    let mut specs: Vec<CollectorSpec> = specs.into_iter().flatten().collect();
    // Last: every collector above is wrapped to publish the family names that the textfile
    // and exec collectors must not shadow.
    let owners = textfile::publish(cfg, &mut specs);
    if let Some(o) = &owners {
        let _ = exec_owners.set(o.clone());
    }
    if let Some(textfile) = textfile::attach(cfg, owners) {
        specs.push(textfile);
    }
    let errors: Vec<(String, CollectorError)> = specs
        .iter()
        .filter_map(|s| (s.factory)().err().map(|e| (s.name.clone(), e)))
        .collect();
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}
