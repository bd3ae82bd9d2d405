//! `exec` repair action: runs a configured program once, contained as exec plugins are (see
//! [`crate::command`]: argv without a shell, cleared environment, its own process group,
//! optional user switch), and reports its exit.
//!
//! What differs from a plugin, and why:
//!
//! - The program learns why it runs: `AUTOMON_REPAIR_RULE`, `AUTOMON_REPAIR_VALUE` and one
//!   `AUTOMON_LABEL_<NAME>` per trigger label (name upper-cased, anything but letters and
//!   digits turned into `_`), besides the variables the rule passes through (`env`).
//! - Output is evidence, not data: stdout and stderr are both kept, up to `max_output_bytes`
//!   together, and the rest is read and dropped with its size noted. A repair that prints a
//!   lot still counts; only the timeout kills.
//! - The process group is killed at the timeout only, not after a normal exit: what a repair
//!   starts in the background may be the service it brings back. (Such a service should
//!   redirect its output; while it holds our pipes the run waits a moment and reports.)
//! - A program that cannot be started is a failed attempt, not a configuration error: the
//!   file may be installed later, and the engine records each failure.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::{Action, ActionBuildError, ActionContext, ActionError, ActionOutput};
use crate::command::{
    self, passed_env, resolve_user, status_text, Capture, Finished, Output, Overflow, Spec,
};
use crate::config::format_size;
use crate::config::repair::{ActionKind, RepairRuleConfig};

/// Runs a program; see the module documentation.
#[derive(Debug, Clone)]
pub struct ExecAction {
    program: PathBuf,
    args: Vec<String>,
    /// The passed-through variables, read once: the daemon's environment does not change.
    env: Vec<(String, OsString)>,
    /// The user's name, uid and gid.
    user: Option<(String, u32, u32)>,
    working_dir: PathBuf,
    timeout: Duration,
    max_output: usize,
}

impl ExecAction {
    /// Builds the action of `rule`. Fails when there is no command, the program is not an
    /// absolute path, or `user` does not exist or cannot be switched to (that needs root).
    pub fn new(rule: &RepairRuleConfig) -> Result<ExecAction, ActionBuildError> {
        let (program, args) = rule
            .command
            .split_first()
            .ok_or_else(|| ActionBuildError("exec: no command configured".into()))?;
        let program = PathBuf::from(program);
        if !program.is_absolute() {
            return Err(ActionBuildError(format!(
                "exec: program {} is not an absolute path (there is no shell or PATH lookup)",
                program.display()
            )));
        }
        let env = passed_env(&rule.env);
        let user = match &rule.user {
            None => None,
            Some(name) => {
                let (uid, gid) = resolve_user(name, "repair commands")
                    .map_err(|e| ActionBuildError(format!("exec: {e}")))?;
                Some((name.clone(), uid, gid))
            }
        };
        Ok(ExecAction {
            program,
            args: args.to_vec(),
            env,
            user,
            working_dir: rule
                .working_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/")),
            timeout: rule.timeout.0,
            max_output: usize::try_from(rule.max_output_bytes.0).unwrap_or(usize::MAX),
        })
    }

    /// The program's environment for one run.
    fn environment(&self, ctx: &ActionContext) -> Vec<(String, OsString)> {
        let mut env = self.env.clone();
        env.push(("AUTOMON_REPAIR_RULE".into(), ctx.rule.clone().into()));
        env.push(("AUTOMON_REPAIR_VALUE".into(), ctx.value.to_string().into()));
        env.extend(
            label_variables(&ctx.labels)
                .into_iter()
                .map(|(k, v)| (k, v.into())),
        );
        env
    }

    fn program(&self) -> String {
        self.program.display().to_string()
    }
}

/// `AUTOMON_LABEL_<NAME>=value` for each label. Two names that map to one variable (`a.b`,
/// `a_b`) leave the later one in label order.
pub fn label_variables(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| {
            let name: String = k
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            (format!("AUTOMON_LABEL_{name}"), v.clone())
        })
        .collect()
}

