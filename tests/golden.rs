//! Golden-output test: every host collector whose output depends only on files runs on the
//! fixture `/proc` + `/sys` tree in `tests/fixtures/host`, and the rendered exposition must
//! equal `tests/fixtures/host/golden.prom` byte for byte. Regenerate after an intended change
//! with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.
//!
//! The textfile collector reads a copy of `tests/fixtures/host/textfile` with a fixed mtime;
//! its temporary path is shown as the default directory, so the output does not depend on
//! where the checkout is.

mod common;

use automon::collector;
use automon::config::Config;
use automon::model::render_family;

/// Collectors whose values come from the clock or from live syscalls (statfs, adjtimex) are
/// covered by their own tests instead. They are disabled rather than skipped, because the
/// textfile collector waits for every enabled collector's first run.
fn disable_live(cfg: &mut Config) {
    cfg.collectors.time.enabled = false;
    cfg.collectors.timex.enabled = false;
    cfg.collectors.filesystem.enabled = false;
}

/// Copies the textfile fixtures into a temporary directory with a fixed mtime.
fn textfile_dir(root: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root.join("textfile")).unwrap() {
        let entry = entry.unwrap();
        let copy = dir.path().join(entry.file_name());
        std::fs::copy(entry.path(), &copy).unwrap();
        std::fs::File::options()
            .append(true)
            .open(&copy)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
            .unwrap();
    }
    dir
}

fn render_fixture() -> String {
    let root = common::fixtures().join("host");
    let mut cfg = Config::default();
    cfg.paths.procfs = root.join("proc");
    cfg.paths.sysfs = root.join("sys");
    cfg.paths.rootfs = root.clone();
    disable_live(&mut cfg);
    let textfiles = textfile_dir(&root);
    cfg.collectors.textfile.directory = textfiles.path().to_owned();
    let specs = collector::build(&cfg).unwrap_or_else(|e| panic!("build: {e:?}"));
    let mut out = String::new();
    for spec in &specs {
        let mut c = (spec.factory)().unwrap();
        let collection = c
            .collect()
            .unwrap_or_else(|e| panic!("collector {} failed on fixtures: {e}", spec.name));
        for f in &collection.families {
            render_family(&mut out, f);
        }
    }
    let shown = textfiles.path().display().to_string();
    out.replace(&shown, automon::config::DEFAULT_TEXTFILE_DIRECTORY)
}

#[test]
fn fixture_tree_matches_golden_output() {
    let golden_path = common::fixtures().join("host/golden.prom");
    let actual = render_fixture();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden_path).expect("golden file");
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or(0);
        panic!(
            "output differs from {} at line {}:\n  actual:   {:?}\n  expected: {:?}\n(UPDATE_GOLDEN=1 to regenerate)",
            golden_path.display(),
            first + 1,
            actual.lines().nth(first),
            expected.lines().nth(first)
        );
    }
}

#[test]
fn golden_output_passes_promtool() {
    let Some(promtool) = common::require_tool("promtool") else {
        return;
    };
    let golden_path = common::fixtures().join("host/golden.prom");
    let out = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(golden_path).unwrap())
        .output()
        .unwrap();
    common::assert_promtool_clean(&out);
}
