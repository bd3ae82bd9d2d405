//! `process` collector: count, CPU time, resident memory, threads and oldest start time of
//! configured process groups, from `/proc/[pid]/stat` and `/proc/[pid]/cmdline`, so a rule can
//! say "nginx has no process" (`automon_process_num_procs{group="nginx"} == 0`; not `_count`,
//! which Prometheus reserves for histograms and summaries). Conventions follow
//! process-exporter (`namedprocess_namegroup_*`), under `automon_process_*{group}`.
//!
//! CPU time is a true counter per group: the collector remembers each matched process (pid and
//! start time, so a reused pid is a new process) and, when one exits or stops matching, adds
//! the CPU time it had at the last scan to the group's total. The counter therefore never goes
//! backwards while the daemon runs; what a process used between the last scan and its exit is
//! not seen (the kernel keeps no record of it), and a daemon restart starts the counters anew,
//! which `rate()` handles as a counter reset.

use std::collections::HashMap;

use regex::Regex;

use super::{Collection, Collector, CollectorError, HostPaths};
use crate::config::{ProcessConfig, ProcessGroupConfig};
use crate::model::Family;

/// Ticks per second of the times in `/proc/[pid]/stat` (USER_HZ, as in `/proc/stat`).
const USER_HZ: f64 = super::cpu::USER_HZ;

/// Length the kernel cuts `comm` to (TASK_COMM_LEN - 1).
const COMM_LEN: usize = 15;

/// The fields of `/proc/[pid]/stat` this collector uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// `comm`: the executable's name, cut to 15 bytes; may contain spaces and parentheses.
    pub comm: String,
    /// One-letter state (`R`, `S`, `D`, `Z`, ...).
    pub state: char,
    /// User-mode CPU time in ticks.
    pub utime: u64,
    /// Kernel-mode CPU time in ticks.
    pub stime: u64,
    /// Number of threads.
    pub num_threads: u64,
    /// Start time in ticks after boot.
    pub starttime: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parses one `/proc/[pid]/stat` line. `comm` is everything between the first `(` and the
/// last `)`: a process may name itself `a) b (c`, so the fields after it are only found
/// reliably from the last parenthesis.
pub fn parse_stat(s: &str) -> Result<ProcStat, String> {
    let open = s.find('(').ok_or("no '(' before comm")?;
    let close = s.rfind(')').ok_or("no ')' after comm")?;
    if close < open {
        return Err("')' before '('".into());
    }
    let comm = s[open + 1..close].to_owned();
    // Fields after comm, numbered from field 3 (state) as in proc(5).
    let rest: Vec<&str> = s[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        let raw = rest
            .get(n - 3)
            .ok_or_else(|| format!("field {n} missing"))?;
        raw.parse()
            .map_err(|_| format!("field {n}: invalid number {raw:?}"))
    };
    let state = rest
        .first()
        .and_then(|s| s.chars().next())
        .ok_or("state missing")?;
    Ok(ProcStat {
        comm,
        state,
        utime: field(14)?,
        stime: field(15)?,
        num_threads: field(20)?,
        starttime: field(22)?,
        // rss is signed in the kernel's format string; a negative value never occurs in
        // practice, but would parse-fail as u64: treat it as 0 rather than drop the process.
        rss_pages: rest
            .get(24 - 3)
            .ok_or("field 24 missing")?
            .parse::<i64>()
            .map_err(|_| "field 24: invalid number".to_owned())?
            .max(0) as u64,
    })
}

/// Splits `/proc/[pid]/cmdline` into arguments. Kernel threads and zombies have an empty
/// command line (no arguments); a process that rewrote its argv (nginx's "nginx: master
/// process ...") may have one argument containing spaces and no terminating NUL.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Which processes belong to one group.
#[derive(Debug, Clone)]
pub struct GroupMatcher {
    /// The `group` label.
    pub name: String,
    comm: Vec<String>,
    cmdline: Option<Regex>,
}