/// A word of argv as it would have to be written in a shell, for reading only.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Both streams, labelled, within `limit` bytes together: each gets at least half, and what
/// one does not use goes to the other (so a flood on stdout cannot hide the error on stderr).
fn render(done: &Finished, limit: usize) -> String {
    let (out, err) = (&done.stdout, &done.stderr);
    let err_share = err
        .kept
        .len()
        .min((limit / 2).max(limit.saturating_sub(out.kept.len())));
    let out_share = out.kept.len().min(limit - err_share);
    let mut text = String::new();
    for (name, stream, share) in [("stdout", out, out_share), ("stderr", err, err_share)] {
        section(&mut text, name, stream, share);
    }
    if !(out.ended && err.ended) {
        text.push_str(
            "(a process it started still holds its output open; the rest was not waited for)\n",
        );
    }
    text
}

fn section(text: &mut String, name: &str, stream: &Output, share: usize) {
    if stream.total == 0 && stream.error.is_none() {
        return;
    }
    text.push_str(&format!("--- {name} ---\n"));
    let shown = String::from_utf8_lossy(&stream.kept[..share]);
    text.push_str(&shown);
    if !shown.ends_with('\n') {
        text.push('\n');
    }
    if stream.total > share as u64 {
        text.push_str(&format!(
            "--- {name} truncated: {} bytes ({}) in all, the first {share} shown ---\n",
            stream.total,
            format_size(stream.total)
        ));
    }
    if let Some(e) = &stream.error {
        text.push_str(&format!("--- {name}: reading failed: {e} ---\n"));
    }
}

impl Action for ExecAction {
    fn kind(&self) -> ActionKind {
        ActionKind::Exec
    }

    fn target(&self, _ctx: &ActionContext) -> Result<String, ActionError> {
        Ok(format!("exec:{}", self.program()))
    }

    fn describe(&self, _ctx: &ActionContext) -> String {
        let mut line = format!("run {}", quote(&self.program()));
        for a in &self.args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        if let Some((name, _, _)) = &self.user {
            line.push_str(&format!(" as user {name}"));
        }
        line
    }

    fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        let capture = Capture {
            keep: self.max_output,
            overflow: Overflow::Drain,
        };
        let spec = Spec {
            program: self.program.clone(),
            args: self.args.clone(),
            env: self.environment(ctx),
            ids: self.user.as_ref().map(|(_, uid, gid)| (*uid, *gid)),
            working_dir: self.working_dir.clone(),
            deadline: self.timeout,
            stdout: capture,
            stderr: capture,
            kill_after_exit: false,
        };
        let done = command::run(&spec).map_err(|e| {
            // ENOENT from the working directory reads as if the program were missing.
            let message = if self.working_dir.is_dir() {
                e.to_string()
            } else {
                format!(
                    "{e} (the working directory {} does not exist)",
                    self.working_dir.display()
                )
            };
            ActionError::Failed {
                message,
                output: String::new(),
            }
        })?;
        let output = render(&done, self.max_output);
        if done.timed_out {
            return Err(ActionError::TimedOut {
                after: self.timeout,
                output,
            });
        }
        match done.status {
            Some(status) if status.success() => Ok(ActionOutput {
                summary: format!("{} exited 0", self.program()),
                output,
            }),
            Some(status) => Err(ActionError::Failed {
                message: format!("{} {}", self.program(), status_text(&status)),
                output,
            }),
            None => Err(ActionError::Failed {
                message: format!("{}: its exit status was not seen", self.program()),
                output,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::tests::{script, script_with_child, wait_gone};
    use crate::config::{ByteSize, HumanDuration};

    fn rule(command: &[&str]) -> RepairRuleConfig {
        RepairRuleConfig {
            name: "fix-web".into(),
            action: ActionKind::Exec,
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn ctx() -> ActionContext {
        ActionContext {
            rule: "fix-web".into(),
            labels: BTreeMap::from([
                ("instance".into(), "web1:80".into()),
                ("Job_x".into(), "a b".into()),
            ]),
            value: 2.5,
        }
    }

    #[test]
    fn runs_with_the_trigger_in_its_environment_and_its_working_dir() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().join("wd");
        std::fs::create_dir(&wd).unwrap();
        let s = script(
            dir.path(),
            "fix.sh",
            "echo \"pwd=$(pwd)\"\necho \"arg=$1\"\necho \"rule=$AUTOMON_REPAIR_RULE\"\n\
             echo \"value=$AUTOMON_REPAIR_VALUE\"\necho \"instance=$AUTOMON_LABEL_INSTANCE\"\n\
             echo \"job=$AUTOMON_LABEL_JOB_X\"\necho \"home=${HOME:-unset}\"\n\
             echo \"path=${PATH:+set}\"\necho \"names=$(env | cut -d= -f1 | grep -v '^\\(PWD\\|SHLVL\\|_\\)$' | sort | tr '\\n' ' ')\"\n\
             echo 'a warning' >&2",
        );
        let mut r = rule(&[&s, "two words"]);
        r.working_dir = Some(wd.clone());
        r.env = vec!["PATH".into(), "AUTOMON_SURELY_UNSET_VARIABLE".into()];
        assert!(std::env::var_os("HOME").is_some() && std::env::var_os("PATH").is_some());
        let a = ExecAction::new(&r).unwrap();
        let out = a.run(&ctx()).unwrap();
        assert_eq!(out.summary, format!("{s} exited 0"));
        let want = format!(
            "--- stdout ---\npwd={}\narg=two words\nrule=fix-web\nvalue=2.5\ninstance=web1:80\n\
             job=a b\nhome=unset\npath=set\nnames=AUTOMON_LABEL_INSTANCE AUTOMON_LABEL_JOB_X \
             AUTOMON_REPAIR_RULE AUTOMON_REPAIR_VALUE PATH \n--- stderr ---\na warning\n",
            wd.display()
        );
        assert_eq!(out.output, want);
        assert_eq!(a.target(&ctx()).unwrap(), format!("exec:{s}"));
        assert_eq!(a.describe(&ctx()), format!("run {s} 'two words'"));
        assert_eq!(a.kind(), ActionKind::Exec);
    }

    #[test]
    fn a_non_zero_exit_fails_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let s = script(
            dir.path(),
            "fail.sh",
            "echo 'trying'\necho 'disk not found' >&2\nexit 3",
        );
        let e = ExecAction::new(&rule(&[&s]))
            .unwrap()
            .run(&ctx())
            .unwrap_err();
        assert_eq!(
            e,
            ActionError::Failed {
                message: format!("{s} exited with status 3"),
                output: "--- stdout ---\ntrying\n--- stderr ---\ndisk not found\n".into(),
            }
        );
        let killed = script(dir.path(), "killed.sh", "kill -9 $$");
        let e = ExecAction::new(&rule(&[&killed]))
            .unwrap()
            .run(&ctx())
            .unwrap_err();
        assert_eq!(e.to_string(), format!("{killed} killed by signal 9"));
    }

    #[test]
    fn a_missing_program_or_directory_is_a_failed_run() {
        let a = ExecAction::new(&rule(&["/nonexistent/fix", "--now"])).unwrap();
        let e = a.run(&ctx()).unwrap_err();
        let ActionError::Failed { message, output } = e else {
            panic!("{e:?}");
        };
        assert!(
            message.starts_with("cannot start /nonexistent/fix: No such file or directory"),
            "{message}"
        );
        assert_eq!(output, "");
        let mut r = rule(&["/bin/true"]);
        r.working_dir = Some(PathBuf::from("/nonexistent/dir"));
        let e = ExecAction::new(&r).unwrap().run(&ctx()).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("(the working directory /nonexistent/dir does not exist)"),
            "{e}"
        );
        assert!(ExecAction::new(&rule(&[])).is_err());
        assert!(ExecAction::new(&rule(&["fix.sh"])).is_err());
    }

    #[test]
    fn a_hanging_command_and_its_child_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (s, child) = script_with_child(
            dir.path(),
            "hang.sh",
            "echo 'started'\necho 'oops' >&2\nsleep 300",
        );
        let mut r = rule(&[&s]);
        r.timeout = HumanDuration(Duration::from_secs(2));
        let e = ExecAction::new(&r).unwrap().run(&ctx()).unwrap_err();
        assert_eq!(
            e,
            ActionError::TimedOut {
                after: Duration::from_secs(2),
                output: "--- stdout ---\nstarted\n--- stderr ---\noops\n".into(),
            }
        );
        assert_eq!(e.to_string(), "timed out after 2s");
        let pid = child();
        assert!(wait_gone(pid), "background child {pid} survived");
    }

    #[test]
    fn a_flood_of_output_is_truncated_and_the_run_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        // 6 MB on stdout, then the line that matters on stderr.
        let s = script(
            dir.path(),
            "flood.sh",
            "head -c 6000000 /dev/zero | tr '\\0' 'x'\necho 'cleaned up' >&2",
        );
        let mut r = rule(&[&s]);
        r.max_output_bytes = ByteSize(1000);
        let out = ExecAction::new(&r).unwrap().run(&ctx()).unwrap();
        assert_eq!(out.summary, format!("{s} exited 0"));
        // stderr keeps its share; stdout gets the rest of the 1000 bytes.
        let want = format!(
            "--- stdout ---\n{}\n--- stdout truncated: 6000000 bytes (5.7 MiB) in all, the \
             first 989 shown ---\n--- stderr ---\ncleaned up\n",
            "x".repeat(989)
        );
        assert_eq!(out.output, want);
    }

