//! `textfile` collector: node_exporter's textfile convention. Every `*.prom` file in
//! `collectors.textfile.directory` is parsed as the Prometheus text format on each run and its
//! families are exported as they are, plus `node_textfile_mtime_seconds{file}` and
//! `node_textfile_scrape_error`.
//!
//! The semantics are node_exporter's (`collector/textfile.go`), so scripts written for it work
//! unchanged:
//!
//! - Only names ending in `.prom` are read, in file-name order. Writers write `foo.prom.$$`
//!   and rename it to `foo.prom`, so a half-written file is never read.
//! - A missing directory is not an error (nothing to export yet); any other problem with the
//!   directory is.
//! - A file that cannot be read or parsed, or that has sample timestamps (which node_exporter
//!   rejects because a scrape assigns its own), is skipped whole; the other files still load.
//!   Any problem sets `node_textfile_scrape_error` to 1 and is named, file and line, in the
//!   collection note, which `/health` shows. The collection itself succeeds.
//! - The same family in several files is merged. A family whose type differs from the one
//!   already read, or whose HELP text differs, is dropped (node_exporter reports the
//!   inconsistent help the same way); a family without HELP gets "Metric read from FILES".
//! - `node_textfile_mtime_seconds{file}` carries the full path of each file read successfully,
//!   in whole seconds.
//!
//! Two additions of ours, both because automon keeps serving where node_exporter's registry
//! would fail the scrape: a series repeated within or across files keeps its first value, and
//! a family that another collector of this daemon exports (or an `automon_`/`process_`
//! self-metric) is dropped, with a note. To know those names, `attach` wraps every other
//! collector so that each collection publishes its family names to a shared [`FamilyOwners`];
//! the first run waits briefly for the others' first collections so that even the first
//! scrape cannot carry a shadowed family. Files larger than [`MAX_FILE_BYTES`] are refused so
//! that a runaway script cannot make the daemon allocate without bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::{Collection, Collector, CollectorError, CollectorSpec};
use crate::config::Config;
use crate::exposition::parse_text;
use crate::model::{Family, Labels, Sample};

/// Largest `*.prom` file read: 16 MiB, far above any sane textfile (node_exporter users keep
/// them to kilobytes) and small enough that a runaway writer cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Longest the first collection waits for the other collectors' first runs.
const MAX_PEER_WAIT: Duration = Duration::from_secs(1);

/// Problems named in the note; the rest are counted, so `/health` stays readable.
const MAX_NOTED_PROBLEMS: usize = 3;

/// Prefixes of automon's self-metrics, served next to the collectors' families.
const RESERVED_PREFIXES: &[&str] = &["automon_", "process_"];

const MTIME_NAME: &str = "node_textfile_mtime_seconds";
const ERROR_NAME: &str = "node_textfile_scrape_error";

/// Family names the other collectors of one configuration export, published by them after
/// every collection and read by the textfile collector.
#[derive(Debug)]
pub struct FamilyOwners {
    state: Mutex<OwnersState>,
    first_runs: Condvar,
    created: Instant,
    /// Once this has passed since creation, a collector that has not finished its first run is
    /// hung (the scheduler's deadline is over) and serves nothing, so it is not waited for.
    settle: Duration,
}

#[derive(Debug, Default)]
struct OwnersState {
    peers: BTreeMap<String, Peer>,
    /// Family name to collector, rebuilt when some collector's set of names changes.
    by_name: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct Peer {
    ran: bool,
    names: Vec<String>,
}

impl Default for FamilyOwners {
    /// No other collectors (tests, and a daemon with only the textfile collector).
    fn default() -> Self {
        FamilyOwners::new(std::iter::empty(), Duration::ZERO)
    }
}

impl FamilyOwners {
    /// Owners for the collectors named `peers`; see the `settle` field.
    pub fn new(peers: impl IntoIterator<Item = String>, settle: Duration) -> Self {
        let peers = peers.into_iter().map(|p| (p, Peer::default())).collect();
        FamilyOwners {
            state: Mutex::new(OwnersState {
                peers,
                by_name: HashMap::new(),
            }),
            first_runs: Condvar::new(),
            created: Instant::now(),
            settle,
        }
    }

