//! `clean_files` repair action: deletes regular files under a directory whose name matches a
//! glob and that were last modified longer ago than an age, oldest first, within a per-run
//! limit of files and bytes.
//!
//! Deleting as a privileged daemon is where a symlink does damage, so the walk never goes
//! through one, and never by path:
//!
//! - The configured root is resolved at run time and must still lie under an allowed
//!   directory (both resolved): a root that is, or sits below, a symlink pointing elsewhere
//!   is refused. The resolved path is then opened one component at a time with `O_NOFOLLOW`,
//!   so a symlink swapped in after the check fails the open instead of being followed.
//! - Below the root everything goes through directory descriptors (`openat`, `fstatat`,
//!   `unlinkat`) with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`: a symlink is neither followed nor
//!   deleted (it is not a regular file), and a directory renamed or replaced by a symlink
//!   during the run cannot redirect the walk outside the root.
//! - Directories on another filesystem (`st_dev`) are not entered.
//! - Before each delete the file is looked at again; one that changed into something else
//!   (another inode, no longer a regular file) is left alone.
//!
//! The scan keeps only the `max_files` oldest candidates in memory (a heap), then deletes
//! oldest first until `max_files` or `max_bytes` would be exceeded, so what a limit leaves
//! behind is always the newest. Per-file problems (permission denied, an unreadable
//! directory) do not stop the run; any makes it a failed attempt that still reports what was
//! deleted. A file that vanished before it could be deleted is the state wanted, so it is
//! counted, not treated as an error. The timeout is checked between files.

use std::collections::BinaryHeap;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::{Action, ActionBuildError, ActionContext, ActionError, ActionOutput};
use crate::config::format_size;
use crate::config::load::{path_allowed, wildcard_match};
use crate::config::repair::{ActionKind, RepairConfig, RepairRuleConfig};

/// Deleted paths listed in the output; the rest are counted.
const LISTED_FILES: usize = 50;

/// Errors listed in the output and message; the rest are counted.
const LISTED_ERRORS: usize = 10;

/// Deepest directory level entered below the root (each level holds a descriptor open).
const MAX_DEPTH: usize = 64;

/// Deletes old files under an allowed directory; see the module documentation.
#[derive(Debug, Clone)]
pub struct CleanFiles {
    root: PathBuf,
    allowed: Vec<PathBuf>,
    pattern: Option<String>,
    older_than: Duration,
    recursive: bool,
    max_files: u64,
    max_bytes: Option<u64>,
    timeout: Duration,
}

impl CleanFiles {
    /// Builds the action of `rule`; refuses a `path` that is not under `repair.allowed_paths`.
    pub fn new(
        rule: &RepairRuleConfig,
        repair: &RepairConfig,
    ) -> Result<CleanFiles, ActionBuildError> {
        let root = rule
            .path
            .clone()
            .ok_or_else(|| ActionBuildError("clean_files: no path configured".into()))?;
        if !path_allowed(&repair.allowed_paths, &root) {
            return Err(ActionBuildError(format!(
                "clean_files: {} is not under any of repair.allowed_paths",
                root.display()
            )));
        }
        let older_than = rule.older_than.ok_or_else(|| {
            ActionBuildError(
                "clean_files: older_than is not set (it would delete new files)".into(),
            )
        })?;
        if let Some(p) = rule
            .pattern
            .as_deref()
            .filter(|p| p.is_empty() || p.contains('/'))
        {
            return Err(ActionBuildError(format!(
                "clean_files: pattern {p:?} is not a file-name glob"
            )));
        }
        Ok(CleanFiles {
            root,
            allowed: repair.allowed_paths.clone(),
            pattern: rule.pattern.clone(),
            older_than: older_than.0,
            recursive: rule.recursive,
            max_files: rule.max_files,
            max_bytes: rule.max_bytes.map(|b| b.0),
            timeout: rule.timeout.0,
        })
    }

