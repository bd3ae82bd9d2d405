//! `exec` collector: runs configured commands (plugins) and turns their standard output, in
//! the Prometheus text format, into metrics labelled `plugin="NAME"`. All plugins run in
//! parallel on each collection, each with its own deadline; their families are merged, so two
//! plugins may export the same family (told apart by `plugin`), which separate collectors
//! could not without writing one family twice into `/metrics`.
//!
//! How a run is contained, and why (the mechanics live in [`crate::command`], shared with the
//! exec repair action):
//!
//! - **argv, no shell**: the program (an absolute path) gets its arguments as configured;
//!   nothing is expanded, so config values cannot inject commands.
//! - **Cleared environment** plus the variables the operator names (`env = ["PATH"]`): the
//!   daemon's own environment (credentials directory, notify socket) is not the plugin's
//!   business.
//! - **Own process group**, and that whole group gets `SIGKILL` at the plugin's deadline, when
//!   its output is over the limit, and after it exits (leftover children a script started
//!   would otherwise hold the pipes open and linger). The kill deadline is the collector's
//!   deadline less a small margin, so the run ends inside `collect` and is reported with its
//!   reason rather than as a bare scheduler timeout.
//! - **Bounded output**: at most `max_output_bytes` of stdout are read; a plugin that writes
//!   more is killed and the run fails. Nothing partial is ever parsed. Stderr is drained and
//!   its first [`STDERR_EXCERPT_BYTES`] kept for the error in `/health`.
//! - **Run as a user** (`user = "nobody"`): uid, primary gid, and no supplementary groups
//!   (std drops them when it changes the uid). Switching users needs root; without it the
//!   collector refuses to build, with that reason, rather than silently running as the daemon.
//!
//! A run succeeds when the plugin exits with one of `ok_exit_codes` (default 0) and its whole
//! output parses; then its families are exported with `plugin` added. Any other run
//! contributes none of its output; it is named in `/health` with the reason and the stderr
//! excerpt (the collection's note while other plugins succeed, its error when all fail).
//! Either way `automon_exec_exit_code{plugin}` (128 + signal when killed),
//! `automon_exec_duration_seconds{plugin}` and `automon_exec_success{plugin}` report the run,
//! so a failing plugin is alertable by name. Families named `automon_*` or `process_*` are
//! dropped: a plugin must not impersonate the daemon's own metrics.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::textfile::FamilyOwners;
use super::{Collection, Collector, CollectorError};
use crate::command::{
    self, exit_code, passed_env, resolve_user, status_text, Capture, Finished, Overflow, RunError,
    Spec,
};
use crate::config::{ExecConfig, ExecPluginConfig};
use crate::exposition::parse_text;
use crate::model::Family;

/// Stderr kept for the error message.
pub const STDERR_EXCERPT_BYTES: usize = 512;

/// Taken off the collector's deadline for the plugin's own, so that killing it, reaping it
/// and reporting fit before the scheduler gives up on the collection.
const KILL_MARGIN: Duration = Duration::from_millis(250);

/// One configured plugin, ready to run.
struct Plugin {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, std::ffi::OsString)>,
    ids: Option<(u32, u32)>,
    ok_exit_codes: Vec<i32>,
    deadline: Duration,
    max_output: u64,
}

impl Plugin {
    /// Builds the plugin, to be killed at `own` or a little before the collection's
    /// `deadline`, whichever comes first.
    fn new(
        cfg: &ExecPluginConfig,
        own: Duration,
        deadline: Duration,
        max_output: u64,
    ) -> Result<Self, CollectorError> {
        let (program, args) = match cfg.command.split_first() {
            Some((p, a)) => (PathBuf::from(p), a.to_vec()),
            None => return Err(CollectorError::Other("no command configured".into())),
        };
        // Read once at build time: the daemon's environment does not change afterwards.
        let env = passed_env(&cfg.env);
        let ids = match &cfg.user {
            None => None,
            Some(user) => Some(resolve_user(user, "plugins").map_err(CollectorError::Other)?),
        };
        let latest = deadline
            .checked_sub(KILL_MARGIN)
            .filter(|d| !d.is_zero())
            .unwrap_or(deadline / 2);
        Ok(Plugin {
            name: cfg.name.clone(),
            program,
            args,
            env,
            ids,
            ok_exit_codes: cfg.ok_exit_codes.clone(),
            deadline: own.min(latest),
            max_output,
        })
    }
}