    fn lock(&self) -> MutexGuard<'_, OwnersState> {
        // The state is always left consistent, so a panic elsewhere does not invalidate it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `peer` finished a collection; `families` is its output if it succeeded.
    /// Allocates only when the peer's set of family names changed.
    pub fn record(&self, peer: &str, families: Option<&[Family]>) {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(p) = st.peers.get_mut(peer) else {
            return;
        };
        let first = !p.ran;
        p.ran = true;
        if let Some(families) = families {
            let same = p
                .names
                .iter()
                .map(String::as_str)
                .eq(families.iter().map(|f| f.name.as_str()));
            if !same {
                p.names = families.iter().map(|f| f.name.clone()).collect();
                st.by_name = st
                    .peers
                    .iter()
                    .flat_map(|(peer, p)| p.names.iter().map(|n| (n.clone(), peer.clone())))
                    .collect();
            }
        }
        if first {
            self.first_runs.notify_all();
        }
    }

    /// Who else exports family `name`, for a collector `me` that publishes its own names too.
    pub fn owner_besides(&self, name: &str, me: &str) -> Option<String> {
        if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return Some("automon's self-metrics".to_owned());
        }
        self.lock()
            .by_name
            .get(name)
            .filter(|peer| peer.as_str() != me)
            .map(|peer| format!("the {peer} collector"))
    }

    /// Who already exports family `name`: another collector, or automon itself.
    pub fn owner(&self, name: &str) -> Option<String> {
        if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return Some("automon's self-metrics".to_owned());
        }
        if name == MTIME_NAME || name == ERROR_NAME {
            return Some("the textfile collector itself".to_owned());
        }
        self.lock()
            .by_name
            .get(name)
            .map(|peer| format!("the {peer} collector"))
    }

    /// Waits up to `max` until every other collector has finished one collection. Returns the
    /// names of those still pending (empty when all ran or they are past their deadlines).
    pub fn wait_for_first_runs(&self, max: Duration) -> Vec<String> {
        self.wait_for_first_runs_except(max, "")
    }

    /// [`FamilyOwners::wait_for_first_runs`] for a collector that is itself a peer (`me`).
    pub fn wait_for_first_runs_except(&self, max: Duration, me: &str) -> Vec<String> {
        let deadline = Instant::now() + max;
        let mut st = self.lock();
        loop {
            let pending: Vec<String> = st
                .peers
                .iter()
                .filter(|(name, p)| !p.ran && name.as_str() != me)
                .map(|(name, _)| name.clone())
                .collect();
            let now = Instant::now();
            if pending.is_empty() || self.created.elapsed() >= self.settle || now >= deadline {
                return if self.created.elapsed() >= self.settle {
                    Vec::new()
                } else {
                    pending
                };
            }
            st = match self.first_runs.wait_timeout(st, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Wraps a collector to publish its family names after each collection.
struct Published {
    inner: Box<dyn Collector>,
    name: String,
    owners: Arc<FamilyOwners>,
}

impl Collector for Published {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        // A collector that panics still counts as having run, so the textfile collector does
        // not wait for it.
        let mut guard = RanGuard {
            owners: &self.owners,
            name: &self.name,
            recorded: false,
        };
        // Recorded before the scheduler sees the result, so a family is known here before it
        // can be served.
        let result = self.inner.collect();
        let families = result.as_ref().ok().map(|c| c.families.as_slice());
        self.owners.record(&self.name, families);
        guard.recorded = true;
        result
    }
}

/// Records a run without output when dropped unrecorded (the collector panicked).
struct RanGuard<'a> {
    owners: &'a FamilyOwners,
    name: &'a str,
    recorded: bool,
}

impl Drop for RanGuard<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.owners.record(self.name, None);
        }
    }
}

/// Makes every spec in `specs` publish its family names, for the collectors that must not
/// export a family another one does (textfile, exec). `None` when neither is enabled (then
/// nothing is wrapped). Called by [`build`](super::build) after all other collectors, so new
/// ones are covered without listing them here.
pub(super) fn publish(cfg: &Config, specs: &mut [CollectorSpec]) -> Option<Arc<FamilyOwners>> {
    if !(cfg.collectors.textfile.enabled || cfg.collectors.exec.enabled) {
        return None;
    }
    let settle = specs.iter().map(|s| s.timeout).max().unwrap_or_default();
    let owners = Arc::new(FamilyOwners::new(
        specs.iter().map(|s| s.name.clone()),
        settle,
    ));
    for spec in specs.iter_mut() {
        let inner = spec.factory.clone();
        let name = spec.name.clone();
        let owners = owners.clone();
        spec.factory = Arc::new(move || {
            let c = inner()?;
            Ok(Box::new(Published {
                inner: c,
                name: name.clone(),
                owners: owners.clone(),
            }) as Box<dyn Collector>)
        });
    }
    Some(owners)
}