    /// Resolves and opens the root, refusing when it lands outside the allowlist.
    fn open_root(&self) -> Result<(OwnedFd, FileStat), ActionError> {
        let resolved = std::fs::canonicalize(&self.root).map_err(|e| ActionError::Failed {
            message: format!("cannot resolve {}: {e}", self.root.display()),
            output: String::new(),
        })?;
        // The allowlist resolved too, so that an allowed path written through a symlink
        // (`/var/run/app`) still admits its target; an entry that does not exist admits nothing.
        let allowed: Vec<PathBuf> = self
            .allowed
            .iter()
            .filter_map(|a| std::fs::canonicalize(a).ok())
            .collect();
        if !path_allowed(&allowed, &resolved) {
            return Err(ActionError::Refused(format!(
                "{} resolves to {}, which is not under any of repair.allowed_paths",
                self.root.display(),
                resolved.display()
            )));
        }
        let fd = open_beneath(AT_FDCWD, &resolved, None).map_err(|e| {
            ActionError::Refused(format!(
                "opening {} without following symlinks: {e}",
                resolved.display()
            ))
        })?;
        let st = fstat(&fd).map_err(|e| ActionError::Failed {
            message: format!("stat {}: {e}", resolved.display()),
            output: String::new(),
        })?;
        Ok((fd, st))
    }

    fn matches(&self, name: &OsStr) -> bool {
        self.pattern
            .as_deref()
            .is_none_or(|p| wildcard_match(p, &name.to_string_lossy()))
    }
}

/// Opens directory `path` (absolute, or relative to `base`) one component at a time, never
/// following a symlink; with `dev`, every directory must be on that filesystem.
fn open_beneath(
    base: impl std::os::fd::AsFd,
    path: &Path,
    dev: Option<libc::dev_t>,
) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd = match path.is_absolute() {
        true => openat(AT_FDCWD, "/", flags, Mode::empty())?,
        false => openat(&base, ".", flags, Mode::empty())?,
    };
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => {
                fd = openat(&fd, name, flags, Mode::empty())?;
                if dev.is_some_and(|d| fstat(&fd).map(|s| s.st_dev) != Ok(d)) {
                    return Err(Errno::EXDEV);
                }
            }
            // `..` cannot occur in a resolved path or one we built; refuse rather than climb.
            Component::ParentDir | Component::Prefix(_) => return Err(Errno::EINVAL),
        }
    }
    Ok(fd)
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
}

/// Modification time in nanoseconds since the epoch.
fn mtime_ns(st: &FileStat) -> i128 {
    i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec)
}

/// A file old enough and matching, found by the scan.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    /// First, so the heap orders by age: its top is the newest kept.
    mtime_ns: i128,
    /// Directory relative to the root (shared by the files of one directory).
    dir: Rc<PathBuf>,
    name: OsString,
    ino: libc::ino_t,
    size: u64,
}

/// What a run found and did.
#[derive(Debug, Default)]
struct Tally {
    /// The oldest candidates, at most `max_files`.
    heap: BinaryHeap<Candidate>,
    candidates: u64,
    /// Candidates the limits (or the heap) left in place.
    left: u64,
    deleted: Vec<PathBuf>,
    deleted_bytes: u64,
    vanished: u64,
    errors: Vec<String>,
    timed_out: bool,
}

impl Tally {
    fn error(&mut self, what: impl std::fmt::Display, path: &Path, e: Errno) {
        self.errors
            .push(format!("{what} {}: {}", path.display(), e.desc()));
    }
}

/// What every directory of one walk is checked against.
#[derive(Debug, Clone, Copy)]
struct Walk {
    /// The root's filesystem.
    dev: libc::dev_t,
    /// Files modified before this (ns since the epoch) are old enough.
    cutoff_ns: i128,
    deadline: Instant,
}

/// One directory being walked: its descriptor, path below the root, subdirectories left.
struct Frame {
    fd: OwnedFd,
    rel: Rc<PathBuf>,
    subdirs: std::vec::IntoIter<OsString>,
}

