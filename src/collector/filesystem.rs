//! `filesystem` collector: size, free space and inodes of every mounted filesystem
//! (`node_filesystem_*{device,fstype,mountpoint}`), from the mount table and `statvfs(3)`.
//!
//! A `statvfs` on a mount whose NFS/CIFS server is gone blocks in the kernel, possibly
//! forever, and no signal or timeout can interrupt it from the outside. So each call runs on
//! a helper thread and the collector waits at most `stat_timeout` for it. A mount that does
//! not answer in time is recorded in a shared *stuck set* (node_exporter's `stuckMounts`) and
//! reported with `node_filesystem_device_error` 1; while it is in the set no new call is
//! started for it, so at most one thread per dead mount is ever blocked. The blocked thread
//! itself removes the mount from the set when its call finally returns, and the next
//! collection tries again.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::filter::NameFilter;

use super::threads::ThreadPool;
use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::config::FilesystemConfig;
use crate::model::Family;

/// One entry of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Mounted device or source (`/dev/sda1`, `server:/export`, `tmpfs`).
    pub device: String,
    /// Mount point as the host sees it.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Comma-separated mount options.
    pub options: String,
}

impl Mount {
    /// Whether the mount options contain `ro`.
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Decodes the octal escapes the kernel writes for space, tab, newline and backslash in
/// mount table fields (`\040` is a space). Anything else is kept as written.
pub fn decode_octal_escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let (b'\\', Some(digits)) = (b[i], b.get(i + 1..i + 4)) {
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                // Three octal digits can reach 0o777; only single bytes are valid escapes.
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Parses a `mounts` file (`/proc/<pid>/mounts`, fstab format). Blank lines are skipped; a
/// line with fewer than four fields is an error naming it.
pub fn parse_mounts(s: &str) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for (i, line) in s.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => continue,
            [device, mount_point, fs_type, options, ..] => out.push(Mount {
                device: decode_octal_escapes(device),
                mount_point: decode_octal_escapes(mount_point),
                fs_type: decode_octal_escapes(fs_type),
                options: (*options).to_owned(),
            }),
            _ => {
                return Err(format!(
                    "line {}: expected at least 4 fields in {line:?}",
                    i + 1
                ))
            }
        }
    }
    Ok(out)
}

/// Space and inode figures of one filesystem, in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsUsage {
    /// Total size.
    pub size_bytes: f64,
    /// Free space, including blocks reserved for root.
    pub free_bytes: f64,
    /// Free space available to unprivileged users.
    pub avail_bytes: f64,
    /// Total inodes.
    pub files: f64,
    /// Free inodes.
    pub files_free: f64,
}

/// The call that measures one filesystem, given the path under rootfs. Production uses
/// [`statvfs_usage`]; tests inject a function that blocks like a dead NFS server.
pub type StatFn = Arc<dyn Fn(&Path) -> Result<FsUsage, String> + Send + Sync>;

/// `statvfs(3)` on `path`. Block counts are in units of the fragment size (`f_frsize`), which
/// is what POSIX specifies and `df` uses.
pub fn statvfs_usage(path: &Path) -> Result<FsUsage, String> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|e| e.to_string())?;
    let unit = s.fragment_size() as f64;
    Ok(FsUsage {
        size_bytes: s.blocks() as f64 * unit,
        free_bytes: s.blocks_free() as f64 * unit,
        avail_bytes: s.blocks_available() as f64 * unit,
        files: s.files() as f64,
        files_free: s.files_free() as f64,
    })
}

/// Paths (under rootfs) whose stat call has not returned yet.
type StuckSet = Arc<Mutex<HashSet<PathBuf>>>;

/// The process-wide stuck set. It outlives collector instances on purpose: if the scheduler
/// rebuilds the collector, a thread still blocked on a dead mount must keep the new instance
/// from starting a second one.
static STUCK: LazyLock<StuckSet> = LazyLock::new(StuckSet::default);

/// Locks the stuck set. A poisoned lock only means a holder panicked between two set
/// operations, which leave the set consistent, so carry on with it.
fn lock(set: &Mutex<HashSet<PathBuf>>) -> MutexGuard<'_, HashSet<PathBuf>> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stack for helper threads: they make one system call, so the 2 MiB default is waste when
/// a host has hundreds of mounts.
const HELPER_STACK: usize = 256 * 1024;

