//! The outbox dispatcher: delivers the notifications [`super::db::Db`] holds, with
//! per-integration concurrency, exponential backoff with jitter, and giving up after
//! `max_age` (logged and counted). Delivery is at least once: a row is marked sent only after
//! the receiver accepted it, so a crash in between re-sends it after the restart with the
//! same dedup key.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::db::{Db, OutboxRow};
use super::notify::{Notification, Notifier, NotifyError};
use crate::config::alerting::OutboxConfig;

/// Longest the dispatcher sleeps without looking at the table (rows written by another
/// process, clock jumps).
const MAX_IDLE: Duration = Duration::from_secs(5);

/// Current Unix time in ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Delay before attempt `attempts + 1`: `min * 2^attempts` capped at `max`, then "equal
/// jitter" (half fixed, half random) so receivers coming back from an outage are not hit by
/// every automon of a fleet in the same second.
pub fn backoff(attempts: u32, min: Duration, max: Duration, random: f64) -> Duration {
    let base = min.as_secs_f64() * 2f64.powi(attempts.min(30) as i32);
    let capped = base.min(max.as_secs_f64());
    Duration::from_secs_f64(capped * (0.5 + 0.5 * random.clamp(0.0, 1.0)))
}

/// A small xorshift generator for jitter; quality does not matter, independence between
/// daemons does (seeded from the clock and the pid).
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let seed = (now_ms() as u64) ^ (u64::from(std::process::id()) << 32) | 1;
        Jitter(seed)
    }

    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The dispatcher's inputs.
pub struct Dispatcher {
    /// The state database.
    pub db: Arc<Db>,
    /// Integration id → notifier.
    pub notifiers: BTreeMap<String, Arc<dyn Notifier>>,
    /// Concurrency, backoff, age limit, send timeout.
    pub settings: OutboxConfig,
    /// Woken when rows are enqueued.
    pub wake: Arc<Notify>,
    /// Where to count.
    pub metrics: Arc<crate::selfmetrics::SelfMetrics>,
}

/// What one attempt came to.
enum Attempt {
    Sent(String),
    Failed(NotifyError),
}

