//! Tests of the config loader: file discovery, merge order, and that every error names the
//! right file, line and key, all at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// Writes `text` to `dir/name`, creating parent directories.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// `ConfigSource::Default` semantics, rooted in a test directory.
fn default_in(dir: &Path) -> ConfigSource {
    ConfigSource::Custom {
        main: dir.join("automon.toml"),
        main_required: false,
        dropin_dir: Some(dir.join("conf.d")),
    }
}

fn errors_of<T: std::fmt::Debug>(result: Result<T, ConfigErrors>) -> Vec<ConfigError> {
    match result {
        Ok(v) => panic!("expected errors, got {v:?}"),
        Err(e) => {
            assert!(!e.0.is_empty(), "ConfigErrors must not be empty");
            e.0
        }
    }
}

/// The single error of `result`, failing with the whole list otherwise.
fn single_error<T: std::fmt::Debug>(result: Result<T, ConfigErrors>) -> ConfigError {
    let errors = errors_of(result);
    assert_eq!(errors.len(), 1, "{}", ConfigErrors(errors.clone()));
    errors.into_iter().next().unwrap()
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_str(text, "/etc/automon/automon.toml")
}

#[test]
fn config_no_file_at_all_gives_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(&default_in(dir.path())).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.files.is_empty());
    assert_eq!(
        loaded.watch_dirs,
        vec![
            dir.path().to_path_buf(),
            dir.path().join("conf.d"),
            dir.path().join("rules.d")
        ]
    );
    assert!(loaded.rules.len() >= 10, "built-in rules on by default");
}

#[test]
fn config_empty_document_gives_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
    assert_eq!(parse("# only a comment\n").unwrap(), Config::default());
}

#[test]
fn config_explicit_missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let e = single_error(load(&ConfigSource::Explicit(path.clone())));
    assert_eq!(e.file, path.display().to_string());
    assert!(e.message.contains("cannot read config file"), "{e}");
    assert!(
        e.to_string().starts_with(&format!("{}: ", path.display())),
        "{e}"
    );
}

#[test]
fn config_explicit_path_reads_its_sibling_conf_d() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "custom.toml", "log_level = \"info\"\n");
    let dropin = write(dir.path(), "conf.d/10-a.toml", "log_level = \"debug\"\n");
    let loaded = load(&ConfigSource::Explicit(main.clone())).unwrap();
    assert_eq!(loaded.config.log_level.as_deref(), Some("debug"));
    assert_eq!(loaded.files, vec![main, dropin]);
}

#[test]
fn config_default_source_paths() {
    let s = ConfigSource::Default;
    assert_eq!(s.main_path(), PathBuf::from("/etc/automon/automon.toml"));
    assert_eq!(s.dropin_dir(), Some(PathBuf::from("/etc/automon/conf.d")));
}

#[test]
fn config_typo_reports_file_line_and_suggestion() {
    let text = "log_level = \"info\"\n\n[collectors.cpu]\nenabled = true\nintervall = \"5s\"\n";
    let e = single_error(parse(text));
    assert_eq!(e.file, "/etc/automon/automon.toml");
    assert_eq!(e.line, 5);
    assert_eq!(e.key, "collectors.cpu.intervall");
    assert_eq!(
        e.to_string(),
        "/etc/automon/automon.toml:5: collectors.cpu.intervall: unknown key (did you mean `interval`?)"
    );
}

#[test]
fn config_unknown_section_suggests_or_lists_keys() {
    let e = single_error(parse("[htpp]\nlisten = \"127.0.0.1:1\"\n"));
    assert_eq!((e.line, e.key.as_str()), (1, "htpp"));
    assert!(e.message.contains("did you mean `http`?"), "{e}");

    let e = single_error(parse("[http]\nfrobnicate = 1\n"));
    assert_eq!((e.line, e.key.as_str()), (2, "http.frobnicate"));
    assert!(e.message.contains("expected one of:"), "{e}");
    assert!(e.message.contains("api_key_file"), "{e}");

    // A misspelled collector name is found in `[collectors.X]` headers too.
    let e = single_error(parse("[collectors.cpux]\nenabled = false\n"));
    assert_eq!((e.line, e.key.as_str()), (1, "collectors.cpux"));
    assert!(e.message.contains("did you mean `cpu`?"), "{e}");
}