/// How long an idle helper thread waits for its next call before it exits.
const HELPER_IDLE: Duration = Duration::from_secs(30);

/// Most idle helper threads kept; more mounts than this start the rest afresh each time.
const MAX_IDLE_HELPERS: usize = 8;

/// Helper threads for stat calls, reused across collections: a thread per mount per
/// collection cost a `clone3`, a stack `mmap`/`munmap` and scheduler work for every mount on
/// every tick. A helper blocked on a dead mount is not idle until its call returns, so the
/// stuck-set rule (one thread per dead mount) still holds.
static HELPERS: LazyLock<Arc<ThreadPool>> = LazyLock::new(|| {
    ThreadPool::new(
        "automon-statfs",
        HELPER_STACK,
        HELPER_IDLE,
        MAX_IDLE_HELPERS,
    )
});

/// Why a mount has no figures this time.
enum Failure {
    /// Its stat call did not answer in time, now or in an earlier collection.
    Stuck,
    /// The call failed (ENOENT, EACCES, ...) or could not be made.
    Error(String),
}

/// How one mount's measurement is going.
enum Probe {
    /// Skipped: an earlier call for the same path has not returned.
    Stuck,
    /// A helper thread is running; its answer comes on the channel.
    Running(Receiver<Result<FsUsage, String>>),
    /// No thread could be started.
    Failed(String),
}

/// Reads the mount table and measures each mount that is not excluded.
pub struct FilesystemCollector {
    paths: HostPaths,
    mount_points_exclude: Option<NameFilter>,
    fs_types_exclude: Option<NameFilter>,
    stat_timeout: Duration,
    stat: StatFn,
    stuck: StuckSet,
}

impl FilesystemCollector {
    /// A collector reading under `paths` and measuring with `statvfs`. Fails if a regex in
    /// `cfg` does not compile.
    pub fn new(paths: HostPaths, cfg: &FilesystemConfig) -> Result<Self, CollectorError> {
        Self::with_stat(paths, cfg, Arc::new(statvfs_usage), STUCK.clone())
    }

    /// Like [`FilesystemCollector::new`] with another measuring function and stuck set
    /// (tests use a fresh set so they do not see each other's stuck mounts).
    fn with_stat(
        paths: HostPaths,
        cfg: &FilesystemConfig,
        stat: StatFn,
        stuck: StuckSet,
    ) -> Result<Self, CollectorError> {
        let compile = |field: &str, re: &str| -> Result<Option<NameFilter>, CollectorError> {
            if re.is_empty() {
                // An empty regex matches everything; as a setting it means "exclude nothing".
                return Ok(None);
            }
            NameFilter::new(re).map(Some).map_err(|e| {
                CollectorError::Other(format!(
                    "collectors.filesystem.{field}: invalid regex {re:?}: {e}"
                ))
            })
        };
        Ok(FilesystemCollector {
            paths,
            mount_points_exclude: compile("mount_points_exclude", &cfg.mount_points_exclude)?,
            fs_types_exclude: compile("fs_types_exclude", &cfg.fs_types_exclude)?,
            stat_timeout: cfg.stat_timeout.0,
            stat,
            stuck,
        })
    }

    /// The mount table of PID 1 (the host's namespace even when we run in a container with
    /// the host's procfs), else of the reading process.
    fn read_mounts(&self) -> Result<Vec<Mount>, CollectorError> {
        let path = self.paths.proc("1/mounts");
        let (path, text) = match super::read_to_string(&path) {
            Ok(t) => (path, t),
            Err(_) => {
                let fallback = self.paths.proc("mounts");
                let t = super::read_to_string(&fallback)?;
                (fallback, t)
            }
        };
        parse_mounts(&text).map_err(|m| parse_error(&path, m))
    }

    fn excluded(&self, m: &Mount) -> bool {
        self.mount_points_exclude
            .as_ref()
            .is_some_and(|re| re.is_match(&m.mount_point))
            || self
                .fs_types_exclude
                .as_ref()
                .is_some_and(|re| re.is_match(&m.fs_type))
    }

