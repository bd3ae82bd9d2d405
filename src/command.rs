//! Running an external program safely, shared by the exec collector (plugins) and the exec
//! repair action, so both contain a run the same way:
//!
//! - **argv, no shell**: the program gets its arguments as given; nothing is expanded.
//! - **Cleared environment** plus exactly the variables in [`Spec::env`].
//! - **Own process group**: at the deadline the whole group gets `SIGKILL`, so children a
//!   script started die with it. After a normal exit the group is killed too when
//!   [`Spec::kill_after_exit`] is set (plugins: leftovers would hold the pipes open and
//!   linger); a repair leaves it alone, since what a repair starts may be the very service it
//!   brings back.
//! - **Bounded output**: each stream keeps its first [`Capture::keep`] bytes; past that the
//!   run is either killed ([`Overflow::Kill`]) or the rest is read and dropped
//!   ([`Overflow::Drain`]), so the child never blocks on a full pipe. The total is counted.
//! - **Run as a user**: uid, primary gid, and no supplementary groups (std drops them when it
//!   changes the uid). [`resolve_user`] refuses when the daemon is not root.
//!
//! [`run`] blocks the calling thread until the program has ended (or was killed) and its
//! output was read, or shortly after that when something outside its group holds the pipes.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};

/// How long to wait for the pipes and the exit status after the group was killed, or for the
/// pipes after a normal exit when the group is left alone.
const AFTER_END: Duration = Duration::from_secs(1);

/// Read size of the pipe readers.
const CHUNK: usize = 16 * 1024;

/// What to do when a stream goes past what is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Kill the process group: the output is useless when incomplete (plugins).
    Kill,
    /// Read and drop the rest: the run still counts (repairs).
    Drain,
}

/// How much of one stream is kept, and what happens past that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// Bytes kept from the start of the stream.
    pub keep: usize,
    /// Past `keep`.
    pub overflow: Overflow,
}

/// One program to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The program (an absolute path; there is no PATH lookup to rely on).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment.
    pub env: Vec<(String, OsString)>,
    /// uid and gid to run as (see [`resolve_user`]).
    pub ids: Option<(u32, u32)>,
    /// Working directory.
    pub working_dir: PathBuf,
    /// The group is killed this long after the start.
    pub deadline: Duration,
    /// Standard output.
    pub stdout: Capture,
    /// Standard error.
    pub stderr: Capture,
    /// Kill the group after the program exited, too.
    pub kill_after_exit: bool,
}

/// What was read from one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The first bytes, at most [`Capture::keep`].
    pub kept: Vec<u8>,
    /// Bytes read in all (more than `kept.len()` when some were dropped).
    pub total: u64,
    /// The stream reached its end (or a read error).
    pub ended: bool,
    /// Reading failed.
    pub error: Option<String>,
    /// It went past [`Capture::keep`] under [`Overflow::Kill`], and the group was killed.
    pub over_limit: bool,
}

impl Output {
    /// Whether bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.total > self.kept.len() as u64
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit status, when it was seen.
    pub status: Option<ExitStatus>,
    /// Standard output as far as it was read.
    pub stdout: Output,
    /// Standard error as far as it was read.
    pub stderr: Output,
    /// Killed at the deadline.
    pub timed_out: bool,
    /// From start to exit (or to the end of the wait).
    pub duration: Duration,
}

/// The run did not happen or its end could not be observed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started (missing, not executable, bad working directory).
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// Waiting for its exit failed.
    #[error("waiting for {program}: {source}")]
    Wait {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
}

/// uid and primary gid of `user`, if the daemon may switch to it. `what` names what would run
/// as that user, for the message (`"plugins"`).
pub fn resolve_user(user: &str, what: &str) -> Result<(u32, u32), String> {
    let found = User::from_name(user)
        .map_err(|e| format!("looking up user {user:?}: {e}"))?
        .ok_or_else(|| format!("user {user:?} does not exist"))?;
    let euid = nix::unistd::geteuid();
    if found.uid != euid && !euid.is_root() {
        return Err(format!(
            "running {what} as user {user:?} needs root, but automon runs as uid {euid}; \
             remove `user` or run the daemon as root"
        ));
    }
    Ok((found.uid.as_raw(), found.gid.as_raw()))
}