impl Plugin {
    fn run(&self) -> Result<Finished, CollectorError> {
        let spec = Spec {
            program: self.program.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            ids: self.ids,
            working_dir: PathBuf::from("/"),
            deadline: self.deadline,
            stdout: Capture {
                keep: usize::try_from(self.max_output).unwrap_or(usize::MAX),
                overflow: Overflow::Kill,
            },
            // Drained to the end so the plugin never blocks on a full stderr pipe.
            stderr: Capture {
                keep: STDERR_EXCERPT_BYTES,
                overflow: Overflow::Drain,
            },
            kill_after_exit: true,
        };
        command::run(&spec).map_err(|e| match e {
            RunError::Spawn { .. } => CollectorError::Other(e.to_string()),
            RunError::Wait { source, .. } => {
                CollectorError::Other(format!("waiting for {}: {source}", self.name))
            }
        })
    }

    fn failure(&self, what: String, stderr: &[u8]) -> CollectorError {
        let excerpt = String::from_utf8_lossy(stderr);
        let excerpt = excerpt.trim();
        if excerpt.is_empty() {
            CollectorError::Other(format!("plugin {}: {what}", self.name))
        } else {
            let more = if stderr.len() >= STDERR_EXCERPT_BYTES {
                " …"
            } else {
                ""
            };
            CollectorError::Other(format!(
                "plugin {}: {what}; stderr: {}{more}",
                self.name,
                excerpt.replace('\n', " | ")
            ))
        }
    }
}

/// One plugin's run, interpreted.
struct Outcome {
    /// Its families (plugin label added), when the run counts.
    families: Result<Vec<Family>, CollectorError>,
    /// Exit code, when it exited (or was killed) at all.
    exit_code: Option<i32>,
    duration: Duration,
}

impl Plugin {
    fn collect(&self) -> Outcome {
        let run = match self.run() {
            Ok(run) => run,
            Err(e) => {
                return Outcome {
                    families: Err(e),
                    exit_code: None,
                    duration: Duration::ZERO,
                }
            }
        };
        Outcome {
            exit_code: run.status.as_ref().map(exit_code),
            duration: run.duration,
            families: self.interpret(run),
        }
    }

    fn interpret(&self, run: Finished) -> Result<Vec<Family>, CollectorError> {
        let stderr = &run.stderr.kept;
        if run.timed_out {
            return Err(self.failure(
                format!(
                    "killed after its deadline of {}",
                    humantime::format_duration(self.deadline)
                ),
                stderr,
            ));
        }
        if let Some(e) = &run.stdout.error {
            return Err(self.failure(format!("reading its output: {e}"), stderr));
        }
        if run.stdout.over_limit {
            return Err(self.failure(
                format!("its output exceeded the limit of {} bytes", self.max_output),
                stderr,
            ));
        }
        if !run.stdout.ended {
            return Err(self.failure(
                "its output did not end (a process outside its group holds it)".into(),
                stderr,
            ));
        }
        let Some(status) = run.status else {
            return Err(self.failure("its exit status was not seen".into(), stderr));
        };
        if status
            .code()
            .is_none_or(|c| !self.ok_exit_codes.contains(&c))
        {
            return Err(self.failure(status_text(&status), stderr));
        }
        let stdout = run.stdout.kept;
        let text = String::from_utf8(stdout)
            .map_err(|e| self.failure(format!("its output is not UTF-8: {e}"), stderr))?;
        let mut families = parse_text(&text)
            .map_err(|e| self.failure(format!("its output does not parse: {e}"), stderr))?;
        for f in &mut families {
            // As the textfile collector does: every served family has HELP (promtool lints it).
            if f.help.is_empty() {
                f.help = format!("Metric from exec plugin {}.", self.name);
            }
            for s in &mut f.samples {
                // The plugin's own `plugin` label would be ambiguous; ours wins.
                s.labels.retain(|(k, _)| k != "plugin");
                s.labels.insert(0, ("plugin".to_owned(), self.name.clone()));
                // Timestamps are the collection tick's, as for every collector.
                s.timestamp_ms = None;
            }
        }
        Ok(families)
    }
}

