//! Man pages and shell completions generated from the CLI definition, for the packages:
//! `automon generate-assets DIR` (a hidden subcommand run by packaging/build.sh) writes them,
//! so they can never drift from the options the binary actually accepts.
//!
//! automon.toml(5) is built around the shipped, commented default config
//! (rootfs/etc/automon/automon.toml, embedded at compile time): that file documents every key,
//! and a test asserts it equals the embedded defaults, so the page is as current as the code.

use std::path::{Path, PathBuf};

use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

/// The commented default configuration, as installed to /etc/automon/automon.toml.
pub const DEFAULT_CONFIG: &str = include_str!("../../rootfs/etc/automon/automon.toml");

/// Failure to write a generated file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct DocsError {
    /// The file that could not be written.
    pub path: PathBuf,
    /// The underlying I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Writes every generated file under `out`, laid out as they install:
/// `man/man8/automon.8`, `man/man8/automon-<subcommand>.8`, `man/man5/automon.toml.5`,
/// `completions/automon.bash`, `completions/_automon` (zsh) and `completions/automon.fish`.
/// Returns the paths written, in a stable order.
pub fn write_all(cmd: clap::Command, out: &Path) -> Result<Vec<PathBuf>, DocsError> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();

    let man8 = out.join("man/man8");
    mkdir(&man8)?;
    let main_page = man8.join("automon.8");
    write(&main_page, &main_man_page(&cmd)?)?;
    written.push(main_page);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone()).section("8").manual("automon");
        let path = man8.join(man.get_filename());
        let mut buf = Vec::new();
        man.render(&mut buf).map_err(|e| io_err(&path, e))?;
        write(&path, &buf)?;
        written.push(path);
    }

    let man5 = out.join("man/man5");
    mkdir(&man5)?;
    let config_page = man5.join("automon.toml.5");
    write(&config_page, config_man_page().as_bytes())?;
    written.push(config_page);

    let completions = out.join("completions");
    mkdir(&completions)?;
    for (shell, file) in [
        (Shell::Bash, "automon.bash"),
        (Shell::Zsh, "_automon"),
        (Shell::Fish, "automon.fish"),
    ] {
        let path = completions.join(file);
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "automon", &mut buf);
        write(&path, &buf)?;
        written.push(path);
    }
    Ok(written)
}

/// automon(8): clap's rendering of the top-level command plus the sections an operator looks
/// for in a daemon's page (files, environment, exit status, signals).
fn main_man_page(cmd: &clap::Command) -> Result<Vec<u8>, DocsError> {
    let mut buf = Vec::new();
    Man::new(cmd.clone())
        .section("8")
        .manual("automon")
        .render(&mut buf)
        .map_err(|e| io_err(Path::new("automon.8"), e))?;
    let mut r = Roff::new();
    r.control("SH", ["FILES"]);
    for (path, what) in [
        (
            "/etc/automon/automon.toml",
            "Main configuration; see automon.toml(5).",
        ),
        (
            "/etc/automon/conf.d/*.toml",
            "Drop-ins merged on top of the main file in name order.",
        ),
        ("/etc/automon/rules.d/", "Local rule files."),
        (
            "/var/lib/automon/",
            "Data directory (systemd StateDirectory=): the time-series database.",
        ),
        (
            "/var/lib/automon/textfile/",
            "*.prom files read by the textfile collector.",
        ),
    ] {
        r.control("TP", []).text([bold(path)]).text([roman(what)]);
    }
    r.control("SH", ["ENVIRONMENT"]);
    r.control("TP", [])
        .text([bold("AUTOMON_CONFIG")])
        .text([roman("Config file used when --config is not given.")]);
    r.control("TP", []).text([bold("AUTOMON_LOG")]).text([roman(
        "Log level or tracing filter; overrides log_level from the config.",
    )]);
    r.control("SH", ["SIGNALS"]);
    r.control("TP", []).text([bold("SIGHUP")]).text([roman(
        "Reload the configuration. An invalid configuration is rejected with a logged error \
         and the running one is kept. systemctl reload automon validates first and fails \
         visibly instead.",
    )]);
    r.control("TP", [])
        .text([bold("SIGTERM"), roman(", "), bold("SIGINT")])
        .text([roman(
            "Graceful shutdown: the store is flushed before exit.",
        )]);
    r.control("SH", ["EXIT STATUS"]);
    r.text([roman(
        "0 on success, 1 on a runtime failure, 2 on an invalid configuration or usage error.",
    )]);
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("automon.toml"),
        roman("(5), "),
        bold("systemctl"),
        roman("(1), "),
        bold("journalctl"),
        roman("(1), "),
        bold("systemd.service"),
        roman("(5)"),
    ]);
    buf.extend_from_slice(r.to_roff().as_bytes());
    Ok(buf)
}