/// The daemon's values of the variables `names`; one that is not set is simply not passed.
pub fn passed_env(names: &[String]) -> Vec<(String, OsString)> {
    names
        .iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (k.clone(), v)))
        .collect()
}

/// Exit code as a shell reports it: the code, or 128 + the signal that ended the process.
pub fn exit_code(status: &ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// `exited with status 3` or `killed by signal 9`.
pub fn status_text(status: &ExitStatus) -> String {
    match status.signal() {
        Some(sig) => format!("killed by signal {sig}"),
        None => format!("exited with status {}", exit_code(status)),
    }
}

/// What the helper threads report.
enum Event {
    Exited(std::io::Result<ExitStatus>),
    /// A stream ended; its [`Output`] says how.
    Ended,
    /// A stream under [`Overflow::Kill`] went over its limit or failed: kill the group.
    OverLimit,
}

fn lock(m: &Mutex<Output>) -> MutexGuard<'_, Output> {
    // A reader thread cannot panic while holding the lock, but a poisoned buffer is still the
    // best record of the output there is.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `from` on a thread of its own into a shared buffer the caller can look at any time
/// (output so far at a timeout).
fn spawn_reader(
    mut from: impl Read + Send + 'static,
    capture: Capture,
    tx: mpsc::Sender<Event>,
) -> Arc<Mutex<Output>> {
    let shared = Arc::new(Mutex::new(Output::default()));
    let out = Arc::clone(&shared);
    std::thread::spawn(move || {
        let mut chunk = vec![0u8; CHUNK];
        loop {
            match from.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let mut o = lock(&out);
                    let room = capture.keep.saturating_sub(o.kept.len());
                    o.kept.extend_from_slice(&chunk[..n.min(room)]);
                    o.total += n as u64;
                    if capture.overflow == Overflow::Kill && o.total > capture.keep as u64 {
                        o.over_limit = true;
                        o.ended = true;
                        drop(o);
                        let _ = tx.send(Event::OverLimit);
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let mut o = lock(&out);
                    o.error = Some(e.to_string());
                    o.ended = true;
                    drop(o);
                    // Under Kill the output is useless now; under Drain the run still counts.
                    let _ = tx.send(match capture.overflow {
                        Overflow::Kill => Event::OverLimit,
                        Overflow::Drain => Event::Ended,
                    });
                    return;
                }
            }
        }
        lock(&out).ended = true;
        let _ = tx.send(Event::Ended);
    });
    shared
}