#[test]
fn config_all_errors_reported_at_once() {
    let text = "\
[http]
listen = \"127.0.0.1:9787\"
api_kye = \"x\"

[collectors]
default_interval = \"15s\"

[collectors.cpu]
enabled = \"yes\"

[collectors.memory]
timeot = \"3s\"
";
    let errors = errors_of(parse(text));
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (3, "http.api_kye"),
            (9, "collectors.cpu.enabled"),
            (12, "collectors.memory.timeot"),
        ],
        "{}",
        ConfigErrors(errors.clone())
    );
    assert!(errors[0].message.contains("did you mean `api_key`?"));
    assert!(
        errors[1].message.contains("expected a boolean"),
        "{}",
        errors[1]
    );
    assert!(errors[2].message.contains("did you mean `timeout`?"));
}

#[test]
fn config_two_type_errors_in_one_table_are_both_reported() {
    let text = "[http]\nmax_body_bytes = \"big\"\nmax_concurrent_requests = -1\n";
    let errors = errors_of(parse(text));
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "http.max_body_bytes"),
            (3, "http.max_concurrent_requests")
        ]
    );
}

#[test]
fn config_dropins_override_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "automon.toml",
        "log_level = \"info\"\n[collectors.cpu]\ninterval = \"30s\"\n",
    );
    // Written out of order on purpose: the order is the names', not the directory's.
    let b = write(dir.path(), "conf.d/20-b.toml", "log_level = \"warn\"\n");
    let a = write(
        dir.path(),
        "conf.d/10-a.toml",
        "log_level = \"debug\"\n[collectors.cpu]\ntimeout = \"2s\"\n",
    );
    write(dir.path(), "conf.d/notes.txt", "not toml = at all [");
    write(dir.path(), "conf.d/.#30-c.toml", "broken = ");
    let loaded = load(&default_in(dir.path())).unwrap();
    assert_eq!(loaded.files, vec![main, a, b]);
    assert_eq!(loaded.config.log_level.as_deref(), Some("warn"));
    // Tables merge: the drop-in adds `timeout` without dropping the main file's `interval`.
    let cpu = &loaded.config.collectors.cpu;
    assert_eq!(cpu.interval, Some(HumanDuration(Duration::from_secs(30))));
    assert_eq!(cpu.timeout, Some(HumanDuration(Duration::from_secs(2))));
}

#[test]
fn config_dropins_apply_without_main_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "conf.d/10-a.toml", "log_level = \"debug\"\n");
    let loaded = load(&default_in(dir.path())).unwrap();
    assert_eq!(loaded.config.log_level.as_deref(), Some("debug"));
}

#[test]
fn config_error_in_dropin_names_the_dropin_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "automon.toml",
        "[http]\nlisten = \"127.0.0.1:1\"\n",
    );
    let dropin = write(
        dir.path(),
        "conf.d/10-a.toml",
        "# override\n\n[http]\nlisten = 5\n\n[paths]\nprocf = \"/host/proc\"\n",
    );
    let errors = errors_of(load(&default_in(dir.path())));
    let d = dropin.display().to_string();
    let got: Vec<(&str, usize, &str)> = errors
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.key.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (d.as_str(), 4, "http.listen"),
            (d.as_str(), 7, "paths.procf")
        ]
    );
    assert!(!errors.iter().any(|e| e.file == main.display().to_string()));
}

#[test]
fn config_later_file_replaces_origin_of_overridden_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "automon.toml",
        "\n\n[http]\nlisten = \"127.0.0.1:1\"\n",
    );
    let dropin = write(
        dir.path(),
        "conf.d/10-a.toml",
        "[http]\nlisten = \"not an address\"\n",
    );
    let e = single_error(load(&default_in(dir.path())));
    assert_eq!(
        (e.file.as_str(), e.line, e.key.as_str()),
        (dropin.display().to_string().as_str(), 2, "http.listen")
    );
}

#[test]
fn config_duration_errors_name_key_and_line() {
    let text = "[collectors]\ndefault_interval = \"15\"\n\n[collectors.cpu]\ntimeout = \"abc\"\n";
    let errors = errors_of(parse(text));
    assert_eq!(errors.len(), 2, "{}", ConfigErrors(errors.clone()));
    assert_eq!(
        (errors[0].line, errors[0].key.as_str()),
        (2, "collectors.default_interval")
    );
    assert!(errors[0].message.contains("no unit"), "{}", errors[0]);
    assert!(errors[0].message.contains("\"15s\""), "{}", errors[0]);
    assert_eq!(
        (errors[1].line, errors[1].key.as_str()),
        (5, "collectors.cpu.timeout")
    );
    assert!(
        errors[1].message.contains("invalid duration"),
        "{}",
        errors[1]
    );
}