impl GroupMatcher {
    /// From a group's config; fails on an invalid regex (validation catches it first).
    pub fn new(cfg: &ProcessGroupConfig) -> Result<Self, CollectorError> {
        let cmdline = cfg
            .cmdline
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| CollectorError::Other(format!("group {}: cmdline: {e}", cfg.name)))?;
        Ok(GroupMatcher {
            name: cfg.name.clone(),
            comm: cfg.comm.clone(),
            cmdline,
        })
    }

    /// Whether a name matches `comm`: equal, or the kernel's 15-byte cut of a longer name.
    fn comm_matches(name: &str, comm: &str) -> bool {
        name == comm
            || (name.len() > COMM_LEN
                && comm.len() == COMM_LEN
                && name.as_bytes().starts_with(comm.as_bytes()))
    }

    /// Whether a process matches by name: its comm, or the base name of `argv[0]` (which has
    /// no 15-byte limit). An `argv[0]` with spaces was rewritten by the program and is not a
    /// path, so its "base name" would be meaningless.
    fn name_matches(&self, comm: &str, argv0: Option<&str>) -> bool {
        let base = argv0
            .filter(|a| !a.contains(' '))
            .map(|a| a.rsplit('/').next().unwrap_or(a));
        self.comm
            .iter()
            .any(|n| Self::comm_matches(n, comm) || base == Some(n.as_str()))
    }

    /// Whether a process matches; `cmdline` is called at most once, only when needed.
    pub fn matches(&self, comm: &str, cmdline: &mut impl FnMut() -> CmdlineRef) -> bool {
        if self.comm.iter().any(|n| Self::comm_matches(n, comm)) {
            return true;
        }
        if self.comm.is_empty() && self.cmdline.is_none() {
            return false;
        }
        let c = cmdline();
        if !self.comm.is_empty() && self.name_matches(comm, c.argv0.as_deref()) {
            return true;
        }
        self.cmdline
            .as_ref()
            .is_some_and(|re| re.is_match(&c.joined))
    }
}

/// A process's command line as matchers need it.
#[derive(Debug, Clone, Default)]
pub struct CmdlineRef {
    /// The first argument, if any.
    pub argv0: Option<String>,
    /// All arguments joined by single spaces.
    pub joined: String,
}

impl CmdlineRef {
    /// From parsed arguments.
    pub fn from_args(args: &[String]) -> Self {
        CmdlineRef {
            argv0: args.first().cloned(),
            joined: args.join(" "),
        }
    }
}

/// What one scan found for one group.
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    count: u64,
    zombies: u64,
    rss_pages: u64,
    threads: u64,
    oldest_start: Option<u64>,
}

/// One group's matcher and CPU accounting across scans.
#[derive(Debug)]
struct Group {
    matcher: GroupMatcher,
    /// Last seen (utime, stime) of each matched process, by (pid, start time).
    seen: HashMap<(u32, u64), (u64, u64)>,
    /// CPU ticks of processes that have left the group.
    gone_user: u64,
    gone_system: u64,
}

/// Scans `/proc` for the configured groups.
pub struct ProcessCollector {
    paths: HostPaths,
    page_size: u64,
    groups: Vec<Group>,
}