/// Runs every configured plugin; see the module documentation.
pub struct ExecCollector {
    plugins: Vec<Plugin>,
    /// Family names the other collectors export, which plugins must not shadow.
    owners: Option<Arc<FamilyOwners>>,
    /// The first collection waits this long for the other collectors to publish their names.
    peer_wait: Option<Duration>,
}

impl ExecCollector {
    /// Builds the plugins of `cfg`. `timeout` is the collection's deadline; each plugin is
    /// killed at its own timeout, at most a little before that. Fails when a `user` does not
    /// exist or the daemon cannot switch to it.
    /// `owners` (from [`build`](super::build)) names the families other collectors export;
    /// without it plugin families are not checked against them.
    pub fn new(
        cfg: &ExecConfig,
        timeout: Duration,
        owners: Option<Arc<FamilyOwners>>,
    ) -> Result<Self, CollectorError> {
        let plugins = cfg
            .plugins
            .iter()
            .map(|p| {
                let own = p.timeout.map_or(timeout, |t| t.0.min(timeout));
                Plugin::new(p, own, timeout, cfg.max_output_bytes.0)
            })
            .collect::<Result<_, _>>()?;
        Ok(ExecCollector {
            plugins,
            owners,
            // As the textfile collector: at most half the deadline, so waiting never makes the
            // collection late.
            peer_wait: Some((timeout / 2).min(Duration::from_secs(1))),
        })
    }
}