#[test]
fn config_durations_parse() {
    let c = parse("[http]\nrequest_timeout = \"1m30s\"\n[collectors.load]\ninterval = \"500ms\"\n")
        .unwrap();
    assert_eq!(c.http.request_timeout.0, Duration::from_secs(90));
    assert_eq!(
        c.collectors.load.interval,
        Some(HumanDuration(Duration::from_millis(500)))
    );
}

#[test]
fn config_duration_limits() {
    let text = "[collectors]\ndefault_timeout = \"0s\"\n[collectors.cpu]\ninterval = \"50ms\"\n\
                timeout = \"1h\"\n";
    let errors = errors_of(parse(text));
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    // `timeout` longer than the interval is fine: the scheduler caps it.
    assert_eq!(
        got,
        vec![
            (2, "collectors.default_timeout"),
            (4, "collectors.cpu.interval")
        ]
    );
    assert!(errors[1].message.contains("100ms"), "{}", errors[1]);
}

#[test]
fn config_api_key_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "api.key", "s3cret\n\n");
    let main = write(
        dir.path(),
        "automon.toml",
        &format!("[http]\napi_key_file = {:?}\n", key.display().to_string()),
    );
    let loaded = load(&ConfigSource::Explicit(main)).unwrap();
    // Exactly one trailing newline is not part of the key.
    assert_eq!(loaded.config.http.api_key.as_deref(), Some("s3cret\n"));
    assert_eq!(loaded.secret_files, vec![key]);
}

#[test]
fn config_relative_api_key_file_is_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "conf.d/api.key", "k\r\n");
    write(
        dir.path(),
        "conf.d/10-key.toml",
        "[http]\napi_key_file = \"api.key\"\n",
    );
    let loaded = load(&default_in(dir.path())).unwrap();
    assert_eq!(loaded.config.http.api_key.as_deref(), Some("k"));
    assert_eq!(loaded.config.http.api_key_file, Some(key));
}

#[test]
fn config_missing_secret_file_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let text = format!(
        "[http]\nlisten = \"0.0.0.0:9787\"\napi_key_file = {:?}\n",
        missing.display().to_string()
    );
    let e = single_error(parse_str(&text, "/etc/automon/automon.toml"));
    assert_eq!((e.line, e.key.as_str()), (3, "http.api_key_file"));
    assert!(e.message.contains(&missing.display().to_string()), "{e}");
    assert!(e.message.contains("cannot be read"), "{e}");
}

#[test]
fn config_empty_secret_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "api.key", "\n");
    let text = format!("[http]\napi_key_file = {:?}\n", key.display().to_string());
    let e = single_error(parse(&text));
    assert_eq!((e.line, e.key.as_str()), (2, "http.api_key_file"));
    assert!(e.message.contains("is empty"), "{e}");
}

#[test]
fn config_api_key_and_api_key_file_together_is_an_error() {
    let text = "[http]\napi_key = \"inline\"\napi_key_file = \"/run/secrets/key\"\n";
    let e = single_error(parse(text));
    assert_eq!((e.line, e.key.as_str()), (3, "http.api_key_file"));
    assert!(
        e.message.contains("/etc/automon/automon.toml:2"),
        "names where the other one is set: {e}"
    );
}

#[test]
fn config_non_loopback_listen_needs_a_key() {
    let e = single_error(parse("[http]\nlisten = \"0.0.0.0:9787\"\n"));
    assert_eq!((e.line, e.key.as_str()), (2, "http.listen"));
    assert!(e.message.contains("api_key_file"), "{e}");
    assert!(e.message.contains("127.0.0.1"), "{e}");
    assert!(e.message.contains("allow_unauthenticated = true"), "{e}");

    let ok = parse("[http]\nlisten = \"0.0.0.0:9787\"\nallow_unauthenticated = true\n").unwrap();
    assert!(ok.http.allow_unauthenticated);
    parse("[http]\nlisten = \"0.0.0.0:9787\"\napi_key = \"k\"\n").unwrap();
    parse("[http]\nlisten = \"[::1]:9787\"\n").unwrap();
    parse("[http]\nlisten = \"127.0.0.2:9787\"\n").unwrap();
    parse("[http]\nlisten = \"[::ffff:127.0.0.1]:9787\"\n").unwrap();
    single_error(parse("[http]\nlisten = \"[::]:9787\"\n"));
}

