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
    /// Evaluate a PromQL expression: asks the running daemon, or reads the database directly
    /// when none answers.
    Query(QueryArgs),
    /// Backfill an OpenMetrics file with timestamps into the database (stop the daemon first).
    Import(ImportArgs),
    /// List active (pending and firing) alerts from the alerting database.
    Alerts(AlertsArgs),
    /// Silence alerts: add, list or expire silences.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Auto-repair: rule states, the audit log, pause/resume all repairs, reset a rule.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Send a test notification through every integration of a configured receiver and print
    /// what each server answered; exit 1 if any failed.
    TestNotify(TestNotifyArgs),
    /// Print the version.
    Version,
    /// Write man pages and shell completions generated from this CLI into DIR (used by
    /// packaging/build.sh).
    #[command(hide = true)]
    GenerateAssets {
        /// Output directory; man/ and completions/ are created under it.
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct TestNotifyArgs {
    /// The receiver's `name` in `[[alerting.receivers]]`.
    receiver: String,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(clap::Args)]
struct DataDirArgs {
    /// Data directory holding alerts.db and repairs.db (default: data_dir from the config).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArg,
}

impl DataDirArgs {
    fn dir(&self) -> Result<PathBuf, ExitCode> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => client_config(&self.config).map(|c| automon::daemon::data_dir(&c)),
        }
    }
}

#[derive(clap::Args)]
struct AlertsArgs {
    /// One JSON object per alert instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dir: DataDirArgs,
}

#[derive(Subcommand)]
enum SilenceCommand {
    /// Silence alerts matching every MATCHER (e.g. alertname=HostDiskFull 'device=~"sd.*"').
    Add {
        /// Alertmanager-style matchers: name=value, name!=value, name=~regex, name!~regex.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long the silence lasts, e.g. 2h.
        #[arg(long, short = 'd', value_parser = duration_arg, default_value = "1h")]
        duration: std::time::Duration,
        /// Why; shown to whoever wonders why they were not paged.
        #[arg(long, short = 'm')]
        comment: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER")]
        author: String,
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// List silences that are active or pending.
    List {
        /// Include expired silences.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// End a silence now.
    Expire {
        /// The silence id (from `automon silence list`).
        id: String,
        #[command(flatten)]
        dir: DataDirArgs,
    },
}

#[derive(Subcommand)]
enum RepairCommand {
    /// Show every repair rule with its state, attempts in the window and last attempt.
    Status {
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Show the audit trail: every decision with time, trigger, outcome and output.
    Log {
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Only the last DURATION, e.g. 24h.
        #[arg(long, value_parser = duration_arg)]
        since: Option<std::time::Duration>,
        /// At most this many rows (newest).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per row (newest first) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Stop all repairs from acting until `resume` (triggers are still recorded as skipped).
    Pause {
        /// Who (default: $USER).
        #[arg(long, env = "USER", default_value = "unknown")]
        author: String,
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Let repairs act again after `pause`.
    Resume {
        /// Who (default: $USER).
        #[arg(long, env = "USER", default_value = "unknown")]
        author: String,
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Clear a rule's attempts and cooldown; a rule that gave up re-arms.
    Reset {
        /// The repair rule's name.
        rule: String,
        #[command(flatten)]
        dir: DataDirArgs,
    },
}

fn repair_cmd(cmd: RepairCommand) -> ExitCode {
    use automon::cli::repair;
    let with_config = |dir: &DataDirArgs| -> Result<(PathBuf, config::Config), ExitCode> {
        let cfg = client_config(&dir.config)?;
        let d = dir
            .data_dir
            .clone()
            .unwrap_or_else(|| automon::daemon::data_dir(&cfg));
        Ok((d, cfg))
    };
    match cmd {
        RepairCommand::Status { dir } => match with_config(&dir) {
            Ok((d, cfg)) => print_or_fail(repair::status(&d, &cfg)),
            Err(code) => code,
        },
        RepairCommand::Log {
            rule,
            since,
            limit,
            json,
            dir,
        } => match dir.dir() {
            Ok(d) => {
                let filter = automon::repair::db::LogFilter {
                    rule,
                    since_ms: since
                        .map(|s| automon::alert::outbox::now_ms() - s.as_millis() as i64),
                    limit: limit.max(1),
                };
                print_or_fail(repair::log(&d, &filter, json))
            }
            Err(code) => code,
        },
        RepairCommand::Pause { author, dir } => match dir.dir() {
            Ok(d) => print_or_fail(
                repair::set_paused(&d, true, &author)
                    .map(|()| "repairs paused; `automon repair resume` resumes them\n".into()),
            ),
            Err(code) => code,
        },
        RepairCommand::Resume { author, dir } => match dir.dir() {
            Ok(d) => print_or_fail(
                repair::set_paused(&d, false, &author).map(|()| "repairs resumed\n".into()),
            ),
            Err(code) => code,
        },
        RepairCommand::Reset { rule, dir } => match with_config(&dir) {
            Ok((d, cfg)) => print_or_fail(repair::reset(&d, &cfg, &rule).map(|()| {
                format!("reset of {rule} requested; the daemon applies it within a second\n")
            })),
            Err(code) => code,
        },
    }
}

fn print_or_fail(r: Result<String, String>) -> ExitCode {
    match r {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("automon: {e}");
            ExitCode::FAILURE
        }
    }
}

fn alerts_cmd(args: AlertsArgs) -> ExitCode {
    match args.dir.dir() {
        Ok(dir) => print_or_fail(automon::cli::alerts::alerts(&dir, args.json)),
        Err(code) => code,
    }
}

fn silence_cmd(cmd: SilenceCommand) -> ExitCode {
    use automon::cli::alerts;
    match cmd {
        SilenceCommand::Add {
            matchers,
            duration,
            comment,
            author,
            dir,
        } => match dir.dir() {
            Ok(d) => print_or_fail(
                alerts::silence_add(&d, &matchers, duration, &author, &comment)
                    .map(|id| format!("{id}\n")),
            ),
            Err(code) => code,
        },
        SilenceCommand::List { all, dir } => match dir.dir() {
            Ok(d) => print_or_fail(alerts::silence_list(&d, all)),
            Err(code) => code,
        },
        SilenceCommand::Expire { id, dir } => match dir.dir() {
            Ok(d) => {
                print_or_fail(alerts::silence_expire(&d, &id).map(|()| format!("expired {id}\n")))
            }
            Err(code) => code,
        },
    }
}

#[derive(clap::Args)]
struct QueryArgs {
    /// The PromQL expression, e.g. 'rate(node_cpu_seconds_total{mode="idle"}[5m])'.
    expr: String,
    /// Range query over this span ending now (or at --at), e.g. 1h; without it, an instant query.
    #[arg(long, value_parser = duration_arg)]
    since: Option<std::time::Duration>,
    /// Step of a range query (default: the span / 120, at least 1s).
    #[arg(long, value_parser = duration_arg, requires = "since")]
    step: Option<std::time::Duration>,
    /// Evaluation time (range end): Unix seconds or RFC 3339 (default now).
    #[arg(long, value_parser = time_arg)]
    at: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: automon::cli::query::Format,
    /// Read this data directory directly, without asking the daemon.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Daemon URL (default: http:// plus http.listen from the config).
    #[arg(long, conflicts_with = "data_dir")]
    url: Option<String>,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// OpenMetrics file with timestamps ("-" for standard input), e.g. from
    /// `xz -dc recording.om.xz | automon import -`.
    file: PathBuf,
    /// Data directory to import into (default: data_dir from the config).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArg,
}

fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    automon::query::params::parse_duration(s)
}

fn time_arg(s: &str) -> Result<i64, String> {
    automon::query::params::parse_time(s)
}

/// Loads the config for a client subcommand; exit code 2 when it is invalid.
fn client_config(c: &ConfigArg) -> Result<config::Config, ExitCode> {
    config::load(&c.source()).map(|l| l.config).map_err(|e| {
        eprintln!("automon: invalid configuration:\n{e}");
        ExitCode::from(2)
    })
}

fn query(args: QueryArgs) -> ExitCode {
    use automon::cli::query;
    let cfg = match client_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let target = query::Target {
        url: match (&args.url, &args.data_dir) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(query::url_for_listen(&cfg.http.listen)),
        },
        api_key: cfg.http.api_key.clone(),
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| automon::daemon::data_dir(&cfg)),
        limits: automon::daemon::query_limits(&cfg),
    };
    let req = query::Request {
        expr: args.expr,
        since: args.since,
        step: args.step,
        at: args.at,
    };
    match query::run(&req, &target).and_then(|(data, via)| {
        eprintln!("automon query: {via}");
        query::render(&data, args.format)
    }) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("automon query: {e}");
            ExitCode::FAILURE
        }
    }
}