/// The textfile collector's spec, or `None` when it is disabled; `owners` from [`publish`].
pub(super) fn attach(cfg: &Config, owners: Option<Arc<FamilyOwners>>) -> Option<CollectorSpec> {
    let tc = &cfg.collectors.textfile;
    let owners = owners.filter(|_| tc.enabled)?;
    let dir = tc.directory.clone();
    let (_, timeout) = super::schedule(cfg, tc.interval, tc.timeout);
    // Half the deadline at most, so that waiting can never make the collection late.
    let wait = (timeout / 2).min(MAX_PEER_WAIT);
    super::spec(
        cfg,
        "textfile",
        tc.enabled,
        tc.interval,
        tc.timeout,
        move || Ok(TextfileCollector::new(dir.clone(), owners.clone(), wait)),
    )
}

/// Reads `*.prom` files from a directory; see the module documentation.
pub struct TextfileCollector {
    dir: PathBuf,
    owners: Arc<FamilyOwners>,
    peer_wait: Duration,
    /// Problems of the previous run, so each distinct set is logged once, not every interval.
    last_problems: Vec<String>,
}

impl TextfileCollector {
    /// A collector reading `dir`. `owners` names the families it must not export; the first
    /// collection waits up to `peer_wait` for the other collectors to publish theirs.
    pub fn new(dir: PathBuf, owners: Arc<FamilyOwners>, peer_wait: Duration) -> Self {
        TextfileCollector {
            dir,
            owners,
            peer_wait,
            last_problems: Vec::new(),
        }
    }
}

impl Collector for TextfileCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let pending = self.owners.wait_for_first_runs(self.peer_wait);
        let mut problems = Vec::new();
        let mut merged = Merged::default();
        let mut mtimes: Vec<(String, f64)> = Vec::new();
        for path in prom_files(&self.dir, &mut problems) {
            match read_prom_file(&path) {
                Ok((families, mtime)) => {
                    merged.add(
                        &path.display().to_string(),
                        families,
                        &self.owners,
                        &mut problems,
                    );
                    mtimes.push((path.display().to_string(), mtime));
                }
                Err(problem) => problems.push(problem),
            }
        }

        let mut families = merged.finish();
        let mut notes = Vec::new();
        if !pending.is_empty() && !families.is_empty() {
            // Held back rather than risk serving a family another collector is about to
            // export; the next run has their names.
            families.clear();
            notes.push(format!(
                "textfile metrics held back until the {} collector(s) have run once",
                pending.join(", ")
            ));
        }
        if !mtimes.is_empty() {
            let mut mtime =
                Family::gauge(MTIME_NAME, "Unixtime mtime of textfiles successfully read.");
            // node_exporter sorts by path for predictable output.
            mtimes.sort_by(|a, b| a.0.cmp(&b.0));
            for (file, t) in &mtimes {
                mtime.push(&[("file", file)], *t);
            }
            families.push(mtime);
        }
        families.push(
            Family::gauge(
                ERROR_NAME,
                "1 if there was an error opening or reading a file, 0 otherwise",
            )
            .with(&[], if problems.is_empty() { 0.0 } else { 1.0 }),
        );

        if problems != self.last_problems {
            for p in &problems {
                tracing::warn!(directory = %self.dir.display(), "textfile: {p}");
            }
            self.last_problems = problems.clone();
        }
        if !problems.is_empty() {
            let shown = problems.len().min(MAX_NOTED_PROBLEMS);
            let mut note = problems[..shown].join("; ");
            if problems.len() > shown {
                note.push_str(&format!("; and {} more", problems.len() - shown));
            }
            notes.push(note);
        }
        Ok(Collection {
            families,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }
}

