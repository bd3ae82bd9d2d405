//! `restart_unit`, `reload_unit`, `start_unit`: one job on one systemd unit over D-Bus,
//! waited for up to its `JobRemoved` result, with `systemctl` as the fallback when there is
//! no system bus to talk to.
//!
//! The unit's name may come from the trigger's labels, so it is checked every time it is
//! rendered: a valid unit name, and on `repair.allowed_units`. systemd (through the shipped
//! polkit rule) checks again on its side; its refusal is reported as such and never retried
//! through `systemctl`, which would be refused the same way.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Action, ActionBuildError, ActionContext, ActionError, ActionKind, ActionOutput};
use crate::alert::template::{Data, Template};
use crate::config::repair::{unit_allowed, RepairConfig, RepairRuleConfig};
use crate::systemd_dbus::{valid_unit_name, BusError, JobVerb, SystemdBus};

/// Most bytes of `systemctl` output kept.
const MAX_OUTPUT: usize = 4096;

/// A configured unit action.
#[derive(Debug)]
pub struct UnitAction {
    kind: ActionKind,
    verb: JobVerb,
    unit: Template,
    allowed: Vec<String>,
    timeout: Duration,
    /// A D-Bus address instead of the system bus (tests).
    address: Option<String>,
    /// The `systemctl` to fall back to (tests point it elsewhere).
    systemctl: String,
}

impl UnitAction {
    /// From the rule (`action`, `unit`, `timeout`) and `[repair]` (`allowed_units`).
    pub fn new(
        rule: &RepairRuleConfig,
        repair: &RepairConfig,
    ) -> Result<UnitAction, ActionBuildError> {
        let verb = match rule.action {
            ActionKind::RestartUnit => JobVerb::Restart,
            ActionKind::ReloadUnit => JobVerb::Reload,
            ActionKind::StartUnit => JobVerb::Start,
            other => {
                return Err(ActionBuildError(format!(
                    "{:?} is not a unit action",
                    other.as_str()
                )))
            }
        };
        let text = rule
            .unit
            .as_deref()
            .ok_or_else(|| ActionBuildError("a unit action needs `unit`".to_owned()))?;
        let unit =
            Template::parse(text).map_err(|e| ActionBuildError(format!("unit {text:?}: {e}")))?;
        Ok(UnitAction {
            kind: rule.action,
            verb,
            unit,
            allowed: repair.allowed_units.clone(),
            timeout: rule.timeout.0,
            address: None,
            systemctl: "systemctl".to_owned(),
        })
    }

    /// Talks to the bus at this D-Bus address instead of the system bus (tests, and hosts
    /// with an unusual bus location).
    pub fn with_bus_address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Uses this program as `systemctl` for the fallback (tests).
    pub fn with_systemctl(mut self, program: impl Into<String>) -> Self {
        self.systemctl = program.into();
        self
    }

    fn render(&self, ctx: &ActionContext) -> String {
        self.unit
            .expand(&Data {
                labels: &ctx.labels,
                value: ctx.value,
            })
            .trim()
            .to_owned()
    }

    /// The rendered unit name, if it may be acted on.
    fn checked_unit(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let unit = self.render(ctx);
        // A label the trigger lacks renders as "<no value>" (Go's wording).
        if unit.is_empty() || unit.contains("<no value>") {
            return Err(ActionError::Refused(format!(
                "the unit name renders empty ({unit:?}): is the label missing from the trigger?"
            )));
        }
        if !valid_unit_name(&unit) {
            return Err(ActionError::Refused(format!(
                "{unit:?} is not a valid unit name"
            )));
        }
        if !unit_allowed(&self.allowed, &unit) {
            return Err(ActionError::Refused(format!(
                "{unit} is not in repair.allowed_units"
            )));
        }
        Ok(unit)
    }

    fn over_dbus(&self, unit: &str, deadline: Instant) -> Result<(), BusError> {
        let left = || deadline.saturating_duration_since(Instant::now());
        let bus = match &self.address {
            Some(a) => SystemdBus::connect_address(a, left())?,
            None => SystemdBus::connect(left())?,
        };
        bus.run_job(self.verb, unit, left())
    }

