//! `os` collector: the distribution from os-release(5) as node_exporter's `os` collector
//! exports it: `node_os_info{build_id,id,id_like,...,version_id} 1`,
//! `node_os_version{id,id_like,name}` (the major.minor part of `VERSION_ID`) and, when the file
//! has `SUPPORT_END`, `node_os_support_end_timestamp_seconds`.
//!
//! The file is `<rootfs>/etc/os-release`, else `<rootfs>/usr/lib/os-release` (the order
//! os-release(5) prescribes). Neither existing is not a failure: the collector then reports
//! nothing, with a note.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// The variables of an os-release file, plus how many lines were not assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `KEY` → unquoted, unescaped value. A key assigned twice keeps the last value.
    pub vars: BTreeMap<String, String>,
    /// Lines that are neither blank, comments nor `KEY=value` with a valid key; they are
    /// skipped, as systemd skips them.
    pub invalid_lines: usize,
}

impl OsRelease {
    /// The value of `key`, or `""` when unset (node_exporter's label value for a missing key).
    pub fn get(&self, key: &str) -> &str {
        self.vars.get(key).map_or("", String::as_str)
    }
}

/// Whether `key` is a valid variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Characters a backslash escapes inside double quotes; before any other character the
/// backslash stays (shell semantics).
const DOUBLE_QUOTE_ESCAPABLE: &[char] = &['"', '\\', '`', '$'];

/// Ends one assignment: stores it if the key is valid, else counts an invalid line, and resets
/// the buffers for the next one.
fn commit(out: &mut OsRelease, key: &mut String, value: &mut String, value_end: &mut usize) {
    value.truncate(*value_end);
    let k = key.trim_end();
    if is_valid_key(k) {
        out.vars.insert(k.to_owned(), std::mem::take(value));
    } else {
        out.invalid_lines += 1;
    }
    key.clear();
    value.clear();
    *value_end = 0;
}

/// States of [`parse_os_release`], named after systemd's.
#[derive(Clone, Copy, PartialEq)]
enum State {
    PreKey,
    Key,
    PreValue,
    Value,
    ValueEscape,
    SingleQuote,
    DoubleQuote,
    DoubleQuoteEscape,
    Comment,
}