impl CleanFiles {
    fn shown(&self, rel: &Path, name: &OsStr) -> PathBuf {
        self.root.join(rel).join(name)
    }

    /// Reads one directory: candidates into `heap`, subdirectories (same filesystem) returned.
    fn scan_dir(
        &self,
        fd: &OwnedFd,
        rel: &Rc<PathBuf>,
        walk: Walk,
        tally: &mut Tally,
    ) -> Vec<OsString> {
        let mut subdirs = Vec::new();
        // readdir gets its own descriptor; `fd` stays for the *at calls.
        let dir = fd
            .try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            .and_then(Dir::from_fd);
        let mut dir = match dir {
            Ok(d) => d,
            Err(e) => {
                tally.error("reading", &self.root.join(rel.as_path()), e);
                return subdirs;
            }
        };
        for entry in dir.iter() {
            if Instant::now() > walk.deadline {
                tally.timed_out = true;
                break;
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tally.error("reading", &self.root.join(rel.as_path()), e);
                    break;
                }
            };
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let st = match fstatat(fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => continue,
                Err(e) => {
                    tally.error("stat", &self.shown(rel, name), e);
                    continue;
                }
            };
            if is(&st, SFlag::S_IFDIR) {
                if self.recursive && st.st_dev == walk.dev {
                    subdirs.push(name.to_owned());
                }
            } else if is(&st, SFlag::S_IFREG)
                && self.matches(name)
                && mtime_ns(&st) < walk.cutoff_ns
            {
                tally.candidates += 1;
                tally.heap.push(Candidate {
                    mtime_ns: mtime_ns(&st),
                    dir: Rc::clone(rel),
                    name: name.to_owned(),
                    ino: st.st_ino,
                    size: u64::try_from(st.st_size).unwrap_or(0),
                });
                // Only the oldest `max_files` can ever be deleted in this run.
                if tally.heap.len() as u64 > self.max_files {
                    tally.heap.pop();
                }
            }
        }
        subdirs
    }

    /// Walks the tree below `root` and returns the candidates, oldest first.
    fn scan(&self, root: OwnedFd, walk: Walk, tally: &mut Tally) -> Vec<Candidate> {
        let top = Rc::new(PathBuf::new());
        let subdirs = self.scan_dir(&root, &top, walk, tally);
        let mut stack = vec![Frame {
            fd: root,
            rel: top,
            subdirs: subdirs.into_iter(),
        }];
        loop {
            let depth = stack.len();
            let Some(frame) = stack.last_mut() else { break };
            if tally.timed_out {
                break;
            }
            let Some(name) = frame.subdirs.next() else {
                stack.pop();
                continue;
            };
            let rel = Rc::new(frame.rel.join(&name));
            if depth > MAX_DEPTH {
                tally.errors.push(format!(
                    "{}: deeper than {MAX_DEPTH} levels, not entered",
                    self.root.join(rel.as_path()).display()
                ));
                continue;
            }
            let fd = match open_beneath(&frame.fd, Path::new(&name), Some(walk.dev)) {
                Ok(fd) => fd,
                // Vanished, replaced by a symlink, or a mount appeared: not ours to enter.
                Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) => continue,
                Err(e) => {
                    tally.error("opening", &self.root.join(rel.as_path()), e);
                    continue;
                }
            };
            let subdirs = self.scan_dir(&fd, &rel, walk, tally);
            stack.push(Frame {
                fd,
                rel,
                subdirs: subdirs.into_iter(),
            });
        }
        std::mem::take(&mut tally.heap).into_sorted_vec()
    }

    /// Deletes `chosen` in order, reopening each file's directory from the root.
    fn delete(&self, root: &OwnedFd, walk: Walk, chosen: Vec<Candidate>, tally: &mut Tally) {
        let mut open: Option<(Rc<PathBuf>, OwnedFd)> = None;
        for c in chosen {
            if Instant::now() > walk.deadline {
                tally.timed_out = true;
                return;
            }
            let path = self.shown(&c.dir, &c.name);
            if open.as_ref().is_none_or(|(dir, _)| dir != &c.dir) {
                match open_beneath(root, c.dir.as_path(), Some(walk.dev)) {
                    Ok(fd) => open = Some((Rc::clone(&c.dir), fd)),
                    Err(Errno::ENOENT) => {
                        tally.vanished += 1;
                        continue;
                    }
                    Err(e) => {
                        tally.error("opening the directory of", &path, e);
                        continue;
                    }
                }
            }
            let Some((_, dir)) = &open else { continue };
            match fstatat(
                dir,
                c.name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) if is(&st, SFlag::S_IFREG) && st.st_ino == c.ino => {}
                // Replaced by something else since the scan: not what was chosen.
                Ok(_) | Err(Errno::ENOENT) => {
                    tally.vanished += 1;
                    continue;
                }
                Err(e) => {
                    tally.error("stat", &path, e);
                    continue;
                }
            }
            match unlinkat(dir, c.name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) => {
                    tally.deleted_bytes += c.size;
                    tally.deleted.push(path);
                }
                Err(Errno::ENOENT) => tally.vanished += 1,
                Err(e) => tally.error("deleting", &path, e),
            }
        }
    }

    /// Which candidates (oldest first) fit the limits; the rest stay.
    fn choose(&self, mut candidates: Vec<Candidate>) -> Vec<Candidate> {
        let mut bytes = 0u64;
        let mut n = 0usize;
        for c in &candidates {
            let over_files = n as u64 >= self.max_files;
            let over_bytes = self
                .max_bytes
                .is_some_and(|m| bytes.saturating_add(c.size) > m);
            if over_files || over_bytes {
                break;
            }
            bytes += c.size;
            n += 1;
        }
        candidates.truncate(n);
        candidates
    }

    fn report(&self, tally: &Tally) -> (String, String) {
        let n = tally.deleted.len();
        let mut summary = format!(
            "deleted {n} file{} ({}) under {}",
            if n == 1 { "" } else { "s" },
            format_size(tally.deleted_bytes),
            self.root.display()
        );
        if tally.left > 0 {
            summary.push_str(&format!("; {} left by the limit", tally.left));
        }
        if tally.vanished > 0 {
            summary.push_str(&format!("; {} vanished or changed first", tally.vanished));
        }
        let mut output = String::new();
        for p in tally.deleted.iter().take(LISTED_FILES) {
            output.push_str(&format!("deleted {}\n", p.display()));
        }
        if n > LISTED_FILES {
            output.push_str(&format!("… and {} more\n", n - LISTED_FILES));
        }
        for e in tally.errors.iter().take(LISTED_ERRORS) {
            output.push_str(&format!("error: {e}\n"));
        }
        if tally.errors.len() > LISTED_ERRORS {
            output.push_str(&format!(
                "… and {} more errors\n",
                tally.errors.len() - LISTED_ERRORS
            ));
        }
        (summary, output)
    }
}

