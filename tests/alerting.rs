//! Alert rules in the real daemon: a value written to a textfile crosses a threshold, the
//! rule goes pending then firing (`for` respected to the evaluation interval), shows in
//! `/api/v1/alerts`, `/api/v1/rules`, the `ALERTS` series and `automon alerts`; silences from
//! the CLI and the API mute it; state survives `kill -9`; bad rules are config errors.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const FAST: &str = "[collectors]\ndefault_interval = \"1s\"\n[alerting]\nevaluation_interval = \"1s\"\nbuiltin_rules = false\n";

fn config(textfiles: &Path, rule: &str) -> String {
    format!(
        "{FAST}[[alerting.rules]]\n{rule}\n[collectors.textfile]\ndirectory = {:?}\n",
        textfiles.display().to_string()
    )
}

fn alerts(d: &Daemon) -> Vec<serde_json::Value> {
    let (code, body) = d.get("/api/v1/alerts");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["alerts"].as_array().cloned().unwrap_or_default()
}

fn state_of(d: &Daemon, name: &str) -> Option<String> {
    alerts(d)
        .into_iter()
        .find(|a| a["labels"]["alertname"] == name)
        .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
}

const TANK_RULE: &str = "name = \"TankLow\"\nexpr = \"test_level < 10\"\nfor = \"3s\"\nlabels = { severity = \"critical\" }\nannotations.summary = \"tank {{ $labels.tank }} at {{ $value }}%\"";

#[test]
fn a_rule_goes_pending_then_firing_then_resolves() {
    let files = tempfile::tempdir().unwrap();
    set_value(files.path(), 50.0);
    let d = start(&config(files.path(), TANK_RULE));
    assert!(d.eventually(Duration::from_secs(10), || d
        .get("/api/v1/query?query=test_level")
        .1
        .contains("50")));
    assert_eq!(state_of(&d, "TankLow"), None);

    set_value(files.path(), 5.0);
    assert!(
        d.eventually(Duration::from_secs(10), || state_of(&d, "TankLow")
            .as_deref()
            == Some("pending")),
        "never pending"
    );
    let pending_seen = std::time::Instant::now();
    assert!(
        d.eventually(Duration::from_secs(10), || state_of(&d, "TankLow")
            .as_deref()
            == Some("firing")),
        "never firing"
    );
    // for = 3s at a 1 s evaluation interval: not before 3 s minus one interval of jitter in
    // when we first saw it pending.
    assert!(
        pending_seen.elapsed() >= Duration::from_secs(2),
        "fired after {:?}",
        pending_seen.elapsed()
    );

    let a = alerts(&d)
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "TankLow")
        .unwrap();
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["tank"], "a");
    assert_eq!(a["annotations"]["summary"], "tank a at 5%");
    assert_eq!(a["value"], "5");

    let (_, rules) = d.get("/api/v1/rules");
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "TankLow");
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["duration"], 3.0);
    assert_eq!(rule["type"], "alerting");

    let (_, q) = d.get("/api/v1/query?query=ALERTS%7Balertname%3D%22TankLow%22%7D");
    assert!(q.contains("\"alertstate\":\"firing\""), "{q}");
    let (_, q) = d.get("/api/v1/query?query=ALERTS_FOR_STATE");
    assert!(q.contains("TankLow"), "{q}");

    let out = Command::new(bin())
        .args(["alerts", "--config"])
        .arg(&d.config_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("firing   TankLow"), "{text}");
    assert!(text.contains("tank a at 5%"), "{text}");

    let m = d.metrics();
    assert_eq!(
        sample_value(&m, "automon_alerts{state=\"firing\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample_value(
            &m,
            "automon_rule_evaluation_failures_total{rule=\"TankLow\"}"
        ),
        None
    );
    promtool_check_metrics(&m);

    set_value(files.path(), 80.0);
    assert!(
        d.eventually(Duration::from_secs(10), || state_of(&d, "TankLow")
            .is_none()),
        "never resolved"
    );
}

