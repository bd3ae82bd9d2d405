//! The storage seam of the query engine: the [`Source`] trait the store implements, and the
//! data types that cross it (label matchers, tiers, raw points and rollup buckets).
//!
//! The engine never talks to SQLite; it asks a `Source` for the series matching a selector over
//! a time range at one tier. [`crate::query::MemorySource`] is the in-memory implementation used
//! by tests and by the alerting engine's unit tests.

use regex::Regex;

use crate::model::Labels;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Prometheus' stale marker: a NaN with this exact bit pattern (`0x7ff0000000000002`) is
/// written when a series disappears, and ends the series at that timestamp. It is distinct
/// from the ordinary NaN that arithmetic produces (`0x7ff8000000000001` in Go,
/// `0x7ff8000000000000` in Rust), which is a value like any other.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// Whether `v` is the stale marker (compared by bits: every NaN compares unequal to itself).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN.to_bits()
}

/// How a [`LabelMatcher`] compares a label value.
#[derive(Debug, Clone)]
pub enum MatchOp {
    /// `=`: equal to the value.
    Equal,
    /// `!=`: not equal to the value.
    NotEqual,
    /// `=~`: fully matches the regex (anchored as `^(?:re)$`, like Prometheus).
    Regex(Regex),
    /// `!~`: does not fully match the regex.
    NotRegex(Regex),
}

/// One label matcher of a selector, e.g. `mode!="idle"` or `__name__=~"node_cpu.*"`.
///
/// As in Prometheus, a label a series does not have counts as the empty string: `{a=""}`
/// matches series without `a`, and `{a=~".*"}` matches every series.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// Label name (may be `__name__`).
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// The value or regex source as written in the query.
    pub value: String,
}

/// A matcher could not be built (invalid regex).
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?} in label matcher: {reason}")]
pub struct MatcherError {
    /// The regex as written.
    pub pattern: String,
    /// What the regex compiler said.
    pub reason: String,
}

impl LabelMatcher {
    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
        }
    }

    /// `name!="value"`.
    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::NotEqual,
            value: value.into(),
        }
    }

    /// `name=~"re"`, anchored at both ends like Prometheus.
    pub fn regex(name: impl Into<String>, re: &str) -> Result<Self, MatcherError> {
        Ok(LabelMatcher {
            name: name.into(),
            op: MatchOp::Regex(anchored(re)?),
            value: re.to_owned(),
        })
    }

    /// `name!~"re"`, anchored at both ends like Prometheus.
    pub fn not_regex(name: impl Into<String>, re: &str) -> Result<Self, MatcherError> {
        Ok(LabelMatcher {
            name: name.into(),
            op: MatchOp::NotRegex(anchored(re)?),
            value: re.to_owned(),
        })
    }

    /// Whether a label value (empty when the label is absent) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex(re) => re.is_match(value),
            MatchOp::NotRegex(re) => !re.is_match(value),
        }
    }

    /// Whether a series with these labels satisfies this matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(label_value(labels, &self.name))
    }
}

/// Compiles `re` anchored as Prometheus does (`^(?:re)$`).
fn anchored(re: &str) -> Result<Regex, MatcherError> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| MatcherError {
        pattern: re.to_owned(),
        reason: e.to_string(),
    })
}

/// The value of label `name`, or `""` when the series does not have it.
pub fn label_value<'a>(labels: &'a Labels, name: &str) -> &'a str {
    // Label sets are small (typically < 10 pairs); a linear scan beats a binary search here.
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Whether a series satisfies every matcher.
pub fn matches_all(matchers: &[LabelMatcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

/// A storage tier: raw samples, or a rollup whose points are buckets of `resolution_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Samples as collected.
    Raw,
    /// Buckets of this width in milliseconds (defaults: 5 min and 1 h).
    Rollup {
        /// Bucket width in milliseconds.
        resolution_ms: i64,
    },
}

impl Tier {
    /// Bucket width; 0 for raw.
    pub fn resolution_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::Rollup { resolution_ms } => resolution_ms,
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tier::Raw => f.write_str("raw"),
            Tier::Rollup { resolution_ms } => write!(f, "rollup {}s", resolution_ms / 1000),
        }
    }
}

/// What the engine needs to know about a tier to choose one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierInfo {
    /// The tier.
    pub tier: Tier,
    /// The earliest timestamp from which this tier holds complete data (its retention
    /// horizon), or `None` when nothing has been dropped yet. A query reaching before the
    /// horizon of the raw tier is answered from a rollup that still covers it.
    pub oldest_ms: Option<i64>,
}