#[test]
fn config_listen_must_be_a_socket_address() {
    let e = single_error(parse("[http]\nlisten = \"localhost\"\n"));
    assert_eq!((e.line, e.key.as_str()), (2, "http.listen"));
    assert!(e.message.contains("IP:PORT"), "{e}");
}

#[test]
fn config_invalid_regex_names_key_and_line() {
    let text = "[collectors.filesystem]\nenabled = true\nmount_points_exclude = \"^/(proc\"\n";
    let e = single_error(parse(text));
    assert_eq!(
        (e.line, e.key.as_str()),
        (3, "collectors.filesystem.mount_points_exclude")
    );
    assert!(e.message.starts_with("invalid regex"), "{e}");
    assert!(!e.message.contains('\n'), "one line per error: {e:?}");
}

#[test]
fn config_netstat_fields_default_and_validation() {
    let c = parse("[collectors.netstat]\nenabled = true\n").unwrap();
    assert_eq!(
        c.collectors.netstat.fields,
        crate::config::DEFAULT_NETSTAT_FIELDS
    );
    let e = single_error(parse("[collectors.netstat]\nfields = \"^(Tcp_\"\n"));
    assert_eq!((e.line, e.key.as_str()), (2, "collectors.netstat.fields"));
    assert!(e.message.starts_with("invalid regex"), "{e}");
    // The new collectors take the common keys, validated like every other collector's.
    let e = single_error(parse("[collectors.softnet]\ninterval = \"1ms\"\n"));
    assert_eq!((e.line, e.key.as_str()), (2, "collectors.softnet.interval"));
}

#[test]
fn config_log_level() {
    parse("log_level = \"debug\"\n").unwrap();
    parse("log_level = \"info,automon=trace\"\n").unwrap();
    let e = single_error(parse("\nlog_level = \"verbose\"\n"));
    assert_eq!((e.line, e.key.as_str()), (2, "log_level"));
    assert!(e.message.contains("unknown log level"), "{e}");
    let e = single_error(parse("log_level = \"automon=loud\"\n"));
    assert_eq!(e.key, "log_level");
}

#[test]
fn config_syntax_error_reports_line_and_column() {
    let e = single_error(parse(
        "[http]\nlisten = \"127.0.0.1:1\"\napi_key = = \"x\"\n",
    ));
    assert_eq!(e.line, 3);
    assert!(e.message.starts_with("TOML syntax error at column"), "{e}");
    assert!(!e.message.contains('\n'), "{e:?}");
}

#[test]
fn config_syntax_error_does_not_hide_other_files_errors() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "automon.toml", "[http\n");
    let dropin = write(dir.path(), "conf.d/10-a.toml", "\nlog_levle = \"info\"\n");
    let errors = errors_of(load(&default_in(dir.path())));
    let got: Vec<(String, usize)> = errors.iter().map(|e| (e.file.clone(), e.line)).collect();
    assert_eq!(
        got,
        vec![
            (main.display().to_string(), 1),
            (dropin.display().to_string(), 2)
        ]
    );
    assert!(errors[1].message.contains("did you mean `log_level`?"));
}

#[test]
fn config_dotted_and_inline_tables_are_located() {
    let text = "collectors.cpu.enabled = false\nhttp = { listen = \"127.0.0.1:1\", bogus = 1 }\n";
    let e = single_error(parse(text));
    assert_eq!((e.line, e.key.as_str()), (2, "http.bogus"));
}

#[test]
fn config_errors_display_one_per_line() {
    let errors = errors_of(parse("a = 1\nb = 2\n"));
    let shown = ConfigErrors(errors).to_string();
    assert_eq!(
        shown.lines().collect::<Vec<_>>(),
        vec![
            "/etc/automon/automon.toml:1: a: unknown key (expected one of: log_level, data_dir, http, paths, collectors, storage, query, alerting, repair)",
            "/etc/automon/automon.toml:2: b: unknown key (expected one of: log_level, data_dir, http, paths, collectors, storage, query, alerting, repair)",
        ]
    );
}

#[test]
fn config_known_fields_are_learned_from_serde() {
    assert_eq!(
        known_fields::<Config>(&[]),
        Some(
            &[
                "log_level",
                "data_dir",
                "http",
                "paths",
                "collectors",
                "storage",
                "query",
                "alerting",
                "repair"
            ][..]
        )
    );
    let cpu = known_fields::<Config>(&split_key("collectors.cpu")).unwrap();
    assert_eq!(cpu, &["enabled", "interval", "timeout"][..]);
    assert!(known_fields::<Config>(&split_key("http.listen")).is_none());
    assert!(known_fields::<Config>(&split_key("nope")).is_none());
}