/// Parses os-release(5) text with the rules of systemd's `parse_env_file()`, the reference
/// reader of this file:
///
/// - blank lines and lines starting with `#` or `;` are skipped;
/// - `KEY=value`, with whitespace around `KEY` and before the value ignored;
/// - `'...'` is literal; in `"..."` a backslash escapes `"`, `\`, `` ` `` and `$` (before
///   anything else it is kept); quoted parts may span lines and are concatenated with what
///   follows (`"a"'b'c` is `abc`);
/// - unquoted, a backslash escapes the next character, and trailing whitespace is dropped;
/// - a backslash before a line break joins the lines (outside single quotes).
///
/// Lines without `=` or with an invalid key are counted in [`OsRelease::invalid_lines`] and
/// skipped. A quote that is never closed is an error: it would swallow the rest of the file.
pub fn parse_os_release(s: &str) -> Result<OsRelease, String> {
    let mut out = OsRelease::default();
    let mut state = State::PreKey;
    let mut key = String::new();
    let mut value = String::new();
    // Length of `value` before its trailing unescaped whitespace, to trim it at the end.
    let mut value_end = 0;
    let mut line = 1;
    let mut quote_line = 1;

    for c in s.chars() {
        let newline = c == '\n' || c == '\r';
        match state {
            State::PreKey => {
                if c == '#' || c == ';' {
                    state = State::Comment;
                } else if c == '=' {
                    // No key: the line is invalid, but its value must still be consumed.
                    state = State::PreValue;
                } else if !c.is_whitespace() {
                    key.push(c);
                    state = State::Key;
                }
            }
            State::Key => {
                if newline {
                    out.invalid_lines += 1;
                    key.clear();
                    state = State::PreKey;
                } else if c == '=' {
                    state = State::PreValue;
                } else {
                    key.push(c);
                }
            }
            State::PreValue => {
                if newline {
                    commit(&mut out, &mut key, &mut value, &mut value_end);
                    state = State::PreKey;
                } else if c == '\'' {
                    quote_line = line;
                    state = State::SingleQuote;
                } else if c == '"' {
                    quote_line = line;
                    state = State::DoubleQuote;
                } else if c == '\\' {
                    state = State::ValueEscape;
                } else if !c.is_whitespace() {
                    value.push(c);
                    value_end = value.len();
                    state = State::Value;
                }
            }
            State::Value => {
                if newline {
                    commit(&mut out, &mut key, &mut value, &mut value_end);
                    state = State::PreKey;
                } else if c == '\\' {
                    state = State::ValueEscape;
                } else {
                    value.push(c);
                    if !c.is_whitespace() {
                        value_end = value.len();
                    }
                }
            }
            State::ValueEscape => {
                // An escaped character is kept even if it is whitespace.
                if !newline {
                    value.push(c);
                    value_end = value.len();
                }
                state = State::Value;
            }
            State::SingleQuote => {
                if c == '\'' {
                    value_end = value.len();
                    state = State::PreValue;
                } else {
                    value.push(c);
                }
            }
            State::DoubleQuote => {
                if c == '"' {
                    value_end = value.len();
                    state = State::PreValue;
                } else if c == '\\' {
                    state = State::DoubleQuoteEscape;
                } else {
                    value.push(c);
                }
            }
            State::DoubleQuoteEscape => {
                if DOUBLE_QUOTE_ESCAPABLE.contains(&c) {
                    value.push(c);
                } else if !newline {
                    value.push('\\');
                    value.push(c);
                }
                state = State::DoubleQuote;
            }
            State::Comment => {
                if newline {
                    state = State::PreKey;
                }
            }
        }
        if c == '\n' {
            line += 1;
        }
    }

    match state {
        State::PreKey | State::Comment => {}
        State::Key => out.invalid_lines += 1,
        State::PreValue | State::Value | State::ValueEscape => {
            commit(&mut out, &mut key, &mut value, &mut value_end)
        }
        State::SingleQuote | State::DoubleQuote | State::DoubleQuoteEscape => {
            return Err(format!("line {quote_line}: quote is never closed"));
        }
    }
    Ok(out)
}

/// The major.minor part of `VERSION_ID` as node_exporter reads it (regex `^[0-9]+\.?[0-9]*`,
/// then a float: `22.04` → 22.04, `12` → 12, `8.10` → 8.1). `None` when it does not start
/// with a digit or is 0, where node_exporter exports no `node_os_version`.
pub fn os_version(version_id: &str) -> Option<f64> {
    let int_len = version_id
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(version_id.len());
    if int_len == 0 {
        return None;
    }
    let rest = &version_id[int_len..];
    let frac_len = match rest.strip_prefix('.') {
        Some(after) => {
            1 + after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len())
        }
        None => 0,
    };
    let v: f64 = version_id[..int_len + frac_len].parse().ok()?;
    (v > 0.0).then_some(v)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `SUPPORT_END` (`YYYY-MM-DD`, os-release(5)) as seconds since the epoch at 00:00 UTC, the
/// way node_exporter's `time.Parse(time.DateOnly, ...)` reads it. `None` if not a valid date.
pub fn parse_support_end(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|_| s.get(r))
            .and_then(|t| t.parse::<i64>().ok())
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400)
}

/// Labels of `node_os_info`, node_exporter's, with the os-release key each comes from.
const INFO_LABELS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