/// Runs `spec` to its end; see the module documentation.
pub fn run(spec: &Spec) -> Result<Finished, RunError> {
    let program = spec.program.display().to_string();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A new group led by the child: one killpg reaches everything it started.
        .process_group(0)
        .current_dir(&spec.working_dir);
    if let Some((uid, gid)) = spec.ids {
        cmd.uid(uid).gid(gid);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pgid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    let ended_stream = || {
        Arc::new(Mutex::new(Output {
            ended: true,
            ..Output::default()
        }))
    };
    let stdout = match child.stdout.take() {
        Some(out) => spawn_reader(out, spec.stdout, tx.clone()),
        None => ended_stream(),
    };
    let stderr = match child.stderr.take() {
        Some(err) => spawn_reader(err, spec.stderr, tx.clone()),
        None => ended_stream(),
    };
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Event::Exited(child.wait()));
        });
    }
    drop(tx);

    let mut status = None;
    let mut duration = None;
    let mut timed_out = false;
    // When the last wait began: after the kill, or after the exit when the group is left.
    let mut ending_since: Option<Instant> = None;
    let mut killed = false;
    let mut kill = |ending_since: &mut Option<Instant>| {
        if !killed {
            // ESRCH (the group is already gone) is the expected case after a clean exit.
            let _ = killpg(pgid, Signal::SIGKILL);
            killed = true;
            *ending_since = Some(Instant::now());
        }
    };
    while status.is_none() || !lock(&stdout).ended || !lock(&stderr).ended {
        let until = match ending_since {
            Some(t) => t + AFTER_END,
            None => started + spec.deadline,
        };
        let Some(wait) = until.checked_duration_since(Instant::now()) else {
            if ending_since.is_some() {
                // Something outside the group (or a survivor we left alone) still holds a
                // pipe; the reader threads end when it lets go. Report with what we have.
                break;
            }
            timed_out = true;
            kill(&mut ending_since);
            continue;
        };
        match rx.recv_timeout(wait) {
            Ok(Event::Exited(result)) => {
                duration = Some(started.elapsed());
                status = Some(result.map_err(|source| RunError::Wait {
                    program: program.clone(),
                    source,
                })?);
                if spec.kill_after_exit {
                    // Leftover children would keep the pipes open until they exit.
                    kill(&mut ending_since);
                } else if ending_since.is_none() {
                    ending_since = Some(Instant::now());
                }
            }
            Ok(Event::OverLimit) => kill(&mut ending_since),
            Ok(Event::Ended) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let stdout = lock(&stdout).clone();
    let stderr = lock(&stderr).clone();
    Ok(Finished {
        status,
        stdout,
        stderr,
        timed_out,
        duration: duration.unwrap_or_else(|| started.elapsed()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// Writes an executable `sh` script.
    pub(crate) fn script(dir: &Path, name: &str, body: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    /// A script that first starts `sleep 300` in the background, then runs `rest`; returns
    /// it and a function giving the background child's pid (once the script has run).
    pub(crate) fn script_with_child(
        dir: &Path,
        name: &str,
        rest: &str,
    ) -> (String, impl Fn() -> i32) {
        let pidfile = dir.join(format!("{name}.pid"));
        let body = format!("sleep 300 &\necho $! > {}\n{rest}", pidfile.display());
        let pid = move || {
            std::fs::read_to_string(&pidfile)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        (script(dir, name, &body), pid)
    }

    /// Whether process `pid` is gone (or a zombie nobody reaped), polled for a while: a killed
    /// process needs a moment to die.
    pub(crate) fn wait_gone(pid: i32) -> bool {
        (0..200).any(|_| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
            let alive = stat.is_ok_and(|s| !s.contains(") Z "));
            if alive {
                std::thread::sleep(Duration::from_millis(20));
            }
            !alive
        })
    }

    fn spec(args: &[&str]) -> Spec {
        Spec {
            program: PathBuf::from("/bin/sh"),
            args: std::iter::once("-c")
                .chain(args.iter().copied())
                .map(String::from)
                .collect(),
            env: Vec::new(),
            ids: None,
            working_dir: PathBuf::from("/"),
            deadline: Duration::from_secs(30),
            stdout: Capture {
                keep: 10,
                overflow: Overflow::Drain,
            },
            stderr: Capture {
                keep: 10,
                overflow: Overflow::Drain,
            },
            kill_after_exit: true,
        }
    }

    #[test]
    fn drained_streams_keep_the_start_and_count_the_rest() {
        let done = run(&spec(&["printf 0123456789abcdef; printf err >&2; exit 4"])).unwrap();
        assert_eq!(done.status.map(|s| exit_code(&s)), Some(4));
        assert_eq!(done.stdout.kept, b"0123456789");
        assert_eq!(done.stdout.total, 16);
        assert!(done.stdout.truncated() && !done.stdout.over_limit);
        assert_eq!(done.stderr.kept, b"err");
        assert!(!done.stderr.truncated());
        assert!(!done.timed_out);
    }

    #[test]
    fn a_stream_over_its_limit_kills_the_group_under_kill() {
        let mut s = spec(&["while :; do echo 0123456789; done"]);
        s.stdout.overflow = Overflow::Kill;
        let done = run(&s).unwrap();
        assert!(done.stdout.over_limit);
        assert_eq!(done.stdout.kept.len(), 10);
        assert!(!done.timed_out);
        // SIGKILL from us, or SIGPIPE once the reader stopped reading: either way not an exit.
        assert!(done.status.is_some_and(|s| s.signal().is_some()));
    }

    #[test]
    fn status_text_tells_exits_from_signals() {
        let exited = run(&spec(&["exit 3"])).unwrap().status.unwrap();
        assert_eq!(status_text(&exited), "exited with status 3");
        let killed = run(&spec(&["kill -9 $$"])).unwrap().status.unwrap();
        assert_eq!(status_text(&killed), "killed by signal 9");
        assert_eq!(exit_code(&killed), 137);
    }
}
