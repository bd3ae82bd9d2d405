//! Wiring of `automon run`: builds the parts from the config, spawns the tasks, handles
//! readiness, the watchdog, reloads (SIGHUP or a change to the config files) and shutdown.
//!
//! Shutdown follows one path: a root cancellation token is cancelled, every task observes it,
//! and the daemon waits a bounded time for them before returning.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alert;
use crate::collector::{self, CollectorSpec};
use crate::config::{self, Config, ConfigErrors, ConfigSource, LoadedConfig};
use crate::health::Health;
use crate::http::api::QueryApi;
use crate::http::{self, AppState, Limits};
use crate::pipeline::{self, Cache, Message, NullSink, Progress, Shared, Sink};
use crate::query::{Engine, Limits as QueryLimits, Source};
use crate::repair;
use crate::selfmetrics::SelfMetrics;
use crate::store::{Store, StoreConfig, StoreError, StoreSource};
use crate::systemd;

/// How long shutdown waits for tasks before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Age of the pipeline's last progress at which `/health` calls it stalled.
const STALL_AFTER: Duration = Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The listen address is unusable.
    #[error("{0}")]
    Listen(String),
    /// Binding the HTTP port failed.
    #[error("cannot listen on {addr}: {source} (is another automon or exporter using the port? set http.listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory is unusable.
    #[error("data directory {path}: {source} (set data_dir in the config or STATE_DIRECTORY)")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A collector could not be built.
    #[error("collector {name}: {message}")]
    Collector {
        /// Collector name.
        name: String,
        /// The error.
        message: String,
    },
    /// The store could not be opened.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The alerting database could not be opened.
    #[error(transparent)]
    Alerting(#[from] crate::alert::service::ServiceError),
    /// The repair database could not be opened.
    #[error(transparent)]
    Repair(#[from] crate::repair::service::ServiceError),
    /// Installing a signal handler failed.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Resolves the data directory: config value, else `$STATE_DIRECTORY` (systemd's
/// `StateDirectory=`; the first entry if several), else `$XDG_STATE_HOME/automon`, else
/// `~/.local/state/automon`, else `/var/lib/automon`.
pub fn data_dir(cfg: &Config) -> PathBuf {
    if let Some(d) = &cfg.data_dir {
        return d.clone();
    }
    if let Some(s) = std::env::var_os("STATE_DIRECTORY") {
        if let Some(first) = s.to_string_lossy().split(':').find(|p| !p.is_empty()) {
            return PathBuf::from(first);
        }
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("automon");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".local/state/automon");
    }
    PathBuf::from("/var/lib/automon")
}

/// Parses `http.listen` and enforces the rule that a non-loopback listener needs an API key
/// or an explicit opt-out.
pub fn check_listen(cfg: &Config) -> Result<SocketAddr, String> {
    let addr: SocketAddr = cfg.http.listen.parse().map_err(|e| {
        format!(
            "http.listen = {:?} is not a socket address ({e}); write e.g. \"127.0.0.1:9787\"",
            cfg.http.listen
        )
    })?;
    let has_key = cfg.http.api_key.as_deref().is_some_and(|k| !k.is_empty());
    if !addr.ip().is_loopback() && !has_key && !cfg.http.allow_unauthenticated {
        return Err(format!(
            "refusing to listen on non-loopback address {addr} without an API key: set \
             http.api_key_file (or http.api_key), or listen on 127.0.0.1, or set \
             http.allow_unauthenticated = true if the network is trusted"
        ));
    }
    Ok(addr)
}

/// Storage settings from the config.
pub fn store_config(cfg: &Config) -> StoreConfig {
    let s = &cfg.storage;
    StoreConfig {
        flush_interval: s.flush_interval.0,
        retention_raw: s.retention_raw.0,
        retention_5m: s.retention_5m.0,
        retention_1h: s.retention_1h.0,
        max_size_bytes: s.max_size.0,
        ..StoreConfig::default()
    }
}

/// Query limits from `[query]`.
pub fn query_limits(cfg: &Config) -> QueryLimits {
    QueryLimits {
        max_points: cfg.query.max_points,
        max_series: cfg.query.max_series,
        timeout: cfg.query.timeout.0,
    }
}

/// The engine of the HTTP API. Its timeout is also kept under `http.request_timeout`, so a
/// slow query ends with Prometheus' `timeout` error rather than the generic 408 of the
/// request timeout layer.
fn api_engine(cfg: &Config) -> Engine {
    let mut limits = query_limits(cfg);
    let request = cfg.http.request_timeout.0;
    let margin = Duration::from_millis(100).min(request / 2);
    limits.timeout = limits.timeout.min(request - margin);
    Engine::new(limits)
}

fn limits(cfg: &Config) -> Limits {
    Limits {
        request_timeout: cfg.http.request_timeout.0,
        max_body_bytes: cfg.http.max_body_bytes,
        max_concurrent: cfg.http.max_concurrent_requests,
    }
}

fn build_specs(cfg: &Config) -> Result<Vec<CollectorSpec>, DaemonError> {
    collector::build(cfg).map_err(|errs| {
        let (name, e) = errs.into_iter().next().unwrap_or_else(|| {
            (
                "?".into(),
                collector::CollectorError::Other("unknown".into()),
            )
        });
        DaemonError::Collector {
            name,
            message: e.to_string(),
        }
    })
}

/// The running collectors of one configuration generation.
struct CollectorSet {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    names: Vec<String>,
}

impl CollectorSet {
    fn spawn(
        specs: Vec<CollectorSpec>,
        tx: &mpsc::Sender<Message>,
        parent: &CancellationToken,
    ) -> Self {
        let cancel = parent.child_token();
        let names = specs.iter().map(|s| s.name.clone()).collect();
        // One scheduler task per interval: collectors that share it run as one round.
        let mut groups: std::collections::BTreeMap<Duration, Vec<CollectorSpec>> =
            std::collections::BTreeMap::new();
        for s in specs {
            groups.entry(s.interval).or_default().push(s);
        }
        let tasks = groups
            .into_values()
            .map(|g| tokio::spawn(collector::scheduler::run(g, tx.clone(), cancel.clone())))
            .collect();
        CollectorSet {
            cancel,
            tasks,
            names,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, t).await;
        }
    }
}