/// Builds the families, and a note if `SUPPORT_END` is set but not a date (node_exporter fails
/// the whole collector then; dropping only that metric keeps `node_os_info`).
pub fn os_families(os: &OsRelease) -> (Vec<Family>, Option<String>) {
    let labels: Vec<(&str, &str)> = INFO_LABELS
        .iter()
        .map(|(label, key)| (*label, os.get(key)))
        .collect();
    let mut families = vec![Family::gauge(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, \
         image_version, name, pretty_name, variant, variant_id, version, version_codename, \
         version_id.",
    )
    .with(&labels, 1.0)];
    if let Some(v) = os_version(os.get("VERSION_ID")) {
        families.push(
            Family::gauge(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
            )
            .with(
                &[
                    ("id", os.get("ID")),
                    ("id_like", os.get("ID_LIKE")),
                    ("name", os.get("NAME")),
                ],
                v,
            ),
        );
    }
    let mut note = None;
    let support_end = os.get("SUPPORT_END");
    if !support_end.is_empty() {
        match parse_support_end(support_end) {
            Some(ts) => families.push(
                Family::gauge(
                    "node_os_support_end_timestamp_seconds",
                    "Metric containing the end-of-life date timestamp of the OS.",
                )
                .with(&[], ts as f64),
            ),
            None => {
                note = Some(format!(
                    "SUPPORT_END={support_end:?} is not a YYYY-MM-DD date; \
                     node_os_support_end_timestamp_seconds skipped"
                ))
            }
        }
    }
    (families, note)
}

/// Where os-release(5) says to look, in order.
const CANDIDATES: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// Most symlinks followed when resolving a candidate under rootfs.
const MAX_SYMLINKS: usize = 8;

/// Maps `abs` under rootfs, following symlinks *inside* rootfs. `/etc/os-release` is usually a
/// symlink; a relative one (`../usr/lib/os-release`) resolves correctly by itself, but an
/// absolute one (NixOS: `/etc/static/os-release`) would otherwise be followed on the machine
/// automon runs on, i.e. into the container's own root when the host is mounted at `/host`.
fn resolve_in_root(paths: &HostPaths, abs: &Path) -> PathBuf {
    let mut path = paths.root(abs);
    for _ in 0..MAX_SYMLINKS {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = if target.is_absolute() {
            paths.root(&target)
        } else {
            match path.parent() {
                Some(dir) => dir.join(target),
                None => target,
            }
        };
    }
    path
}

/// Reads os-release under rootfs.
pub struct OsCollector {
    paths: HostPaths,
}

impl OsCollector {
    /// A collector reading under `paths.rootfs`.
    pub fn new(paths: HostPaths) -> Self {
        OsCollector { paths }
    }
}

