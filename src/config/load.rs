//! Reading the configuration: the main TOML file plus `conf.d/*.toml` drop-ins, merged in
//! file-name order, typed into [`Config`] and validated, with every problem reported at once as
//! `FILE:LINE: KEY: MESSAGE`.
//!
//! The pipeline, and why each step exists:
//!
//! 1. **Find the files** ([`ConfigSource`]). A missing default file is fine (the daemon runs on
//!    embedded defaults); a file named with `--config` must exist.
//! 2. **Parse** each file with `toml_edit`, which keeps byte spans, so the line of every key is
//!    known. A syntax error is reported and the other files are still checked.
//! 3. **Merge** all files into one TOML tree. Tables merge key by key; any other value from a
//!    later file replaces the earlier one. An origin map remembers, for every key path, the file
//!    and line that set it last; every later error is located through it.
//! 4. **Type** the tree into [`Config`]. serde stops at the first type error, so the loader
//!    records that error, removes the offending value from the tree and deserializes again until
//!    the rest goes through. This finds every type error (even two in one table) without a
//!    hand-written list of sections. `serde_ignored` reports unknown keys on the way; the keys a
//!    table does accept, used for "did you mean" hints, are asked from serde itself (see
//!    `known_fields`), so no list of keys is maintained here either.
//! 5. **Resolve secrets**: `*_file` keys are read into their value, so nothing downstream cares
//!    where a secret came from.
//! 6. **Validate** what types cannot express: socket addresses, the API-key rule for
//!    non-loopback listeners, durations, regexes and the log filter.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::value::Error as ProbeError;
use serde::de::{DeserializeSeed, Deserializer, Error as _, IntoDeserializer, MapAccess, Visitor};
use toml_edit::TableLike;

use super::{
    CollectorsConfig, Config, DiskstatsConfig, FilesystemConfig, HumanDuration, KubernetesConfig,
    NetdevConfig, TextfileConfig, VmstatConfig, DEFAULT_CONFIG_PATH,
};
// Separate from the list above so that concurrent additions to that list merge cleanly.
use super::alerting::{RuleConfig, RuleFile};
use super::NetstatConfig;
use super::SystemdConfig;
use super::{ExecConfig, ExecPluginConfig, QuantumConfig, QuantumDeviceConfig};
use super::{ProbeConfig, ProbeKind, ProbeTargetConfig};
use super::{ProcessConfig, ProcessGroupConfig};

/// Name of the drop-in directory next to the main file.
pub const DROPIN_DIR_NAME: &str = "conf.d";

/// Shortest accepted collection interval. Shorter ones would make the daemon itself a
/// noticeable load on the host it is supposed to observe.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Stands in for the file name when a value was never set in any file (an embedded default).
const NO_FILE: &str = "<defaults>";

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfigSource {
    /// [`DEFAULT_CONFIG_PATH`] if it exists, plus `/etc/automon/conf.d/*.toml`. Without any
    /// file the embedded defaults are used.
    #[default]
    Default,
    /// A file given with `--config PATH`: it must exist. Drop-ins come from
    /// `<dir of PATH>/conf.d/*.toml`.
    Explicit(PathBuf),
    /// Everything spelled out, for tests and packaging checks that cannot use `/etc`.
    Custom {
        /// The main file.
        main: PathBuf,
        /// Whether a missing main file is an error (as with `--config`) or means "defaults"
        /// (as with [`ConfigSource::Default`]).
        main_required: bool,
        /// Directory of `*.toml` drop-ins; `None` reads none.
        dropin_dir: Option<PathBuf>,
    },
}

impl ConfigSource {
    /// The main file this source reads.
    pub fn main_path(&self) -> PathBuf {
        match self {
            ConfigSource::Default => PathBuf::from(DEFAULT_CONFIG_PATH),
            ConfigSource::Explicit(path) => path.clone(),
            ConfigSource::Custom { main, .. } => main.clone(),
        }
    }

    /// The drop-in directory this source reads, if any: `conf.d` next to the main file unless
    /// [`ConfigSource::Custom`] says otherwise.
    pub fn dropin_dir(&self) -> Option<PathBuf> {
        match self {
            ConfigSource::Default | ConfigSource::Explicit(_) => {
                Some(sibling_dir(&self.main_path()).join(DROPIN_DIR_NAME))
            }
            ConfigSource::Custom { dropin_dir, .. } => dropin_dir.clone(),
        }
    }

    fn main_required(&self) -> bool {
        match self {
            ConfigSource::Default => false,
            ConfigSource::Explicit(_) => true,
            ConfigSource::Custom { main_required, .. } => *main_required,
        }
    }
}

/// A successfully loaded configuration and what it was read from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The typed, validated configuration, secrets resolved.
    pub config: Config,
    /// The config files read, in merge order (main file first, then drop-ins by name).
    pub files: Vec<PathBuf>,
    /// Directories to watch for a reload: the main file's directory and the drop-in
    /// directory. Editors replace files by renaming and drop-ins come and go, so watching
    /// directories catches changes that watching the files alone would miss.
    pub watch_dirs: Vec<PathBuf>,
    /// Secret files read through `*_file` keys, so a key rotation can trigger a reload too.
    pub secret_files: Vec<PathBuf>,
    /// Every alert rule: built-in, from rule files (in file-name order), then inline; each
    /// with its `source` (`file:line`) set.
    pub rules: Vec<RuleConfig>,
    /// The rule files read.
    pub rule_files: Vec<PathBuf>,
}

/// One problem in the configuration.
///
/// Displays as `FILE:LINE: KEY: MESSAGE`. `line` is 0 when the problem concerns a whole file
/// (it cannot be read) or a value no file set; `key` is empty when no key is concerned (a
/// syntax error, an unreadable file). Empty parts are left out of the display.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, as given, or `<defaults>` for a value no file set.
    pub file: String,
    /// 1-based line, 0 if none applies.
    pub line: usize,
    /// Dotted key path, e.g. `collectors.cpu.interval`; empty if none applies.
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found, in file order and then line order. Never empty when returned as an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One error per line, so the output reads like a compiler's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Loads, merges, types and validates the configuration from `source`, reporting every problem
/// at once.
pub fn load(source: &ConfigSource) -> Result<LoadedConfig, ConfigErrors> {
    let main = source.main_path();
    let dropin_dir = source.dropin_dir();
    let mut merged = Merged::default();
    let mut files = Vec::new();

    let mut candidates = Vec::new();
    match std::fs::metadata(&main) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && !source.main_required() => {}
        _ => candidates.push(main.clone()),
    }
    if let Some(dir) = &dropin_dir {
        match dropin_files(dir) {
            Ok(found) => candidates.extend(found),
            Err(e) => merged.file_error(dir, format!("cannot list drop-in directory: {e}")),
        }
    }

    for path in candidates {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                merged.add_file(&path.display().to_string(), sibling_dir(&path), &text);
                files.push(path);
            }
            Err(e) => merged.file_error(&path, format!("cannot read config file: {e}")),
        }
    }

    let (config, secret_files) = merged.finish()?;
    let mut watch_dirs = vec![sibling_dir(&main)];
    watch_dirs.extend(dropin_dir);
    let (rules, rule_files, rule_dirs) = load_rules(&config, &sibling_dir(&main))?;
    watch_dirs.extend(rule_dirs);
    watch_dirs.sort();
    watch_dirs.dedup();
    Ok(LoadedConfig {
        config,
        files,
        watch_dirs,
        secret_files,
        rules,
        rule_files,
    })
}

/// The built-in host rule set, compiled in.
pub const BUILTIN_RULES: &str = include_str!("../../config/rules/host.toml");
/// How messages name the built-in rule file.
pub const BUILTIN_RULES_NAME: &str = "<builtin>/config/rules/host.toml";

/// Parses and checks one rule file's text; `name` is used in messages.
pub fn parse_rule_file(text: &str, name: &str) -> Result<Vec<RuleConfig>, ConfigErrors> {
    let mut merged = Merged::default();
    merged.add_file(name, sibling_dir(Path::new(name)), text);
    let file: Option<RuleFile> = if merged.errors.is_empty() {
        merged.typed::<RuleFile>()
    } else {
        None
    };
    let mut rules = Vec::new();
    if let Some(file) = file {
        for (i, mut rule) in file.rules.into_iter().enumerate() {
            let prefix = format!("rules.{i}");
            merged.validate_rule(&prefix, &rule);
            rule.source = merged.location(&prefix);
            rules.push(rule);
        }
    }
    if merged.errors.is_empty() {
        Ok(rules)
    } else {
        Err(merged.into_errors())
    }
}

