//! Builds and runs one generation of alerting from a loaded configuration: compiled rules,
//! route tree, receivers, the evaluation loop and the outbox dispatcher. The daemon stops a
//! generation and starts the next on every reload.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::db::Db;
use super::group::{Grouper, InhibitRule, IntegrationInfo};
use super::manager::{Manager, Running, Shared, Snapshot};
use super::notify::{self, Notifier};
use super::outbox::Dispatcher;
use super::route::Route;
use super::rule::Rule;
use crate::config::LoadedConfig;
use crate::query::{Engine, Source};
use crate::selfmetrics::SelfMetrics;
use crate::store::Store;

/// File name of the alerting database in the data directory.
pub const DB_FILE: &str = "alerts.db";

/// Why alerting could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database could not be opened.
    #[error(transparent)]
    Db(#[from] super::db::DbError),
    /// The configuration does not compile (validation normally catches this first).
    #[error("alerting: {0}")]
    Config(String),
    /// The loop thread could not be started.
    #[error("alerting: cannot start the evaluation thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Opens the state shared by every generation.
pub fn open_shared(data_dir: &Path) -> Result<Shared, ServiceError> {
    Ok(Shared {
        db: Arc::new(Db::open(&data_dir.join(DB_FILE))?),
        snapshot: Arc::default(),
        outbox_wake: Arc::default(),
        external: Arc::default(),
    })
}

/// A running generation.
pub struct Generation {
    running: Running,
    cancel: CancellationToken,
    dispatcher: JoinHandle<()>,
}

impl Generation {
    /// Stops the loop (saving state) and the dispatcher (finishing sends in flight).
    pub async fn stop(self) {
        self.cancel.cancel();
        let running = self.running;
        let _ = tokio::task::spawn_blocking(move || running.stop()).await;
        let _ = self.dispatcher.await;
    }
}

/// The host name used in notifications.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Receiver name → its integrations with what grouping needs to know of each.
pub type ReceiverIntegrations = BTreeMap<String, Vec<(IntegrationInfo, Arc<dyn Notifier>)>>;

/// Receiver integrations: receiver name → (info for grouping, notifier), in config order.
pub fn integrations(loaded: &LoadedConfig) -> Result<ReceiverIntegrations, ServiceError> {
    let built = notify::build(&loaded.config.alerting.receivers)
        .map_err(|e| ServiceError::Config(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (receiver, notifiers) in built {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        let list = notifiers
            .into_iter()
            .map(|n| {
                let index = counts.entry(n.kind()).or_default();
                let info = IntegrationInfo {
                    id: notify::integration_id(&receiver, n.kind(), *index),
                    send_resolved: n.send_resolved(),
                    resend_ms: n.resend_interval().map(|d| d.as_millis() as i64),
                };
                *index += 1;
                (info, n)
            })
            .collect();
        out.insert(receiver, list);
    }
    Ok(out)
}

/// Starts a generation. `listen` is the bound HTTP address, for the default external URL.
pub fn start(
    loaded: &LoadedConfig,
    shared: &Shared,
    store: Arc<Store>,
    metrics: Arc<SelfMetrics>,
    engine: Engine,
    listen: std::net::SocketAddr,
    parent: &CancellationToken,
) -> Result<Generation, ServiceError> {
    let cfg = &loaded.config.alerting;
    let rules = loaded
        .rules
        .iter()
        .map(|r| {
            Rule::compile(r).map_err(|e| ServiceError::Config(format!("rule {}: {e}", r.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    let route = Route::compile(&cfg.route, &names).map_err(|errs| {
        ServiceError::Config(
            errs.into_iter()
                .map(|(k, m)| format!("alerting.route.{k}: {m}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let inhibit = cfg
        .inhibit_rules
        .iter()
        .map(|r| {
            InhibitRule::compile(r)
                .map_err(|(k, m)| ServiceError::Config(format!("inhibit rule {k}: {m}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let integrations = integrations(loaded)?;
    let host = hostname();
    let external_url = cfg.external_url.clone().unwrap_or_else(|| {
        let port = listen.port();
        if listen.ip().is_loopback() || listen.ip().is_unspecified() {
            format!("http://{host}:{port}")
        } else {
            format!("http://{listen}")
        }
    });
    let nflog = shared.db.nflog()?;
    let grouper = Grouper::new(
        route,
        integrations
            .iter()
            .map(|(r, list)| (r.clone(), list.iter().map(|(i, _)| i.clone()).collect()))
            .collect(),
        inhibit,
        nflog,
        host,
        external_url.clone(),
    );
    let source: Arc<dyn Source> = Arc::new(crate::store::StoreSource::new(store.clone()));
    let manager = Manager {
        rules,
        engine,
        source,
        store: Some(store),
        grouper,
        interval: cfg.evaluation_interval.0,
        shared: shared.clone(),
        metrics: metrics.clone(),
        external_url,
    };
    let cancel = parent.child_token();
    let dispatcher = Dispatcher {
        db: shared.db.clone(),
        notifiers: integrations
            .into_values()
            .flatten()
            .map(|(info, n)| (info.id, n))
            .collect(),
        settings: cfg.outbox.clone(),
        wake: shared.outbox_wake.clone(),
        metrics,
    };
    let dispatcher = tokio::spawn(dispatcher.run(cancel.clone()));
    let running = manager.spawn()?;
    Ok(Generation {
        running,
        cancel,
        dispatcher,
    })
}

/// Marks alerting as not running, with the reason, for the API.
pub fn disabled(shared: &Shared, reason: &str) {
    if let Ok(mut s) = shared.snapshot.write() {
        *s = Snapshot {
            disabled: Some(reason.to_owned()),
            ..Snapshot::default()
        };
    }
}