impl Collector for OsCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        for candidate in CANDIDATES {
            let path = resolve_in_root(&self.paths, Path::new(candidate));
            let Some(text) = super::read_optional(&path)? else {
                continue;
            };
            let os = parse_os_release(&text).map_err(|m| parse_error(&path, m))?;
            let (families, mut note) = os_families(&os);
            if os.invalid_lines > 0 {
                let skipped = format!(
                    "skipped {} invalid line(s) in {}",
                    os.invalid_lines,
                    path.display()
                );
                note = Some(match note {
                    Some(n) => format!("{n}; {skipped}"),
                    None => skipped,
                });
            }
            return Ok(Collection { families, note });
        }
        Ok(Collection {
            families: vec![],
            note: Some(format!(
                "no os-release file ({} under {}); node_os_info skipped",
                CANDIDATES.join(", "),
                self.paths.rootfs.display()
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MetricKind;

    const DEBIAN: &str = include_str!("../../tests/fixtures/host/etc/os-release");

    fn root_paths(root: &Path) -> HostPaths {
        HostPaths {
            procfs: root.join("proc"),
            sysfs: root.join("sys"),
            rootfs: root.to_owned(),
        }
    }

    fn fixture_paths() -> HostPaths {
        root_paths(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host"))
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_real_os_release() {
        let os = parse_os_release(DEBIAN).unwrap();
        assert_eq!(os.invalid_lines, 0);
        assert_eq!(
            os.vars,
            vars(&[
                ("PRETTY_NAME", "Debian GNU/Linux 12 (bookworm)"),
                ("NAME", "Debian GNU/Linux"),
                ("VERSION_ID", "12"),
                ("VERSION", "12 (bookworm)"),
                ("VERSION_CODENAME", "bookworm"),
                ("ID", "debian"),
                ("HOME_URL", "https://www.debian.org/"),
                ("SUPPORT_URL", "https://www.debian.org/support"),
                ("BUG_REPORT_URL", "https://bugs.debian.org/"),
            ])
        );
    }

    #[test]
    fn quotes_escapes_and_comments() {
        let text = r#"# a comment with "quotes" and a = sign
  ; another comment
A="double \"quoted\" \\ \$HOME \` \n kept"
B='single \n "literal" $x'
C=unquoted\ with\ escapes
D="con"'cat'enated
E=trailing space   
F=
G="multi
line"
H="joined \
here"
I = spaced
J=last
J=wins
K="x"   # after a closing quote, text is appended: os-release has no trailing comments
"#;
        let os = parse_os_release(text).unwrap();
        assert_eq!(
            os.vars,
            vars(&[
                ("A", "double \"quoted\" \\ $HOME ` \\n kept"),
                ("B", "single \\n \"literal\" $x"),
                ("C", "unquoted with escapes"),
                ("D", "concatenated"),
                ("E", "trailing space"),
                ("F", ""),
                ("G", "multi\nline"),
                ("H", "joined here"),
                ("I", "spaced"),
                ("J", "wins"),
                (
                    "K",
                    "x# after a closing quote, text is appended: os-release has no trailing comments"
                ),
            ])
        );
        assert_eq!(os.invalid_lines, 0);
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let os = parse_os_release("ID=fedora\r\nVERSION_ID=\"40\"").unwrap();
        assert_eq!(os.vars, vars(&[("ID", "fedora"), ("VERSION_ID", "40")]));
    }

    #[test]
    fn invalid_lines_are_counted_and_skipped() {
        let text =
            "ID=arch\nthis line has no equals sign\n1BAD=x\nBAD-KEY=y\n=z\nNAME=Arch\nTRAILING";
        let os = parse_os_release(text).unwrap();
        assert_eq!(os.vars, vars(&[("ID", "arch"), ("NAME", "Arch")]));
        assert_eq!(os.invalid_lines, 5);
    }

    #[test]
    fn unclosed_quote_is_an_error() {
        for text in ["ID=x\nNAME=\"Debian\nVERSION=1\n", "NAME='x", "NAME=\"x\\"] {
            let e = parse_os_release(text).unwrap_err();
            assert!(e.contains("never closed"), "{text:?}: {e}");
        }
        assert!(parse_os_release("ID=x\nNAME=\"Debian\nVERSION=1\n")
            .unwrap_err()
            .starts_with("line 2:"));
    }

    #[test]
    fn empty_input() {
        assert_eq!(parse_os_release("").unwrap(), OsRelease::default());
        assert_eq!(
            parse_os_release("\n\n# only comments\n").unwrap(),
            OsRelease::default()
        );
    }

    #[test]
    fn version_like_node_exporter() {
        assert_eq!(os_version("12"), Some(12.0));
        assert_eq!(os_version("22.04"), Some(22.04));
        assert_eq!(os_version("8.10"), Some(8.1));
        assert_eq!(os_version("3.19.1"), Some(3.19));
        assert_eq!(os_version("7."), Some(7.0));
        assert_eq!(os_version("2024.1-rolling"), Some(2024.1));
        assert_eq!(os_version("rolling"), None);
        assert_eq!(os_version(""), None);
        assert_eq!(os_version("0"), None);
    }

    #[test]
    fn support_end_dates() {
        assert_eq!(parse_support_end("1970-01-01"), Some(0));
        assert_eq!(parse_support_end("2000-03-01"), Some(951_868_800));
        assert_eq!(parse_support_end("2028-06-30"), Some(1_845_936_000));
        assert_eq!(parse_support_end("2024-02-29"), Some(1_709_164_800));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-1",
            "2024/01/01",
            "",
            "soon",
            "2024-01-01x",
            "+202-01-01",
        ] {
            assert_eq!(parse_support_end(bad), None, "{bad}");
        }
    }

    #[test]
    fn families_like_node_exporter() {
        let os = parse_os_release(
            "NAME=Fedora\nID=fedora\nID_LIKE=\"rhel centos\"\nVERSION_ID=40\nSUPPORT_END=2025-05-13\nVARIANT_ID=workstation\n",
        )
        .unwrap();
        let (families, note) = os_families(&os);
        assert_eq!(note, None);
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "node_os_info",
                "node_os_version",
                "node_os_support_end_timestamp_seconds"
            ]
        );
        assert!(families.iter().all(|f| f.kind == MetricKind::Gauge));
        let info = &families[0].samples[0];
        let label_names: Vec<&str> = info.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            label_names,
            INFO_LABELS.iter().map(|(l, _)| *l).collect::<Vec<_>>()
        );
        assert_eq!(info.value, 1.0);
        let version = &families[1].samples[0];
        assert_eq!(version.value, 40.0);
        assert_eq!(
            version.labels,
            vec![
                ("id".to_owned(), "fedora".to_owned()),
                ("id_like".to_owned(), "rhel centos".to_owned()),
                ("name".to_owned(), "Fedora".to_owned()),
            ]
        );
        assert_eq!(families[2].samples[0].value, 1_747_094_400.0);

        let os = parse_os_release("ID=x\nVERSION_ID=rolling\nSUPPORT_END=never\n").unwrap();
        let (families, note) = os_families(&os);
        assert_eq!(families.len(), 1);
        assert!(note.unwrap().contains("SUPPORT_END"));
    }

    #[test]
    fn collects_fixture() {
        let out = OsCollector::new(fixture_paths()).collect().unwrap();
        assert_eq!(out.note, None);
        let info = &out.families[0];
        assert_eq!(info.name, "node_os_info");
        let label = |k: &str| {
            info.samples[0]
                .labels
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(label("pretty_name"), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(label("version_codename"), Some("bookworm"));
        assert_eq!(label("variant"), Some(""));
        assert_eq!(out.families[1].name, "node_os_version");
        assert_eq!(out.families[1].samples[0].value, 12.0);
    }

    #[test]
    fn falls_back_to_usr_lib_and_tolerates_absence() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = OsCollector::new(root_paths(dir.path()));
        let out = c.collect().unwrap();
        assert!(out.families.is_empty());
        assert!(out.note.unwrap().contains("no os-release file"));

        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/os-release"), "ID=fallback\n").unwrap();
        let out = c.collect().unwrap();
        assert_eq!(
            out.families[0].samples[0].labels[1],
            ("id".into(), "fallback".into())
        );

        // /etc wins over /usr/lib.
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/os-release"), "ID=etc\n").unwrap();
        let out = c.collect().unwrap();
        assert_eq!(
            out.families[0].samples[0].labels[1],
            ("id".into(), "etc".into())
        );
    }

    #[test]
    fn absolute_symlinks_resolve_inside_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/static")).unwrap();
        std::fs::write(dir.path().join("etc/static/os-release"), "ID=nixos\n").unwrap();
        // /etc/os-release -> /etc/static/os-release: absolute, as on NixOS. Followed on the
        // machine running the test it would not exist (or be the wrong file).
        std::os::unix::fs::symlink("/etc/static/os-release", dir.path().join("etc/os-release"))
            .unwrap();
        let out = OsCollector::new(root_paths(dir.path())).collect().unwrap();
        assert_eq!(
            out.families[0].samples[0].labels[1],
            ("id".into(), "nixos".into())
        );
    }

    #[test]
    fn unclosed_quote_fails_the_collection() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/os-release"), "NAME=\"x\n").unwrap();
        assert!(matches!(
            OsCollector::new(root_paths(dir.path())).collect(),
            Err(CollectorError::Parse { .. })
        ));
    }
}