/// Rules, the rule files read, and the directories to watch for rule changes.
type LoadedRules = (Vec<RuleConfig>, Vec<PathBuf>, Vec<PathBuf>);

/// Built-in rules, rule files matching `alerting.rule_files` (relative to `base`), and
/// inline rules. Returns the rules, the files read and the directories to watch.
fn load_rules(config: &Config, base: &Path) -> Result<LoadedRules, ConfigErrors> {
    let alerting = &config.alerting;
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    if alerting.builtin_rules {
        match parse_rule_file(BUILTIN_RULES, BUILTIN_RULES_NAME) {
            Ok(r) => rules.extend(r),
            Err(e) => errors.extend(e.0),
        }
    }
    for pattern in &alerting.rule_files {
        let pattern = base.join(pattern);
        if let Some(dir) = pattern.parent() {
            dirs.push(dir.to_path_buf());
        }
        match glob_files(&pattern) {
            Ok(found) => files.extend(found),
            Err(e) => errors.push(ConfigError {
                file: pattern.display().to_string(),
                line: 0,
                key: String::new(),
                message: format!("cannot list rule files: {e}"),
            }),
        }
    }
    files.sort();
    files.dedup();
    for path in &files {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => match parse_rule_file(&text, &name) {
                Ok(r) => rules.extend(r),
                Err(e) => errors.extend(e.0),
            },
            Err(e) => errors.push(ConfigError {
                file: name,
                line: 0,
                key: String::new(),
                message: format!("cannot read rule file: {e}"),
            }),
        }
    }
    rules.extend(alerting.rules.iter().cloned());
    if errors.is_empty() {
        Ok((rules, files, dirs))
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Files matching `pattern`, whose last component may hold `*` and `?` wildcards (as in
/// `rules.d/*.toml`); a missing directory matches nothing. Hidden files never match.
fn glob_files(pattern: &Path) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Ok(Vec::new());
    };
    let name = name.to_string_lossy();
    if !name.contains(['*', '?']) {
        return Ok(if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.starts_with('.') && wildcard_match(&name, &file) && !entry.path().is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// `*` matches any run of characters, `?` any one; the whole text must match.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Parses one TOML document named `file_name` (used in messages, and as the base for relative
/// `*_file` paths) with the same checks as [`load`]. For unit tests and the embedded default
/// configuration.
pub fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    let mut merged = Merged::default();
    merged.add_file(file_name, sibling_dir(Path::new(file_name)), text);
    merged.finish().map(|(config, _)| config)
}

/// The directory a file lives in; `""` (the current directory) for a bare file name.
fn sibling_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The `*.toml` files of a drop-in directory in file-name order; none if it does not exist.
fn dropin_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        // Hidden files are editor leftovers (emacs' `.#name.toml` lock links, half-written
        // temporaries), never drop-ins an operator meant to apply.
        if name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        // A broken link is still listed so that reading it reports the problem.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        files.push(path);
    }
    // File-name order is the documented merge order: `10-x.toml` before `20-y.toml`.
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// A key path, one segment per table level (array elements use their index).
type KeyPath = Vec<String>;

/// Where a key was set: index into [`Merged::files`] and 1-based line.
#[derive(Debug, Clone, Copy)]
struct Origin {
    file: usize,
    line: usize,
}

mod repair;
pub use repair::path_allowed;

/// The merged TOML tree of all files read so far, with the origin of every key and the errors
/// found so far.
#[derive(Default)]
struct Merged {
    /// Display names of the files merged, in merge order.
    files: Vec<String>,
    /// Every file or directory looked at, merged or not, in order: errors are sorted by it.
    seen: Vec<String>,
    /// Directory of each file, the base of relative `*_file` paths it sets.
    dirs: Vec<PathBuf>,
    root: toml::Table,
    origins: BTreeMap<KeyPath, Origin>,
    errors: Vec<ConfigError>,
    /// Some file could not be parsed, so cross-key checks would judge an incomplete picture.
    incomplete: bool,
}

impl Merged {
    /// Parses `text` and merges it over what is there; a syntax error is recorded instead.
    fn add_file(&mut self, name: &str, dir: PathBuf, text: &str) {
        self.seen.push(name.to_owned());
        let lines = LineIndex::new(text);
        let doc = match toml_edit::Document::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let (line, column) = e.span().map_or((0, 0), |s| lines.line_col(s.start));
                // toml's message may span lines ("expected ..." on the next one); one line per
                // error keeps the report greppable.
                let mut message = e.message().trim().replace('\n', "; ");
                // Some messages ("duplicate key") do not say which text they mean.
                let snippet = e.span().and_then(|s| text.get(s)).map(str::trim);
                if let Some(snippet) = snippet {
                    let quoted = format!("`{snippet}`");
                    if !snippet.is_empty()
                        && snippet.len() <= 40
                        && !snippet.contains('\n')
                        && !message.contains(&quoted)
                    {
                        message = format!("{message} ({quoted})");
                    }
                }
                self.errors.push(ConfigError {
                    file: name.to_owned(),
                    line,
                    key: String::new(),
                    message: format!("TOML syntax error at column {column}: {message}"),
                });
                self.incomplete = true;
                return;
            }
        };
        let file = self.files.len();
        self.files.push(name.to_owned());
        self.dirs.push(dir);
        let mut walker = Walker {
            file,
            lines: &lines,
            origins: &mut self.origins,
        };
        walker.merge_table(doc.as_table(), &mut self.root, &mut Vec::new());
    }

    /// Records a problem with a whole file or directory.
    fn file_error(&mut self, path: &Path, message: String) {
        let file = path.display().to_string();
        self.seen.push(file.clone());
        self.errors.push(ConfigError {
            file,
            line: 0,
            key: String::new(),
            message,
        });
    }

    /// Where `path` (or its deepest ancestor that some file set) was set.
    fn origin(&self, path: &[String]) -> Option<Origin> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.origins.get(&path[..n]).copied())
    }

    /// An error about the key at `path`, located at the file and line that set it.
    fn error_at(&self, path: &[String], message: impl Into<String>) -> ConfigError {
        let (file, line) = match self.origin(path) {
            Some(o) => (self.files[o.file].clone(), o.line),
            None => (NO_FILE.to_owned(), 0),
        };
        ConfigError {
            file,
            line,
            key: path.join("."),
            message: message.into(),
        }
    }

    /// Like [`Merged::error_at`] for a dotted key written in the code.
    fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.error_at(&split_key(key), message)
    }

    /// `file:line` of the value set at `key`, for messages that refer to a second key.
    fn location(&self, key: &str) -> String {
        match self.origins.get(&split_key(key)) {
            Some(o) => format!("{}:{}", self.files[o.file], o.line),
            None => NO_FILE.to_owned(),
        }
    }

    /// Steps 4 to 6 of the pipeline; returns the config and the secret files read.
    fn finish(mut self) -> Result<(Config, Vec<PathBuf>), ConfigErrors> {
        let mut secret_files = Vec::new();
        if let Some(mut config) = self.typed::<Config>() {
            self.resolve_secrets(&mut config, &mut secret_files);
            self.validate(&config);
            if self.errors.is_empty() {
                return Ok((config, secret_files));
            }
        }
        Err(self.into_errors())
    }

    /// Deserializes the tree into [`Config`], recording type errors and unknown keys.
    /// Returns `None` only if some error could not be removed from the tree.
    fn typed<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let mut tree = self.root.clone();
        // Each round removes one value, so there are at most as many rounds as values.
        for _ in 0..=self.origins.len() {
            let mut unknown: Vec<KeyPath> = Vec::new();
            let value = toml::Value::Table(tree.clone());
            let mut on_ignored = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
            let ignored = serde_ignored::Deserializer::new(value, &mut on_ignored);
            match serde_path_to_error::deserialize::<_, T>(ignored) {
                Ok(config) => {
                    for path in unknown {
                        let message = unknown_key_message::<T>(&path);
                        self.errors.push(self.error_at(&path, message));
                    }
                    return Some(config);
                }
                Err(e) => {
                    let path = error_path(e.path());
                    let message = type_error_message(e.inner().message());
                    self.errors.push(self.error_at(&path, message));
                    // With the bad value gone its default applies, so the next round can find
                    // errors further on.
                    if !remove_path(&mut tree, &path) {
                        return None;
                    }
                }
            }
        }
        None
    }

    /// Reads `*_file` secrets into their values. Relative secret paths are relative to the
    /// config file that names them, so a config directory can be moved as a whole.
    fn resolve_secrets(&mut self, config: &mut Config, secret_files: &mut Vec<PathBuf>) {
        let http = &mut config.http;
        if let Some(path) = self.resolve_secret(
            "http.api_key",
            &mut http.api_key,
            http.api_key_file.as_deref(),
        ) {
            secret_files.push(path.clone());
            http.api_key_file = Some(path);
        }
        self.resolve_receiver_secrets(&mut config.alerting.receivers, secret_files);
    }

    /// One secret: `value_key` holds it inline, `value_key` + `_file` names a file holding it.
    /// Returns the resolved path of the file read.
    fn resolve_secret(
        &mut self,
        value_key: &str,
        value: &mut Option<String>,
        file: Option<&Path>,
    ) -> Option<PathBuf> {
        let file_key = format!("{value_key}_file");
        match (value.as_deref(), file) {
            (Some(_), Some(_)) => {
                let message = format!(
                    "both `{value_key}` (at {}) and `{file_key}` are set; keep only \
                     `{file_key}`, which keeps the secret out of the config",
                    self.location(value_key)
                );
                self.errors.push(self.error(&file_key, message));
                None
            }
            (Some(""), None) => {
                let message = "is empty; an empty key would accept an empty bearer token";
                self.errors.push(self.error(value_key, message));
                None
            }
            (_, None) => None,
            (None, Some(file)) => {
                let path = match self.origin(&split_key(&file_key)) {
                    Some(o) if file.is_relative() => self.dirs[o.file].join(file),
                    _ => file.to_path_buf(),
                };
                let problem = match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        // Files written by `echo` or an editor end in a newline that is not
                        // part of the key.
                        let secret = text
                            .strip_suffix('\n')
                            .map(|t| t.strip_suffix('\r').unwrap_or(t))
                            .unwrap_or(&text);
                        if secret.is_empty() {
                            Some("is empty".to_owned())
                        } else {
                            *value = Some(secret.to_owned());
                            None
                        }
                    }
                    Err(e) => Some(format!("cannot be read: {e}")),
                };
                match problem {
                    Some(problem) => {
                        let message = format!("secret file {} {problem}", path.display());
                        self.errors.push(self.error(&file_key, message));
                        None
                    }
                    None => Some(path),
                }
            }
        }
    }

    /// Checks what the types cannot express.
    fn validate(&mut self, config: &Config) {
        if let Some(level) = &config.log_level {
            if let Err(message) = check_log_level(level) {
                self.errors.push(self.error("log_level", message));
            }
        }
        self.validate_http(config);
        self.validate_collectors(&config.collectors);
        self.validate_storage(&config.storage);
        self.validate_query(&config.query);
        self.validate_alerting(&config.alerting);
        self.validate_repair(&config.repair);
    }

    fn validate_alerting(&mut self, alerting: &super::alerting::AlertingConfig) {
        let super::alerting::AlertingConfig {
            enabled: _,
            evaluation_interval,
            builtin_rules: _,
            rule_files,
            rules,
            external_url,
            route,
            receivers,
            inhibit_rules,
            outbox,
        } = alerting;
        self.interval("alerting.evaluation_interval", *evaluation_interval);
        for (i, pattern) in rule_files.iter().enumerate() {
            if pattern.trim().is_empty() {
                self.errors
                    .push(self.error(&format!("alerting.rule_files.{i}"), "empty pattern"));
            }
        }
        for (i, rule) in rules.iter().enumerate() {
            self.validate_rule(&format!("alerting.rules.{i}"), rule);
        }
        if let Some(url) = external_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.errors.push(self.error(
                    "alerting.external_url",
                    "must start with http:// or https:// (it is the base of links in notifications)",
                ));
            }
        }
        self.validate_receivers(receivers);
        let names: Vec<&str> = receivers.iter().map(|r| r.name.as_str()).collect();
        if let Err(errors) = crate::alert::route::Route::compile(route, &names) {
            for (key, message) in errors {
                self.errors
                    .push(self.error(&format!("alerting.route.{key}"), message));
            }
        }
        for (i, rule) in inhibit_rules.iter().enumerate() {
            if let Err((key, message)) = crate::alert::group::InhibitRule::compile(rule) {
                self.errors
                    .push(self.error(&format!("alerting.inhibit_rules.{i}.{key}"), message));
            }
        }
        let super::alerting::OutboxConfig {
            concurrency,
            min_backoff,
            max_backoff,
            max_age,
            send_timeout,
        } = outbox;
        if *concurrency == 0 {
            self.errors.push(self.error(
                "alerting.outbox.concurrency",
                "must be greater than 0 (0 would never send anything)",
            ));
        }
        self.positive("alerting.outbox.min_backoff", *min_backoff);
        self.positive("alerting.outbox.max_backoff", *max_backoff);
        self.positive("alerting.outbox.max_age", *max_age);
        self.positive("alerting.outbox.send_timeout", *send_timeout);
        if max_backoff < min_backoff {
            self.errors.push(self.error(
                "alerting.outbox.max_backoff",
                "must not be shorter than min_backoff",
            ));
        }
    }

    /// One alert rule at `prefix` (`alerting.rules.3` or `rules.3` in a rule file).
    fn validate_rule(&mut self, prefix: &str, rule: &RuleConfig) {
        for (key, message) in crate::alert::rule::check(rule) {
            self.errors
                .push(self.error(&format!("{prefix}.{key}"), message));
        }
    }

    /// Receiver names are what routes refer to: each must be set and unique.
    fn validate_receivers(&mut self, receivers: &[super::receivers::ReceiverConfig]) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, r) in receivers.iter().enumerate() {
            let key = format!("alerting.receivers.{i}.name");
            if r.name.trim().is_empty() {
                self.errors.push(self.error(
                    &format!("alerting.receivers.{i}"),
                    "receiver has no `name`; routes refer to receivers by name",
                ));
            } else if let Some(first) = seen.insert(r.name.as_str(), i) {
                let message = format!(
                    "duplicate receiver name {:?} (first defined at {})",
                    r.name,
                    self.location(&format!("alerting.receivers.{first}.name"))
                );
                self.errors.push(self.error(&key, message));
            }
            self.validate_receiver_integrations(i, r);
        }
    }

    fn validate_query(&mut self, query: &super::QueryConfig) {
        let super::QueryConfig {
            max_points,
            max_series,
            timeout,
        } = query;
        if *max_points == 0 {
            self.errors
                .push(self.error("query.max_points", "must be greater than 0"));
        }
        if *max_series == 0 {
            self.errors
                .push(self.error("query.max_series", "must be greater than 0"));
        }
        self.positive("query.timeout", *timeout);
    }

    fn validate_storage(&mut self, storage: &super::StorageConfig) {
        let super::StorageConfig {
            enabled: _,
            flush_interval,
            retention_raw,
            retention_5m,
            retention_1h,
            max_size,
        } = storage;
        self.positive("storage.flush_interval", *flush_interval);
        self.positive("storage.retention_raw", *retention_raw);
        self.positive("storage.retention_5m", *retention_5m);
        self.positive("storage.retention_1h", *retention_1h);
        if max_size.0 < 1 << 20 {
            self.errors.push(self.error(
                "storage.max_size",
                "must be at least 1MiB (the database needs room for its own structure)",
            ));
        }
    }

    fn validate_http(&mut self, config: &Config) {
        let http = &config.http;
        match http.listen.parse::<SocketAddr>() {
            Err(_) => {
                let message = format!(
                    "`{}` is not a socket address; write IP:PORT, e.g. \"127.0.0.1:9787\" or \
                     \"[::1]:9787\"",
                    http.listen
                );
                self.errors.push(self.error("http.listen", message));
            }
            Ok(addr) => {
                let has_key = http.api_key.is_some() || http.api_key_file.is_some();
                // With a file that failed to parse the key may well be set there; saying it is
                // missing would send the operator after the wrong problem.
                if !is_loopback(&addr)
                    && !has_key
                    && !http.allow_unauthenticated
                    && !self.incomplete
                {
                    let message = format!(
                        "listening on {addr}, which is reachable from other hosts, without an \
                         API key; set `http.api_key_file` (a file holding the key), or listen \
                         on 127.0.0.1, or set `http.allow_unauthenticated = true` if the \
                         network is trusted"
                    );
                    self.errors.push(self.error("http.listen", message));
                }
            }
        }
        self.positive("http.request_timeout", http.request_timeout);
        if http.max_body_bytes == 0 {
            self.errors.push(self.error(
                "http.max_body_bytes",
                "must be greater than 0 (0 would reject every request with a body)",
            ));
        }
        if http.max_concurrent_requests == 0 {
            self.errors.push(self.error(
                "http.max_concurrent_requests",
                "must be greater than 0 (0 would never answer a request)",
            ));
        }
    }

    fn validate_collectors(&mut self, collectors: &CollectorsConfig) {
        // Destructured without `..` on purpose: a new collector or setting does not compile
        // until it is considered here.
        let CollectorsConfig {
            default_interval,
            default_timeout,
            cpu,
            stat,
            memory,
            load,
            pressure,
            diskstats,
            filesystem,
            netdev,
            netstat,
            sockstat,
            softnet,
            arp,
            filefd,
            conntrack,
            timex,
            vmstat,
            mdadm,
            bonding,
            time,
            os,
            uname,
            textfile,
            quantum,
            exec,
            kubernetes,
            probe,
            process,
            systemd,
        } = collectors;
        self.validate_quantum(quantum);
        self.validate_probe(probe);
        self.validate_exec(exec);
        self.validate_process(process);
        self.validate_systemd(systemd);
        let DiskstatsConfig {
            enabled: _,
            interval: diskstats_interval,
            timeout: diskstats_timeout,
            device_exclude: diskstats_exclude,
            device_include: diskstats_include,
        } = diskstats;
        let FilesystemConfig {
            enabled: _,
            interval: filesystem_interval,
            timeout: filesystem_timeout,
            mount_points_exclude,
            fs_types_exclude,
            stat_timeout,
        } = filesystem;
        let NetdevConfig {
            enabled: _,
            interval: netdev_interval,
            timeout: netdev_timeout,
            device_exclude: netdev_exclude,
            device_include: netdev_include,
        } = netdev;
        let VmstatConfig {
            enabled: _,
            interval: vmstat_interval,
            timeout: vmstat_timeout,
            fields,
        } = vmstat;
        let NetstatConfig {
            enabled: _,
            interval: netstat_interval,
            timeout: netstat_timeout,
            fields: netstat_fields,
        } = netstat;
        let TextfileConfig {
            enabled: _,
            interval: textfile_interval,
            timeout: textfile_timeout,
            directory: textfile_directory,
        } = textfile;

        self.interval("collectors.default_interval", *default_interval);
        self.positive("collectors.default_timeout", *default_timeout);
        self.positive("collectors.filesystem.stat_timeout", *stat_timeout);
        let schedules = [
            ("cpu", cpu.interval, cpu.timeout),
            ("stat", stat.interval, stat.timeout),
            ("memory", memory.interval, memory.timeout),
            ("load", load.interval, load.timeout),
            ("pressure", pressure.interval, pressure.timeout),
            ("diskstats", *diskstats_interval, *diskstats_timeout),
            ("filesystem", *filesystem_interval, *filesystem_timeout),
            ("netdev", *netdev_interval, *netdev_timeout),
            ("netstat", *netstat_interval, *netstat_timeout),
            ("sockstat", sockstat.interval, sockstat.timeout),
            ("softnet", softnet.interval, softnet.timeout),
            ("arp", arp.interval, arp.timeout),
            ("filefd", filefd.interval, filefd.timeout),
            ("conntrack", conntrack.interval, conntrack.timeout),
            ("timex", timex.interval, timex.timeout),
            ("vmstat", *vmstat_interval, *vmstat_timeout),
            ("mdadm", mdadm.interval, mdadm.timeout),
            ("bonding", bonding.interval, bonding.timeout),
            ("time", time.interval, time.timeout),
            ("os", os.interval, os.timeout),
            ("uname", uname.interval, uname.timeout),
            ("textfile", *textfile_interval, *textfile_timeout),
            ("kubernetes", kubernetes.interval, kubernetes.timeout),
        ];
        for (name, interval, timeout) in schedules {
            // A timeout longer than the interval is fine: the scheduler caps it.
            if let Some(interval) = interval {
                self.interval(&format!("collectors.{name}.interval"), interval);
            }
            if let Some(timeout) = timeout {
                self.positive(&format!("collectors.{name}.timeout"), timeout);
            }
        }

        // A relative directory would depend on the daemon's working directory, which is `/`
        // under systemd and something else in a shell: say so instead of guessing.
        if !textfile_directory.is_absolute() {
            let message = format!(
                "{:?} is not an absolute path; write e.g. \"/var/lib/automon/textfile\"",
                textfile_directory.display().to_string()
            );
            self.errors
                .push(self.error("collectors.textfile.directory", message));
        }

        self.validate_kubernetes(kubernetes);

        // The collectors compile these too, but only when they are built; checking here makes
        // `automon validate` catch them without constructing anything.
        let regexes = [
            (
                "collectors.diskstats.device_exclude",
                Some(diskstats_exclude),
            ),
            (
                "collectors.diskstats.device_include",
                diskstats_include.as_ref(),
            ),
            (
                "collectors.filesystem.mount_points_exclude",
                Some(mount_points_exclude),
            ),
            (
                "collectors.filesystem.fs_types_exclude",
                Some(fs_types_exclude),
            ),
            ("collectors.netdev.device_exclude", Some(netdev_exclude)),
            ("collectors.netdev.device_include", netdev_include.as_ref()),
            ("collectors.vmstat.fields", Some(fields)),
            ("collectors.netstat.fields", Some(netstat_fields)),
        ];
        for (key, pattern) in regexes {
            if let Some(pattern) = pattern {
                if let Err(e) = regex::Regex::new(pattern) {
                    let message = format!("invalid regex {pattern:?}: {}", regex_reason(&e));
                    self.errors.push(self.error(key, message));
                }
            }
        }
    }

    fn validate_quantum(&mut self, quantum: &QuantumConfig) {
        let QuantumConfig {
            enabled: _,
            interval,
            timeout,
            devices,
        } = quantum;
        self.schedule("collectors.quantum", *interval, *timeout);
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, device) in devices.iter().enumerate() {
            let QuantumDeviceConfig {
                name,
                path,
                url,
                bearer_token_file,
                ca_file,
            } = device;
            let key = format!("collectors.quantum.devices.{i}");
            self.plugin_name(&key, name, &mut names, i, "device");
            match (path, url) {
                (Some(_), Some(_)) => self.errors.push(self.error(
                    &format!("{key}.url"),
                    "set either `path` or `url`, not both",
                )),
                (None, None) => self.errors.push(self.error(
                    &key,
                    "needs `path` (a local file) or `url` (an https:// endpoint)",
                )),
                _ => {}
            }
            if let Some(url) = url {
                let lower = url.to_ascii_lowercase();
                if lower.starts_with("http://") {
                    if bearer_token_file.is_some() {
                        self.errors.push(self.error(
                            &format!("{key}.url"),
                            "a bearer token would travel in clear over http://; use https://",
                        ));
                    }
                } else if !lower.starts_with("https://") {
                    self.errors.push(self.error(
                        &format!("{key}.url"),
                        format!("{url:?} is not an https:// URL"),
                    ));
                }
            }
            if url.is_none() {
                for (field, set) in [
                    ("bearer_token_file", bearer_token_file.is_some()),
                    ("ca_file", ca_file.is_some()),
                ] {
                    if set {
                        self.errors.push(
                            self.error(&format!("{key}.{field}"), "only applies to a `url` source"),
                        );
                    }
                }
            }
            for (field, p) in [
                ("path", path),
                ("bearer_token_file", bearer_token_file),
                ("ca_file", ca_file),
            ] {
                self.absolute(&format!("{key}.{field}"), p.as_deref());
            }
        }
    }

    fn validate_probe(&mut self, probe: &ProbeConfig) {
        let ProbeConfig {
            enabled: _,
            interval,
            timeout,
            targets,
        } = probe;
        self.schedule("collectors.probe", *interval, *timeout);
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, target) in targets.iter().enumerate() {
            let ProbeTargetConfig {
                name,
                kind,
                address,
                url,
                timeout,
                expected_status,
                body_regex,
                insecure_skip_verify,
                ca_file,
                headers,
            } = target;
            let key = format!("collectors.probe.targets.{i}");
            self.plugin_name(&key, name, &mut names, i, "target");
            if let Some(timeout) = timeout {
                self.positive(&format!("{key}.timeout"), *timeout);
            }
            if let Err((field, message)) = crate::collector::probe::check_target(target) {
                self.errors
                    .push(self.error(&format!("{key}.{field}"), message));
            }
            // Settings that only an HTTP probe reads would be silently ignored on a TCP one.
            let is_https = url.as_deref().is_some_and(|u| {
                u.get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            });
            let misplaced = match kind {
                ProbeKind::Tcp => vec![
                    ("url", url.is_some()),
                    ("expected_status", !expected_status.is_empty()),
                    ("body_regex", body_regex.is_some()),
                    ("insecure_skip_verify", *insecure_skip_verify),
                    ("ca_file", ca_file.is_some()),
                    ("headers", !headers.is_empty()),
                ],
                ProbeKind::Http => vec![
                    ("address", address.is_some()),
                    ("insecure_skip_verify", *insecure_skip_verify && !is_https),
                    ("ca_file", ca_file.is_some() && !is_https),
                ],
            };
            for (field, set) in misplaced {
                if set {
                    let what = match kind {
                        ProbeKind::Tcp => "does not apply to a `kind = \"tcp\"` probe",
                        ProbeKind::Http => "does not apply here (tcp address, or https only)",
                    };
                    self.errors
                        .push(self.error(&format!("{key}.{field}"), what));
                }
            }
            if *insecure_skip_verify && ca_file.is_some() {
                self.errors.push(self.error(
                    &format!("{key}.insecure_skip_verify"),
                    "set either `insecure_skip_verify` or `ca_file`, not both",
                ));
            }
            for (j, code) in expected_status.iter().enumerate() {
                if !(100..=599).contains(code) {
                    self.errors.push(self.error(
                        &format!("{key}.expected_status.{j}"),
                        format!("{code} is not an HTTP status code (100 to 599)"),
                    ));
                }
            }
            if let Some(pattern) = body_regex {
                if let Err(e) = regex::bytes::Regex::new(pattern) {
                    let message = format!("invalid regex {pattern:?}: {}", regex_reason(&e));
                    self.errors
                        .push(self.error(&format!("{key}.body_regex"), message));
                }
            }
            for (header, value) in headers {
                let token = !header.is_empty()
                    && header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token || value.contains(['\r', '\n']) {
                    self.errors.push(self.error(
                        &format!("{key}.headers.{header}"),
                        "is not a valid HTTP header (name is a token, value on one line)",
                    ));
                }
            }
            self.absolute(&format!("{key}.ca_file"), ca_file.as_deref());
        }
    }

    fn validate_exec(&mut self, exec: &ExecConfig) {
        let ExecConfig {
            enabled: _,
            interval,
            timeout,
            max_output_bytes,
            plugins,
        } = exec;
        self.schedule("collectors.exec", *interval, *timeout);
        if max_output_bytes.0 == 0 {
            self.errors
                .push(self.error("collectors.exec.max_output_bytes", "must be greater than 0"));
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, plugin) in plugins.iter().enumerate() {
            let ExecPluginConfig {
                name,
                command,
                timeout,
                env,
                user,
                ok_exit_codes,
            } = plugin;
            let key = format!("collectors.exec.plugins.{i}");
            self.plugin_name(&key, name, &mut names, i, "plugin");
            if let Some(timeout) = timeout {
                self.positive(&format!("{key}.timeout"), *timeout);
            }
            match command.first() {
                None => self.errors.push(self.error(
                    &format!("{key}.command"),
                    "is missing or empty; write e.g. [\"/usr/local/bin/check\", \"--flag\"]",
                )),
                // The environment is cleared, so a PATH lookup would depend on whether the
                // operator passed PATH through: require the full path instead of guessing.
                Some(program) if !Path::new(program).is_absolute() => self.errors.push(self.error(
                    &format!("{key}.command"),
                    format!(
                        "program {program:?} is not an absolute path; commands run without a \
                             shell or PATH lookup, so write e.g. \"/usr/local/bin/{program}\""
                    ),
                )),
                Some(_) => {}
            }
            for (j, var) in env.iter().enumerate() {
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    self.errors.push(self.error(
                        &format!("{key}.env.{j}"),
                        format!("{var:?} is not an environment variable name (list names only)"),
                    ));
                }
            }
            if user.as_deref().is_some_and(str::is_empty) {
                self.errors
                    .push(self.error(&format!("{key}.user"), "is empty; remove it or name a user"));
            }
            if ok_exit_codes.is_empty() {
                self.errors.push(self.error(
                    &format!("{key}.ok_exit_codes"),
                    "is empty, so every run would fail; the default is [0]",
                ));
            }
            for (j, code) in ok_exit_codes.iter().enumerate() {
                if !(0..=255).contains(code) {
                    self.errors.push(self.error(
                        &format!("{key}.ok_exit_codes.{j}"),
                        format!("{code} is not an exit code (0 to 255)"),
                    ));
                }
            }
        }
    }

    fn validate_process(&mut self, process: &ProcessConfig) {
        let ProcessConfig {
            enabled,
            interval,
            timeout,
            groups,
        } = process;
        self.schedule("collectors.process", *interval, *timeout);
        if *enabled && groups.is_empty() {
            self.errors.push(self.error(
                "collectors.process.enabled",
                "is true but no [[collectors.process.groups]] is configured",
            ));
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, group) in groups.iter().enumerate() {
            let ProcessGroupConfig {
                name,
                comm,
                cmdline,
            } = group;
            let key = format!("collectors.process.groups.{i}");
            self.plugin_name(&key, name, &mut names, i, "group");
            if comm.is_empty() && cmdline.is_none() {
                self.errors.push(self.error(
                    &key,
                    "matches nothing: set `comm` (process names) and/or `cmdline` (a regex)",
                ));
            }
            for (j, c) in comm.iter().enumerate() {
                if c.is_empty() || c.contains('/') || c.contains('\0') {
                    self.errors.push(self.error(
                        &format!("{key}.comm.{j}"),
                        format!("{c:?} is not a process name (a file name, without '/')"),
                    ));
                }
            }
            if let Some(pattern) = cmdline {
                if let Err(e) = regex::Regex::new(pattern) {
                    self.errors.push(self.error(
                        &format!("{key}.cmdline"),
                        format!("invalid regex {pattern:?}: {}", regex_reason(&e)),
                    ));
                }
            }
        }
    }

    fn validate_systemd(&mut self, systemd: &SystemdConfig) {
        let SystemdConfig {
            enabled,
            interval,
            timeout,
            units,
            unit_patterns,
        } = systemd;
        self.schedule("collectors.systemd", *interval, *timeout);
        if *enabled && units.is_empty() && unit_patterns.is_empty() {
            self.errors.push(self.error(
                "collectors.systemd.enabled",
                "is true but neither `units` nor `unit_patterns` names a unit",
            ));
        }
        for (i, unit) in units.iter().enumerate() {
            if !crate::systemd_dbus::valid_unit_name(unit) {
                self.errors.push(self.error(
                    &format!("collectors.systemd.units.{i}"),
                    format!(
                        "{unit:?} is not a unit name; write the full name with its type, \
                         e.g. \"nginx.service\""
                    ),
                ));
            }
        }
        for (i, pattern) in unit_patterns.iter().enumerate() {
            // systemd matches these with fnmatch(3); the characters of a unit name plus the
            // glob characters are all a pattern needs.
            let ok = !pattern.is_empty()
                && pattern
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@*?[]!".contains(&b));
            if !ok {
                self.errors.push(self.error(
                    &format!("collectors.systemd.unit_patterns.{i}"),
                    format!("{pattern:?} is not a unit name pattern, e.g. \"app-*.service\""),
                ));
            }
        }
    }

    /// The name of the `i`th device or plugin under `key`: non-empty, label-friendly, unique.
    fn plugin_name<'c>(
        &mut self,
        key: &str,
        name: &'c str,
        seen: &mut BTreeMap<&'c str, usize>,
        i: usize,
        what: &str,
    ) {
        let name_key = format!("{key}.name");
        if name.is_empty() {
            self.errors
                .push(self.error(&name_key, format!("every {what} needs a name")));
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            self.errors.push(self.error(
                &name_key,
                format!("{name:?}: use letters, digits, '_', '-' and '.' only"),
            ));
        } else if let Some(first) = seen.insert(name, i) {
            seen.insert(name, first);
            let message = format!(
                "{what} name {name:?} is already used by the {what} at {}",
                self.location(&format!(
                    "{}.{first}.name",
                    key.rsplit_once('.').map_or(key, |k| k.0)
                ))
            );
            self.errors.push(self.error(&name_key, message));
        }
    }

    /// Interval and timeout of one schedule under `key`.
    fn schedule(
        &mut self,
        key: &str,
        interval: Option<HumanDuration>,
        timeout: Option<HumanDuration>,
    ) {
        if let Some(interval) = interval {
            self.interval(&format!("{key}.interval"), interval);
        }
        if let Some(timeout) = timeout {
            self.positive(&format!("{key}.timeout"), timeout);
        }
    }

    /// A path that must not depend on the daemon's working directory.
    fn absolute(&mut self, key: &str, path: Option<&Path>) {
        if let Some(p) = path {
            if !p.is_absolute() {
                let message = format!("{:?} is not an absolute path", p.display().to_string());
                self.errors.push(self.error(key, message));
            }
        }
    }

    fn validate_kubernetes(&mut self, k: &KubernetesConfig) {
        let KubernetesConfig {
            enabled,
            interval: _,
            timeout: _,
            node_name,
            kubeconfig,
            kubeconfig_context,
            api_url,
            token_file,
            ca_file,
            api_enabled,
            kubelet_enabled,
            kubelet_url,
            kubelet_ca_file,
            kubelet_insecure_skip_tls_verify,
        } = k;
        const P: &str = "collectors.kubernetes";
        if let Some(name) = node_name {
            // Node names are DNS subdomains (RFC 1123): checking here catches a typo such as
            // a capital letter, which the API server would answer with an empty pod list.
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && !name.starts_with(['-', '.'])
                && !name.ends_with(['-', '.']);
            if !valid {
                let message = format!(
                    "{name:?} is not a Kubernetes node name (lower-case letters, digits, '-' and \
                     '.'; e.g. \"worker-1\")"
                );
                self.errors
                    .push(self.error(&format!("{P}.node_name"), message));
            }
        }
        for (key, url) in [("api_url", api_url), ("kubelet_url", kubelet_url)] {
            if let Some(url) = url {
                let host = url.strip_prefix("https://").unwrap_or("");
                if host.is_empty()
                    || host.contains(['?', '#'])
                    || host.contains(char::is_whitespace)
                {
                    let message = format!(
                        "{url:?} is not an https:// URL; write e.g. \"https://10.0.0.5:10250\" \
                         (plain http would send the bearer token in clear text)"
                    );
                    self.errors.push(self.error(&format!("{P}.{key}"), message));
                }
            }
        }
        for (key, path) in [
            ("kubeconfig", kubeconfig),
            ("token_file", token_file),
            ("ca_file", ca_file),
            ("kubelet_ca_file", kubelet_ca_file),
        ] {
            if let Some(path) = path {
                if !path.is_absolute() {
                    let message = format!(
                        "{:?} is not an absolute path (the daemon's working directory is / \
                         under systemd)",
                        path.display().to_string()
                    );
                    self.errors.push(self.error(&format!("{P}.{key}"), message));
                }
            }
        }
        if kubeconfig.is_some() {
            for (key, set) in [
                ("token_file", token_file.is_some()),
                ("ca_file", ca_file.is_some()),
            ] {
                if set {
                    let message = format!(
                        "is for the pod's service account; with `kubeconfig` (at {}) the \
                         kubeconfig's user and cluster provide it. Remove one of the two",
                        self.location(&format!("{P}.kubeconfig"))
                    );
                    self.errors.push(self.error(&format!("{P}.{key}"), message));
                }
            }
        } else if kubeconfig_context.is_some() {
            self.errors.push(self.error(
                &format!("{P}.kubeconfig_context"),
                "needs `kubeconfig`: the service account has no contexts",
            ));
        }
        if *kubelet_insecure_skip_tls_verify && kubelet_ca_file.is_some() {
            let message = format!(
                "conflicts with `kubelet_ca_file` (at {}): either verify against that CA or do \
                 not verify",
                self.location(&format!("{P}.kubelet_ca_file"))
            );
            self.errors
                .push(self.error(&format!("{P}.kubelet_insecure_skip_tls_verify"), message));
        }
        if *enabled && !*api_enabled && !*kubelet_enabled {
            self.errors.push(self.error(
                &format!("{P}.enabled"),
                "both `api_enabled` and `kubelet_enabled` are false: nothing to collect",
            ));
        }
    }

    fn positive(&mut self, key: &str, d: HumanDuration) {
        if d.0.is_zero() {
            self.errors.push(self.error(key, "must be greater than 0"));
        }
    }

    fn interval(&mut self, key: &str, d: HumanDuration) {
        if d.0 < MIN_INTERVAL {
            let message = format!(
                "{} is too short; the shortest interval is {}",
                humantime::format_duration(d.0),
                humantime::format_duration(MIN_INTERVAL)
            );
            self.errors.push(self.error(key, message));
        }
    }

    /// The errors in file order, then line order; values no file set come last.
    fn into_errors(self) -> ConfigErrors {
        let Merged { seen, errors, .. } = self;
        let rank = |e: &ConfigError| seen.iter().position(|f| *f == e.file).unwrap_or(usize::MAX);
        let mut errors = errors;
        // Stable, so errors on one line keep the order they were found in.
        errors.sort_by_key(|e| (rank(e), e.line));
        ConfigErrors(errors)
    }
}

