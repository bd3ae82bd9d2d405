//! Silences: matchers plus a time window, an author and a comment, as in Alertmanager. A
//! silenced alert still exists (API, `ALERTS`), it is only not notified.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::matcher::{Matcher, MatcherJson, MatcherParseError};

/// A silence as stored and as the API shows it (Alertmanager's v2 shape, times in ms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Random id.
    pub id: String,
    /// All must match.
    pub matchers: Vec<MatcherJson>,
    /// Start, Unix ms.
    pub starts_at_ms: i64,
    /// End, Unix ms.
    pub ends_at_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last change, Unix ms.
    pub updated_at_ms: i64,
}

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Starts in the future.
    Pending,
    /// In force.
    Active,
    /// Over.
    Expired,
}

/// Why a silence is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// A matcher is invalid.
    #[error(transparent)]
    Matcher(#[from] MatcherParseError),
    /// No matchers: it would silence everything.
    #[error("a silence needs at least one matcher")]
    NoMatchers,
    /// Every matcher matches the empty string, so it would silence every alert.
    #[error("at least one matcher must not match the empty string, or the silence would mute every alert")]
    MatchesEverything,
    /// End before start.
    #[error("endsAt must be after startsAt")]
    BadWindow,
    /// Author missing.
    #[error("createdBy is required")]
    NoAuthor,
}

impl Silence {
    /// State at `now_ms`.
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms < self.ends_at_ms {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Checks the silence and compiles its matchers.
    pub fn compile(&self) -> Result<Vec<Matcher>, SilenceError> {
        if self.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        if self.ends_at_ms <= self.starts_at_ms {
            return Err(SilenceError::BadWindow);
        }
        if self.created_by.trim().is_empty() {
            return Err(SilenceError::NoAuthor);
        }
        let matchers = self
            .matchers
            .iter()
            .map(|m| Matcher::from_parts(&m.name, &m.value, m.is_regex, m.is_equal))
            .collect::<Result<Vec<_>, _>>()?;
        let empty = BTreeMap::new();
        if matchers.iter().all(|m| m.matches(&empty)) {
            return Err(SilenceError::MatchesEverything);
        }
        Ok(matchers)
    }
}

/// A random-enough id: time, process and a counter through FNV. Uniqueness, not secrecy,
/// is what matters here.
pub fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = format!(
        "{nanos}:{}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut labels = BTreeMap::new();
    labels.insert(seed, String::new());
    let a = super::fingerprint(&labels);
    labels.insert("salt".into(), String::new());
    let b = super::fingerprint(&labels);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Active silences, compiled, for muting.
#[derive(Debug, Default)]
pub struct ActiveSilences {
    list: Vec<(String, Vec<Matcher>, i64, i64)>,
}

impl ActiveSilences {
    /// Compiles the silences that are not expired at `now_ms` (invalid ones are skipped; the
    /// API refuses them, so only a hand-edited database has any).
    pub fn new(silences: &[Silence], now_ms: i64) -> Self {
        let list = silences
            .iter()
            .filter(|s| s.state(now_ms) != SilenceState::Expired)
            .filter_map(|s| {
                s.compile()
                    .ok()
                    .map(|m| (s.id.clone(), m, s.starts_at_ms, s.ends_at_ms))
            })
            .collect();
        ActiveSilences { list }
    }

    /// Ids of the silences muting `labels` at `now_ms`.
    pub fn silenced_by(&self, labels: &BTreeMap<String, String>, now_ms: i64) -> Vec<String> {
        self.list
            .iter()
            .filter(|(_, m, start, end)| {
                *start <= now_ms && now_ms < *end && super::matcher::matches_all(m, labels)
            })
            .map(|(id, ..)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(matchers: Vec<MatcherJson>, start: i64, end: i64) -> Silence {
        Silence {
            id: new_id(),
            matchers,
            starts_at_ms: start,
            ends_at_ms: end,
            created_by: "alice".into(),
            comment: "maintenance".into(),
            updated_at_ms: 0,
        }
    }

    fn m(name: &str, value: &str, is_regex: bool) -> MatcherJson {
        MatcherJson {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal: true,
        }
    }

    #[test]
    fn mutes_only_inside_its_window() {
        let s = silence(vec![m("alertname", "DiskFull", false)], 100, 200);
        let active = ActiveSilences::new(std::slice::from_ref(&s), 50);
        let l: BTreeMap<String, String> =
            [("alertname".to_string(), "DiskFull".to_string())].into();
        assert!(active.silenced_by(&l, 50).is_empty(), "pending");
        assert_eq!(active.silenced_by(&l, 150), vec![s.id.clone()]);
        assert!(active.silenced_by(&l, 200).is_empty(), "expired");
        assert_eq!(s.state(250), SilenceState::Expired);
    }

    #[test]
    fn refuses_silences_that_mute_everything() {
        assert_eq!(
            silence(vec![], 0, 1).compile().unwrap_err(),
            SilenceError::NoMatchers
        );
        assert_eq!(
            silence(vec![m("a", ".*", true)], 0, 1)
                .compile()
                .unwrap_err(),
            SilenceError::MatchesEverything
        );
        assert_eq!(
            silence(vec![m("a", "b", false)], 5, 1)
                .compile()
                .unwrap_err(),
            SilenceError::BadWindow
        );
        assert!(matches!(
            silence(vec![m("a", "(", true)], 0, 1)
                .compile()
                .unwrap_err(),
            SilenceError::Matcher(_)
        ));
    }

    #[test]
    fn ids_are_unique() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }
}
