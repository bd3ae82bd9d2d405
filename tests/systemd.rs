//! systemd over D-Bus against a real systemd: a throwaway booted Debian container
//! (`systemd-nspawn --ephemeral -b` of the tree scripts/nspawn-tree.sh caches), with the
//! shipped sysusers file and polkit rule, demo units, and this crate's binaries bound in.
//!
//! The outer test (root, on the host) boots the container and sets the units up; each check
//! then runs *inside* as the unprivileged `automon` user: this same test binary, re-run with
//! `AUTOMON_NSPAWN_INNER=<phase>` selecting one `inner_*` function. Adding a phase (say, the
//! daemon with a `[[repair.rules]]` restarting a failed unit) means adding it to [`PHASES`]
//! and writing its function; the container and units are shared.
//!
//! Needs root, systemd-nspawn, debootstrap and nsenter: missing under CI=true fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use automon::config::repair::{ActionKind, RepairConfig, RepairRuleConfig};
use automon::config::HumanDuration;
use automon::repair::action::unit::UnitAction;
use automon::repair::action::{Action, ActionContext, ActionError};

const INNER: &str = "AUTOMON_NSPAWN_INNER";

/// The inner phases, run in this order in one container.
const PHASES: &[&str] = &["collector", "action", "repair"];

/// Units written into the container. `demo-ok`: a long-running service that can reload.
/// `demo-fail`: fails at once and is restarted until its start limit, so it ends `failed`
/// with restarts counted. `demo-bad`: a oneshot whose start job fails. `demo-nopolkit`:
/// allowed by automon's config but not by the polkit rule. `demo-other`: allowed by polkit
/// but not by automon's config.
const UNITS: &[(&str, &str)] = &[
    (
        "demo-ok.service",
        "[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/true\n",
    ),
    (
        "demo-fail.service",
        "[Unit]\nStartLimitIntervalSec=1h\nStartLimitBurst=3\n\
         [Service]\nExecStart=/bin/false\nRestart=on-failure\nRestartSec=100ms\n",
    ),
    (
        "demo-bad.service",
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    ),
    (
        "demo-nopolkit.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    ),
    (
        "demo-other.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    ),
    (
        "demo-crash.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    ),
];

/// Units the polkit rule lists in the container.
const POLKIT_UNITS: &[&str] = &[
    "demo-ok.service",
    "demo-fail.service",
    "demo-bad.service",
    "demo-other.service",
    "demo-crash.service",
];

/// Units automon's repair config allows.
const AUTOMON_UNITS: &[&str] = &[
    "demo-ok.service",
    "demo-fail.service",
    "demo-bad.service",
    "demo-nopolkit.service",
    "demo-crash.service",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A booted throwaway container; powered off and killed on drop.
struct Container {
    nspawn: Child,
    init_pid: String,
    _work: tempfile::TempDir,
}

impl Container {
    fn boot(tree: &Path, binds: &[(PathBuf, String)], work: tempfile::TempDir) -> Container {
        let mut cmd = Command::new("systemd-nspawn");
        // --keep-unit --register=no: there is no machined on the host to register with.
        cmd.args(["--keep-unit", "--register=no", "--ephemeral", "-b", "-D"])
            .arg(tree);
        for (src, dst) in binds {
            cmd.arg(format!("--bind-ro={}:{dst}", src.display()));
        }
        let console = std::fs::File::create(work.path().join("console.log")).unwrap();
        let nspawn = cmd
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .expect("spawn systemd-nspawn");
        let mut c = Container {
            nspawn,
            init_pid: String::new(),
            _work: work,
        };
        // --ephemeral copies the tree first (a snapshot only on btrfs): allow for a cold
        // page cache on a busy disk.
        let deadline = Instant::now() + Duration::from_secs(120);
        while c.init_pid.is_empty() && Instant::now() < deadline {
            c.init_pid = child_of(c.nspawn.id()).unwrap_or_default();
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !c.init_pid.is_empty(),
            "container did not start: {}",
            c.console()
        );
        // Until the manager inside listens, systemctl answers "offline": ask again.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let state = c.sh("timeout 30 systemctl is-system-running --wait");
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not booted ({state}): {}",
                c.console()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        c
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self._work.path().join("console.log")).unwrap_or_default()
    }

    /// Runs a shell command inside, as root.
    fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.init_pid, "-a", "sh", "-c", script])
            .output()
            .expect("nsenter")
    }

    /// Runs a shell command inside as root; it must succeed.
    fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(out.status.success(), "{script}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs one inner phase of this test binary inside, as the `automon` user.
    fn phase(&self, exe: &str, phase: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.init_pid, "-a"])
            .args([
                "setpriv",
                "--reuid=automon",
                "--regid=automon",
                "--init-groups",
            ])
            .args(["env", &format!("{INNER}={phase}"), "HOME=/tmp"])
            .args([exe, "--exact", "inner", "--nocapture", "--test-threads=1"])
            .output()
            .expect("nsenter")
    }
}