    /// Starts measuring `target` unless an earlier call for it is still blocked.
    fn start(&self, target: &Path) -> Probe {
        if lock(&self.stuck).contains(target) {
            return Probe::Stuck;
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let stat = Arc::clone(&self.stat);
        let stuck = Arc::clone(&self.stuck);
        let target = target.to_owned();
        let spawned = HELPERS.run(Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stat(&target)))
                .unwrap_or_else(|_| Err("stat call panicked".into()));
            // Unmark and answer under the lock: the collector checks the channel under
            // the same lock before marking, so a call that returns right at the
            // deadline is either seen as answered or unmarked here, never left marked.
            let mut set = lock(&stuck);
            if set.remove(&target) {
                tracing::info!(
                    path = %target.display(),
                    "filesystem answers again; it will be measured from the next collection"
                );
            }
            // The collector may have stopped listening; nothing to do then.
            let _ = tx.send(result);
            drop(set);
        }));
        match spawned {
            Ok(_) => Probe::Running(rx),
            Err(e) => Probe::Failed(format!("cannot start stat thread: {e}")),
        }
    }

    /// Waits for a running probe until `deadline`; on timeout marks `target` stuck.
    fn wait(
        &self,
        rx: &Receiver<Result<FsUsage, String>>,
        target: &Path,
        mount_point: &str,
        deadline: Instant,
    ) -> Result<FsUsage, Failure> {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => r.map_err(Failure::Error),
            Err(RecvTimeoutError::Disconnected) => {
                Err(Failure::Error("stat thread ended without answer".into()))
            }
            Err(RecvTimeoutError::Timeout) => {
                let mut set = lock(&self.stuck);
                if let Ok(r) = rx.try_recv() {
                    return r.map_err(Failure::Error);
                }
                set.insert(target.to_owned());
                tracing::warn!(
                    mountpoint = mount_point,
                    timeout = ?self.stat_timeout,
                    "statfs did not answer in time; mount marked stuck and skipped until the call returns"
                );
                Err(Failure::Stuck)
            }
        }
    }
}

impl Collector for FilesystemCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let mut seen = HashSet::new();
        let mounts: Vec<Mount> = self
            .read_mounts()?
            .into_iter()
            .filter(|m| !self.excluded(m))
            // The same filesystem mounted twice with the same labels would be a duplicate
            // series; node_exporter reports it once too.
            .filter(|m| seen.insert((m.device.clone(), m.mount_point.clone(), m.fs_type.clone())))
            .collect();

        // Start every measurement before waiting for any, so several dead mounts cost one
        // stat_timeout in total rather than one each. Mounts stacked on one path share a
        // probe: one call answers for all of them, and a dead path gets one thread.
        let deadline = Instant::now() + self.stat_timeout;
        let mut probes: HashMap<PathBuf, Probe> = HashMap::new();
        for m in &mounts {
            let target = self.paths.root(Path::new(&m.mount_point));
            if let Entry::Vacant(slot) = probes.entry(target) {
                let probe = self.start(slot.key());
                slot.insert(probe);
            }
        }
        let mut results: HashMap<PathBuf, Result<FsUsage, Failure>> = HashMap::new();
        for m in &mounts {
            let target = self.paths.root(Path::new(&m.mount_point));
            if results.contains_key(&target) {
                continue;
            }
            let r = match probes.get(&target) {
                Some(Probe::Running(rx)) => self.wait(rx, &target, &m.mount_point, deadline),
                Some(Probe::Failed(e)) => Err(Failure::Error(e.clone())),
                Some(Probe::Stuck) | None => {
                    tracing::debug!(mountpoint = %m.mount_point, "skipping stuck mount");
                    Err(Failure::Stuck)
                }
            };
            results.insert(target, r);
        }

        let mut device_error = Family::gauge(
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
        );
        let mut readonly =
            Family::gauge("node_filesystem_readonly", "Filesystem read-only status.");
        let mut size = Family::gauge("node_filesystem_size_bytes", "Filesystem size in bytes.");
        let mut free = Family::gauge(
            "node_filesystem_free_bytes",
            "Filesystem free space in bytes.",
        );
        let mut avail = Family::gauge(
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
        );
        let mut files = Family::gauge("node_filesystem_files", "Filesystem total file nodes.");
        let mut files_free = Family::gauge(
            "node_filesystem_files_free",
            "Filesystem total free file nodes.",
        );
        let mut stuck: Vec<&str> = Vec::new();
        for m in &mounts {
            let labels = [
                ("device", m.device.as_str()),
                ("fstype", m.fs_type.as_str()),
                ("mountpoint", m.mount_point.as_str()),
            ];
            let target = self.paths.root(Path::new(&m.mount_point));
            let usage = match results.get(&target) {
                Some(Ok(u)) => Some(*u),
                Some(Err(Failure::Stuck)) => {
                    stuck.push(m.mount_point.as_str());
                    None
                }
                Some(Err(Failure::Error(e))) => {
                    tracing::debug!(mountpoint = %m.mount_point, error = %e, "statfs failed");
                    None
                }
                None => None,
            };
            device_error.push(&labels, if usage.is_some() { 0.0 } else { 1.0 });
            // Known from the mount options even when the filesystem does not answer.
            readonly.push(&labels, if m.read_only() { 1.0 } else { 0.0 });
            if let Some(u) = usage {
                size.push(&labels, u.size_bytes);
                free.push(&labels, u.free_bytes);
                avail.push(&labels, u.avail_bytes);
                files.push(&labels, u.files);
                files_free.push(&labels, u.files_free);
            }
        }
        let mut families = vec![device_error, readonly, size, free, avail, files, files_free];
        families.retain(|f| !f.samples.is_empty());
        let note =
            (!stuck.is_empty()).then(|| format!("stuck mounts skipped: {}", stuck.join(", ")));
        Ok(Collection { families, note })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;
    use crate::config::HumanDuration;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// This machine's `/proc/1/mounts`.
    const REAL: &str = "proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=12334492k,nr_inodes=3083623,mode=755 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24684092k 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
