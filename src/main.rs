//! The `automon` command line: parses arguments, sets up logging and hands over to the
//! library. Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use automon::config::{self, ConfigSource};

#[derive(Parser)]
#[command(
    name = "automon",
    version,
    about = "Host monitoring daemon: collectors, /metrics, health, storage, alerts and auto-repair",
    long_about = "automon collects host metrics (node_exporter-compatible names), serves them on \
/metrics for Prometheus, reports its own health on /health, and integrates with systemd \
(Type=notify, watchdog, journald).\n\nWith no config file it runs on embedded defaults: all host \
collectors on, listening on 127.0.0.1:9787."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ConfigArg {
    /// Config file (default /etc/automon/automon.toml plus conf.d/*.toml drop-ins beside it).
    #[arg(long, short = 'c', value_name = "PATH", env = "AUTOMON_CONFIG")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn source(&self) -> ConfigSource {
        match &self.config {
            Some(p) => ConfigSource::Explicit(p.clone()),
            None => ConfigSource::Default,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (systemd starts it this way).
    Run(ConfigArg),
    /// Check the configuration without side effects; exit 0 if valid, 2 with every error otherwise.
    Validate(ConfigArg),
    /// Check config, data directory, port, systemd/journald and every enabled collector.
    Doctor(ConfigArg),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("automon {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Validate(c) => match config::load(&c.source()) {
            Ok(loaded) => match automon::daemon::check_listen(&loaded.config) {
                Ok(_) => {
                    let what = if loaded.files.is_empty() {
                        "embedded defaults (no config file found)".to_string()
                    } else {
                        loaded
                            .files
                            .iter()
                            .map(|f| f.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    println!("configuration valid: {what}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            },
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Doctor(c) => {
            let checks = automon::doctor::run(&c.source());
            print!("{}", automon::doctor::render(&checks));
            if checks
                .iter()
                .any(|c| c.verdict == automon::doctor::Verdict::Fail)
            {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Run(c) => run(c.source()),
    }
}

fn run(source: ConfigSource) -> ExitCode {
    let loaded = match config::load(&source) {
        Ok(l) => l,
        Err(e) => {
            // Logging is not set up yet (its level comes from the config): plain stderr.
            eprintln!("automon: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    automon::logging::init(loaded.config.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("automon")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(automon::daemon::run(source, loaded));
    // Blocking threads of hung collectors must not delay exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("automon: {e}");
            match e {
                automon::daemon::DaemonError::Config(_)
                | automon::daemon::DaemonError::Listen(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