/// Receiver integrations (`[[alerting.receivers.*]]`): their secrets and their checks. In an
/// `impl` of its own so that the receivers and the rest of alerting change apart.
impl Merged {
    /// Reads every integration's `*_file` secrets.
    fn resolve_receiver_secrets(
        &mut self,
        receivers: &mut [super::receivers::ReceiverConfig],
        secret_files: &mut Vec<PathBuf>,
    ) {
        for (i, r) in receivers.iter_mut().enumerate() {
            for (j, e) in r.email.iter_mut().enumerate() {
                let key = format!("alerting.receivers.{i}.email.{j}.password");
                self.receiver_secret(&key, &mut e.password, &mut e.password_file, secret_files);
                let key = format!("alerting.receivers.{i}.email.{j}.ca_file");
                self.config_relative(&key, &mut e.ca_file);
            }
            for (j, w) in r.webhook.iter_mut().enumerate() {
                let base = format!("alerting.receivers.{i}.webhook.{j}");
                self.config_relative(&format!("{base}.ca_file"), &mut w.ca_file);
                self.receiver_secret(
                    &format!("{base}.url"),
                    &mut w.url,
                    &mut w.url_file,
                    secret_files,
                );
                self.receiver_secret(
                    &format!("{base}.bearer_token"),
                    &mut w.bearer_token,
                    &mut w.bearer_token_file,
                    secret_files,
                );
                self.receiver_secret(
                    &format!("{base}.hmac_secret"),
                    &mut w.hmac_secret,
                    &mut w.hmac_secret_file,
                    secret_files,
                );
            }
            for (j, s) in r.slack.iter_mut().enumerate() {
                let key = format!("alerting.receivers.{i}.slack.{j}.url");
                self.receiver_secret(&key, &mut s.url, &mut s.url_file, secret_files);
            }
            for (j, a) in r.alertmanager.iter_mut().enumerate() {
                let base = format!("alerting.receivers.{i}.alertmanager.{j}");
                self.config_relative(&format!("{base}.ca_file"), &mut a.ca_file);
                self.receiver_secret(
                    &format!("{base}.bearer_token"),
                    &mut a.bearer_token,
                    &mut a.bearer_token_file,
                    secret_files,
                );
                self.receiver_secret(
                    &format!("{base}.password"),
                    &mut a.password,
                    &mut a.password_file,
                    secret_files,
                );
            }
        }
    }