impl Action for CleanFiles {
    fn kind(&self) -> ActionKind {
        ActionKind::CleanFiles
    }

    fn target(&self, _ctx: &ActionContext) -> Result<String, ActionError> {
        Ok(format!("path:{}", self.root.display()))
    }

    fn describe(&self, _ctx: &ActionContext) -> String {
        let mut line = format!(
            "delete files matching {:?} older than {} under {}",
            self.pattern.as_deref().unwrap_or("*"),
            humantime::format_duration(self.older_than),
            self.root.display()
        );
        line.push_str(if self.recursive {
            " and its subdirectories"
        } else {
            ""
        });
        line.push_str(&format!(" (at most {} files", self.max_files));
        if let Some(b) = self.max_bytes {
            line.push_str(&format!(", {}", format_size(b)));
        }
        line.push(')');
        line
    }

    fn run(&self, _ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        let deadline = Instant::now() + self.timeout;
        let (root, st) = self.open_root()?;
        let walk = Walk {
            dev: st.st_dev,
            cutoff_ns: SystemTime::now()
                .checked_sub(self.older_than)
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(i128::MIN, |d| d.as_nanos() as i128),
            deadline,
        };
        let mut tally = Tally::default();
        let dup = root.try_clone().map_err(|e| ActionError::Failed {
            message: format!("duplicating the descriptor of {}: {e}", self.root.display()),
            output: String::new(),
        })?;
        let candidates = self.scan(dup, walk, &mut tally);
        if !tally.timed_out {
            let chosen = self.choose(candidates);
            tally.left = tally.candidates - chosen.len() as u64;
            self.delete(&root, walk, chosen, &mut tally);
        }
        let (summary, output) = self.report(&tally);
        if tally.timed_out {
            return Err(ActionError::TimedOut {
                after: self.timeout,
                output: format!("{summary} before the timeout\n{output}"),
            });
        }
        if let Some(first) = tally.errors.first() {
            return Err(ActionError::Failed {
                message: format!(
                    "{summary}; {} error{}, the first: {first}",
                    tally.errors.len(),
                    if tally.errors.len() == 1 { "" } else { "s" }
                ),
                output,
            });
        }
        Ok(ActionOutput { summary, output })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteSize, HumanDuration};