/// Watches the config directories (main file's and drop-ins') and secret files; each
/// relevant change sends one message.
fn watch_config(loaded: &LoadedConfig) -> Option<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    use notify::Watcher;
    let mut dirs: Vec<PathBuf> = loaded.watch_dirs.clone();
    for f in loaded.files.iter().chain(&loaded.secret_files) {
        if let Some(p) = f.parent() {
            dirs.push(p.to_path_buf());
        }
    }
    dirs.sort();
    dirs.dedup();
    let secrets = loaded.secret_files.clone();
    let (tx, rx) = mpsc::channel(16);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let relevant = ev
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "toml") || secrets.contains(p));
            if relevant && !matches!(ev.kind, notify::EventKind::Access(_)) {
                let _ = tx.try_send(());
            }
        }
    })
    .map_err(|e| tracing::warn!("config file watching unavailable: {e}"))
    .ok()?;
    let mut watching = 0;
    for d in &dirs {
        if d.is_dir()
            && watcher
                .watch(d, notify::RecursiveMode::NonRecursive)
                .is_ok()
        {
            watching += 1;
        }
    }
    if watching == 0 {
        return None;
    }
    Some((watcher, rx))
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(source: ConfigSource, loaded: LoadedConfig) -> Result<(), DaemonError> {
    let cfg = loaded.config.clone();
    let addr = check_listen(&cfg).map_err(DaemonError::Listen)?;
    let dir = data_dir(&cfg);
    std::fs::create_dir_all(&dir).map_err(|source| DaemonError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let specs = build_specs(&cfg)?;

    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), listen = %bound, data_dir = %dir.display(), "automon starting");

    let root = CancellationToken::new();
    let shared = Shared {
        cache: Arc::new(Cache::default()),
        health: Arc::new(Health::default()),
        metrics: Arc::new(SelfMetrics::new()),
        progress: Arc::new(Progress::default()),
    };
    shared.progress.touch();
    shared.metrics.record_reload(true);

    let store = if cfg.storage.enabled {
        let store = Store::open(&dir, store_config(&cfg)).map_err(DaemonError::Store)?;
        tracing::info!(path = %store.path().display(), "storage open");
        Some(Arc::new(store))
    } else {
        None
    };
    let sink: Box<dyn Sink> = match &store {
        Some(s) => Box::new(s.sink()),
        None => Box::new(NullSink),
    };

    let (tx, rx) = mpsc::channel(pipeline::CHANNEL_CAPACITY);
    let ingest = tokio::spawn(pipeline::ingest(rx, shared.clone(), sink));
    let store_stats = store.clone().map(|store| {
        let metrics = shared.metrics.clone();
        let c = root.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = t.tick() => metrics.record_store(&store.stats()),
                }
            }
        })
    });

    let alerting = alert::service::open_shared(&dir)?;
    let repairs = repair::service::open_shared(&dir)?;

    let api_key = Arc::new(RwLock::new(cfg.http.api_key.clone()));
    let query_source = store
        .clone()
        .map(|s| Arc::new(StoreSource::new(s)) as Arc<dyn Source>);
    let query_api = QueryApi::new(query_source, api_engine(&cfg));
    let state = AppState {
        shared: shared.clone(),
        api_key: api_key.clone(),
        stall_after: STALL_AFTER,
        query: query_api.clone(),
        alerting: Some(alerting.clone()),
        repairs: Some(repairs.clone()),
    };
    let app = http::router(state, limits(&cfg));
    let http_cancel = root.child_token();
    let http_task = tokio::spawn({
        let c = http_cancel.clone();
        async move {
            let r = axum::serve(listener, app)
                .with_graceful_shutdown(async move { c.cancelled().await })
                .await;
            if let Err(e) = r {
                tracing::error!("HTTP server failed: {e}");
            }
        }
    });

    let first_round_deadline =
        specs.iter().map(|s| s.timeout).max().unwrap_or_default() + Duration::from_secs(2);
    let mut collectors = CollectorSet::spawn(specs, &tx, &root);

    // Heartbeat through the same channel as the data, so the watchdog sees the pipeline
    // itself move, not just a timer.
    let heartbeat = tokio::spawn({
        let tx = tx.clone();
        let c = root.clone();
        async move {
            let mut t = tokio::time::interval(Duration::from_secs(1));
            let mut beats: u64 = 0;
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = t.tick() => {
                        let _ = tx.try_send(Message::Heartbeat);
                        beats += 1;
                        if beats % 60 == 0 {
                            crate::alloc::release_free_memory();
                        }
                    }
                }
            }
        }
    });

    // Watch before announcing readiness, so an edit made right after start is not missed.
    let mut watcher = watch_config(&loaded);

    // READY=1 only after the first round, so "active" means metrics are being served.
    let waited = tokio::time::Instant::now();
    while waited.elapsed() < first_round_deadline {
        let reported = shared.health.reported();
        if collectors.names.iter().all(|n| reported.contains(n)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Rules start after the first round, so their first evaluation sees fresh data rather
    // than resolving every restored alert against an empty head.
    let mut alert_gen = start_alerting(&loaded, &alerting, &store, &shared, bound, &root);
    let mut repair_gen = start_repairs(&loaded, &repairs, &alerting, &store, &shared);

    let summary = shared.health.summary();
    systemd::ready(&format!("serving on {bound}; {summary}"));
    tracing::info!("ready: {summary}");

    let watchdog = systemd::watchdog_interval().map(|wd| {
        let progress = shared.progress.clone();
        let c = root.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval((wd / 4).max(Duration::from_millis(100)));
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = t.tick() => {
                        if progress.age() < wd / 2 {
                            systemd::watchdog();
                        } else {
                            tracing::error!("pipeline made no progress for {:.1}s; withholding watchdog ping", progress.age().as_secs_f64());
                        }
                    }
                }
            }
        })
    });

    let status_task = tokio::spawn({
        let health = shared.health.clone();
        let c = root.clone();
        async move {
            let mut t = tokio::time::interval(Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = t.tick() => systemd::status(&format!("serving on {bound}; {}", health.summary())),
                }
            }
        }
    });

    let mut running_cfg = cfg;
    loop {
        let reload_reason = tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM received; shutting down"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT received; shutting down"); break; }
            _ = sighup.recv() => "SIGHUP",
            Some(()) = async { match watcher.as_mut() { Some((_, rx)) => rx.recv().await, None => std::future::pending().await } } => {
                // Editors write files in several steps; let the burst settle first.
                tokio::time::sleep(Duration::from_millis(300)).await;
                if let Some((_, rx)) = watcher.as_mut() { while rx.try_recv().is_ok() {} }
                "config file change"
            }
        };
        systemd::reloading();
        match reload(&source, &running_cfg) {
            Ok((new_loaded, specs)) => {
                let new_cfg = new_loaded.config.clone();
                if new_cfg.http.listen != running_cfg.http.listen {
                    tracing::warn!(
                        "http.listen changed to {}; this takes effect after a restart",
                        new_cfg.http.listen
                    );
                }
                if let Ok(mut k) = api_key.write() {
                    k.clone_from(&new_cfg.http.api_key);
                }
                if let Ok(mut e) = query_api.engine.write() {
                    *e = api_engine(&new_cfg);
                }
                if let Some(g) = alert_gen.take() {
                    g.stop().await;
                }
                alert_gen = start_alerting(&new_loaded, &alerting, &store, &shared, bound, &root);
                stop_repairs(repair_gen.take()).await;
                repair_gen = start_repairs(&new_loaded, &repairs, &alerting, &store, &shared);
                let old_names = collectors.names.clone();
                collectors.stop().await;
                collectors = CollectorSet::spawn(specs, &tx, &root);
                for gone in old_names.iter().filter(|n| !collectors.names.contains(n)) {
                    let _ = tx.send(Message::Forget(gone.clone())).await;
                }
                shared.metrics.record_reload(true);
                tracing::info!(
                    "configuration reloaded ({reload_reason}); {} collectors",
                    collectors.names.len()
                );
                running_cfg = new_cfg;
                watcher = watch_config(&new_loaded).or(watcher);
                systemd::reloaded(&format!("serving on {bound}; reloaded"));
            }
            Err(e) => {
                shared.metrics.record_reload(false);
                tracing::error!("configuration reload ({reload_reason}) rejected, keeping the running configuration:\n{e}");
                systemd::reloaded(&format!(
                    "serving on {bound}; last reload failed, running previous config"
                ));
            }
        }
    }

    systemd::stopping();
    root.cancel();
    stop_repairs(repair_gen.take()).await;
    if let Some(g) = alert_gen.take() {
        g.stop().await;
    }
    collectors.stop().await;
    for t in [heartbeat, status_task]
        .into_iter()
        .chain(watchdog)
        .chain(store_stats)
    {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, t).await;
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, http_task)
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
    drop(tx);
    if tokio::time::timeout(SHUTDOWN_GRACE, ingest).await.is_err() {
        tracing::warn!("ingest did not drain within {SHUTDOWN_GRACE:?}");
    }
    if let Some(store) = store {
        // The sink held by the ingest task is gone now, so this is the last handle: flush the
        // head log so a clean stop loses nothing.
        match Arc::try_unwrap(store) {
            Ok(store) => {
                let closed = tokio::task::spawn_blocking(move || store.close()).await;
                match closed {
                    Ok(Ok(())) => tracing::info!("storage flushed and closed"),
                    Ok(Err(e)) => tracing::error!("closing storage: {e}"),
                    Err(e) => tracing::error!("closing storage: {e}"),
                }
            }
            Err(store) => {
                if let Err(e) = store.flush() {
                    tracing::error!("flushing storage: {e}");
                }
            }
        }
    }
    tracing::info!("automon stopped");
    Ok(())
}

