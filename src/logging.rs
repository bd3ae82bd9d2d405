//! Log setup: journald when systemd connected stderr to the journal, human-readable stderr
//! otherwise; level from `AUTOMON_LOG`, else the config, else `info`.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The filter in force: `AUTOMON_LOG` wins over the config value.
pub fn filter(config_level: Option<&str>) -> EnvFilter {
    if let Ok(v) = std::env::var("AUTOMON_LOG") {
        if let Ok(f) = EnvFilter::try_new(&v) {
            return f;
        }
        eprintln!("automon: ignoring invalid AUTOMON_LOG={v:?}");
    }
    config_level
        .and_then(|l| EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// Installs the global subscriber. Safe to call once; later calls are ignored.
pub fn init(config_level: Option<&str>) {
    let filter = filter(config_level);
    if crate::systemd::stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(layer) => {
                let _ = tracing_subscriber::registry()
                    .with(
                        layer
                            .with_syslog_identifier("automon".into())
                            .with_filter(filter),
                    )
                    .try_init();
                return;
            }
            Err(e) => eprintln!("automon: journald unavailable ({e}); logging to stderr"),
        }
    }
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a person at a terminal, never into files or pipes.
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false)
                .with_filter(filter),
        )
        .try_init();
}