#[test]
fn config_line_index() {
    let idx = LineIndex::new("ab\nc\n\nd");
    assert_eq!(idx.line_col(0), (1, 1));
    assert_eq!(idx.line_col(1), (1, 2));
    assert_eq!(idx.line_col(3), (2, 1));
    assert_eq!(idx.line_col(5), (3, 1));
    assert_eq!(idx.line_col(6), (4, 1));
}

#[test]
fn config_bare_number_duration_says_what_to_write() {
    let e = single_error(parse("[collectors.cpu]\ninterval = 15\n"));
    assert_eq!((e.line, e.key.as_str()), (2, "collectors.cpu.interval"));
    assert!(e.message.contains("\"15s\""), "{e}");
}

#[test]
fn config_duplicate_key_names_the_key() {
    let e = single_error(parse("[http]\nlisten = \"127.0.0.1:1\"\nlisten = \"x\"\n"));
    assert_eq!(e.line, 3);
    assert!(e.message.contains("duplicate key (`listen`)"), "{e}");
}

#[test]
fn config_table_given_a_scalar_is_a_type_error() {
    let e = single_error(parse("http = 5\n"));
    assert_eq!((e.line, e.key.as_str()), (1, "http"));
    assert!(e.message.ends_with("expected a table"), "{e}");
}

#[test]
fn config_textfile_directory_must_be_absolute() {
    let c = parse("[collectors.textfile]\ndirectory = \"/srv/metrics\"\n").unwrap();
    assert_eq!(
        c.collectors.textfile.directory,
        PathBuf::from("/srv/metrics")
    );
    assert_eq!(
        parse("").unwrap().collectors.textfile.directory,
        PathBuf::from(crate::config::DEFAULT_TEXTFILE_DIRECTORY)
    );
    let e = single_error(parse("[collectors.textfile]\n\ndirectory = \"metrics\"\n"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (3, "collectors.textfile.directory")
    );
    assert!(e.message.contains("absolute"), "{e}");
}

#[test]
fn builtin_rules_parse_and_compile() {
    let rules =
        parse_rule_file(BUILTIN_RULES, BUILTIN_RULES_NAME).expect("built-in rules are valid");
    assert!(rules.len() >= 10);
    for r in &rules {
        crate::alert::rule::Rule::compile(r).expect("compiles");
        assert!(
            r.source.starts_with("<builtin>/config/rules/host.toml:"),
            "{}",
            r.source
        );
        assert!(
            r.labels.contains_key("severity"),
            "{} has a severity",
            r.name
        );
        assert!(
            r.annotations.contains_key("summary"),
            "{} has a summary",
            r.name
        );
    }
}

#[test]
fn rule_file_errors_name_file_line_and_key() {
    let text = "[[rules]]\nname = \"A\"\nexpr = \"up ==\"\n\n[[rules]]\nname = \"B\"\nexpr = \"up\"\nfor = 5\nannotations.summary = \"{{ $value | humanise }}\"\nlables = {}\n";
    let errs = parse_rule_file(text, "/etc/automon/rules.d/x.toml")
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = errs.lines().collect();
    assert_eq!(lines.len(), 4, "{errs}");
    assert!(
        lines[0].starts_with("/etc/automon/rules.d/x.toml:3: rules.0.expr: invalid expression"),
        "{errs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("/etc/automon/rules.d/x.toml:8: rules.1.for: duration 5 has no unit")),
        "{errs}"
    );
    assert!(
        lines.iter().any(|l| l
            .contains(":9: rules.1.annotations.summary: template: unknown function \"humanise\"")),
        "{errs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(":10: rules.1.lables: unknown key (did you mean `labels`?)")),
        "{errs}"
    );
}

#[test]
fn rule_files_are_found_by_glob_relative_to_the_main_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    std::fs::write(dir.path().join("automon.toml"), "[alerting]\nbuiltin_rules = false\n[[alerting.rules]]\nname = \"Inline\"\nexpr = \"up == 0\"\n").unwrap();
    std::fs::write(
        dir.path().join("rules.d/b.toml"),
        "[[rules]]\nname = \"B\"\nexpr = \"up\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules.d/a.toml"),
        "[[rules]]\nname = \"A\"\nexpr = \"up\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("rules.d/.hidden.toml"), "garbage").unwrap();
    std::fs::write(dir.path().join("rules.d/notes.txt"), "garbage").unwrap();
    let loaded = load(&ConfigSource::Explicit(dir.path().join("automon.toml"))).unwrap();
    let names: Vec<&str> = loaded.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "Inline"]);
    assert!(
        loaded.rules[0].source.ends_with("rules.d/a.toml:1"),
        "{}",
        loaded.rules[0].source
    );
    assert!(loaded.watch_dirs.contains(&dir.path().join("rules.d")));
}