/// Starts alerting for `loaded`, or records in the API why it does not run.
fn start_alerting(
    loaded: &LoadedConfig,
    alerting: &alert::manager::Shared,
    store: &Option<Arc<Store>>,
    shared: &Shared,
    bound: SocketAddr,
    root: &CancellationToken,
) -> Option<alert::service::Generation> {
    let cfg = &loaded.config;
    if !cfg.alerting.enabled {
        alert::service::disabled(alerting, "alerting.enabled = false");
        return None;
    }
    let Some(store) = store else {
        if !loaded.rules.is_empty() {
            tracing::warn!("storage is disabled, so alert rules are not evaluated");
        }
        alert::service::disabled(
            alerting,
            "storage is disabled; rules are evaluated on stored data",
        );
        return None;
    };
    let engine = Engine::new(query_limits(cfg));
    match alert::service::start(
        loaded,
        alerting,
        store.clone(),
        shared.metrics.clone(),
        engine,
        bound,
        root,
    ) {
        Ok(g) => {
            tracing::info!(
                rules = loaded.rules.len(),
                receivers = cfg.alerting.receivers.len(),
                "alerting started"
            );
            Some(g)
        }
        Err(e) => {
            tracing::error!(error = %e, "alerting could not start");
            alert::service::disabled(alerting, &e.to_string());
            None
        }
    }
}