    /// [`Merged::resolve_secret`] with a message of its own for an empty inline value (the
    /// shared one speaks of API keys).
    fn receiver_secret(
        &mut self,
        key: &str,
        value: &mut Option<String>,
        file: &mut Option<PathBuf>,
        secret_files: &mut Vec<PathBuf>,
    ) {
        if file.is_none() && value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            self.errors
                .push(self.error(key, "is empty; set a value or remove the key"));
            return;
        }
        if let Some(path) = self.resolve_secret(key, value, file.as_deref()) {
            secret_files.push(path.clone());
            *file = Some(path);
        }
    }

    /// Checks one receiver's integrations; keys are `alerting.receivers.I.KIND.J.FIELD`.
    fn validate_receiver_integrations(&mut self, i: usize, r: &super::receivers::ReceiverConfig) {
        let super::receivers::ReceiverConfig {
            name: _,
            email,
            webhook,
            slack,
            alertmanager,
        } = r;
        for (j, e) in email.iter().enumerate() {
            self.validate_email(&format!("alerting.receivers.{i}.email.{j}"), e);
        }
        for (j, w) in webhook.iter().enumerate() {
            let super::receivers::WebhookConfig {
                url,
                url_file: _,
                bearer_token: _,
                bearer_token_file: _,
                hmac_secret: _,
                hmac_secret_file: _,
                timeout,
                max_alerts: _,
                ca_file,
                insecure_skip_verify: _,
                send_resolved: _,
            } = w;
            let base = format!("alerting.receivers.{i}.webhook.{j}");
            self.receiver_url(&base, url.as_deref(), true);
            self.positive(&format!("{base}.timeout"), *timeout);
            self.readable_file(&format!("{base}.ca_file"), ca_file.as_deref());
        }
        for (j, s) in slack.iter().enumerate() {
            let super::receivers::SlackConfig {
                url,
                url_file: _,
                channel: _,
                username: _,
                timeout,
                send_resolved: _,
            } = s;
            let base = format!("alerting.receivers.{i}.slack.{j}");
            self.receiver_url(&base, url.as_deref(), true);
            self.positive(&format!("{base}.timeout"), *timeout);
        }
        for (j, a) in alertmanager.iter().enumerate() {
            let super::receivers::AlertmanagerConfig {
                url,
                resend_interval,
                bearer_token,
                bearer_token_file: _,
                username,
                password,
                password_file: _,
                timeout,
                ca_file,
                insecure_skip_verify: _,
            } = a;
            let base = format!("alerting.receivers.{i}.alertmanager.{j}");
            let url = (!url.is_empty()).then_some(url.as_str());
            self.receiver_url(&base, url, false);
            self.positive(&format!("{base}.timeout"), *timeout);
            if resend_interval.0 < Duration::from_secs(1) {
                self.errors.push(self.error(
                    &format!("{base}.resend_interval"),
                    "must be at least 1s (alerts are re-sent this often while firing)",
                ));
            }
            self.readable_file(&format!("{base}.ca_file"), ca_file.as_deref());
            if bearer_token.is_some() && (username.is_some() || password.is_some()) {
                self.errors.push(self.error(
                    &format!("{base}.bearer_token"),
                    "set either a bearer token or a username and password, not both",
                ));
            }
            self.user_and_password(&base, username.as_deref(), password.is_some());
        }
    }

    fn validate_email(&mut self, base: &str, e: &super::receivers::EmailConfig) {
        let super::receivers::EmailConfig {
            smarthost,
            tls,
            allow_plaintext,
            from,
            to,
            username,
            password,
            password_file: _,
            hello,
            ca_file,
            insecure_skip_verify: _,
            timeout,
            send_resolved: _,
        } = e;
        match super::receivers::parse_smarthost(smarthost) {
            Err(message) => self
                .errors
                .push(self.error(&format!("{base}.smarthost"), message)),
            Ok((host, _)) => {
                if *tls == super::receivers::SmtpTls::None
                    && !allow_plaintext
                    && !super::receivers::is_loopback_host(&host)
                {
                    let message = format!(
                        "tls = \"none\" to {host}, which is not this host, would send alerts \
                         (and any password) in clear; use \"starttls\" or \"tls\", or set \
                         `allow_plaintext = true` if the network is trusted"
                    );
                    self.errors
                        .push(self.error(&format!("{base}.tls"), message));
                }
            }
        }
        if from.trim().is_empty() {
            self.errors.push(self.error(
                &format!("{base}.from"),
                "is required: the sender address, e.g. \"automon <automon@example.com>\"",
            ));
        } else if let Err(e) = from.parse::<lettre::message::Mailbox>() {
            let message = format!("{from:?} is not an email address: {e}");
            self.errors
                .push(self.error(&format!("{base}.from"), message));
        }
        if to.is_empty() {
            self.errors.push(self.error(
                &format!("{base}.to"),
                "is required: at least one recipient, e.g. [\"oncall@example.com\"]",
            ));
        }
        for (k, addr) in to.iter().enumerate() {
            if let Err(e) = addr.parse::<lettre::message::Mailbox>() {
                let message = format!("{addr:?} is not an email address: {e}");
                self.errors
                    .push(self.error(&format!("{base}.to.{k}"), message));
            }
        }
        self.user_and_password(base, username.as_deref(), password.is_some());
        if hello
            .as_deref()
            .is_some_and(|h| h.trim().is_empty() || h.contains(char::is_whitespace))
        {
            self.errors.push(self.error(
                &format!("{base}.hello"),
                "must be a host name without spaces, e.g. \"web1.example.com\"",
            ));
        }
        self.readable_file(&format!("{base}.ca_file"), ca_file.as_deref());
        self.positive(&format!("{base}.timeout"), *timeout);
    }

    /// A user needs a password and a password needs a user; one without the other is a
    /// half-finished edit, and sending without auth would fail at the server much later.
    fn user_and_password(&mut self, base: &str, username: Option<&str>, has_password: bool) {
        match (username, has_password) {
            (Some(_), false) => self.errors.push(self.error(
                &format!("{base}.username"),
                "is set without `password_file` (or `password`)",
            )),
            (None, true) => self.errors.push(self.error(
                &format!("{base}.password_file"),
                "a password is set without `username`",
            )),
            (Some(u), true) if u.trim().is_empty() => self
                .errors
                .push(self.error(&format!("{base}.username"), "is empty")),
            _ => {}
        }
    }

    /// `url` must be set and be `http(s)://host...`. `secret` says whether it may come from
    /// `url_file` (then the message mentions it).
    fn receiver_url(&mut self, base: &str, url: Option<&str>, secret: bool) {
        let key = format!("{base}.url");
        let Some(url) = url else {
            // A failed `url_file` was reported already; a second error would only repeat it.
            if !self.errors.iter().any(|e| e.key == format!("{key}_file")) {
                let message = if secret {
                    "is required (or `url_file`, a file holding it)"
                } else {
                    "is required, e.g. \"http://alertmanager:9093\""
                };
                self.errors.push(self.error(&key, message));
            }
            return;
        };
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => {
                let message = format!("scheme {:?} is not http or https", u.scheme());
                self.errors.push(self.error(&key, message));
            }
            // The URL may hold a token: name the problem, not the value.
            Err(e) => self
                .errors
                .push(self.error(&key, format!("is not a valid URL: {e}"))),
        }
    }

    /// A file the notifier will read when it is built; a typo is found at validate time.
    fn readable_file(&mut self, key: &str, path: Option<&Path>) {
        let Some(path) = path else { return };
        if let Err(e) = std::fs::File::open(path) {
            let message = format!("cannot read {}: {e}", path.display());
            self.errors.push(self.error(key, message));
        }
    }

    /// Makes a relative path relative to the config file that set it, as with secrets.
    fn config_relative(&self, key: &str, path: &mut Option<PathBuf>) {
        if let Some(p) = path.as_mut() {
            if let Some(o) = self.origin(&split_key(key)) {
                if p.is_relative() {
                    *p = self.dirs[o.file].join(&*p);
                }
            }
        }
    }
}