    const DAY: Duration = Duration::from_secs(86_400);

    /// A temp tree: `allowed/app` is the root to clean, `outside` is not allowed.
    struct Tree {
        _dir: tempfile::TempDir,
        top: PathBuf,
        root: PathBuf,
        outside: PathBuf,
    }

    impl Tree {
        fn new() -> Tree {
            let dir = tempfile::tempdir().unwrap();
            let top = dir.path().to_path_buf();
            let root = top.join("allowed/app");
            let outside = top.join("outside");
            std::fs::create_dir_all(&root).unwrap();
            std::fs::create_dir_all(&outside).unwrap();
            Tree {
                _dir: dir,
                top,
                root,
                outside,
            }
        }

        /// A file of `size` bytes last modified `age` ago.
        fn file(&self, path: &Path, size: usize, age: Duration) -> PathBuf {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(path, vec![b'x'; size]).unwrap();
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(SystemTime::now() - age)
                .unwrap();
            path.to_path_buf()
        }

        fn repair(&self) -> RepairConfig {
            RepairConfig {
                allowed_paths: vec![self.top.join("allowed")],
                ..Default::default()
            }
        }

        fn rule(&self) -> RepairRuleConfig {
            RepairRuleConfig {
                name: "clean".into(),
                action: ActionKind::CleanFiles,
                path: Some(self.root.clone()),
                older_than: Some(HumanDuration(DAY)),
                ..Default::default()
            }
        }

        fn run(&self, rule: &RepairRuleConfig) -> Result<ActionOutput, ActionError> {
            CleanFiles::new(rule, &self.repair())
                .unwrap()
                .run(&ActionContext::default())
        }
    }

    fn exists(p: &Path) -> bool {
        p.symlink_metadata().is_ok()
    }

    #[test]
    fn deletes_old_matching_files_and_recurses_only_when_asked() {
        let t = Tree::new();
        let r = &t.root;
        let a = t.file(&r.join("a.log"), 100, 10 * DAY);
        let b = t.file(&r.join("b.log"), 100, 5 * DAY);
        let new = t.file(&r.join("new.log"), 100, Duration::ZERO);
        let txt = t.file(&r.join("keep.txt"), 100, 10 * DAY);
        let c = t.file(&r.join("sub/c.log"), 2048, 10 * DAY);
        let d = t.file(&r.join("sub/deeper/d.log"), 100, 3 * DAY);
        let mut rule = t.rule();
        rule.pattern = Some("*.log".into());
        let out = t.run(&rule).unwrap();
        assert_eq!(
            out.summary,
            format!("deleted 2 files (200 B) under {}", r.display())
        );
        // Oldest first.
        assert_eq!(
            out.output,
            format!("deleted {}\ndeleted {}\n", a.display(), b.display())
        );
        assert!(!exists(&a) && !exists(&b));
        assert!(exists(&new) && exists(&txt) && exists(&c) && exists(&d));

        rule.recursive = true;
        let out = t.run(&rule).unwrap();
        assert_eq!(
            out.summary,
            format!("deleted 2 files (2.1 KiB) under {}", r.display())
        );
        assert_eq!(
            out.output,
            format!("deleted {}\ndeleted {}\n", c.display(), d.display())
        );
        assert!(exists(&new) && exists(&txt) && exists(&r.join("sub/deeper")));

        // Nothing left to do is a success too.
        let out = t.run(&rule).unwrap();
        assert_eq!(
            out.summary,
            format!("deleted 0 files (0 B) under {}", r.display())
        );
    }