/// Starts the repair loop for `loaded`, or records in the API why it does not run.
fn start_repairs(
    loaded: &LoadedConfig,
    repairs: &repair::runner::Shared,
    alerting: &alert::manager::Shared,
    store: &Option<Arc<Store>>,
    shared: &Shared,
) -> Option<repair::runner::Running> {
    let cfg = &loaded.config;
    let Some(store) = store else {
        if !cfg.repair.rules.is_empty() {
            tracing::warn!("storage is disabled, so repair rules do not run");
        }
        repair::service::disabled(
            repairs,
            Some("storage is disabled; repair triggers are checked on stored data"),
            loaded,
        );
        return None;
    };
    if !cfg.repair.rules.is_empty() && !cfg.alerting.enabled {
        tracing::warn!(
            "alerting is disabled: repair rules triggered by alerts never act, and repair \
             notifications are not sent"
        );
    }
    let source: Arc<dyn Source> = Arc::new(StoreSource::new(store.clone()));
    let engine = Engine::new(query_limits(cfg));
    match repair::service::start(
        loaded,
        repairs,
        alerting,
        source,
        shared.metrics.clone(),
        engine,
    ) {
        Ok(Some(r)) => {
            tracing::info!(rules = cfg.repair.rules.len(), "repairs started");
            Some(r)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "repairs could not start");
            repair::service::disabled(repairs, Some(&e.to_string()), loaded);
            None
        }
    }
}