#[test]
fn alerting_config_errors_are_located() {
    let text = "[alerting]\nexternal_url = \"web1:9787\"\n[alerting.route]\nreceiver = \"pager\"\nmatchers = [\"severity\"]\n[[alerting.receivers]]\nname = \"ops\"\n[[alerting.receivers]]\nname = \"ops\"\n[alerting.outbox]\nconcurrency = 0\n[[alerting.inhibit_rules]]\nsource_matchers = [\"a=~(\"]\n";
    let errs = parse_str(text, "a.toml").unwrap_err().to_string();
    for want in [
        "a.toml:2: alerting.external_url: must start with http",
        "a.toml:9: alerting.receivers.1.name: duplicate receiver name \"ops\"",
        "a.toml:4: alerting.route.receiver: unknown receiver \"pager\"",
        "a.toml:5: alerting.route.matchers.0: invalid matcher",
        "a.toml:11: alerting.outbox.concurrency: must be greater than 0",
        "a.toml:13: alerting.inhibit_rules.0.source_matchers.0: invalid matcher",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
}

#[test]
fn wildcards() {
    assert!(wildcard_match("*.toml", "host.toml"));
    assert!(!wildcard_match("*.toml", "host.toml.bak"));
    assert!(wildcard_match("10-?.toml", "10-a.toml"));
    assert!(wildcard_match("*", ""));
    assert!(!wildcard_match("a*b", "ac"));
}

#[test]
fn config_quantum_and_exec_are_off_by_default_and_parse() {
    let d = parse("").unwrap();
    assert!(!d.collectors.quantum.enabled && d.collectors.quantum.devices.is_empty());
    assert!(!d.collectors.exec.enabled && d.collectors.exec.plugins.is_empty());
    let c = parse(
        "[collectors.quantum]\nenabled = true\ninterval = \"5m\"\n\n\
         [[collectors.quantum.devices]]\nname = \"lab1\"\npath = \"/var/lib/lab/props.json\"\n\n\
         [[collectors.quantum.devices]]\nname = \"cloud\"\nurl = \"https://q.example/props\"\n\
         bearer_token_file = \"/etc/automon/q.token\"\n\n\
         [collectors.exec]\nenabled = true\nmax_output_bytes = \"64KiB\"\n\n\
         [[collectors.exec.plugins]]\nname = \"raid\"\ncommand = [\"/usr/local/bin/raid\", \"-v\"]\n\
         env = [\"PATH\"]\nuser = \"nobody\"\ntimeout = \"2s\"\n",
    )
    .unwrap();
    let q = &c.collectors.quantum;
    assert_eq!(q.devices.len(), 2);
    assert_eq!(q.devices[1].url.as_deref(), Some("https://q.example/props"));
    let x = &c.collectors.exec;
    assert_eq!(x.max_output_bytes.0, 64 * 1024);
    assert_eq!(x.plugins[0].command, ["/usr/local/bin/raid", "-v"]);
    assert_eq!(x.plugins[0].ok_exit_codes, [0]);
    assert_eq!(
        x.plugins[0].timeout,
        Some(HumanDuration(Duration::from_secs(2)))
    );
}

#[test]
fn config_quantum_errors_name_the_device_key() {
    let errors = errors_of(parse(
        "[collectors.quantum]\nenabled = true\n\n\
         [[collectors.quantum.devices]]\nname = \"a\"\n\n\
         [[collectors.quantum.devices]]\nname = \"b\"\npath = \"rel.json\"\nurl = \"ftp://x\"\n\n\
         [[collectors.quantum.devices]]\nname = \"a\"\nurl = \"http://x/p\"\nbearer_token_file = \"/t\"\n\n\
         [[collectors.quantum.devices]]\nname = \"c d\"\npath = \"/p\"\nca_file = \"/ca.pem\"\n",
    ));
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [
            (4, "collectors.quantum.devices.0"),
            (9, "collectors.quantum.devices.1.path"),
            (10, "collectors.quantum.devices.1.url"),
            (10, "collectors.quantum.devices.1.url"),
            (13, "collectors.quantum.devices.2.name"),
            (14, "collectors.quantum.devices.2.url"),
            (18, "collectors.quantum.devices.3.name"),
            (20, "collectors.quantum.devices.3.ca_file"),
        ],
        "{}",
        ConfigErrors(errors.clone())
    );
    let text = ConfigErrors(errors).to_string();
    assert!(
        text.contains("needs `path` (a local file) or `url`"),
        "{text}"
    );
    assert!(
        text.contains("already used by the device at /etc/automon/automon.toml:5"),
        "{text}"
    );
    assert!(text.contains("in clear"), "{text}");
}

