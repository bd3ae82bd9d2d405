//! A small accumulator of metric families for the Kubernetes collector: families are created
//! on first use and keep that order, and a missing value (`None`) adds nothing, which is how
//! absent Summary and object fields are skipped.
//!
//! A pod seen twice is reported once (see [`Families::first_sighting`]): for a moment after a
//! pod is recreated under the same name the kubelet can report both, and a duplicate series
//! would make the whole exposition invalid. Deduplicating per pod rather than per series
//! keeps the per-sample cost at one label sort.

use std::collections::{HashMap, HashSet};

use crate::model::{Family, MetricKind};

/// Families in first-use order.
#[derive(Debug, Default)]
pub struct Families {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    pods: HashSet<(String, String, &'static str)>,
    duplicates: usize,
    problems: Vec<String>,
}

impl Families {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a gauge sample if `value` is present.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: Option<f64>) {
        self.push(name, help, MetricKind::Gauge, labels, value);
    }

    /// Adds a counter sample if `value` is present.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: Option<f64>) {
        self.push(name, help, MetricKind::Counter, labels, value);
    }

    fn push(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricKind,
        labels: &[(&str, &str)],
        value: Option<f64>,
    ) {
        let Some(value) = value else { return };
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family::new(name, help, kind));
                self.index.insert(name.to_owned(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        self.families[i].push(labels, value);
    }

    /// Whether this is the first time `source` (kubelet, API server) reports this pod; a
    /// later report of the same pod is counted and should be skipped by the caller.
    pub fn first_sighting(&mut self, source: &'static str, namespace: &str, pod: &str) -> bool {
        let first = self
            .pods
            .insert((namespace.to_owned(), pod.to_owned(), source));
        if !first {
            self.duplicates += 1;
        }
        first
    }

    /// How many pods were skipped as duplicates of an earlier one.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Records a value that was present but could not be read (an unparsable quantity); the
    /// collection goes on without it and the operator sees it in the collector's note.
    pub fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// A one-line summary of the problems and duplicates, if any.
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(first) = self.problems.first() {
            parts.push(match self.problems.len() {
                1 => format!("skipped a value: {first}"),
                n => format!("skipped {n} values, first: {first}"),
            });
        }
        if self.duplicates > 0 {
            parts.push(format!(
                "skipped {} pods reported twice under the same name",
                self.duplicates
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The families, in first-use order.
    pub fn into_vec(self) -> Vec<Family> {
        self.families
    }
}