impl ProcessCollector {
    /// A collector for `cfg`'s groups under `paths`, with the system's page size.
    pub fn new(paths: HostPaths, cfg: &ProcessConfig) -> Result<Self, CollectorError> {
        let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|v| u64::try_from(v).ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| CollectorError::Other("sysconf(PAGE_SIZE) failed".into()))?;
        Self::with_page_size(paths, cfg, page_size)
    }

    /// Like [`ProcessCollector::new`] with a given page size (for fixtures from other hosts).
    pub fn with_page_size(
        paths: HostPaths,
        cfg: &ProcessConfig,
        page_size: u64,
    ) -> Result<Self, CollectorError> {
        let groups = cfg
            .groups
            .iter()
            .map(|g| {
                Ok(Group {
                    matcher: GroupMatcher::new(g)?,
                    seen: HashMap::new(),
                    gone_user: 0,
                    gone_system: 0,
                })
            })
            .collect::<Result<_, CollectorError>>()?;
        Ok(ProcessCollector {
            paths,
            page_size,
            groups,
        })
    }

    /// Reads a per-process file; `None` if the process is gone: processes exit during a
    /// scan all the time (ENOENT before open, ESRCH between open and read), which is not an
    /// error. stat and cmdline are world-readable, so there is no other failure to report.
    fn read_pid_file(&self, pid: &str, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.paths.procfs.join(pid).join(file)).ok()
    }

    fn boot_time(&self) -> Option<f64> {
        let text = super::read_to_string(&self.paths.proc("stat")).ok()?;
        super::stat::parse_kernel_stat(&text).ok()?.boot_time
    }
}