/// Stops a repair loop (actions in flight keep running; the next loop collects them).
async fn stop_repairs(running: Option<repair::runner::Running>) {
    if let Some(r) = running {
        let _ = tokio::task::spawn_blocking(move || r.stop()).await;
    }
}

/// Loads and validates the new configuration and builds its collectors; nothing running is
/// touched unless all of that succeeds.
fn reload(
    source: &ConfigSource,
    _old: &Config,
) -> Result<(LoadedConfig, Vec<CollectorSpec>), String> {
    let loaded = config::load(source).map_err(|e| e.to_string())?;
    check_listen(&loaded.config)?;
    let specs = build_specs(&loaded.config).map_err(|e| e.to_string())?;
    Ok((loaded, specs))
}

/// Whether `dir` exists (or can be created) and is writable, for `doctor`.
pub fn check_dir_writable(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        let parent = dir.ancestors().skip(1).find(|p| p.exists());
        return match parent {
            Some(p) if is_writable(p) => Ok(()),
            Some(p) => Err(format!(
                "does not exist and {} is not writable",
                p.display()
            )),
            None => Err("does not exist".into()),
        };
    }
    if !dir.is_dir() {
        return Err("is not a directory".into());
    }
    if is_writable(dir) {
        Ok(())
    } else {
        Err("is not writable by this user".into())
    }
}

fn is_writable(dir: &Path) -> bool {
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_ok()
}
