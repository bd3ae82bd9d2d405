//! The textfile collector in the real daemon: files dropped into the directory show up in
//! `/metrics`, a broken file is named in `/health` while the others load, a family that a host
//! collector exports is never served twice, and an atomic rename fixes things on the next run.

mod common;

use std::time::Duration;

use common::*;

fn count(body: &str, needle: &str) -> usize {
    body.matches(needle).count()
}

#[test]
fn textfiles_are_served_and_problems_reported() {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    std::fs::write(
        dir.join("good.prom"),
        "# HELP backup_age_seconds Age of the last backup.\n# TYPE backup_age_seconds gauge\n\
         backup_age_seconds{job=\"db\"} 42\n",
    )
    .unwrap();
    // Shadows the load collector's family: must be dropped, not served twice.
    std::fs::write(dir.join("shadow.prom"), "node_load1 1234\n").unwrap();
    std::fs::write(dir.join("broken.prom"), "ok_metric 1\nbroken{x=\"1\" 2\n").unwrap();
    // A write in progress, by the rename convention.
    std::fs::write(dir.join("next.prom.999"), "half_writ").unwrap();

    let d = start(&format!(
        "[collectors]\ndefault_interval = \"1s\"\n\n[collectors.textfile]\ndirectory = {:?}\n",
        dir.display().to_string()
    ));
    assert!(
        d.eventually(Duration::from_secs(10), || d
            .metrics()
            .contains("backup_age_seconds{job=\"db\"} 42")),
        "textfile metric not served"
    );
    for _ in 0..3 {
        let body = d.metrics();
        assert_eq!(count(&body, "# TYPE node_load1 "), 1, "{body}");
        assert!(!body.contains("node_load1 1234"), "{body}");
        assert!(
            !body.contains("ok_metric"),
            "a broken file is skipped whole"
        );
        assert!(!body.contains("half_writ"));
        assert_eq!(sample_value(&body, "node_textfile_scrape_error"), Some(1.0));
        let good = format!(
            "node_textfile_mtime_seconds{{file=\"{}\"}}",
            dir.join("good.prom").display()
        );
        assert!(body.contains(&good), "{body}");
        std::thread::sleep(Duration::from_millis(400));
    }
    let (status, h) = d.health();
    assert_eq!(
        status, 200,
        "a textfile problem does not make automon unhealthy"
    );
    assert_eq!(h["collectors"]["textfile"]["status"], "ok");
    let note = h["collectors"]["textfile"]["note"].as_str().unwrap_or("");
    assert!(note.contains("broken.prom: line 2: "), "{note}");
    assert!(
        note.contains("node_load1 is already exported by the load collector"),
        "{note}"
    );

    // Fix both by the rename convention; the next run is clean.
    let tmp = dir.join("broken.prom.1");
    std::fs::write(&tmp, "ok_metric 1\nbroken{x=\"1\"} 2\n").unwrap();
    std::fs::rename(&tmp, dir.join("broken.prom")).unwrap();
    std::fs::remove_file(dir.join("shadow.prom")).unwrap();
    assert!(
        d.eventually(Duration::from_secs(10), || sample_value(
            &d.metrics(),
            "node_textfile_scrape_error"
        ) == Some(0.0)),
        "scrape error not cleared"
    );
    let body = d.metrics();
    assert!(body.contains("broken{x=\"1\"} 2"), "{body}");
    let (_, h) = d.health();
    assert!(h["collectors"]["textfile"]["note"].is_null(), "{h}");

    promtool_check_metrics(&body);
}