/// Converts `toml_edit` items into the merged `toml` tree, recording each key's origin.
struct Walker<'a> {
    file: usize,
    lines: &'a LineIndex<'a>,
    origins: &'a mut BTreeMap<KeyPath, Origin>,
}

impl Walker<'_> {
    /// Merges `src` into `dst` (at `path`). Returns the first line of `src`'s contents, which
    /// locates tables that have no header of their own (`[a.b]` creates `a` implicitly).
    fn merge_table(
        &mut self,
        src: &dyn TableLike,
        dst: &mut toml::Table,
        path: &mut KeyPath,
    ) -> Option<usize> {
        let mut first_line: Option<usize> = None;
        for (key, item) in src.iter() {
            let key_line = src
                .key(key)
                .and_then(|k| k.span())
                .or_else(|| item.span())
                .map(|s| self.lines.line(s.start));
            path.push(key.to_owned());
            let line = if let Some(sub) = item.as_table_like() {
                let entry = dst
                    .entry(key.to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if !entry.is_table() {
                    // A table replaces a non-table from an earlier file, and with it that
                    // value's origins.
                    *entry = toml::Value::Table(toml::Table::new());
                    self.forget_below(path);
                }
                match entry {
                    toml::Value::Table(table) => {
                        let contents = self.merge_table(sub, table, path);
                        key_line.or(contents)
                    }
                    _ => key_line,
                }
            } else {
                // Anything else replaces what earlier files set, including a whole table.
                self.forget_below(path);
                if let Some(value) = self.convert_item(item, path) {
                    dst.insert(key.to_owned(), value);
                }
                key_line
            };
            if let Some(line) = line {
                self.origins.insert(
                    path.clone(),
                    Origin {
                        file: self.file,
                        line,
                    },
                );
                first_line = Some(first_line.map_or(line, |f| f.min(line)));
            }
            path.pop();
        }
        first_line
    }

    /// Drops the origins of everything below `path`, whose values are about to be replaced.
    fn forget_below(&mut self, path: &[String]) {
        self.origins
            .retain(|k, _| !(k.len() > path.len() && k.starts_with(path)));
    }

    fn record(&mut self, path: &[String], span: Option<Range<usize>>) {
        if let Some(span) = span {
            let line = self.lines.line(span.start);
            self.origins.insert(
                path.to_vec(),
                Origin {
                    file: self.file,
                    line,
                },
            );
        }
    }

    fn convert_item(&mut self, item: &toml_edit::Item, path: &mut KeyPath) -> Option<toml::Value> {
        match item {
            toml_edit::Item::None => None,
            toml_edit::Item::Value(v) => Some(self.convert_value(v, path)),
            toml_edit::Item::Table(t) => Some(self.convert_table(t, path)),
            toml_edit::Item::ArrayOfTables(tables) => {
                let mut out = Vec::new();
                for (i, t) in tables.iter().enumerate() {
                    path.push(i.to_string());
                    self.record(path, t.span());
                    out.push(self.convert_table(t, path));
                    path.pop();
                }
                Some(toml::Value::Array(out))
            }
        }
    }

    fn convert_table(&mut self, table: &dyn TableLike, path: &mut KeyPath) -> toml::Value {
        let mut out = toml::Table::new();
        self.merge_table(table, &mut out, path);
        toml::Value::Table(out)
    }

    fn convert_value(&mut self, value: &toml_edit::Value, path: &mut KeyPath) -> toml::Value {
        use toml_edit::Value as V;
        match value {
            V::String(s) => toml::Value::String(s.value().clone()),
            V::Integer(i) => toml::Value::Integer(*i.value()),
            V::Float(f) => toml::Value::Float(*f.value()),
            V::Boolean(b) => toml::Value::Boolean(*b.value()),
            V::Datetime(d) => toml::Value::Datetime(*d.value()),
            V::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    path.push(i.to_string());
                    self.record(path, v.span());
                    out.push(self.convert_value(v, path));
                    path.pop();
                }
                toml::Value::Array(out)
            }
            V::InlineTable(t) => self.convert_table(t, path),
        }
    }
}

