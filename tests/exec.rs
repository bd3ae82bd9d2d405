//! Exec plugins in the real daemon: a script's output appears in `/metrics` with its `plugin`
//! label and passes `promtool check metrics`; a plugin that hangs is killed and named in
//! `/health` while the other plugins keep being served; a family another collector exports is
//! not served twice.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn plugins_in_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let backup = script(
        dir.path(),
        "backup.sh",
        "echo '# HELP backup_last_success_timestamp_seconds When the last backup finished.'\n\
         echo '# TYPE backup_last_success_timestamp_seconds gauge'\n\
         echo \"backup_last_success_timestamp_seconds{target=\\\"$1\\\"} 1700000000\"",
    );
    let hang = script(
        dir.path(),
        "hang.sh",
        "echo 'working...' >&2\nexec sleep 600",
    );
    // node_load1 belongs to the load collector: served twice it would break the exposition.
    let shadow = script(
        dir.path(),
        "shadow.sh",
        "echo 'node_load1 1234'\necho 'mine 1'",
    );
    let d = start(&format!(
        "[collectors.exec]\nenabled = true\ninterval = \"1s\"\ntimeout = \"1s\"\n\n\
         [[collectors.exec.plugins]]\nname = \"backup\"\ncommand = [{backup:?}, \"db\"]\n\n\
         [[collectors.exec.plugins]]\nname = \"stuck\"\ncommand = [{hang:?}]\n\
         timeout = \"300ms\"\n\n\
         [[collectors.exec.plugins]]\nname = \"shadow\"\ncommand = [{shadow:?}]\n"
    ));
    let body = d.metrics();
    assert_eq!(
        sample_value(
            &body,
            "backup_last_success_timestamp_seconds{plugin=\"backup\",target=\"db\"}"
        ),
        Some(1_700_000_000.0),
        "{body}"
    );
    assert_eq!(
        sample_value(&body, "automon_exec_success{plugin=\"stuck\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample_value(&body, "automon_exec_exit_code{plugin=\"stuck\"}"),
        Some(137.0)
    );
    assert_eq!(body.matches("# TYPE node_load1 ").count(), 1, "{body}");
    assert!(!body.contains("node_load1 1234"));
    assert_eq!(sample_value(&body, "mine{plugin=\"shadow\"}"), Some(1.0));
    promtool_check_metrics(&body);
    let (_, h) = d.health();
    let note = h["collectors"]["exec"]["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("plugin stuck: killed after its deadline of 300ms; stderr: working..."),
        "{h}"
    );
    assert!(
        note.contains("plugin shadow: dropped node_load1: the load collector exports it"),
        "{h}"
    );
    // Each round kills its own run: no sleeping plugins pile up.
    std::thread::sleep(Duration::from_millis(2500));
    let sleepers = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_to_string(e.path().join("cmdline"))
                .is_ok_and(|c| c.starts_with("sleep\u{0}600"))
        })
        .count();
    assert!(sleepers <= 1, "{sleepers} hung plugin runs still alive");
}