impl Dispatcher {
    /// Runs until `cancel`; in-flight sends are awaited (each is bounded by its timeout).
    pub async fn run(self, cancel: CancellationToken) {
        let mut tasks: JoinSet<(OutboxRow, Attempt)> = JoinSet::new();
        let mut in_flight: HashSet<i64> = HashSet::new();
        let mut per_integration: BTreeMap<String, usize> = BTreeMap::new();
        let mut jitter = Jitter::new();
        loop {
            let now = now_ms();
            match self.due(now).await {
                Ok(rows) => {
                    for row in rows {
                        if in_flight.contains(&row.id) {
                            continue;
                        }
                        let busy = per_integration.get(&row.integration).copied().unwrap_or(0);
                        if busy >= self.settings.concurrency.max(1) {
                            continue;
                        }
                        let Some(notifier) = self.notifiers.get(&row.integration).cloned() else {
                            self.give_up(
                                &row,
                                "unknown_integration",
                                "receiver integration is no longer configured",
                            )
                            .await;
                            continue;
                        };
                        let notification: Notification = match serde_json::from_str(&row.payload) {
                            Ok(n) => n,
                            Err(e) => {
                                self.give_up(
                                    &row,
                                    "permanent",
                                    &format!("stored notification does not decode: {e}"),
                                )
                                .await;
                                continue;
                            }
                        };
                        in_flight.insert(row.id);
                        *per_integration.entry(row.integration.clone()).or_default() += 1;
                        let timeout = self.settings.send_timeout.0;
                        tasks.spawn(async move {
                            let attempt =
                                match tokio::time::timeout(timeout, notifier.send(&notification))
                                    .await
                                {
                                    Ok(Ok(d)) => Attempt::Sent(d.detail),
                                    Ok(Err(e)) => Attempt::Failed(e),
                                    Err(_) => Attempt::Failed(NotifyError::Retryable(format!(
                                        "no answer within {}s",
                                        timeout.as_secs_f64()
                                    ))),
                                };
                            (row, attempt)
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the outbox failed"),
            }
            self.update_gauges().await;

            let sleep_for = match self.next_due().await {
                Some(next) => Duration::from_millis(
                    (next - now_ms()).clamp(0, MAX_IDLE.as_millis() as i64) as u64,
                ),
                None => MAX_IDLE,
            };
            // Rows of a busy integration are due but wait for a free slot: the join below
            // wakes the loop when one finishes.
            let sleep_for = if sleep_for.is_zero() && !tasks.is_empty() {
                MAX_IDLE
            } else {
                sleep_for
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep_for) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    match done {
                        Ok((row, attempt)) => {
                            in_flight.remove(&row.id);
                            if let Some(n) = per_integration.get_mut(&row.integration) {
                                *n = n.saturating_sub(1);
                            }
                            self.record(&row, attempt, &mut jitter).await;
                        }
                        Err(e) => tracing::error!(error = %e, "notification task failed"),
                    }
                }
            }
        }
        // Finish what is in flight so a delivered notification is marked sent; anything
        // unfinished stays pending and is sent after the restart.
        let drain = async {
            while let Some(done) = tasks.join_next().await {
                if let Ok((row, attempt)) = done {
                    self.record(&row, attempt, &mut jitter).await;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), drain).await;
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T, super::db::DbError> + Send + 'static,
    ) -> Result<T, super::db::DbError> {
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(r) => r,
            Err(_) => Err(super::db::DbError::Poisoned),
        }
    }

    async fn due(&self, now: i64) -> Result<Vec<OutboxRow>, super::db::DbError> {
        self.db(move |db| db.due(now, 256)).await
    }

    async fn next_due(&self) -> Option<i64> {
        self.db(|db| db.next_due_ms()).await.ok().flatten()
    }

    async fn update_gauges(&self) {
        let Ok(stats) = self.db(|db| db.outbox_stats()).await else {
            return;
        };
        let m = &self.metrics.alerts;
        for id in self.notifiers.keys() {
            m.queued
                .with_label_values(&[id])
                .set(stats.pending.get(id).copied().unwrap_or(0) as f64);
        }
        let age = stats
            .oldest_pending_ms
            .map_or(0.0, |o| ((now_ms() - o).max(0)) as f64 / 1000.0);
        m.oldest_age.set(age);
    }

    async fn give_up(&self, row: &OutboxRow, reason: &'static str, error: &str) {
        tracing::error!(
            integration = %row.integration,
            group = %row.group_key,
            dedup_key = %row.dedup_key,
            attempts = row.attempts,
            reason,
            error,
            "notification given up"
        );
        self.metrics
            .alerts
            .failed
            .with_label_values(&[&row.integration, reason])
            .inc();
        let (id, message, now) = (row.id, format!("{reason}: {error}"), now_ms());
        if let Err(e) = self.db(move |db| db.mark_failed(id, &message, now)).await {
            tracing::error!(error = %e, "recording a failed notification failed");
        }
    }

    async fn record(&self, row: &OutboxRow, attempt: Attempt, jitter: &mut Jitter) {
        let m = &self.metrics.alerts;
        let now = now_ms();
        match attempt {
            Attempt::Sent(detail) => {
                m.sent.with_label_values(&[&row.integration]).inc();
                tracing::info!(integration = %row.integration, group = %row.group_key, dedup_key = %row.dedup_key, answer = %detail, "notification delivered");
                let id = row.id;
                if let Err(e) = self.db(move |db| db.mark_sent(id, &detail, now)).await {
                    // It will be sent again: at least once, never lost.
                    tracing::error!(error = %e, "recording a delivered notification failed");
                }
            }
            Attempt::Failed(err) => {
                m.attempts_failed
                    .with_label_values(&[&row.integration])
                    .inc();
                let age = Duration::from_millis((now - row.created_ms).max(0) as u64);
                if !err.is_retryable() {
                    self.give_up(row, "permanent", &err.to_string()).await;
                } else if age >= self.settings.max_age.0 {
                    let message = format!("still failing after {}s: {err}", age.as_secs());
                    self.give_up(row, "expired", &message).await;
                } else {
                    let delay = backoff(
                        row.attempts,
                        self.settings.min_backoff.0,
                        self.settings.max_backoff.0,
                        jitter.next(),
                    );
                    tracing::warn!(integration = %row.integration, attempt = row.attempts + 1, retry_in_s = delay.as_secs_f64(), error = %err, "notification attempt failed");
                    let (id, message, next) =
                        (row.id, err.to_string(), now + delay.as_millis() as i64);
                    if let Err(e) = self.db(move |db| db.mark_retry(id, &message, next)).await {
                        tracing::error!(error = %e, "recording a failed attempt failed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(backoff(0, min, max, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(3, min, max, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(20, min, max, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(3, min, max, 0.0), Duration::from_secs(4));
        let mut j = Jitter::new();
        let draws: Vec<f64> = (0..100).map(|_| j.next()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