impl Collector for ProcessCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let procfs = self.paths.procfs.clone();
        let dir = std::fs::read_dir(&procfs).map_err(|source| CollectorError::Io {
            path: procfs.clone(),
            source,
        })?;
        let mut totals = vec![Totals::default(); self.groups.len()];
        let mut now: Vec<HashMap<(u32, u64), (u64, u64)>> = vec![HashMap::new(); self.groups.len()];
        let mut malformed: Vec<String> = Vec::new();
        for entry in dir {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(pid_str) = name.to_str() else {
                continue;
            };
            let Ok(pid) = pid_str.parse::<u32>() else {
                continue;
            };
            let Some(raw) = self.read_pid_file(pid_str, "stat") else {
                continue;
            };
            let text = String::from_utf8_lossy(&raw);
            let st = match parse_stat(&text) {
                Ok(st) => st,
                Err(m) => {
                    malformed.push(format!("{pid}: {m}"));
                    continue;
                }
            };
            let mut cmdline: Option<CmdlineRef> = None;
            for (i, g) in self.groups.iter().enumerate() {
                let mut load = || {
                    cmdline
                        .get_or_insert_with(|| {
                            let bytes = self.read_pid_file(pid_str, "cmdline").unwrap_or_default();
                            CmdlineRef::from_args(&parse_cmdline(&bytes))
                        })
                        .clone()
                };
                if !g.matcher.matches(&st.comm, &mut load) {
                    continue;
                }
                let t = &mut totals[i];
                // A zombie has exited: it holds no memory and must not make "nginx is
                // running" true. Its CPU time is still accounted below.
                if matches!(st.state, 'Z' | 'X' | 'x') {
                    t.zombies += 1;
                } else {
                    t.count += 1;
                    t.rss_pages += st.rss_pages;
                    t.threads += st.num_threads;
                    t.oldest_start =
                        Some(t.oldest_start.map_or(st.starttime, |o| o.min(st.starttime)));
                }
                now[i].insert((pid, st.starttime), (st.utime, st.stime));
            }
        }

        let boot_time = self.boot_time();
        let mut count = Family::gauge(
            "automon_process_num_procs",
            "Processes of the group (zombies excluded); 0 when none runs.",
        );
        let mut zombies = Family::gauge(
            "automon_process_zombies",
            "Zombie processes of the group (exited, not yet reaped by their parent).",
        );
        let mut cpu = Family::counter(
            "automon_process_cpu_seconds_total",
            "CPU time used by the group's processes, including those that have exited since \
             the daemon started.",
        );
        let mut rss = Family::gauge(
            "automon_process_resident_memory_bytes",
            "Resident memory of the group's processes.",
        );
        let mut threads = Family::gauge(
            "automon_process_threads",
            "Threads of the group's processes.",
        );
        let mut oldest = Family::gauge(
            "automon_process_oldest_start_time_seconds",
            "Start time of the group's oldest process since the epoch (absent when none runs).",
        );
        for ((g, t), seen_now) in self.groups.iter_mut().zip(&totals).zip(now) {
            let mut seen_now = seen_now;
            for (key, (u, s)) in g.seen.drain() {
                match seen_now.get_mut(&key) {
                    // Ticks never decrease for a live process; max() keeps the counter
                    // monotonic even if a procfs ever disagreed.
                    Some(cur) => *cur = (cur.0.max(u), cur.1.max(s)),
                    None => {
                        g.gone_user += u;
                        g.gone_system += s;
                    }
                }
            }
            let (live_user, live_system) = seen_now
                .values()
                .fold((0u64, 0u64), |(a, b), (u, s)| (a + u, b + s));
            g.seen = seen_now;
            let group = g.matcher.name.as_str();
            count.push(&[("group", group)], t.count as f64);
            zombies.push(&[("group", group)], t.zombies as f64);
            cpu.push(
                &[("group", group), ("mode", "user")],
                (g.gone_user + live_user) as f64 / USER_HZ,
            );
            cpu.push(
                &[("group", group), ("mode", "system")],
                (g.gone_system + live_system) as f64 / USER_HZ,
            );
            rss.push(&[("group", group)], (t.rss_pages * self.page_size) as f64);
            threads.push(&[("group", group)], t.threads as f64);
            if let (Some(start), Some(boot)) = (t.oldest_start, boot_time) {
                oldest.push(&[("group", group)], boot + start as f64 / USER_HZ);
            }
        }
        let note = (!malformed.is_empty()).then(|| {
            format!(
                "{} /proc/[pid]/stat file(s) could not be parsed and were skipped, e.g. {}",
                malformed.len(),
                malformed[0]
            )
        });
        let mut families = vec![count, zombies, cpu, rss, threads];
        if !oldest.samples.is_empty() {
            families.push(oldest);
        }
        Ok(Collection { families, note })
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn fixture_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/process")
    }

    fn paths(root: &Path) -> HostPaths {
        HostPaths {
            procfs: root.join("proc"),
            sysfs: root.join("sys"),
            rootfs: root.to_owned(),
        }
    }

    fn group(name: &str, comm: &[&str], cmdline: Option<&str>) -> ProcessGroupConfig {
        ProcessGroupConfig {
            name: name.into(),
            comm: comm.iter().map(|s| (*s).to_owned()).collect(),
            cmdline: cmdline.map(str::to_owned),
        }
    }

    fn config() -> ProcessConfig {
        ProcessConfig {
            enabled: true,
            interval: None,
            timeout: None,
            groups: vec![
                group("nginx", &["nginx"], None),
                group("weird", &["my (weird) app)"], None),
                group("app", &["app"], None),
                group("sleeper", &["automon-test-sleeper"], None),
                group("worker", &[], Some(r"worker\.py --queue jobs")),
                group("postgres", &["postgres"], Some("postgres: ")),
            ],
        }
    }

    fn value(c: &Collection, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let f = c.families.iter().find(|f| f.name == family)?;
        f.samples
            .iter()
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }

    #[test]
    fn parses_stat_with_spaces_and_parentheses_in_comm() {
        let line = "4242 (my (weird) app)) R 1 4242 4242 0 -1 4194304 98 0 0 0 \
                    400 100 0 0 20 0 4 0 2000 3133440 1000 18446744073709551615 0 0";
        let st = parse_stat(line).unwrap();
        assert_eq!(
            st,
            ProcStat {
                comm: "my (weird) app)".into(),
                state: 'R',
                utime: 400,
                stime: 100,
                num_threads: 4,
                starttime: 2000,
                rss_pages: 1000,
            }
        );
        let real = "10853 (cat) R 10851 10851 30065 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 \
                    1632385 3133440 382 18446744073709551615 94757032636416";
        let st = parse_stat(real).unwrap();
        assert_eq!(
            (st.comm.as_str(), st.starttime, st.rss_pages),
            ("cat", 1632385, 382)
        );
        assert_eq!(
            parse_stat("1 ( ) S 0 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 0 5")
                .unwrap()
                .comm,
            " "
        );
    }

    #[test]
    fn rejects_malformed_stat() {
        assert!(parse_stat("").is_err());
        assert!(parse_stat("1 cat R 1 2 3").is_err());
        assert!(parse_stat("1 )cat( R").is_err());
        assert!(parse_stat("500 (truncated) S 1 500").is_err());
        let bad = "1 (x) S 0 0 0 0 -1 0 0 0 0 0 lots 2 0 0 20 0 1 0 3 0 5";
        assert!(parse_stat(bad).unwrap_err().contains("field 14"));
    }

    #[test]
    fn parses_cmdline() {
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(
            parse_cmdline(b"/bin/sleep\x00600\x00"),
            vec!["/bin/sleep", "600"]
        );
        // Rewritten argv: one argument, trailing NUL padding kept as empty arguments.
        assert_eq!(
            parse_cmdline(b"nginx: worker process"),
            vec!["nginx: worker process"]
        );
        assert_eq!(parse_cmdline(b"a\x00\x00b\x00"), vec!["a", "", "b"]);
    }

    #[test]
    fn matching_by_comm_argv0_and_regex() {
        let m = GroupMatcher::new(&group("s", &["automon-test-sleeper"], None)).unwrap();
        let mut none = CmdlineRef::default;
        // The kernel's 15-byte cut of the name.
        assert!(m.matches("automon-test-sl", &mut none));
        assert!(!m.matches("automon-test-s", &mut none));
        let mut argv = || CmdlineRef::from_args(&["/tmp/x/automon-test-sleeper".into()]);
        assert!(m.matches("other", &mut argv));
        // A rewritten argv[0] with spaces is not taken as a path.
        let m = GroupMatcher::new(&group("n", &["nginx"], None)).unwrap();
        let mut rewritten = || CmdlineRef::from_args(&["x: /usr/sbin/nginx".into()]);
        assert!(!m.matches("x", &mut rewritten));
        let m = GroupMatcher::new(&group("r", &[], Some("^/usr/bin/python3 .*worker"))).unwrap();
        let mut py =
            || CmdlineRef::from_args(&["/usr/bin/python3".into(), "/srv/worker.py".into()]);
        assert!(m.matches("python3", &mut py));
        assert!(!m.matches("python3", &mut none));
        assert!(GroupMatcher::new(&group("bad", &[], Some("("))).is_err());
    }

    #[test]
    fn collects_fixture_groups() {
        let mut c =
            ProcessCollector::with_page_size(paths(&fixture_root()), &config(), 4096).unwrap();
        let out = c.collect().unwrap();
        let g = |name| [("group", name)];
        assert_eq!(
            value(&out, "automon_process_num_procs", &g("nginx")),
            Some(2.0)
        );
        assert_eq!(
            value(&out, "automon_process_zombies", &g("nginx")),
            Some(1.0)
        );
        assert_eq!(
            value(
                &out,
                "automon_process_cpu_seconds_total",
                &[("group", "nginx"), ("mode", "user")]
            ),
            Some(13.57)
        );
        assert_eq!(
            value(
                &out,
                "automon_process_cpu_seconds_total",
                &[("group", "nginx"), ("mode", "system")]
            ),
            Some(3.53)
        );
        assert_eq!(
            value(&out, "automon_process_resident_memory_bytes", &g("nginx")),
            Some(1000.0 * 4096.0)
        );
        assert_eq!(
            value(&out, "automon_process_threads", &g("nginx")),
            Some(2.0)
        );
        assert_eq!(
            value(
                &out,
                "automon_process_oldest_start_time_seconds",
                &g("nginx")
            ),
            Some(1_795_385_047.0 + 10.0)
        );
        for (group, n) in [
            ("weird", 1.0),
            ("app", 1.0),
            ("sleeper", 1.0),
            ("worker", 1.0),
        ] {
            assert_eq!(
                value(&out, "automon_process_num_procs", &g(group)),
                Some(n),
                "{group}"
            );
        }
        assert_eq!(
            value(&out, "automon_process_threads", &g("weird")),
            Some(4.0)
        );
        // A group with no process is 0, not absent, so "no nginx" can be a rule; its start
        // time is absent since there is none.
        assert_eq!(
            value(&out, "automon_process_num_procs", &g("postgres")),
            Some(0.0)
        );
        assert_eq!(
            value(
                &out,
                "automon_process_oldest_start_time_seconds",
                &g("postgres")
            ),
            None
        );
        let note = out.note.unwrap();
        assert!(note.starts_with("1 /proc/[pid]/stat file(s)"), "{note}");
        assert!(note.contains("500: field 14 missing"), "{note}");
    }

    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_tree(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }

    #[test]
    fn cpu_counter_survives_exits_and_pid_reuse() {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixture_root(), dir.path());
        let proc_dir = dir.path().join("proc");
        let cfg = ProcessConfig {
            groups: vec![group("nginx", &["nginx"], None)],
            ..config()
        };
        let mut c = ProcessCollector::with_page_size(paths(dir.path()), &cfg, 4096).unwrap();
        let user = |c: &Collection| {
            value(
                c,
                "automon_process_cpu_seconds_total",
                &[("group", "nginx"), ("mode", "user")],
            )
            .unwrap()
        };
        let first = c.collect().unwrap();
        assert_eq!(user(&first), 13.57);
        // The worker exits: the count drops, the counter does not.
        std::fs::remove_dir_all(proc_dir.join("101")).unwrap();
        let second = c.collect().unwrap();
        assert_eq!(
            value(&second, "automon_process_num_procs", &[("group", "nginx")]),
            Some(1.0)
        );
        assert_eq!(user(&second), 13.57);
        // Its pid is reused by a new nginx (another start time): both are counted.
        let stat = std::fs::read_to_string(proc_dir.join("100/stat")).unwrap();
        let reused = stat
            .replacen("100 (nginx)", "101 (nginx)", 1)
            .replacen(" 150 50 ", " 20 0 ", 1)
            .replacen(" 1000 3133440 ", " 9000 3133440 ", 1);
        std::fs::create_dir_all(proc_dir.join("101")).unwrap();
        std::fs::write(proc_dir.join("101/stat"), reused).unwrap();
        let third = c.collect().unwrap();
        assert_eq!(
            value(&third, "automon_process_num_procs", &[("group", "nginx")]),
            Some(2.0)
        );
        assert_eq!(user(&third), 13.77);
        // Everything exits: 0 processes, the counter holds.
        for pid in ["100", "101", "102"] {
            std::fs::remove_dir_all(proc_dir.join(pid)).unwrap();
        }
        let fourth = c.collect().unwrap();
        assert_eq!(
            value(&fourth, "automon_process_num_procs", &[("group", "nginx")]),
            Some(0.0)
        );
        assert_eq!(user(&fourth), 13.77);
    }

    #[test]
    fn missing_procfs_is_an_error() {
        let mut c =
            ProcessCollector::with_page_size(paths(Path::new("/nonexistent")), &config(), 4096)
                .unwrap();
        assert!(matches!(c.collect(), Err(CollectorError::Io { .. })));
    }

    #[test]
    fn scans_this_machine() {
        // This test process itself must be found by its pid's comm.
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let cfg = ProcessConfig {
            groups: vec![group("me", &[comm.trim_end()], None)],
            ..config()
        };
        let mut c =
            ProcessCollector::new(HostPaths::from_config(&Default::default()), &cfg).unwrap();
        let out = c.collect().unwrap();
        assert!(value(&out, "automon_process_num_procs", &[("group", "me")]).unwrap() >= 1.0);
        assert!(
            value(
                &out,
                "automon_process_resident_memory_bytes",
                &[("group", "me")]
            )
            .unwrap()
                > 0.0
        );
    }
}