#[test]
fn silences_from_the_cli_and_the_api_mute_an_alert() {
    let files = tempfile::tempdir().unwrap();
    set_value(files.path(), 1.0);
    let d = start(&config(
        files.path(),
        &TANK_RULE.replace("for = \"3s\"", "for = \"0s\""),
    ));
    assert!(
        d.eventually(Duration::from_secs(10), || state_of(&d, "TankLow")
            .as_deref()
            == Some("firing"))
    );

    let cli = |args: &[&str]| {
        let out = Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&d.config_path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, id, err) = cli(&[
        "silence",
        "add",
        "alertname=TankLow",
        "tank=~\"a|b\"",
        "-d",
        "1h",
        "-m",
        "refilling",
        "--author",
        "alice",
    ]);
    assert!(ok, "{err}");
    let id = id.trim().to_owned();
    let silenced = || {
        alerts(&d).into_iter().any(|a| {
            a["silencedBy"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x == id.as_str()))
        })
    };
    assert!(
        d.eventually(Duration::from_secs(5), silenced),
        "CLI silence not applied"
    );
    let (ok, list, _) = cli(&["silence", "list"]);
    assert!(
        ok && list.contains(&id) && list.contains("refilling") && list.contains("alice"),
        "{list}"
    );
    let (ok, _, err) = cli(&["silence", "expire", &id]);
    assert!(ok, "{err}");
    assert!(
        d.eventually(Duration::from_secs(5), || !silenced()),
        "expired silence still applied"
    );
    let (ok, _, err) = cli(&[
        "silence",
        "add",
        "tank=~\".*\"",
        "-m",
        "all",
        "--author",
        "bob",
    ]);
    assert!(!ok && err.contains("mute every alert"), "{err}");

    // The API: create, read, expire; bad input is a 400 with a message, unknown id a 404.
    let c = client();
    let r = c
        .post(d.url("/api/v1/silences"))
        .body(r#"{"matchers":[{"name":"alertname","value":"TankLow","isRegex":false,"isEqual":true}],"duration":"30m","createdBy":"carol","comment":"api"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    let api_id = v["data"]["silenceID"].as_str().unwrap().to_owned();
    let (code, body) = d.get(&format!("/api/v1/silences/{api_id}"));
    assert_eq!(code, 200);
    assert!(
        body.contains("\"state\":\"active\"") && body.contains("carol"),
        "{body}"
    );
    let r = c
        .post(d.url("/api/v1/silences"))
        .body(r#"{"matchers":[],"duration":"1h","createdBy":"x"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("at least one matcher"));
    let r = c
        .post(d.url("/api/v1/silences"))
        .body(r#"{"matchers":[{"name":"a","value":"b"}],"createdBy":"x"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c.delete(d.url("/api/v1/silences/nope")).send().unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .delete(d.url(&format!("/api/v1/silences/{api_id}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, body) = d.get(&format!("/api/v1/silences/{api_id}"));
    assert!(body.contains("\"state\":\"expired\""), "{body}");
}

#[test]
fn alert_state_survives_kill_9() {
    let files = tempfile::tempdir().unwrap();
    set_value(files.path(), 1.0);
    let data = tempfile::tempdir().unwrap();
    let cfg = format!(
        "data_dir = {:?}\n{}",
        data.path().display().to_string(),
        config(
            files.path(),
            &TANK_RULE.replace("for = \"3s\"", "for = \"1h\"")
        )
    );
    let mut d = start(&cfg);
    assert!(
        d.eventually(Duration::from_secs(10), || state_of(&d, "TankLow")
            .as_deref()
            == Some("pending"))
    );
    let active_at = alerts(&d)[0]["activeAt"].clone();
    std::thread::sleep(Duration::from_millis(1500));
    d.signal(nix::sys::signal::Signal::SIGKILL);
    d.wait_exit(Duration::from_secs(5));

    let d2 = start(&cfg);
    assert!(
        d2.eventually(Duration::from_secs(10), || state_of(&d2, "TankLow")
            .is_some())
    );
    let a = alerts(&d2).into_iter().next().unwrap();
    assert_eq!(a["state"], "pending", "a 1 h `for` cannot have elapsed");
    // The `for` timer resumed: the time down was added to activeAt, so it is no earlier than
    // before the kill.
    assert!(
        a["activeAt"].as_str().unwrap() >= active_at.as_str().unwrap(),
        "{a} vs {active_at}"
    );
    assert!(d2.log_contains("alert state restored"));
}

#[test]
fn bad_rules_are_config_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    std::fs::write(
        dir.path().join("automon.toml"),
        "[alerting]\nbuiltin_rules = false\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules.d/disk.toml"),
        "[[rules]]\nname = \"DiskFull\"\nexpr = \"node_filesystem_avail_bytes <\"\n\n[[rules]]\nname = \"X\"\nexpr = \"up\"\nannotations.summary = \"{{ $value | humanise }}\"\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["validate", "--config"])
        .arg(dir.path().join("automon.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rules.d/disk.toml:3: rules.0.expr: invalid expression"),
        "{err}"
    );
    assert!(err.contains("rules.d/disk.toml:8: rules.1.annotations.summary: template: unknown function \"humanise\""), "{err}");
}