#[test]
fn config_exec_errors_name_the_plugin_key() {
    let errors = errors_of(parse(
        "[collectors.exec]\nenabled = true\nmax_output_bytes = 0\n\n\
         [[collectors.exec.plugins]]\nname = \"p\"\ncommand = [\"check_raid\"]\n\n\
         [[collectors.exec.plugins]]\ncommand = []\nenv = [\"A=1\"]\nok_exit_codes = [300]\n\
         timeout = \"0s\"\nuser = \"\"\n",
    ));
    let text = ConfigErrors(errors.clone()).to_string();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for want in [
        "collectors.exec.max_output_bytes",
        "collectors.exec.plugins.0.command",
        "collectors.exec.plugins.1.name",
        "collectors.exec.plugins.1.command",
        "collectors.exec.plugins.1.env.0",
        "collectors.exec.plugins.1.ok_exit_codes.0",
        "collectors.exec.plugins.1.timeout",
        "collectors.exec.plugins.1.user",
    ] {
        assert!(keys.contains(&want), "{want} missing in {text}");
    }
    assert_eq!(errors.len(), 8, "{text}");
    assert!(text.contains("/etc/automon/automon.toml:7: collectors.exec.plugins.0.command: program \"check_raid\" is not an absolute path"), "{text}");
}

#[test]
fn config_kubernetes_defaults_off_and_parses() {
    let c = parse("").unwrap();
    assert!(!c.collectors.kubernetes.enabled);
    assert!(c.collectors.kubernetes.api_enabled && c.collectors.kubernetes.kubelet_enabled);
    let c = parse(
        "[collectors.kubernetes]\nenabled = true\nnode_name = \"worker-1\"\n\
         kubelet_url = \"https://10.0.0.5:10250\"\nkubelet_insecure_skip_tls_verify = true\n\
         interval = \"30s\"\n",
    )
    .unwrap();
    let k = &c.collectors.kubernetes;
    assert_eq!(k.node_name.as_deref(), Some("worker-1"));
    assert_eq!(k.interval, Some(HumanDuration(Duration::from_secs(30))));
}

#[test]
fn config_kubernetes_errors_name_key_and_line_all_at_once() {
    let text = "[collectors.kubernetes]\n\
                enabled = true\n\
                node_name = \"Worker_1\"\n\
                kubelet_url = \"http://10.0.0.5:10255\"\n\
                kubeconfig = \"admin.conf\"\n\
                token_file = \"/var/run/token\"\n\
                kubelet_ca_file = \"/etc/kubelet-ca.crt\"\n\
                kubelet_insecure_skip_tls_verify = true\n\
                interval = \"1ms\"\n";
    let errors = errors_of(parse(text));
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [
            (3, "collectors.kubernetes.node_name"),
            (4, "collectors.kubernetes.kubelet_url"),
            (5, "collectors.kubernetes.kubeconfig"),
            (6, "collectors.kubernetes.token_file"),
            (8, "collectors.kubernetes.kubelet_insecure_skip_tls_verify"),
            (9, "collectors.kubernetes.interval"),
        ],
        "{errors:?}"
    );
    assert!(errors[1].message.contains("https://"), "{}", errors[1]);
    assert!(errors[2].message.contains("absolute"), "{}", errors[2]);
    assert!(errors[3].message.contains("kubeconfig"), "{}", errors[3]);
    assert!(
        errors[4].message.contains(":7"),
        "names the other key's line: {}",
        errors[4]
    );

    let e = single_error(parse(
        "[collectors.kubernetes]\nenabled = true\napi_enabled = false\nkubelet_enabled = false\n",
    ));
    assert_eq!(
        (e.line, e.key.as_str()),
        (2, "collectors.kubernetes.enabled")
    );
    let e = single_error(parse(
        "[collectors.kubernetes]\nkubeconfig_context = \"prod\"\n",
    ));
    assert_eq!(
        (e.line, e.key.as_str()),
        (2, "collectors.kubernetes.kubeconfig_context")
    );
    let e = single_error(parse("[collectors.kubernetes]\nkubelet_insecure = true\n"));
    assert!(
        e.message.contains("kubelet_insecure_skip_tls_verify"),
        "suggests: {e}"
    );
}