/// automon.toml(5): how files are found and merged, then the whole commented default file.
pub fn config_man_page() -> String {
    let mut r = Roff::new();
    r.control(
        "TH",
        [
            "AUTOMON.TOML",
            "5",
            "",
            concat!("automon ", env!("CARGO_PKG_VERSION")),
            "automon",
        ],
    );
    r.control("SH", ["NAME"]);
    r.text([roman(
        "automon.toml - configuration of the automon host monitoring daemon",
    )]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([bold("/etc/automon/automon.toml")]);
    r.control("br", []);
    r.text([bold("/etc/automon/conf.d/*.toml")]);
    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(
        "The configuration is TOML. Every key is optional: without any file automon runs on \
         embedded defaults. Drop-in files in conf.d/ beside the main file are merged on top of \
         it in name order: tables merge and later values win. Unknown keys and invalid values \
         are errors that name the file, the line and the key; all errors are reported at once.",
    )]);
    r.control("PP", []);
    r.text([
        roman("Durations are strings with a unit, such as "),
        italic("\"500ms\""),
        roman(", "),
        italic("\"15s\""),
        roman(", "),
        italic("\"5m\""),
        roman(" or "),
        italic("\"1h\""),
        roman(". Secrets can be read from files with the "),
        italic("*_file"),
        roman(" keys, so that the configuration itself need not be secret."),
    ]);
    r.control("PP", []);
    r.text([
        roman("Check a change with "),
        bold("automon validate"),
        roman(" and apply it with "),
        bold("systemctl reload automon"),
        roman("; a configuration that does not validate is refused and the running one kept."),
    ]);
    r.control("SH", ["DEFAULT CONFIGURATION"]);
    r.text([roman(
        "The installed /etc/automon/automon.toml lists every key with its default value, \
         commented out, and explains it:",
    )]);
    r.control("PP", []);
    r.control("nf", []);
    r.text([roman(DEFAULT_CONFIG.trim_end())]);
    r.control("fi", []);
    r.control("SH", ["SEE ALSO"]);
    r.text([bold("automon"), roman("(8)")]);
    r.to_roff()
}

fn mkdir(dir: &Path) -> Result<(), DocsError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), DocsError> {
    std::fs::write(path, bytes).map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, source: std::io::Error) -> DocsError {
    DocsError {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_page_carries_every_line_of_the_default_file() {
        let page = config_man_page();
        // Spot-check keys from several tables, as roff escapes them (dashes become \-).
        for needle in [
            "#listen = \"127.0.0.1:9787\"",
            "[collectors.textfile]",
            "#retention_raw = \"14d\"",
        ] {
            assert!(page.contains(needle), "missing {needle:?}");
        }
        // Lines of the file must never become roff control lines.
        assert!(!page
            .lines()
            .any(|l| l.starts_with(".#") || l.starts_with("'#")));
    }

    #[test]
    fn writes_pages_for_visible_subcommands_only() {
        let cmd = clap::Command::new("automon")
            .version("1")
            .subcommand(clap::Command::new("run").about("Run"))
            .subcommand(clap::Command::new("secret").hide(true));
        let dir = tempfile::tempdir().unwrap();
        let files = write_all(cmd, dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "man/man8/automon.8",
                "man/man8/automon-run.8",
                "man/man5/automon.toml.5",
                "completions/automon.bash",
                "completions/_automon",
                "completions/automon.fish",
            ]
        );
        let main = std::fs::read_to_string(&files[0]).unwrap();
        assert!(main.contains("\n.TH automon 8 "), "{main}");
        // One preamble: the appended sections must not repeat it.
        assert_eq!(main.matches(".ds Aq").count(), 2, "{main}");
        assert!(main.contains(".SH FILES"));
    }
}