/// The `*.prom` files of `dir` in name order; none if it does not exist.
fn prom_files(dir: &Path, problems: &mut Vec<String>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Nothing has been written yet; node_exporter's default (no directory) is silent too.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(format!("cannot read directory {}: {e}", dir.display()));
            return Vec::new();
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                // Byte suffix, not `Path::extension`, so `x.prom` matches exactly what
                // node_exporter's `strings.HasSuffix(name, ".prom")` matches.
                if entry.file_name().as_encoded_bytes().ends_with(b".prom") {
                    paths.push(entry.path());
                }
            }
            Err(e) => problems.push(format!("cannot list directory {}: {e}", dir.display())),
        }
    }
    paths.sort();
    paths
}

/// Reads and parses one file: its families and its mtime in whole seconds, or a problem.
fn read_prom_file(path: &Path) -> Result<(Vec<Family>, f64), String> {
    let shown = path.display();
    // Non-blocking, so that a FIFO named `x.prom` cannot hang the collector in open(2); it is
    // then refused as not a regular file. Regular files ignore the flag.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{shown}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    let too_big = || {
        format!(
            "{shown}: larger than the {} MiB limit for textfiles",
            MAX_FILE_BYTES >> 20
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take` as well, because the file may grow between the stat and the read.
    (&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{shown}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        format!("{shown}: line {line}: not valid UTF-8")
    })?;
    let families = parse_text(&text).map_err(|e| format!("{shown}: {e}"))?;
    if let Some(s) = families
        .iter()
        .flat_map(|f| &f.samples)
        .find(|s| s.timestamp_ms.is_some())
    {
        return Err(format!(
            "{shown}: sample {} has a timestamp, which textfiles must not carry (the scrape \
             assigns the time); file skipped",
            s.name
        ));
    }
    // Stat after parsing, as node_exporter does, so that a failing file does not look fresh.
    let modified = file
        .metadata()
        .and_then(|m| m.modified())
        .map_err(|e| format!("{shown}: {e}"))?;
    let mtime = match modified.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as f64,
        Err(before) => -(before.duration().as_secs() as f64),
    };
    Ok((families, mtime))
}

/// Families of all files merged by name.
#[derive(Default)]
struct Merged {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    /// Per family: the files it came from (for the default help) and whether a file gave it
    /// a HELP text.
    sources: Vec<(Vec<String>, bool)>,
    series: HashSet<(String, Labels)>,
}

impl Merged {
    fn add(
        &mut self,
        file: &str,
        families: Vec<Family>,
        owners: &FamilyOwners,
        problems: &mut Vec<String>,
    ) {
        for family in families {
            let claimed = std::iter::once(family.name.as_str())
                .chain(
                    family
                        .samples
                        .iter()
                        .map(|s| s.name.as_str())
                        .filter(|n| *n != family.name),
                )
                .find_map(|n| owners.owner(n).map(|o| (n.to_owned(), o)));
            if let Some((name, owner)) = claimed {
                problems.push(format!(
                    "{file}: family {} dropped: {name} is already exported by {owner}",
                    family.name
                ));
                continue;
            }
            let has_help = !family.help.is_empty();
            let Some(&i) = self.index.get(&family.name) else {
                self.index.insert(family.name.clone(), self.families.len());
                self.sources.push((vec![file.to_owned()], has_help));
                let mut family = family;
                let samples = std::mem::take(&mut family.samples);
                self.families.push(family);
                let last = self.families.len() - 1;
                self.push_samples(last, file, samples, problems);
                continue;
            };
            let existing = &self.families[i];
            if existing.kind != family.kind {
                problems.push(format!(
                    "{file}: family {} dropped: it is a {} here but a {} in {}",
                    family.name,
                    family.kind.as_str(),
                    existing.kind.as_str(),
                    self.sources[i].0.join(", ")
                ));
                continue;
            }
            if has_help && self.sources[i].1 && existing.help != family.help {
                problems.push(format!(
                    "{file}: family {} dropped: its HELP text differs from the one in {}",
                    family.name,
                    self.sources[i].0.join(", ")
                ));
                continue;
            }
            if has_help && !self.sources[i].1 {
                self.families[i].help = family.help;
                self.sources[i].1 = true;
            }
            self.sources[i].0.push(file.to_owned());
            self.push_samples(i, file, family.samples, problems);
        }
    }

    fn push_samples(
        &mut self,
        i: usize,
        file: &str,
        samples: Vec<Sample>,
        problems: &mut Vec<String>,
    ) {
        for s in samples {
            if self.series.insert((s.name.clone(), s.labels.clone())) {
                self.families[i].samples.push(s);
            } else {
                problems.push(format!(
                    "{file}: duplicate series {}{} dropped",
                    s.name,
                    format_labels(&s.labels)
                ));
            }
        }
    }

    /// The merged families, help filled in; families left without samples are dropped.
    fn finish(self) -> Vec<Family> {
        self.families
            .into_iter()
            .zip(self.sources)
            .filter(|(f, _)| !f.samples.is_empty())
            .map(|(mut f, (files, has_help))| {
                if !has_help {
                    f.help = format!("Metric read from {}", files.join(", "));
                }
                f
            })
            .collect()
    }
}

/// `{a="1",b="2"}` for a message; empty for no labels.
fn format_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::render_family;
    use std::time::SystemTime;

    fn collector(dir: &Path) -> TextfileCollector {
        TextfileCollector::new(dir.to_owned(), Arc::default(), Duration::ZERO)
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn render(c: &Collection) -> String {
        let mut out = String::new();
        for f in &c.families {
            render_family(&mut out, f);
        }
        out
    }

    fn scrape_error(c: &Collection) -> f64 {
        let f = c.families.iter().find(|f| f.name == ERROR_NAME).unwrap();
        f.samples[0].value
    }

    fn names(c: &Collection) -> Vec<&str> {
        c.families.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn missing_directory_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = collector(&dir.path().join("absent")).collect().unwrap();
        assert_eq!(
            render(&out),
            "# HELP node_textfile_scrape_error 1 if there was an error opening or reading a \
             file, 0 otherwise\n# TYPE node_textfile_scrape_error gauge\n\
             node_textfile_scrape_error 0\n"
        );
        assert_eq!(out.note, None);
    }

    #[test]
    fn unreadable_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "not-a-dir", "");
        let out = collector(&file).collect().unwrap();
        assert_eq!(scrape_error(&out), 1.0);
        assert!(out.note.unwrap().contains("cannot read directory"));
    }

    #[test]
    fn good_file_is_exported_with_its_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "apt.prom",
            "# HELP apt_upgrades_pending Apt packages pending.\n\
             # TYPE apt_upgrades_pending gauge\n\
             apt_upgrades_pending{arch=\"amd64\",origin=\"Debian\"} 3\n\
             reboot_required 0\n",
        );
        let when = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
        let out = collector(dir.path()).collect().unwrap();
        assert_eq!(out.note, None);
        let file = path.display().to_string();
        assert_eq!(
            render(&out),
            format!(
                "# HELP apt_upgrades_pending Apt packages pending.\n\
                 # TYPE apt_upgrades_pending gauge\n\
                 apt_upgrades_pending{{arch=\"amd64\",origin=\"Debian\"}} 3\n\
                 # HELP reboot_required Metric read from {file}\n\
                 # TYPE reboot_required untyped\n\
                 reboot_required 0\n\
                 # HELP node_textfile_mtime_seconds Unixtime mtime of textfiles successfully read.\n\
                 # TYPE node_textfile_mtime_seconds gauge\n\
                 node_textfile_mtime_seconds{{file=\"{file}\"}} 1700000000\n\
                 # HELP node_textfile_scrape_error 1 if there was an error opening or reading a file, 0 otherwise\n\
                 # TYPE node_textfile_scrape_error gauge\n\
                 node_textfile_scrape_error 0\n"
            )
        );
    }

    #[test]
    fn mtime_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.prom", "a 1\n");
        let out = collector(dir.path()).collect().unwrap();
        let mtime = out.families.iter().find(|f| f.name == MTIME_NAME).unwrap();
        let expected = std::fs::metadata(&path)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as f64;
        assert_eq!(mtime.samples[0].value, expected);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - expected).abs() < 60.0);
    }

    #[test]
    fn broken_file_is_skipped_and_named_while_others_load() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a_good.prom", "good_metric 1\n");
        let bad = write(
            dir.path(),
            "b_bad.prom",
            "# TYPE half gauge\nhalf{x=\"1\"} 1\nhalf{x=\"2\n",
        );
        let out = collector(dir.path()).collect().unwrap();
        assert_eq!(
            names(&out),
            ["good_metric", MTIME_NAME, ERROR_NAME],
            "the broken file contributes nothing, not even its mtime"
        );
        let mtime = &out.families[1];
        assert_eq!(mtime.samples.len(), 1);
        assert!(mtime.samples[0].labels[0].1.ends_with("a_good.prom"));
        assert_eq!(scrape_error(&out), 1.0);
        let note = out.note.unwrap();
        assert!(
            note.starts_with(&format!("{}: line 3: ", bad.display())),
            "{note}"
        );
    }

    #[test]
    fn temporary_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.prom", "a 1\n");
        write(dir.path(), "a.prom.12345", "a{half=\"written");
        write(dir.path(), ".b.prom.tmp", "garbage");
        write(dir.path(), "notes.txt", "garbage");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let out = collector(dir.path()).collect().unwrap();
        assert_eq!(names(&out), ["a", MTIME_NAME, ERROR_NAME]);
        assert_eq!(out.note, None);
    }

    #[test]
    fn timestamps_reject_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ts.prom", "a 1\nb 2 1700000000000\n");
        let out = collector(dir.path()).collect().unwrap();
        assert_eq!(names(&out), [ERROR_NAME]);
        assert_eq!(scrape_error(&out), 1.0);
        assert!(out.note.unwrap().contains("timestamp"));
    }

    #[test]
    fn same_family_across_files_is_merged() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.prom",
            "# HELP backup_age_seconds Age of the last backup.\n# TYPE backup_age_seconds gauge\n\
             backup_age_seconds{job=\"db\"} 100\n",
        );
        write(
            dir.path(),
            "b.prom",
            "# TYPE backup_age_seconds gauge\nbackup_age_seconds{job=\"files\"} 200\n",
        );
        write(dir.path(), "c.prom", "untyped_one{f=\"c\"} 1\n");
        write(dir.path(), "d.prom", "untyped_one{f=\"d\"} 2\n");
        let out = collector(dir.path()).collect().unwrap();
        assert_eq!(out.note, None);
        let backup = &out.families[0];
        assert_eq!(backup.name, "backup_age_seconds");
        assert_eq!(backup.help, "Age of the last backup.");
        assert_eq!(backup.samples.len(), 2);
        let untyped = &out.families[1];
        assert_eq!(untyped.samples.len(), 2);
        let files = format!(
            "{}, {}",
            dir.path().join("c.prom").display(),
            dir.path().join("d.prom").display()
        );
        assert_eq!(untyped.help, format!("Metric read from {files}"));
        assert_eq!(out.families[2].samples.len(), 4, "four mtimes");
        assert_eq!(scrape_error(&out), 0.0);
    }

    #[test]
    fn conflicts_across_files_drop_the_later_family() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.prom",
            "# HELP x One.\n# TYPE x gauge\nx{f=\"a\"} 1\ny 1\n",
        );
        write(dir.path(), "b.prom", "# TYPE x counter\nx{f=\"b\"} 2\n");
        write(
            dir.path(),
            "c.prom",
            "# HELP x Other.\n# TYPE x gauge\nx{f=\"c\"} 3\n",
        );
        write(dir.path(), "d.prom", "y 2\n");
        let out = collector(dir.path()).collect().unwrap();
        let x = &out.families[0];
        assert_eq!((x.samples.len(), x.samples[0].value), (1, 1.0));
        assert_eq!(
            out.families[1].samples.len(),
            1,
            "duplicate series y dropped"
        );
        assert_eq!(out.families[1].samples[0].value, 1.0);
        assert_eq!(scrape_error(&out), 1.0);
        let note = out.note.unwrap();
        assert!(note.contains("it is a counter here but a gauge"), "{note}");
        assert!(note.contains("HELP text differs"), "{note}");
        assert!(note.contains("duplicate series y dropped"), "{note}");
        // All files parsed, so all have mtimes.
        assert_eq!(out.families[2].samples.len(), 4);
    }

    #[test]
    fn families_of_other_collectors_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.prom",
            "node_load1 99\nautomon_build_info 1\nnode_textfile_scrape_error 0\nmine 1\nprocess_open_fds 3\n",
        );
        let owners = Arc::new(FamilyOwners::new(
            ["load".to_owned()],
            Duration::from_secs(60),
        ));
        owners.record("load", Some(&[Family::gauge("node_load1", "1m load.")]));
        let mut c = TextfileCollector::new(dir.path().to_owned(), owners, Duration::ZERO);
        let out = c.collect().unwrap();
        assert_eq!(names(&out), ["mine", MTIME_NAME, ERROR_NAME]);
        assert_eq!(scrape_error(&out), 1.0);
        let note = out.note.unwrap();
        assert!(
            note.contains(
                "family node_load1 dropped: node_load1 is already exported by the load collector"
            ),
            "{note}"
        );
        assert!(note.contains("self-metrics"), "{note}");
        assert!(
            note.contains("and 1 more"),
            "three problems shown, then a count: {note}"
        );
    }

    #[test]
    fn first_run_holds_back_until_other_collectors_ran() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.prom", "node_load1 99\n");
        let owners = Arc::new(FamilyOwners::new(
            ["load".to_owned()],
            Duration::from_secs(60),
        ));
        let mut c = TextfileCollector::new(
            dir.path().to_owned(),
            owners.clone(),
            Duration::from_millis(10),
        );
        let out = c.collect().unwrap();
        assert_eq!(names(&out), [MTIME_NAME, ERROR_NAME]);
        assert!(out
            .note
            .unwrap()
            .contains("held back until the load collector"));

        // A collector finishing meanwhile wakes the waiting run.
        let recorder = {
            let owners = owners.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                owners.record("load", Some(&[Family::gauge("node_load1", "")]));
            })
        };
        let mut c = TextfileCollector::new(dir.path().to_owned(), owners, Duration::from_secs(5));
        let started = Instant::now();
        let out = c.collect().unwrap();
        recorder.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(names(&out), [MTIME_NAME, ERROR_NAME]);
        assert!(out
            .note
            .unwrap()
            .contains("already exported by the load collector"));
    }

    #[test]
    fn hung_collectors_are_not_waited_for_past_their_deadline() {
        let owners = FamilyOwners::new(["stuck".to_owned()], Duration::ZERO);
        assert!(owners
            .wait_for_first_runs(Duration::from_secs(5))
            .is_empty());
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.prom");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        write(dir.path(), "small.prom", "small 1\n");
        let out = collector(dir.path()).collect().unwrap();
        assert_eq!(names(&out), ["small", MTIME_NAME, ERROR_NAME]);
        assert!(out.note.unwrap().contains("16 MiB limit"));
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("pipe.prom"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let out = collector(dir.path()).collect().unwrap();
        assert!(out.note.unwrap().contains("pipe.prom: not a regular file"));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.prom"), b"a 1\nb{l=\"\xff\"} 2\n").unwrap();
        let out = collector(dir.path()).collect().unwrap();
        assert!(out
            .note
            .unwrap()
            .ends_with("x.prom: line 2: not valid UTF-8"));
    }

    #[test]
    fn published_collectors_report_their_names() {
        struct Fixed;
        impl Collector for Fixed {
            fn collect(&mut self) -> Result<Collection, CollectorError> {
                Ok(vec![Family::gauge("node_fixed", "").with(&[], 1.0)].into())
            }
        }
        let owners = Arc::new(FamilyOwners::new(
            ["fixed".to_owned()],
            Duration::from_secs(60),
        ));
        let mut p = Published {
            inner: Box::new(Fixed),
            name: "fixed".into(),
            owners: owners.clone(),
        };
        assert_eq!(owners.owner("node_fixed"), None);
        p.collect().unwrap();
        assert_eq!(
            owners.owner("node_fixed").as_deref(),
            Some("the fixed collector")
        );
        assert!(owners.wait_for_first_runs(Duration::ZERO).is_empty());
    }

    #[test]
    fn a_panicking_collector_counts_as_run() {
        struct Panics;
        impl Collector for Panics {
            fn collect(&mut self) -> Result<Collection, CollectorError> {
                panic!("boom")
            }
        }
        let owners = Arc::new(FamilyOwners::new(["p".to_owned()], Duration::from_secs(60)));
        let mut p = Published {
            inner: Box::new(Panics),
            name: "p".into(),
            owners: owners.clone(),
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.collect()));
        assert!(r.is_err());
        assert!(owners.wait_for_first_runs(Duration::ZERO).is_empty());
    }
}
