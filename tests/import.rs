//! `automon import` then `automon query` on the real binary with no daemon running: the
//! query reads the database directly. Also a slice of the real host recording, checking the
//! bytes-per-sample report.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

/// A data directory nobody serves: `--data-dir` makes `automon query` read it directly.
fn automon(args: &[&str]) -> Output {
    let out = Command::new(common::bin())
        .args(args)
        .env_remove("AUTOMON_CONFIG")
        .output()
        .expect("run automon");
    eprintln!(
        "automon {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// An empty config, so no system config leaks into the test.
fn config(dir: &Path) -> String {
    let p = dir.join("automon.toml");
    std::fs::write(&p, "").unwrap();
    p.to_str().unwrap().to_owned()
}

const T0: i64 = 1_700_000_000;

fn small_file() -> String {
    let mut s = String::from("# TYPE req counter\n# HELP req Requests.\n");
    // A counter at 10/s over 2 minutes (one sample every 10 s), with a reset at 60 s.
    for i in 0..=12 {
        let t = T0 + i * 10;
        let v = if i < 6 { i * 100 } else { (i - 6) * 100 };
        s.push_str(&format!("req_total{{path=\"/a\"}} {v} {t}\n"));
        s.push_str(&format!("req_total{{path=\"/b\"}} {} {t}.5\n", i * 10));
    }
    s.push_str("# TYPE temp gauge\n");
    for i in 0..=12 {
        s.push_str(&format!(
            "temp{{room=\"x,y\"}} {} {}\n",
            20 + i,
            T0 + i * 10
        ));
    }
    s.push_str("# EOF\n");
    s
}

#[test]
fn import_then_query_the_database_directly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    let file = dir.path().join("small.om");
    std::fs::write(&file, small_file()).unwrap();
    let data_s = data.to_str().unwrap();

    let out = automon(&[
        "import",
        file.to_str().unwrap(),
        "--data-dir",
        data_s,
        "-c",
        &cfg,
    ]);
    let report = stdout(&out);
    assert!(report.contains("samples imported: 39"), "{report}");
    assert!(report.contains("series: 3"), "{report}");
    assert!(report.contains("bytes/sample: "), "{report}");
    // Old timestamps: the retention warning.
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention_raw"));

    // Instant query at the last sample: JSON is Prometheus' data object.
    let at = (T0 + 120).to_string();
    let out = automon(&[
        "query",
        "temp",
        "--at",
        &at,
        "--data-dir",
        data_s,
        "--format",
        "json",
        "-c",
        &cfg,
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("directly"));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "temp", "room": "x,y"}, "value": [T0 + 120, "32"]}
        ]})
    );

    // increase() over the reset: 500 before, 600 after = 1100 over the 2 minutes (with
    // Prometheus' extrapolation the sample span is the whole window here).
    let out = automon(&[
        "query",
        "increase(req_total{path=\"/a\"}[2m])",
        "--at",
        &at,
        "--data-dir",
        data_s,
        "--format",
        "json",
        "-c",
        &cfg,
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let value: f64 = v["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((value - 1100.0).abs() < 1e-9, "{v}");

    // Range query ending at the last sample: CSV rows and a table row per series.
    let out = automon(&[
        "query",
        "temp",
        "--since",
        "1m",
        "--step",
        "30s",
        "--at",
        &at,
        "--data-dir",
        data_s,
        "--format",
        "csv",
        "-c",
        &cfg,
    ]);
    let csv = stdout(&out);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "series,timestamp,value");
    assert_eq!(
        lines[1..],
        [
            format!("\"temp{{room=\"\"x,y\"\"}}\",{},26", T0 + 60),
            format!("\"temp{{room=\"\"x,y\"\"}}\",{},29", T0 + 90),
            format!("\"temp{{room=\"\"x,y\"\"}}\",{},32", T0 + 120),
        ]
    );
    let out = automon(&[
        "query",
        "req_total",
        "--at",
        &at,
        "--data-dir",
        data_s,
        "-c",
        &cfg,
    ]);
    let table = stdout(&out);
    assert_eq!(table.lines().count(), 3, "header and two series: {table}");
    assert!(table
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("req_total{path=\"/a\"}"));

    // Errors name the problem and exit non-zero.
    let out = automon(&["query", "sum(", "--data-dir", data_s, "-c", &cfg]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_data"));
}

#[test]
fn import_refuses_bad_input_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    let file = dir.path().join("bad.om");
    std::fs::write(&file, "a 1 1700000000\nb 2\n# EOF\n").unwrap();
    let out = automon(&[
        "import",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "-c",
        &cfg,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: sample has no timestamp"), "{err}");
    assert!(!data.join("automon.db").exists(), "nothing written");
}

#[test]
fn query_asks_the_running_daemon_and_import_refuses_its_database() {
    let d = common::start("[collectors]\ndefault_interval = \"1s\"\n");
    let cfg = d.config_path.to_str().unwrap().to_owned();
    // The config says port 0; the test knows the bound port.
    let url = d.url("");
    assert!(d.eventually(std::time::Duration::from_secs(20), || {
        let out = automon(&[
            "query",
            "node_load1",
            "--format",
            "json",
            "--url",
            &url,
            "-c",
            &cfg,
        ]);
        out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("answered by the daemon")
            && String::from_utf8_lossy(&out.stdout).contains("node_load1")
    }));
    let file = d.dir.path().join("x.om");
    std::fs::write(&file, "a 1 1700000000\n# EOF\n").unwrap();
    let out = automon(&["import", file.to_str().unwrap(), "-c", &cfg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another automon process"), "{err}");
}

#[test]
fn import_a_slice_of_the_host_recording() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/recordings/host-1s-30min.om.xz"
    );
    let Ok(f) = std::fs::File::open(path) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{path} missing"
        );
        eprintln!("SKIPPING: {path} missing");
        return;
    };
    let mut text = String::new();
    xz2::read::XzDecoder::new(f)
        .read_to_string(&mut text)
        .unwrap();
    // The first 200,000 lines, cut at a line boundary and closed with `# EOF`.
    let mut slice: String = text.lines().take(200_000).flat_map(|l| [l, "\n"]).collect();
    slice.push_str("# EOF\n");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let file = dir.path().join("slice.om");
    std::fs::write(&file, slice).unwrap();
    let data = dir.path().join("data");
    let out = automon(&[
        "import",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "-c",
        &cfg,
    ]);
    let report = stdout(&out);
    let samples: u64 = field(&report, "samples imported: ").parse().unwrap();
    assert!(samples > 190_000, "{report}");
    let bytes: u64 = field(&report, "bytes on disk: ").parse().unwrap();
    let per: f64 = field(&report, "bytes/sample: ").parse().unwrap();
    assert!(
        (per - bytes as f64 / samples as f64).abs() < 0.001,
        "{report}"
    );
    // 112 series × 1,800 samples: the budget of 1.0 B/sample holds on the slice too
    // (0.80 measured when written).
    assert!(per <= 1.0, "{per} B/sample");
}

fn field<'a>(report: &'a str, prefix: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {report}"))
}