    #[test]
    fn limits_keep_the_newest() {
        let t = Tree::new();
        let files: Vec<PathBuf> = (1..=5u32)
            .map(|i| t.file(&t.root.join(format!("f{i}")), 100, (6 - i) * DAY))
            .collect();
        let mut rule = t.rule();
        rule.max_files = 2;
        let out = t.run(&rule).unwrap();
        assert_eq!(
            out.summary,
            format!(
                "deleted 2 files (200 B) under {}; 3 left by the limit",
                t.root.display()
            )
        );
        assert!(!exists(&files[0]) && !exists(&files[1]) && exists(&files[2]));

        rule.max_files = 1000;
        rule.max_bytes = Some(ByteSize(250));
        let out = t.run(&rule).unwrap();
        assert_eq!(
            out.summary,
            format!(
                "deleted 2 files (200 B) under {}; 1 left by the limit",
                t.root.display()
            )
        );
        assert!(!exists(&files[2]) && !exists(&files[3]) && exists(&files[4]));
    }

    #[test]
    fn symlinks_are_neither_followed_nor_deleted() {
        let t = Tree::new();
        let victim = t.file(&t.outside.join("victim.log"), 10, 10 * DAY);
        let victim2 = t.file(&t.outside.join("d/victim2.log"), 10, 10 * DAY);
        let link_file = t.root.join("link.log");
        let link_dir = t.root.join("linkdir");
        std::os::unix::fs::symlink(&victim, &link_file).unwrap();
        std::os::unix::fs::symlink(t.outside.join("d"), &link_dir).unwrap();
        let real = t.file(&t.root.join("real.log"), 10, 10 * DAY);
        let mut rule = t.rule();
        rule.recursive = true;
        let out = t.run(&rule).unwrap();
        assert_eq!(out.output, format!("deleted {}\n", real.display()));
        assert!(exists(&victim) && exists(&victim2));
        assert!(exists(&link_file) && exists(&link_dir));
    }

    #[test]
    fn a_root_that_resolves_outside_the_allowlist_is_refused() {
        let t = Tree::new();
        let victim = t.file(&t.outside.join("d/victim.log"), 10, 10 * DAY);
        let mut rule = t.rule();
        // The root itself a symlink to outside, and a root below a symlinked directory.
        let link = t.top.join("allowed/link");
        std::os::unix::fs::symlink(&t.outside, &link).unwrap();
        for path in [link.clone(), link.join("d")] {
            rule.path = Some(path.clone());
            let e = t.run(&rule).unwrap_err();
            let ActionError::Refused(why) = &e else {
                panic!("{e:?}")
            };
            assert!(
                why.starts_with(&format!("{} resolves to ", path.display())),
                "{why}"
            );
        }
        assert!(exists(&victim));

        // Not under the allowlist as written: refused when built.
        rule.path = Some(t.outside.clone());
        let e = CleanFiles::new(&rule, &t.repair()).unwrap_err();
        assert!(
            e.0.contains("is not under any of repair.allowed_paths"),
            "{e}"
        );
    }