/dev/vda / ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0
model_tools_unavailable /mnt/sandboxing/model_tools_env/v1/python tmpfs ro,nosuid,nodev,relatime,size=4k,mode=755 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24684092k 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    fn get(c: &Collection, name: &str, mountpoint: &str) -> Option<f64> {
        let fam = c.families.iter().find(|f| f.name == name)?;
        fam.samples
            .iter()
            .find(|s| s.labels.contains(&("mountpoint".into(), mountpoint.into())))
            .map(|s| s.value)
    }

    #[test]
    fn parses_real_mounts() {
        let mounts = parse_mounts(REAL).unwrap();
        assert_eq!(mounts.len(), 12);
        assert_eq!(
            mounts[5],
            Mount {
                device: "/dev/vda".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                options: "rw,relatime,discard,resv_strict,resuid=65534,resgid=65534".into(),
            }
        );
        assert!(!mounts[5].read_only());
        assert!(mounts[6].read_only());
    }

    #[test]
    fn default_exclusions_keep_only_real_filesystems() {
        let c = FilesystemCollector::new(fixture_paths(), &FilesystemConfig::default()).unwrap();
        let kept: Vec<String> = parse_mounts(REAL)
            .unwrap()
            .into_iter()
            .filter(|m| !c.excluded(m))
            .map(|m| m.mount_point)
            .collect();
        // /dev/*, /proc, /sys/* and the pseudo filesystem types are gone; a tmpfs elsewhere
        // stays (node_exporter reports tmpfs too).
        assert_eq!(kept, vec!["/", "/mnt/sandboxing/model_tools_env/v1/python"]);
    }

    #[test]
    fn decodes_octal_escapes() {
        assert_eq!(decode_octal_escapes(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(decode_octal_escapes(r"a\011b\012c\134d"), "a\tb\nc\\d");
        // Not escapes: kept verbatim, never a panic.
        assert_eq!(decode_octal_escapes(r"\04"), r"\04");
        assert_eq!(decode_octal_escapes(r"x\"), r"x\");
        assert_eq!(decode_octal_escapes(r"\999"), r"\999");
        assert_eq!(decode_octal_escapes(r"\777"), r"\777");
        assert_eq!(decode_octal_escapes("é\\040ü"), "é ü");
        let m = parse_mounts("srv:/a\\040b /mnt/x\\040y nfs4 ro 0 0\n").unwrap();
        assert_eq!(
            (m[0].device.as_str(), m[0].mount_point.as_str()),
            ("srv:/a b", "/mnt/x y")
        );
    }

    #[test]
    fn rejects_malformed_mounts() {
        let err = parse_mounts("/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /data\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert_eq!(parse_mounts("").unwrap(), vec![]);
        assert_eq!(parse_mounts("\n\n").unwrap().len(), 0);
        // Options are the 4th field; dump/pass are optional.
        assert_eq!(parse_mounts("a /b c ro\n").unwrap().len(), 1);
    }

    #[test]
    fn invalid_regex_is_a_clear_error() {
        let cfg = FilesystemConfig {
            fs_types_exclude: "(".into(),
            ..FilesystemConfig::default()
        };
        let err = FilesystemCollector::new(fixture_paths(), &cfg)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("collectors.filesystem.fs_types_exclude: invalid regex"),
            "{err}"
        );
    }

    #[test]
    fn collects_fixture_with_real_statvfs() {
        let mut c =
            FilesystemCollector::new(fixture_paths(), &FilesystemConfig::default()).unwrap();
        let out = c.collect().unwrap();
        // "/" is statted at tests/fixtures/host; the NFS mount point does not exist there,
        // which is a statvfs error. Everything else in the fixture is excluded; the
        // duplicate "/" line is reported once.
        let de = out
            .families
            .iter()
            .find(|f| f.name == "node_filesystem_device_error")
            .unwrap();
        assert_eq!(de.samples.len(), 2);
        let root = &de.samples.iter().find(|s| s.value == 0.0).unwrap().labels;
        assert_eq!(
            root,
            &vec![
                ("device".to_owned(), "/dev/vda".to_owned()),
                ("fstype".to_owned(), "ext4".to_owned()),
                ("mountpoint".to_owned(), "/".to_owned()),
            ]
        );
        assert_eq!(get(&out, "node_filesystem_device_error", "/"), Some(0.0));
        assert_eq!(get(&out, "node_filesystem_readonly", "/"), Some(0.0));
        let size = get(&out, "node_filesystem_size_bytes", "/").unwrap();
        let free = get(&out, "node_filesystem_free_bytes", "/").unwrap();
        let avail = get(&out, "node_filesystem_avail_bytes", "/").unwrap();
        assert!(
            size > 0.0 && free <= size && avail <= free,
            "{size} {free} {avail}"
        );
        assert!(get(&out, "node_filesystem_files", "/").is_some());
        assert!(get(&out, "node_filesystem_files_free", "/").is_some());

        let nfs = "/mnt/backup share";
        assert_eq!(get(&out, "node_filesystem_device_error", nfs), Some(1.0));
        assert_eq!(get(&out, "node_filesystem_readonly", nfs), Some(1.0));
        assert_eq!(get(&out, "node_filesystem_size_bytes", nfs), None);
        for f in &out.families {
            assert_eq!(f.kind, crate::model::MetricKind::Gauge);
        }
        assert_eq!(out.note, None);
    }

    #[test]
    fn falls_back_to_proc_mounts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mounts"), "/dev/vda / ext4 ro 0 0\n").unwrap();
        let paths = HostPaths {
            procfs: dir.path().to_owned(),
            sysfs: dir.path().join("sys"),
            rootfs: dir.path().to_owned(),
        };
        let usage = FsUsage {
            size_bytes: 1.0,
            free_bytes: 1.0,
            avail_bytes: 1.0,
            files: 1.0,
            files_free: 1.0,
        };
        let mut c = FilesystemCollector::with_stat(
            paths,
            &FilesystemConfig::default(),
            Arc::new(move |_| Ok(usage)),
            StuckSet::default(),
        )
        .unwrap();
        let out = c.collect().unwrap();
        assert_eq!(get(&out, "node_filesystem_readonly", "/"), Some(1.0));
        assert_eq!(get(&out, "node_filesystem_size_bytes", "/"), Some(1.0));
    }

    /// A stat that hangs for the first call on `/mnt/hang` until released, like a dead NFS
    /// server that eventually comes back, and answers immediately otherwise.
    #[test]
    fn hung_stat_times_out_and_is_not_retried_while_stuck() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
        // Two mounts stacked on the same dead path (e.g. after a failover remount): one
        // thread must cover both.
        std::fs::write(
            dir.path().join("proc/1/mounts"),
            "/dev/sda1 / ext4 rw 0 0\n\
             nfs1:/export /mnt/hang nfs4 rw,hard 0 0\n\
             nfs2:/export /mnt/hang nfs4 rw,hard 0 0\n",
        )
        .unwrap();
        let paths = HostPaths {
            procfs: dir.path().join("proc"),
            sysfs: dir.path().join("sys"),
            rootfs: dir.path().to_owned(),
        };
        let hang_target = paths.root(Path::new("/mnt/hang"));

        let calls = Arc::new(AtomicUsize::new(0));
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let usage = FsUsage {
            size_bytes: 1000.0,
            free_bytes: 600.0,
            avail_bytes: 500.0,
            files: 100.0,
            files_free: 90.0,
        };
        let stat: StatFn = {
            let calls = Arc::clone(&calls);
            let hang_target = hang_target.clone();
            Arc::new(move |p: &Path| {
                if p == hang_target && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = released.lock().unwrap().recv();
                }
                Ok(usage)
            })
        };
        let stuck = StuckSet::default();
        let cfg = FilesystemConfig {
            stat_timeout: HumanDuration(Duration::from_millis(200)),
            ..FilesystemConfig::default()
        };
        let mut c = FilesystemCollector::with_stat(paths, &cfg, stat, Arc::clone(&stuck)).unwrap();

        // 1st run: returns after about stat_timeout, with the healthy mount measured.
        let t0 = Instant::now();
        let out = c.collect().unwrap();
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(3), "collect hung: {took:?}");
        assert_eq!(get(&out, "node_filesystem_size_bytes", "/"), Some(1000.0));
        let de = out
            .families
            .iter()
            .find(|f| f.name == "node_filesystem_device_error")
            .unwrap();
        let hung: Vec<f64> = de
            .samples
            .iter()
            .filter(|s| {
                s.labels
                    .contains(&("mountpoint".into(), "/mnt/hang".into()))
            })
            .map(|s| s.value)
            .collect();
        assert_eq!(hung, vec![1.0, 1.0]);
        assert_eq!(get(&out, "node_filesystem_size_bytes", "/mnt/hang"), None);
        assert!(out.note.as_deref().unwrap().contains("/mnt/hang"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(lock(&stuck).contains(&hang_target));

        // 2nd run: the mount is skipped without waiting and without a new call.
        let t1 = Instant::now();
        let out = c.collect().unwrap();
        assert!(
            t1.elapsed() < Duration::from_millis(200),
            "{:?}",
            t1.elapsed()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            get(&out, "node_filesystem_device_error", "/mnt/hang"),
            Some(1.0)
        );
        assert_eq!(get(&out, "node_filesystem_size_bytes", "/"), Some(1000.0));

        // The server comes back: the blocked call returns and unmarks the mount.
        release.send(()).unwrap();
        let wait_until = Instant::now() + Duration::from_secs(5);
        while lock(&stuck).contains(&hang_target) {
            assert!(Instant::now() < wait_until, "stuck mark never cleared");
            std::thread::sleep(Duration::from_millis(5));
        }

        // 3rd run: measured again.
        let out = c.collect().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            get(&out, "node_filesystem_device_error", "/mnt/hang"),
            Some(0.0)
        );
        assert_eq!(
            get(&out, "node_filesystem_avail_bytes", "/mnt/hang"),
            Some(500.0)
        );
        assert_eq!(out.note, None);
    }

    #[test]
    fn stat_errors_and_panics_are_device_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
        std::fs::write(
            dir.path().join("proc/1/mounts"),
            "/dev/sda1 /a ext4 rw 0 0\n/dev/sdb1 /b ext4 rw 0 0\n",
        )
        .unwrap();
        let paths = HostPaths {
            procfs: dir.path().join("proc"),
            sysfs: dir.path().join("sys"),
            rootfs: dir.path().to_owned(),
        };
        let stuck = StuckSet::default();
        let stat: StatFn = Arc::new(|p: &Path| {
            if p.ends_with("a") {
                Err("Permission denied".into())
            } else {
                panic!("stat implementation bug")
            }
        });
        let mut c = FilesystemCollector::with_stat(
            paths,
            &FilesystemConfig::default(),
            stat,
            Arc::clone(&stuck),
        )
        .unwrap();
        let out = c.collect().unwrap();
        assert_eq!(get(&out, "node_filesystem_device_error", "/a"), Some(1.0));
        assert_eq!(get(&out, "node_filesystem_device_error", "/b"), Some(1.0));
        assert!(lock(&stuck).is_empty());
        assert_eq!(out.note, None);
    }
}