    fn over_systemctl(&self, unit: &str, deadline: Instant) -> Result<String, ActionError> {
        let left = deadline.saturating_duration_since(Instant::now());
        // argv, never a shell; `--` so that no unit name is taken for an option.
        let mut child = Command::new(&self.systemctl)
            .args(["--no-ask-password", self.verb.as_str(), "--", unit])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ActionError::Failed {
                message: format!(
                    "system bus unavailable, and {} could not be run: {e}",
                    self.systemctl
                ),
                output: String::new(),
            })?;
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|r| std::thread::spawn(move || bounded_read(r)))
        .collect();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ActionError::Failed {
                        message: format!("waiting for {}: {e}", self.systemctl),
                        output: String::new(),
                    });
                }
            }
        };
        let output: String = readers
            .into_iter()
            .filter_map(|h| h.join().ok())
            .collect::<Vec<_>>()
            .join("");
        match status {
            None => Err(ActionError::TimedOut {
                after: left,
                output,
            }),
            Some(s) if s.success() => Ok(output),
            Some(s) => Err(ActionError::Failed {
                message: format!(
                    "{} {} {unit} failed ({s}): {}",
                    self.systemctl,
                    self.verb.as_str(),
                    output.lines().last().unwrap_or("").trim()
                ),
                output,
            }),
        }
    }
}

/// Reads everything (so the child never blocks on a full pipe), keeps the first
/// [`MAX_OUTPUT`] bytes.
fn bounded_read(mut r: impl Read) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

impl Action for UnitAction {
    fn kind(&self) -> ActionKind {
        self.kind
    }

    fn target(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        Ok(format!("unit:{}", self.checked_unit(ctx)?))
    }

    fn describe(&self, ctx: &ActionContext) -> String {
        format!("{} {}", self.verb.as_str(), self.render(ctx))
    }

    fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        let unit = self.checked_unit(ctx)?;
        let deadline = Instant::now() + self.timeout;
        let done = |how: &str, output: String| ActionOutput {
            summary: format!("{} {unit}: done ({how})", self.verb.as_str()),
            output,
        };
        match self.over_dbus(&unit, deadline) {
            Ok(()) => Ok(done("D-Bus", String::new())),
            Err(BusError::Unavailable(why)) => {
                tracing::warn!(unit = %unit, "{why}; falling back to systemctl");
                let output = self.over_systemctl(&unit, deadline)?;
                Ok(done("systemctl", output))
            }
            Err(BusError::TimedOut { .. }) => Err(ActionError::TimedOut {
                after: self.timeout,
                output: String::new(),
            }),
            Err(e) => Err(ActionError::Failed {
                message: e.to_string(),
                output: String::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use std::collections::BTreeMap;

    fn rule(action: ActionKind, unit: &str) -> RepairRuleConfig {
        RepairRuleConfig {
            name: "r".to_owned(),
            action,
            unit: Some(unit.to_owned()),
            timeout: HumanDuration(Duration::from_secs(10)),
            ..Default::default()
        }
    }

    fn repair(allowed: &[&str]) -> RepairConfig {
        RepairConfig {
            allowed_units: allowed.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn ctx(labels: &[(&str, &str)]) -> ActionContext {
        ActionContext {
            rule: "r".to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            value: 1.0,
        }
    }

    #[test]
    fn target_and_describe_render_the_template() {
        let a = UnitAction::new(
            &rule(ActionKind::RestartUnit, "{{ $labels.name }}"),
            &repair(&["app-*.service"]),
        )
        .unwrap();
        let c = ctx(&[("name", "app-web.service")]);
        assert_eq!(a.target(&c).unwrap(), "unit:app-web.service");
        assert_eq!(a.describe(&c), "restart app-web.service");
        assert_eq!(a.kind(), ActionKind::RestartUnit);
        let a = UnitAction::new(
            &rule(ActionKind::ReloadUnit, "nginx.service"),
            &repair(&["*"]),
        )
        .unwrap();
        assert_eq!(a.describe(&ctx(&[])), "reload nginx.service");
    }

    #[test]
    fn refuses_names_off_the_allowlist_empty_or_invalid() {
        let a = UnitAction::new(
            &rule(ActionKind::RestartUnit, "{{ $labels.name }}"),
            &repair(&["app-*.service", "*"]),
        )
        .unwrap();
        // "*" allows any name, yet invalid names are refused before the allowlist.
        for (labels, want) in [
            (vec![], "renders empty"),
            (vec![("name", "app web.service")], "not a valid unit name"),
            (vec![("name", "--force.service")], "not a valid unit name"),
            (vec![("name", "x;reboot")], "not a valid unit name"),
        ] {
            let e = a.run(&ctx(&labels)).unwrap_err();
            assert!(matches!(e, ActionError::Refused(_)), "{e:?}");
            assert!(e.to_string().contains(want), "{e} lacks {want}");
            assert!(a.target(&ctx(&labels)).is_err());
        }
        let a = UnitAction::new(
            &rule(ActionKind::RestartUnit, "{{ $labels.name }}"),
            &repair(&["app-*.service"]),
        )
        .unwrap();
        let e = a.run(&ctx(&[("name", "sshd.service")])).unwrap_err();
        assert_eq!(
            e,
            ActionError::Refused("sshd.service is not in repair.allowed_units".to_owned())
        );
    }

    #[test]
    fn not_a_unit_action_is_a_build_error() {
        assert!(UnitAction::new(&rule(ActionKind::Exec, "x.service"), &repair(&[])).is_err());
        let mut r = rule(ActionKind::StartUnit, "x.service");
        r.unit = None;
        assert!(UnitAction::new(&r, &repair(&[])).is_err());
    }

    /// A stand-in `systemctl` (a real program: a shell script) that records its argv.
    fn fake_systemctl(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("systemctl");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn without_a_bus_falls_back_to_systemctl_argv() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("argv");
        let prog = fake_systemctl(
            dir.path(),
            &format!("printf '%s|' \"$@\" > {}; echo restarted", log.display()),
        );
        let a = UnitAction::new(
            &rule(ActionKind::RestartUnit, "{{ $labels.name }}"),
            &repair(&["*"]),
        )
        .unwrap()
        .with_bus_address(format!("unix:path={}", dir.path().join("no-bus").display()))
        .with_systemctl(prog);
        let out = a.run(&ctx(&[("name", "a-b.service")])).unwrap();
        assert_eq!(out.summary, "restart a-b.service: done (systemctl)");
        assert_eq!(out.output.trim(), "restarted");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "--no-ask-password|restart|--|a-b.service|"
        );
    }

    #[test]
    fn systemctl_failure_and_hang_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let no_bus = format!("unix:path={}", dir.path().join("no-bus").display());
        let prog = fake_systemctl(dir.path(), "echo 'Job failed. See journalctl' >&2; exit 1");
        let a = UnitAction::new(
            &rule(ActionKind::StartUnit, "x.service"),
            &repair(&["x.service"]),
        )
        .unwrap()
        .with_bus_address(no_bus.clone())
        .with_systemctl(prog);
        let e = a.run(&ctx(&[])).unwrap_err();
        assert!(matches!(e, ActionError::Failed { .. }), "{e:?}");
        assert!(e.to_string().contains("Job failed"), "{e}");
        assert!(e.output().contains("Job failed"));

        let sub = dir.path().join("hang");
        std::fs::create_dir(&sub).unwrap();
        let prog = fake_systemctl(&sub, "echo starting; exec sleep 600");
        let mut r = rule(ActionKind::StartUnit, "x.service");
        r.timeout = HumanDuration(Duration::from_millis(300));
        let a = UnitAction::new(&r, &repair(&["x.service"]))
            .unwrap()
            .with_bus_address(no_bus)
            .with_systemctl(prog);
        let e = a.run(&ctx(&[])).unwrap_err();
        assert!(matches!(e, ActionError::TimedOut { .. }), "{e:?}");
        assert_eq!(e.output().trim(), "starting");
    }
}