/// The pid of the container's init: the child of `parent` named `systemd` (nspawn also forks
/// short-lived helpers; taking one of those would fail every later nsenter), from /proc.
fn child_of(parent: u32) -> Option<String> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1;
        let ppid = rest.split_whitespace().nth(1)?;
        (ppid == parent.to_string() && comm == "systemd")
            .then(|| e.file_name().to_string_lossy().into_owned())
    })
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.init_pid.is_empty() {
            let _ = self.sh("systemctl poweroff");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

#[test]
fn systemd_in_a_booted_container() {
    if std::env::var_os(INNER).is_some() {
        return;
    }
    if !common::require_root_and_tools(
        &["systemd-nspawn", "debootstrap", "nsenter", "setpriv"],
        "the systemd container test",
    ) {
        return;
    }
    let t0 = Instant::now();
    let out = Command::new(repo().join("scripts/nspawn-tree.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "nspawn-tree.sh: {}", text(&out));
    let tree = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());

    // What goes in: the binaries at fixed paths, the shipped sysusers file, the shipped
    // polkit rule with the demo units listed in place of its commented example, the units.
    let work = tempfile::tempdir().unwrap();
    let rule = std::fs::read_to_string(repo().join("rootfs/etc/polkit-1/rules.d/50-automon.rules"))
        .unwrap();
    let listed: String = POLKIT_UNITS.iter().map(|u| format!("\"{u}\", ")).collect();
    assert!(
        rule.contains("// \"nginx.service\","),
        "the rule's example line moved"
    );
    let rule = rule.replace("// \"nginx.service\",", &listed);
    std::fs::write(work.path().join("50-automon.rules"), rule).unwrap();
    let exe = std::env::current_exe().unwrap();
    let inner_exe = "/usr/local/lib/automon-test/systemd-test".to_owned();
    let mut binds = vec![
        (common::bin(), "/usr/local/bin/automon".to_owned()),
        (exe, inner_exe.clone()),
        (
            repo().join("rootfs/usr/lib/sysusers.d/automon.conf"),
            "/usr/lib/sysusers.d/automon.conf".to_owned(),
        ),
        (
            work.path().join("50-automon.rules"),
            "/etc/polkit-1/rules.d/50-automon.rules".to_owned(),
        ),
    ];
    for (name, body) in UNITS {
        std::fs::write(work.path().join(name), body).unwrap();
        binds.push((
            work.path().join(name),
            format!("/etc/systemd/system/{name}"),
        ));
    }
    let c = Container::boot(&tree, &binds, work);
    eprintln!("# container up in {:.1} s", t0.elapsed().as_secs_f64());

    // sysusers.service only runs at boot when /usr is newer than /etc; create the user
    // the way the package's postinst does.
    c.ok("systemd-sysusers /usr/lib/sysusers.d/automon.conf && id automon");
    c.ok("systemctl start demo-ok.service demo-nopolkit.service demo-other.service");
    c.ok("systemctl start demo-fail.service || true");
    // demo-fail: restarted until the start limit, then failed for good.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c
        .ok("systemctl show -P ActiveState,SubState demo-fail.service")
        .starts_with("failed\nfailed")
    {
        assert!(
            Instant::now() < deadline,
            "demo-fail.service did not end failed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // demo-crash: killed, so it is failed when the repair phase's daemon starts.
    c.ok("systemctl start demo-crash.service && systemctl kill --signal=KILL demo-crash.service");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c
        .ok("systemctl show -P ActiveState demo-crash.service")
        .starts_with("failed")
    {
        assert!(
            Instant::now() < deadline,
            "demo-crash.service did not end failed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    for phase in PHASES {
        let t = Instant::now();
        let out = c.phase(&inner_exe, phase);
        let log = text(&out);
        eprintln!(
            "# phase {phase} ({:.1} s):\n{log}",
            t.elapsed().as_secs_f64()
        );
        assert!(out.status.success(), "phase {phase} failed:\n{log}");
        assert!(
            log.contains("1 passed"),
            "phase {phase} did not run:\n{log}"
        );
    }
    eprintln!("# whole test {:.1} s", t0.elapsed().as_secs_f64());
}

/// The inner part, run inside the container as `automon` (a no-op elsewhere).
#[test]
fn inner() {
    match std::env::var(INNER).as_deref() {
        Ok("collector") => inner_collector(),
        Ok("action") => inner_action(),
        Ok("repair") => inner_repair(),
        Ok(other) => panic!("unknown phase {other}"),
        Err(_) => {}
    }
}

/// `systemctl show -P PROP UNIT` (reading needs no privilege).
fn show(unit: &str, prop: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "--timestamp=unix", "-P", prop, unit])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The daemon, as the automon user, exports the units' states as systemd reports them.
fn inner_collector() {
    let bin = "/usr/local/bin/automon";
    assert!(!nix::unistd::Uid::current().is_root());
    let d = start_daemon(
        bin,
        "[collectors.systemd]\nenabled = true\ninterval = \"1s\"\n\
         units = [\"demo-ok.service\", \"demo-fail.service\", \"demo-missing.service\"]\n\
         unit_patterns = [\"demo-n*.service\"]\n",
    );
    let metrics = || common::client().get(&d.1).send().unwrap().text().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut m = metrics();
    while !m.contains("node_systemd_unit_state{") {
        assert!(Instant::now() < deadline, "no systemd metrics:\n{m}");
        std::thread::sleep(Duration::from_millis(200));
        m = metrics();
    }
    let state = |name: &str, state: &str, type_: &str| {
        common::sample_value(
            &m,
            &format!(
                "node_systemd_unit_state{{name=\"{name}\",state=\"{state}\",type=\"{type_}\"}}"
            ),
        )
    };
    assert_eq!(
        state("demo-ok.service", "active", "simple"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        state("demo-ok.service", "failed", "simple"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        state("demo-fail.service", "failed", "simple"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        state("demo-fail.service", "active", "simple"),
        Some(0.0),
        "{m}"
    );
    // Found by pattern only.
    assert_eq!(
        state("demo-nopolkit.service", "active", "simple"),
        Some(1.0),
        "{m}"
    );
    // Named but not there: inactive, no type, no restart count.
    assert_eq!(
        state("demo-missing.service", "inactive", ""),
        Some(1.0),
        "{m}"
    );
    // Not named, not matching.
    assert!(!m.contains("name=\"demo-other.service\""), "{m}");
    assert!(!m.contains("node_systemd_service_restart_total{name=\"demo-missing.service\"}"));

    let restarts: f64 = show("demo-fail.service", "NRestarts").parse().unwrap();
    assert!(restarts > 0.0, "demo-fail.service was never restarted");
    assert_eq!(
        common::sample_value(
            &m,
            "node_systemd_service_restart_total{name=\"demo-fail.service\"}"
        ),
        Some(restarts),
        "{m}"
    );
    assert_eq!(
        common::sample_value(
            &m,
            "node_systemd_service_restart_total{name=\"demo-ok.service\"}"
        ),
        Some(0.0),
        "{m}"
    );
    let since: f64 = show("demo-ok.service", "ActiveEnterTimestamp")
        .trim_start_matches('@')
        .parse()
        .unwrap();
    let got = common::sample_value(
        &m,
        "node_systemd_unit_start_time_seconds{name=\"demo-ok.service\"}",
    )
    .unwrap();
    assert_eq!(got.floor(), since, "{m}");
    assert_eq!(
        common::sample_value(
            &m,
            "node_systemd_unit_start_time_seconds{name=\"demo-fail.service\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        common::sample_value(&m, "automon_collector_success{collector=\"systemd\"}"),
        Some(1.0),
        "{m}"
    );
    // For docs/benchmarks.md: what one collection of these units costs over the real bus,
    // in the daemon and in-process (connect once, then list + properties, as the collector).
    eprintln!(
        "collector: {} unit state series; daemon's last collection {:?} s",
        m.matches("node_systemd_unit_state{").count(),
        common::sample_value(
            &m,
            "automon_collector_duration_seconds{collector=\"systemd\"}"
        )
    );
    let t = Instant::now();
    let bus = automon::systemd_dbus::SystemdBus::connect(Duration::from_secs(5)).unwrap();
    let connect = t.elapsed();
    let names: Vec<String> = [
        "demo-ok.service",
        "demo-fail.service",
        "demo-missing.service",
    ]
    .map(String::from)
    .to_vec();
    let patterns = vec!["demo-n*.service".to_owned()];
    let mut times: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let units = bus.list_units(&names, &patterns).unwrap();
            assert_eq!(bus.metrics_of(&units).unwrap().len(), 4);
            t.elapsed()
        })
        .collect();
    times.sort();
    eprintln!(
        "in-process: connect {connect:?}; 4 units list + properties: median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

/// Starts `automon run` (the bound binary) with `config` plus a loopback port and a temp data
/// directory; returns it and its /metrics URL.
fn start_daemon(bin: &str, config: &str) -> (KillOnDrop, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.path().join("automon.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n{config}\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .args(["run", "--config"])
        .arg(&path)
        .env("AUTOMON_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let d = KillOnDrop { child, _dir: dir };
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::client().get(&url).send().is_err() {
        assert!(Instant::now() < deadline, "automon did not answer on {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (d, url)
}

/// The daemon and its directory (kept until the daemon is gone).
struct KillOnDrop {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn action(kind: ActionKind, unit: &str) -> UnitAction {
    let rule = RepairRuleConfig {
        name: "demo".to_owned(),
        action: kind,
        unit: Some(unit.to_owned()),
        timeout: HumanDuration(Duration::from_secs(20)),
        ..Default::default()
    };
    let repair = RepairConfig {
        allowed_units: AUTOMON_UNITS.iter().map(|u| (*u).to_owned()).collect(),
        ..Default::default()
    };
    UnitAction::new(&rule, &repair).unwrap()
}

fn ctx() -> ActionContext {
    ActionContext {
        rule: "demo".to_owned(),
        ..Default::default()
    }
}

/// The unit action, as the automon user, over the real system bus and polkit.
fn inner_action() {
    assert!(!nix::unistd::Uid::current().is_root());

    // Allowed by automon and polkit: restarted over D-Bus, a new invocation.
    let before = (
        show("demo-ok.service", "InvocationID"),
        show("demo-ok.service", "MainPID"),
    );
    let out = action(ActionKind::RestartUnit, "demo-ok.service")
        .run(&ctx())
        .unwrap_or_else(|e| panic!("restart demo-ok.service: {e}"));
    assert_eq!(out.summary, "restart demo-ok.service: done (D-Bus)");
    let after = (
        show("demo-ok.service", "InvocationID"),
        show("demo-ok.service", "MainPID"),
    );
    assert_ne!(before.0, after.0, "InvocationID unchanged: not restarted");
    assert_ne!(before.1, after.1);
    assert_eq!(show("demo-ok.service", "ActiveState"), "active");

    // Reload keeps the process.
    action(ActionKind::ReloadUnit, "demo-ok.service")
        .run(&ctx())
        .unwrap_or_else(|e| panic!("reload demo-ok.service: {e}"));
    assert_eq!(show("demo-ok.service", "MainPID"), after.1);
    assert_eq!(show("demo-ok.service", "InvocationID"), after.0);

    // A start job that fails: the job's result, from its JobRemoved signal.
    let e = action(ActionKind::StartUnit, "demo-bad.service")
        .run(&ctx())
        .unwrap_err();
    assert!(matches!(e, ActionError::Failed { .. }), "{e:?}");
    assert!(e.to_string().contains("result \"failed\""), "{e}");

    // Not on automon's allowlist (polkit would allow it): refused before asking systemd.
    let inv = show("demo-other.service", "InvocationID");
    let e = action(ActionKind::RestartUnit, "demo-other.service")
        .run(&ctx())
        .unwrap_err();
    assert_eq!(
        e,
        ActionError::Refused("demo-other.service is not in repair.allowed_units".to_owned())
    );
    assert_eq!(show("demo-other.service", "InvocationID"), inv);

    // On automon's allowlist but not polkit's: systemd refuses, and says so; no fallback.
    let inv = show("demo-nopolkit.service", "InvocationID");
    let e = action(ActionKind::RestartUnit, "demo-nopolkit.service")
        .run(&ctx())
        .unwrap_err();
    assert!(matches!(e, ActionError::Failed { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("systemd refused: access denied (polkit)"),
        "{e}"
    );
    assert_eq!(show("demo-nopolkit.service", "InvocationID"), inv);
    eprintln!("denied as expected: {e}");

    // Polkit allows start but never stop, even for a listed unit (checked with systemctl, as
    // no action stops a unit).
    let out = Command::new("systemctl")
        .args(["--no-ask-password", "stop", "demo-ok.service"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "automon may stop a unit: {}",
        text(&out)
    );
}

/// The daemon, as the automon user, with repair rules: a failed unit is restarted over D-Bus
/// and verified fixed; a unit not on automon's allowlist is refused by automon; one not allowed
/// by polkit is refused by systemd. Each is in the audit trail and the daemon goes on.
fn inner_repair() {
    assert!(!nix::unistd::Uid::current().is_root());
    let bin = "/usr/local/bin/automon";
    let allowed: Vec<String> = AUTOMON_UNITS.iter().map(|u| format!("{u:?}")).collect();
    let rule = |name: &str, unit: &str, state: &str| {
        format!(
            r#"
[[repair.rules]]
name = "{name}"
expr = 'node_systemd_unit_state{{name="{unit}",state="{state}"}} == 1'
action = "restart_unit"
unit = "{{{{ $labels.name }}}}"
timeout = "20s"
max_attempts = 1
cooldown = "1h"
window = "2h"
settle = "3s"
"#
        )
    };
    let config = format!(
        "[collectors.systemd]\nenabled = true\ninterval = \"1s\"\n\
         units = [\"demo-crash.service\", \"demo-other.service\", \"demo-nopolkit.service\"]\n\
         [repair]\ncheck_interval = \"250ms\"\nallowed_units = [{}]\n{}{}{}",
        allowed.join(", "),
        rule("crash", "demo-crash.service", "failed"),
        rule("other", "demo-other.service", "active"),
        rule("nopolkit", "demo-nopolkit.service", "active"),
    );
    let other_inv = show("demo-other.service", "InvocationID");
    let nopolkit_inv = show("demo-nopolkit.service", "InvocationID");
    assert_eq!(show("demo-crash.service", "ActiveState"), "failed");
    let d = start_daemon(bin, &config);
    let base = d.1.trim_end_matches("/metrics").to_owned();
    let log = || -> Vec<serde_json::Value> {
        let v: serde_json::Value = common::client()
            .get(format!("{base}/api/v1/repairs/log?limit=1000"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let mut rows = v["data"].as_array().cloned().unwrap_or_default();
        rows.reverse();
        rows
    };
    let find = |rows: &[serde_json::Value], rule: &str, event: &str| {
        rows.iter()
            .find(|r| r["rule"] == rule && r["event"] == event)
            .cloned()
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let rows = log();
        if find(&rows, "crash", "fixed").is_some()
            && find(&rows, "other", "refused").is_some()
            && find(&rows, "nopolkit", "failed").is_some()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "repairs did not finish: {rows:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let rows = log();
    let events: Vec<&str> = rows
        .iter()
        .filter(|r| r["rule"] == "crash")
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["triggered", "started", "succeeded", "fixed"],
        "{rows:#?}"
    );
    let done = find(&rows, "crash", "succeeded").unwrap();
    assert_eq!(done["target"], "unit:demo-crash.service");
    assert!(
        done["detail"].as_str().unwrap().contains("(D-Bus)"),
        "{done}"
    );
    assert_eq!(show("demo-crash.service", "ActiveState"), "active");
    let refused = find(&rows, "other", "refused").unwrap();
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("demo-other.service is not in repair.allowed_units"),
        "{refused}"
    );
    assert_eq!(show("demo-other.service", "InvocationID"), other_inv);
    let denied = find(&rows, "nopolkit", "failed").unwrap();
    assert!(
        denied["detail"]
            .as_str()
            .unwrap()
            .contains("systemd refused: access denied"),
        "{denied}"
    );
    assert_eq!(show("demo-nopolkit.service", "InvocationID"), nopolkit_inv);
    // The daemon went on.
    let health = common::client()
        .get(format!("{base}/health"))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    eprintln!(
        "repair log: {}",
        serde_json::to_string_pretty(&rows).unwrap()
    );
}