    #[test]
    fn an_allowed_directory_written_through_a_symlink_admits_its_target() {
        let t = Tree::new();
        let alias = t.top.join("alias");
        std::os::unix::fs::symlink(t.top.join("allowed"), &alias).unwrap();
        let old = t.file(&t.root.join("old"), 10, 10 * DAY);
        let repair = RepairConfig {
            allowed_paths: vec![alias.clone()],
            ..Default::default()
        };
        let rule = RepairRuleConfig {
            path: Some(alias.join("app")),
            ..t.rule()
        };
        let a = CleanFiles::new(&rule, &repair).unwrap();
        let out = a.run(&ActionContext::default()).unwrap();
        assert_eq!(
            out.output,
            format!("deleted {}\n", alias.join("app/old").display())
        );
        assert!(!exists(&old));
    }

    #[test]
    fn the_output_lists_a_bounded_number_of_files() {
        let t = Tree::new();
        for i in 0..55 {
            t.file(&t.root.join(format!("f{i:02}")), 1, DAY * 2);
        }
        let out = t.run(&t.rule()).unwrap();
        assert_eq!(
            out.summary,
            format!("deleted 55 files (55 B) under {}", t.root.display())
        );
        let lines: Vec<&str> = out.output.lines().collect();
        assert_eq!(lines.len(), 51);
        assert_eq!(lines[50], "… and 5 more");
    }

    #[test]
    fn a_problem_with_one_entry_does_not_stop_the_run_but_fails_it() {
        let t = Tree::new();
        let mut deep = t.root.clone();
        for _ in 0..=MAX_DEPTH {
            deep.push("d");
        }
        let unreached = t.file(&deep.join("old"), 10, 10 * DAY);
        let old = t.file(&t.root.join("old"), 10, 10 * DAY);
        let mut rule = t.rule();
        rule.recursive = true;
        let e = t.run(&rule).unwrap_err();
        let ActionError::Failed { message, output } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            message,
            &format!(
                "deleted 1 file (10 B) under {}; 1 error, the first: {}: deeper than \
                 {MAX_DEPTH} levels, not entered",
                t.root.display(),
                deep.display()
            )
        );
        assert_eq!(
            output,
            &format!(
                "deleted {}\nerror: {}: deeper than {MAX_DEPTH} levels, not entered\n",
                old.display(),
                deep.display()
            )
        );
        assert!(!exists(&old) && exists(&unreached));
    }

    #[test]
    fn the_timeout_stops_the_run() {
        let t = Tree::new();
        let old = t.file(&t.root.join("old"), 10, 10 * DAY);
        let mut rule = t.rule();
        // Already over when the first entry is looked at.
        rule.timeout = HumanDuration(Duration::from_nanos(1));
        let e = t.run(&rule).unwrap_err();
        let ActionError::TimedOut { after, output } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*after, Duration::from_nanos(1));
        assert_eq!(
            output,
            &format!(
                "deleted 0 files (0 B) under {} before the timeout\n",
                t.root.display()
            )
        );
        assert!(exists(&old));
    }

    #[test]
    fn describes_itself_and_its_target() {
        let t = Tree::new();
        let rule = RepairRuleConfig {
            pattern: Some("*.gz".into()),
            recursive: true,
            max_bytes: Some(ByteSize(1 << 30)),
            ..t.rule()
        };
        let a = CleanFiles::new(&rule, &t.repair()).unwrap();
        let ctx = ActionContext::default();
        assert_eq!(a.kind(), ActionKind::CleanFiles);
        assert_eq!(
            a.target(&ctx).unwrap(),
            format!("path:{}", t.root.display())
        );
        assert_eq!(
            a.describe(&ctx),
            format!(
                "delete files matching \"*.gz\" older than 1day under {} and its \
                 subdirectories (at most 1000 files, 1.0 GiB)",
                t.root.display()
            )
        );
        assert_eq!(format_size(340 << 20), "340 MiB");
        assert_eq!(format_size(1023), "1023 B");
    }
}