/// One raw sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// Value (may be [`STALE_NAN`]).
    pub v: f64,
}

/// One rollup bucket: the aggregates of the raw samples with timestamps in
/// `(t - resolution, t]`.
///
/// Stale markers are not aggregated into `min`, `max`, `sum` or `count`; when the last raw
/// sample of the bucket is a stale marker, `last` is [`STALE_NAN`] so the series still ends.
/// Ordinary NaN values are aggregated like Prometheus' `*_over_time` functions treat them
/// (`min`/`max` ignore NaN unless every value is NaN; `sum` becomes NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// End of the bucket (inclusive), milliseconds since the Unix epoch.
    pub t: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Number of (non-stale) samples.
    pub count: u64,
    /// The last sample's value.
    pub last: f64,
}

/// The samples of one series returned by [`Source::select`].
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesData {
    /// Raw samples sorted by time, stale markers included.
    Raw(Vec<Point>),
    /// Rollup buckets sorted by end time.
    Rollup(Vec<Bucket>),
}

impl SeriesData {
    /// Number of samples or buckets.
    pub fn len(&self) -> usize {
        match self {
            SeriesData::Raw(p) => p.len(),
            SeriesData::Rollup(b) => b.len(),
        }
    }

    /// Whether there are no samples or buckets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One series: its full label set (including `__name__`, sorted by name) and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Sorted labels, `__name__` included.
    pub labels: Labels,
    /// Samples (raw tier) or buckets (rollup tiers).
    pub data: SeriesData,
}

/// A storage failure, passed through to the caller as an internal error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where the query engine reads series from. The store implements this; so does
/// [`crate::query::MemorySource`].
pub trait Source: Send + Sync {
    /// Every series that matches all `matchers` (one of them may be on `__name__`) and has
    /// samples (raw) or bucket end times (rollups) in `[start_ms, end_ms]`, with only those
    /// samples or buckets. Series should come sorted by labels so that results are
    /// deterministic (Prometheus' storage returns them in that order too).
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        tier: Tier,
    ) -> Result<Vec<Series>, SourceError>;

    /// The tiers available. Must include [`Tier::Raw`].
    fn tiers(&self) -> Vec<TierInfo>;

    /// Label sets of the series matching any of the matcher sets (for `/api/v1/series`).
    /// An empty `selectors` slice means every series.
    fn series(
        &self,
        selectors: &[Vec<LabelMatcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, SourceError>;

    /// Sorted label names of the matching series (for `/api/v1/labels`).
    fn label_names(
        &self,
        selectors: &[Vec<LabelMatcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, SourceError> {
        let mut names: Vec<String> = self
            .series(selectors, start_ms, end_ms)?
            .into_iter()
            .flat_map(|l| l.into_iter().map(|(k, _)| k))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Sorted values of label `name` among the matching series (for
    /// `/api/v1/label/<name>/values`).
    fn label_values(
        &self,
        name: &str,
        selectors: &[Vec<LabelMatcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, SourceError> {
        let mut values: Vec<String> = self
            .series(selectors, start_ms, end_ms)?
            .into_iter()
            .filter_map(|l| l.into_iter().find(|(k, _)| k == name).map(|(_, v)| v))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_distinct_from_ordinary_nan() {
        assert!(is_stale(STALE_NAN));
        assert!(STALE_NAN.is_nan());
        assert!(!is_stale(f64::NAN));
        assert!(!is_stale(-f64::NAN));
        assert!(!is_stale(1.0));
    }

    #[test]
    fn matchers_treat_missing_labels_as_empty_and_anchor_regexes() {
        let labels: Labels = vec![
            ("__name__".into(), "up".into()),
            ("job".into(), "node".into()),
        ];
        assert!(LabelMatcher::equal("job", "node").matches_labels(&labels));
        assert!(LabelMatcher::equal("missing", "").matches_labels(&labels));
        assert!(!LabelMatcher::not_equal("missing", "").matches_labels(&labels));
        assert!(LabelMatcher::regex("job", "no.*")
            .unwrap()
            .matches_labels(&labels));
        assert!(!LabelMatcher::regex("job", "no")
            .unwrap()
            .matches_labels(&labels));
        assert!(LabelMatcher::not_regex("job", "no")
            .unwrap()
            .matches_labels(&labels));
        assert!(LabelMatcher::regex("job", "(").is_err());
    }
}