/// Byte offset to line and column.
struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// 1-based line of `offset`.
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// 1-based line and column (in characters) of `offset`.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line(offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |s| s.chars().count());
        (line, column + 1)
    }
}

fn split_key(key: &str) -> KeyPath {
    key.split('.').map(str::to_owned).collect()
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> KeyPath {
    let mut out = Vec::new();
    let mut p = path;
    loop {
        match p {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Seq { parent, index } => {
                out.push(index.to_string());
                p = parent;
            }
            serde_ignored::Path::Map { parent, key } => {
                out.push(key.clone());
                p = parent;
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => p = parent,
        }
    }
    out.reverse();
    out
}

fn error_path(path: &serde_path_to_error::Path) -> KeyPath {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

/// Removes the value at `path` (walking into tables and, by index, arrays); if it does not
/// exist, removes the deepest value on the way that does. Returns false only if nothing could
/// be removed.
fn remove_path(table: &mut toml::Table, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if !rest.is_empty() {
        if let Some(value) = table.get_mut(first) {
            if remove_in_value(value, rest) {
                return true;
            }
        }
    }
    table.remove(first).is_some()
}

fn remove_in_value(value: &mut toml::Value, path: &[String]) -> bool {
    match value {
        toml::Value::Table(sub) => remove_path(sub, path),
        toml::Value::Array(items) => {
            let Some((first, rest)) = path.split_first() else {
                return false;
            };
            let Ok(i) = first.parse::<usize>() else {
                return false;
            };
            let Some(item) = items.get_mut(i) else {
                return false;
            };
            if !rest.is_empty() && remove_in_value(item, rest) {
                return true;
            }
            // Removing an element would shift the indices of the ones after it, and with
            // them every later error's key: replace it with an empty table instead (its own
            // required fields are then checked by validation).
            let was_empty = matches!(item, toml::Value::Table(t) if t.is_empty());
            *item = toml::Value::Table(toml::Table::new());
            !was_empty
        }
        _ => false,
    }
}

/// serde's type error on one line, with Rust type names replaced by TOML words.
fn type_error_message(message: &str) -> String {
    let message = message.trim().replace('\n', "; ");
    // "expected struct HttpConfig" means nothing to an operator; a struct is a TOML table.
    match message.find("expected struct ") {
        Some(at) => format!("{}expected a table", &message[..at]),
        None => message,
    }
}

fn unknown_key_message<T: serde::de::DeserializeOwned>(path: &[String]) -> String {
    let (key, parent) = match path.split_last() {
        Some((key, parent)) => (key.as_str(), parent),
        None => return "unknown key".to_owned(),
    };
    let Some(known) = known_fields::<T>(parent) else {
        return "unknown key".to_owned();
    };
    let closest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < key.len().max(k.len()))
        .min_by_key(|(d, _)| *d);
    match closest {
        Some((_, k)) => format!("unknown key (did you mean `{k}`?)"),
        None => format!("unknown key (expected one of: {})", known.join(", ")),
    }
}

/// The keys the table at `path` accepts, asked from serde: the derived `Deserialize` of a
/// struct passes its field names to `deserialize_struct`. [`Probe`] walks down to `path` and
/// records them, so a new config field gets suggestions without touching this file. `None`
/// if the value there is not a struct (a map of free-form keys, say).
fn known_fields<T: serde::de::DeserializeOwned>(
    path: &[String],
) -> Option<&'static [&'static str]> {
    let mut found = None;
    // The probe always ends in an error: it is a question, not a deserialization.
    let _ = T::deserialize(Probe {
        path,
        found: &mut found,
    });
    found
}

/// A deserializer that answers "which fields does the struct at `path` have?".
struct Probe<'a> {
    path: &'a [String],
    found: &'a mut Option<&'static [&'static str]>,
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(ProbeError::custom("not a struct"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.path.split_first() {
            None => {
                *self.found = Some(fields);
                Err(ProbeError::custom("found"))
            }
            Some((key, rest)) => visitor.visit_map(ProbeEntry {
                key: Some(key),
                value: Some(Probe {
                    path: rest,
                    found: self.found,
                }),
            }),
        }
    }

    /// An array of tables (`[[alerting.receivers]]`): the index in the path selects an
    /// element, which the probe then walks into.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.path.split_first() {
            Some((index, rest)) if index.parse::<usize>().is_ok() => {
                visitor.visit_seq(ProbeElement {
                    probe: Some(Probe {
                        path: rest,
                        found: self.found,
                    }),
                })
            }
            _ => Err(ProbeError::custom("not a struct")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct map enum identifier ignored_any
    }
}

/// A sequence with the single element `<probe for the rest of the path>`.
struct ProbeElement<'a> {
    probe: Option<Probe<'a>>,
}

impl<'de> serde::de::SeqAccess<'de> for ProbeElement<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.probe.take() {
            Some(probe) => seed.deserialize(probe).map(Some),
            None => Ok(None),
        }
    }
}

/// A map with the single entry `key = <probe for the rest of the path>`.
struct ProbeEntry<'a> {
    key: Option<&'a String>,
    value: Option<Probe<'a>>,
}

impl<'de> MapAccess<'de> for ProbeEntry<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.key.take() {
            Some(key) => seed.deserialize(key.as_str().into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(probe) => seed.deserialize(probe),
            None => Err(ProbeError::custom("value without key")),
        }
    }
}

/// Whether only this host can reach `addr`, counting IPv4-mapped IPv6 loopback.
fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// Accepts a level name or a tracing filter directive. A single bare word is also a valid
/// directive (it selects a *target* at every level), so a typo like `inf0` would be accepted
/// silently; a single word must therefore be a level.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let word = level.trim();
    let is_bare_word = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if is_bare_word && !LEVELS.contains(&word.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "unknown log level {word:?}; use one of {} or a filter such as \"info,automon=debug\"",
            LEVELS.join(", ")
        ));
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map(drop)
        .map_err(|e| format!("invalid log filter {level:?}: {e}"))
}

/// The one-line reason of a regex error (its display draws a multi-line caret diagram).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.trim().replace('\n', "; "), str::to_owned)
}

#[cfg(test)]
mod tests;