#[test]
fn config_process_defaults_off_and_parses() {
    let c = parse("").unwrap();
    assert!(!c.collectors.process.enabled);
    assert!(c.collectors.process.groups.is_empty());
    let c = parse(
        "[collectors.process]\nenabled = true\n\n\
         [[collectors.process.groups]]\nname = \"nginx\"\ncomm = [\"nginx\"]\n\n\
         [[collectors.process.groups]]\nname = \"app\"\ncmdline = \"java .*-jar app\\\\.jar\"\n",
    )
    .unwrap();
    let g = &c.collectors.process.groups;
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].comm, vec!["nginx".to_owned()]);
    assert_eq!(g[1].cmdline.as_deref(), Some("java .*-jar app\\.jar"));
}

#[test]
fn config_process_errors_name_key_and_line() {
    let errors = errors_of(parse(
        "[collectors.process]\nenabled = true\n\n\
         [[collectors.process.groups]]\nname = \"web\"\ncmdline = \"nginx: (master\"\n\n\
         [[collectors.process.groups]]\nname = \"web\"\n\n\
         [[collectors.process.groups]]\nname = \"x\"\ncomm = [\"\", \"/usr/sbin/nginx\"]\n",
    ));
    let text = ConfigErrors(errors.clone()).to_string();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for want in [
        "collectors.process.groups.0.cmdline",
        "collectors.process.groups.1.name",
        "collectors.process.groups.1",
        "collectors.process.groups.2.comm.0",
        "collectors.process.groups.2.comm.1",
    ] {
        assert!(keys.contains(&want), "{want} missing in {text}");
    }
    assert_eq!(errors.len(), 5, "{text}");
    assert!(
        text.contains(
            "/etc/automon/automon.toml:6: collectors.process.groups.0.cmdline: invalid regex \"nginx: (master\": unclosed group"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "group name \"web\" is already used by the group at /etc/automon/automon.toml:5"
        ),
        "{text}"
    );
    let e = single_error(parse("[collectors.process]\nenabled = true\n"));
    assert_eq!(e.key, "collectors.process.enabled");
}

#[test]
fn config_systemd_defaults_off_and_parses() {
    let c = parse("").unwrap();
    assert!(!c.collectors.systemd.enabled);
    let c = parse(
        "[collectors.systemd]\nenabled = true\ntimeout = \"2s\"\n\
         units = [\"nginx.service\", \"getty@tty1.service\"]\nunit_patterns = [\"app-*.service\"]\n",
    )
    .unwrap();
    let s = &c.collectors.systemd;
    assert_eq!(s.units.len(), 2);
    assert_eq!(s.unit_patterns, vec!["app-*.service".to_owned()]);
    assert_eq!(s.timeout, Some(HumanDuration(Duration::from_secs(2))));
}

#[test]
fn config_systemd_errors_name_key_and_line() {
    let errors = errors_of(parse(
        "[collectors.systemd]\nenabled = true\n\
         units = [\"nginx\", \"a b.service\"]\n\
         unit_patterns = [\"\", \"$(reboot)*\"]\n",
    ));
    let text = ConfigErrors(errors.clone()).to_string();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for want in [
        "collectors.systemd.units.0",
        "collectors.systemd.units.1",
        "collectors.systemd.unit_patterns.0",
        "collectors.systemd.unit_patterns.1",
    ] {
        assert!(keys.contains(&want), "{want} missing in {text}");
    }
    assert_eq!(errors.len(), 4, "{text}");
    assert!(text.contains(":3: collectors.systemd.units.0"), "{text}");
    assert!(
        text.contains(":4: collectors.systemd.unit_patterns.1"),
        "{text}"
    );
    let e = single_error(parse("[collectors.systemd]\nenabled = true\n"));
    assert_eq!(e.key, "collectors.systemd.enabled");
}