fn import(args: ImportArgs) -> ExitCode {
    use automon::cli::import;
    let cfg = match client_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| automon::daemon::data_dir(&cfg));
    let store_cfg = automon::daemon::store_config(&cfg);
    let raw = store_cfg.retention_raw;
    let result = import::read_input(&args.file).and_then(|text| {
        import::import(&text, &args.file, &dir, store_cfg, |n, span| {
            eprintln!(
                "automon import: {n} samples checked; writing into {}",
                dir.display()
            );
            let now = automon::query::params::now_ms();
            if let Some(w) = import::retention_warning(span, now, raw) {
                eprintln!("automon import: {w}");
            }
        })
    });
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("automon import: {e}");
            ExitCode::FAILURE
        }
    }
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
        Command::Query(args) => query(args),
        Command::Import(args) => import(args),
        Command::Alerts(args) => alerts_cmd(args),
        Command::Silence(cmd) => silence_cmd(cmd),
        Command::Repair(cmd) => repair_cmd(cmd),
        Command::TestNotify(args) => test_notify(args),
        Command::GenerateAssets { dir } => {
            use clap::CommandFactory;
            match automon::cli::docs::write_all(Cli::command(), &dir) {
                Ok(files) => {
                    for f in files {
                        println!("{}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("automon generate-assets: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn test_notify(args: TestNotifyArgs) -> ExitCode {
    use automon::cli::test_notify;
    let cfg = match client_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("automon test-notify: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(test_notify::run(&cfg, &args.receiver)) {
        Ok(outcomes) => {
            print!("{}", test_notify::Report(&outcomes));
            if outcomes.iter().all(|o| o.result.is_ok()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e @ test_notify::TestNotifyError::UnknownReceiver { .. }) => {
            eprintln!("automon test-notify: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("automon test-notify: {e}");
            ExitCode::FAILURE
        }
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
    automon::alloc::limit_malloc_arenas();
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
