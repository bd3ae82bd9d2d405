//! `automon doctor`: checks what commonly goes wrong on a new host and prints a pass/fail
//! table. It has no lasting side effects: it binds the port only to see that it is free and
//! runs each enabled collector once in-process.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::collector;
use crate::config::{self, ConfigSource};
use crate::daemon;

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Works.
    Pass,
    /// Works, but worth a look.
    Warn,
    /// Broken.
    Fail,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// The result.
    pub verdict: Verdict,
    /// Detail for the operator.
    pub detail: String,
}

fn check(name: impl Into<String>, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        verdict,
        detail: detail.into(),
    }
}

/// Runs every check.
pub fn run(source: &ConfigSource) -> Vec<Check> {
    let mut out = Vec::new();
    let loaded = match config::load(source) {
        Ok(l) => {
            let files = if l.files.is_empty() {
                "no config file; embedded defaults".to_string()
            } else {
                l.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(check("config", Verdict::Pass, files));
            l
        }
        Err(e) => {
            out.push(check("config", Verdict::Fail, e.to_string()));
            return out;
        }
    };
    let cfg = &loaded.config;

    let dir = daemon::data_dir(cfg);
    out.push(match daemon::check_dir_writable(&dir) {
        Ok(()) => check("data directory", Verdict::Pass, dir.display().to_string()),
        Err(e) => check(
            "data directory",
            Verdict::Fail,
            format!("{}: {e}", dir.display()),
        ),
    });

    out.push(match daemon::check_listen(cfg) {
        Err(e) => check("listen address", Verdict::Fail, e),
        Ok(addr) => match std::net::TcpListener::bind(addr) {
            Ok(_) => check("listen address", Verdict::Pass, format!("{addr} is free")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => check(
                "listen address",
                Verdict::Warn,
                format!("{addr} is in use (is automon already running?)"),
            ),
            Err(e) => check("listen address", Verdict::Fail, format!("{addr}: {e}")),
        },
    });

    out.push(if crate::systemd::booted() {
        check("systemd", Verdict::Pass, "system booted with systemd")
    } else {
        check(
            "systemd",
            Verdict::Warn,
            "not booted with systemd: no readiness or watchdog",
        )
    });
    out.push(
        if std::path::Path::new("/run/systemd/journal/socket").exists() {
            check("journald", Verdict::Pass, "journal socket present")
        } else {
            check(
                "journald",
                Verdict::Warn,
                "no journal socket: logs go to stderr",
            )
        },
    );

    out.extend(repair_checks(
        cfg,
        std::path::Path::new(crate::repair::POLKIT_RULE),
        nix::unistd::geteuid().is_root(),
    ));

    match collector::build(cfg) {
        Err(errs) => {
            for (name, e) in errs {
                out.push(check(
                    format!("collector {name}"),
                    Verdict::Fail,
                    e.to_string(),
                ));
            }
        }
        Ok(specs) => {
            for spec in specs {
                out.push(run_collector_once(&spec));
            }
        }
    }
    out
}

/// Whether `unit` is listed (quoted, outside `//` comments) in the polkit rule's text.
fn polkit_lists(rule: &str, unit: &str) -> bool {
    let quoted = [format!("\"{unit}\""), format!("'{unit}'")];
    rule.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .any(|l| quoted.iter().any(|q| l.contains(q.as_str())))
}

/// Each repair rule's action builds; a literal unit is also allowed by the polkit rule (when
/// the daemon is not root, systemd asks polkit); a clean_files directory is writable.
fn repair_checks(cfg: &config::Config, polkit_rule: &std::path::Path, root: bool) -> Vec<Check> {
    use crate::config::repair::ActionKind;
    let mut out = Vec::new();
    let polkit = std::fs::read_to_string(polkit_rule).ok();
    for rule in &cfg.repair.rules {
        let name = format!("repair {}", rule.name);
        if let Err(e) = crate::repair::action::build(rule, &cfg.repair) {
            out.push(check(name, Verdict::Fail, e.to_string()));
            continue;
        }
        let unit = rule.unit.as_deref().filter(|u| !u.contains("{{"));
        let verdict = match (rule.action, unit, &polkit) {
            (k, Some(unit), _) if k.is_unit() && root => {
                check(name, Verdict::Pass, format!("{unit}: running as root, polkit not consulted"))
            }
            (k, Some(unit), Some(text)) if k.is_unit() && polkit_lists(text, unit) => check(
                name,
                Verdict::Pass,
                format!("{unit} is allowed by {}", polkit_rule.display()),
            ),
            (k, Some(unit), _) if k.is_unit() => check(
                name,
                Verdict::Warn,
                format!(
                    "{unit} is not listed in {}: systemd will refuse the {} (add it to `units` there)",
                    polkit_rule.display(),
                    k.as_str()
                ),
            ),
            (ActionKind::CleanFiles, _, _) => match &rule.path {
                Some(p) if nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::W_OK).is_err() => {
                    check(
                        name,
                        Verdict::Warn,
                        format!(
                            "{} is not writable by this user: nothing can be deleted (under the \
                             shipped unit add ReadWritePaths={} in a drop-in)",
                            p.display(),
                            p.display()
                        ),
                    )
                }
                _ => check(name, Verdict::Pass, "directory writable"),
            },
            _ => check(name, Verdict::Pass, "action builds"),
        };
        out.push(verdict);
    }
    out
}

fn run_collector_once(spec: &collector::CollectorSpec) -> Check {
    let name = format!("collector {}", spec.name);
    let factory = spec.factory.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    // A thread, so that a hanging collector (a dead NFS mount) cannot hang doctor itself.
    std::thread::spawn(move || {
        let r = factory().and_then(|mut c| c.collect());
        let _ = tx.send(r);
    });
    match rx.recv_timeout(spec.timeout.max(Duration::from_secs(1))) {
        Ok(Ok(c)) => {
            let samples: usize = c.families.iter().map(|f| f.samples.len()).sum();
            let mut detail = format!(
                "{} families, {samples} samples in {:.1} ms",
                c.families.len(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            let verdict = match c.note {
                Some(n) => {
                    let _ = write!(detail, "; {n}");
                    Verdict::Warn
                }
                None => Verdict::Pass,
            };
            check(name, verdict, detail)
        }
        Ok(Err(e)) => check(name, Verdict::Fail, e.to_string()),
        Err(_) => check(
            name,
            Verdict::Fail,
            format!("no result within {:?}", spec.timeout),
        ),
    }
}

/// Renders the table.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut s = String::new();
    for c in checks {
        let v = match c.verdict {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        let _ = writeln!(s, "{v}  {:width$}  {}", c.name, c.detail);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polkit_units_are_found_outside_comments() {
        let rule = "var units = [\n    // \"nginx.service\",\n    \"app.service\",\n];";
        assert!(polkit_lists(rule, "app.service"));
        assert!(!polkit_lists(rule, "nginx.service"));
        assert!(!polkit_lists(rule, "app"));
    }

    #[test]
    fn repair_rules_are_checked() {
        let cfg = config::parse_str(
            r#"
[repair]
allowed_units = ["app.service", "web.service"]
[[repair.rules]]
name = "app"
expr = "vector(1)"
action = "restart_unit"
unit = "app.service"
[[repair.rules]]
name = "web"
expr = "vector(1)"
action = "restart_unit"
unit = "web.service"
"#,
            "automon.toml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rule = dir.path().join("50-automon.rules");
        std::fs::write(&rule, "var units = [\"app.service\"];").unwrap();
        let checks = repair_checks(&cfg, &rule, false);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].verdict, Verdict::Pass, "{checks:?}");
        assert_eq!(checks[1].verdict, Verdict::Warn, "{checks:?}");
        assert!(checks[1].detail.contains("web.service is not listed"));
        // As root systemd does not ask polkit.
        let checks = repair_checks(&cfg, &rule, true);
        assert!(
            checks.iter().all(|c| c.verdict == Verdict::Pass),
            "{checks:?}"
        );
    }
}