    #[test]
    fn a_service_it_starts_in_the_background_is_left_running() {
        let dir = tempfile::tempdir().unwrap();
        // The "service" keeps stdout open: the run reports after a short wait, and says why.
        let (s, service) = script_with_child(dir.path(), "start.sh", "echo 'started'");
        let out = ExecAction::new(&rule(&[&s])).unwrap().run(&ctx()).unwrap();
        assert_eq!(
            out.output,
            "--- stdout ---\nstarted\n(a process it started still holds its output open; the \
             rest was not waited for)\n"
        );
        let pid = service();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = !stat.is_empty() && !stat.contains(") Z ");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        assert!(alive, "the service {pid} was killed: {stat:?}");
    }

    #[test]
    fn switching_users_needs_root() {
        let mut r = rule(&["/usr/bin/id", "-u"]);
        r.user = Some("nobody".into());
        let built = ExecAction::new(&r);
        if nix::unistd::geteuid().is_root() {
            let a = built.unwrap();
            assert_eq!(a.describe(&ctx()), "run /usr/bin/id -u as user nobody");
            let out = a.run(&ctx()).unwrap();
            let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
            assert_eq!(out.output, format!("--- stdout ---\n{}\n", nobody.uid));
        } else {
            let e = built.unwrap_err().to_string();
            assert!(e.contains("needs root"), "{e}");
        }
        r.user = Some("no-such-user-automon".into());
        let e = ExecAction::new(&r).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn label_names_become_variable_names() {
        let labels = BTreeMap::from([
            ("__name__".to_owned(), "up".to_owned()),
            ("device".to_owned(), "sda".to_owned()),
        ]);
        assert_eq!(
            label_variables(&labels).into_iter().collect::<Vec<_>>(),
            [
                ("AUTOMON_LABEL_DEVICE".to_owned(), "sda".to_owned()),
                ("AUTOMON_LABEL___NAME__".to_owned(), "up".to_owned()),
            ]
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