impl Collector for ExecCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        if let (Some(owners), Some(wait)) = (&self.owners, self.peer_wait.take()) {
            owners.wait_for_first_runs_except(wait, "exec");
        }
        // In parallel, so that one slow plugin costs the others nothing but the wait.
        let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .plugins
                .iter()
                .map(|p| scope.spawn(move || p.collect()))
                .collect();
            handles
                .into_iter()
                .zip(&self.plugins)
                .map(|(h, p)| {
                    h.join().unwrap_or_else(|_| Outcome {
                        families: Err(CollectorError::Other(format!(
                            "plugin {}: its runner panicked",
                            p.name
                        ))),
                        exit_code: None,
                        duration: Duration::ZERO,
                    })
                })
                .collect()
        });

        let mut merged: Vec<Family> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut problems = Vec::new();
        let mut exit = Family::gauge(
            "automon_exec_exit_code",
            "Exit code of the plugin's last run (128 + signal when killed).",
        );
        let mut duration = Family::gauge(
            "automon_exec_duration_seconds",
            "Wall-clock duration of the plugin's last run.",
        );
        let mut success = Family::gauge(
            "automon_exec_success",
            "1 if the plugin's last run succeeded and its output was used, 0 otherwise.",
        );
        let mut failed = 0;
        for (plugin, outcome) in self.plugins.iter().zip(outcomes) {
            let p = [("plugin", plugin.name.as_str())];
            if let Some(code) = outcome.exit_code {
                exit.push(&p, f64::from(code));
                duration.push(&p, outcome.duration.as_secs_f64());
            }
            match outcome.families {
                Ok(families) => {
                    success.push(&p, 1.0);
                    for f in families {
                        if f.name.starts_with("automon_") || f.name.starts_with("process_") {
                            problems.push(format!(
                                "plugin {}: dropped {}: the name is reserved for automon's own metrics",
                                plugin.name, f.name
                            ));
                            continue;
                        }
                        // Served twice, the family would break the exposition.
                        if let Some(owner) = self
                            .owners
                            .as_ref()
                            .and_then(|o| o.owner_besides(&f.name, "exec"))
                        {
                            problems.push(format!(
                                "plugin {}: dropped {}: {owner} exports it",
                                plugin.name, f.name
                            ));
                            continue;
                        }
                        match index.get(&f.name) {
                            None => {
                                index.insert(f.name.clone(), merged.len());
                                merged.push(f);
                            }
                            Some(&i) if merged[i].kind == f.kind => {
                                merged[i].samples.extend(f.samples)
                            }
                            Some(&i) => problems.push(format!(
                                "plugin {}: dropped {}: another plugin exports it as a {}",
                                plugin.name,
                                f.name,
                                merged[i].kind.as_str()
                            )),
                        }
                    }
                }
                Err(e) => {
                    failed += 1;
                    success.push(&p, 0.0);
                    tracing::warn!("exec: {e}");
                    problems.push(e.to_string());
                }
            }
        }
        if failed > 0 && failed == self.plugins.len() {
            return Err(CollectorError::Other(problems.join("; ")));
        }
        merged.extend(
            [exit, duration, success]
                .into_iter()
                .filter(|f| !f.samples.is_empty()),
        );
        Ok(Collection {
            families: merged,
            note: (!problems.is_empty()).then(|| problems.join("; ")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::tests::{script, script_with_child, wait_gone};
    use crate::config::HumanDuration;
    use nix::unistd::User;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    fn plugin(name: &str, command: &[&str]) -> ExecPluginConfig {
        ExecPluginConfig {
            name: name.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn collector(plugins: Vec<ExecPluginConfig>, timeout: Duration) -> ExecCollector {
        let cfg = ExecConfig {
            enabled: true,
            max_output_bytes: crate::config::ByteSize(4096),
            plugins,
            ..Default::default()
        };
        ExecCollector::new(&cfg, timeout, None).unwrap()
    }

    fn value(c: &Collection, name: &str, plugin: &str) -> Option<f64> {
        c.families
            .iter()
            .find(|f| f.name == name)?
            .samples
            .iter()
            .find(|s| s.labels.iter().any(|(k, v)| k == "plugin" && v == plugin))
            .map(|s| s.value)
    }

    #[test]
    fn output_becomes_metrics_with_a_plugin_label() {
        let dir = tempfile::tempdir().unwrap();
        let a = script(
            dir.path(),
            "a.sh",
            "echo '# HELP jobs_queued Jobs waiting.'\necho '# TYPE jobs_queued gauge'\n\
             echo 'jobs_queued{queue=\"mail\",plugin=\"spoofed\"} 3'\necho 'jobs_queued{queue=\"print\"} 1 1700000000000'",
        );
        // Same family from a second plugin: merged into one group, told apart by `plugin`.
        let b = script(
            dir.path(),
            "b.sh",
            "echo '# TYPE jobs_queued gauge'\necho \"jobs_queued{queue=\\\"$1\\\"} 7\"",
        );
        let mut c = collector(
            vec![plugin("a", &[&a]), plugin("b", &[&b, "x y"])],
            Duration::from_secs(10),
        );
        let out = c.collect().unwrap();
        assert_eq!(out.note, None);
        let jobs: Vec<_> = out
            .families
            .iter()
            .filter(|f| f.name == "jobs_queued")
            .collect();
        assert_eq!(jobs.len(), 1);
        let samples: Vec<String> = jobs[0]
            .samples
            .iter()
            .map(|s| format!("{:?} {} {:?}", s.labels, s.value, s.timestamp_ms))
            .collect();
        assert_eq!(
            samples,
            [
                r#"[("plugin", "a"), ("queue", "mail")] 3 None"#,
                r#"[("plugin", "a"), ("queue", "print")] 1 None"#,
                // The argument reached the script as one word, unexpanded.
                r#"[("plugin", "b"), ("queue", "x y")] 7 None"#,
            ]
        );
        assert_eq!(value(&out, "automon_exec_exit_code", "a"), Some(0.0));
        assert_eq!(value(&out, "automon_exec_success", "b"), Some(1.0));
        assert!(value(&out, "automon_exec_duration_seconds", "b").unwrap() > 0.0);
    }

    #[test]
    fn environment_is_cleared_except_the_allowlist() {
        let dir = tempfile::tempdir().unwrap();
        // HOME and PATH are set in any test environment; only PATH is allowed through.
        let s = script(
            dir.path(),
            "env.sh",
            "echo \"env_has_path $([ -n \"$PATH\" ] && echo 1 || echo 0)\"\n\
             echo \"env_has_home $([ -n \"$HOME\" ] && echo 1 || echo 0)\"\n\
             echo \"env_count $(env | grep -cv '^\\(PWD\\|SHLVL\\|_\\)=')\"",
        );
        let mut p = plugin("env", &[&s]);
        p.env = vec!["PATH".into(), "AUTOMON_SURELY_UNSET_VARIABLE".into()];
        assert!(std::env::var_os("HOME").is_some() && std::env::var_os("PATH").is_some());
        let mut c = collector(vec![p], Duration::from_secs(10));
        let out = c.collect().unwrap();
        assert_eq!(value(&out, "env_has_path", "env"), Some(1.0));
        assert_eq!(value(&out, "env_has_home", "env"), Some(0.0));
        // PATH only (the shell itself adds PWD, SHLVL and `_`).
        assert_eq!(value(&out, "env_count", "env"), Some(1.0));
    }

    #[test]
    fn a_hanging_plugin_and_its_children_are_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        // The script starts a background child that would hold stdout open, then hangs.
        let (s, child) = script_with_child(
            dir.path(),
            "hang.sh",
            "echo 'started 1'\necho 'oops' >&2\nsleep 300",
        );
        let fine = script(dir.path(), "fine.sh", "echo 'fine 1'");
        let mut hang = plugin("hang", &[&s]);
        hang.timeout = Some(HumanDuration(Duration::from_millis(300)));
        let mut c = collector(
            vec![hang, plugin("fine", &[&fine])],
            Duration::from_secs(20),
        );
        let started = Instant::now();
        let out = c.collect().unwrap();
        // Generous bound: only checks that nobody waited for `sleep 300`.
        assert!(started.elapsed() < Duration::from_secs(15));
        let note = out.note.clone().unwrap();
        assert!(
            note.contains("plugin hang: killed after its deadline of 300ms; stderr: oops"),
            "{note}"
        );
        assert_eq!(value(&out, "automon_exec_exit_code", "hang"), Some(137.0));
        assert_eq!(value(&out, "automon_exec_success", "hang"), Some(0.0));
        assert_eq!(value(&out, "fine", "fine"), Some(1.0));
        assert_eq!(value(&out, "started", "hang"), None, "nothing partial");
        // The background child died with the group.
        let pid = child();
        let gone = wait_gone(pid);
        assert!(gone, "background child {pid} survived");
    }

    #[test]
    fn oversize_bad_and_failing_output_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        // 5000 bytes against a 4096-byte limit; the plugin would go on writing forever.
        let big = script(
            dir.path(),
            "big.sh",
            "while :; do echo 'big_metric 1'; done",
        );
        let bad = script(
            dir.path(),
            "bad.sh",
            "echo 'good 1'\necho 'broken{x=\"1\" 2'",
        );
        let fails = script(
            dir.path(),
            "fails.sh",
            "echo 'partial 1'\necho 'disk not found' >&2\nexit 3",
        );
        let nagios = script(dir.path(), "nagios.sh", "echo 'warned 1'\nexit 1");
        let mut nagios_cfg = plugin("nagios", &[&nagios]);
        nagios_cfg.ok_exit_codes = vec![0, 1, 2];
        let reserved = script(
            dir.path(),
            "reserved.sh",
            "echo 'automon_up 1'\necho 'mine 2'",
        );
        let mut c = collector(
            vec![
                plugin("big", &[&big]),
                plugin("bad", &[&bad]),
                plugin("fails", &[&fails]),
                nagios_cfg,
                plugin("reserved", &[&reserved]),
                plugin("missing", &["/nonexistent/plugin"]),
            ],
            Duration::from_secs(20),
        );
        let out = c.collect().unwrap();
        let note = out.note.clone().unwrap();
        for want in [
            "plugin big: its output exceeded the limit of 4096 bytes",
            "plugin bad: its output does not parse",
            "plugin fails: exited with status 3; stderr: disk not found",
            "plugin reserved: dropped automon_up",
            "cannot start /nonexistent/plugin",
        ] {
            assert!(note.contains(want), "{want:?} not in {note}");
        }
        for name in ["big_metric", "good", "partial", "automon_up"] {
            assert!(out.families.iter().all(|f| f.name != name), "{name} served");
        }
        assert_eq!(value(&out, "automon_exec_exit_code", "fails"), Some(3.0));
        assert_eq!(value(&out, "automon_exec_success", "fails"), Some(0.0));
        assert_eq!(value(&out, "automon_exec_success", "missing"), Some(0.0));
        assert_eq!(value(&out, "automon_exec_exit_code", "missing"), None);
        assert_eq!(value(&out, "warned", "nagios"), Some(1.0));
        assert_eq!(value(&out, "automon_exec_exit_code", "nagios"), Some(1.0));
        assert_eq!(value(&out, "mine", "reserved"), Some(2.0));
    }

    #[test]
    fn all_plugins_failing_fails_the_collection() {
        let dir = tempfile::tempdir().unwrap();
        let s = script(dir.path(), "f.sh", "echo 'no such device' >&2\nexit 2");
        let mut c = collector(vec![plugin("f", &[&s])], Duration::from_secs(10));
        let e = c.collect().unwrap_err().to_string();
        assert_eq!(e, "plugin f: exited with status 2; stderr: no such device");
    }

    #[test]
    fn switching_users_needs_root() {
        let p = ExecPluginConfig {
            user: Some("nobody".into()),
            ..plugin("u", &["/bin/true"])
        };
        let cfg = ExecConfig {
            plugins: vec![p],
            ..Default::default()
        };
        let r = ExecCollector::new(&cfg, Duration::from_secs(1), None);
        if nix::unistd::geteuid().is_root() {
            let mut c = r.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let s = script(
                dir.path(),
                "id.sh",
                "echo \"uid $(id -u)\"\necho \"groups $(id -G | wc -w)\"",
            );
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            c.plugins[0].program = PathBuf::from(s);
            let out = c.collect().unwrap();
            let nobody = User::from_name("nobody").unwrap().unwrap();
            assert_eq!(
                value(&out, "uid", "u"),
                Some(f64::from(nobody.uid.as_raw()))
            );
            // Only the primary group: root's supplementary groups were dropped.
            assert_eq!(value(&out, "groups", "u"), Some(1.0));
        } else {
            let e = r.err().unwrap().to_string();
            assert!(e.contains("needs root"), "{e}");
        }
        let bad = ExecConfig {
            plugins: vec![ExecPluginConfig {
                user: Some("no-such-user-automon".into()),
                ..plugin("u", &["/bin/true"])
            }],
            ..Default::default()
        };
        let e = ExecCollector::new(&bad, Duration::from_secs(1), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
