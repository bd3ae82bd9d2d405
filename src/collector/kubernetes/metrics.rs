//! A small accumulator of metric families for the Kubernetes collector: families are created
//! on first use and keep that order, and a missing value (`None`) adds nothing, which is how
//! absent Summary and object fields are skipped. A series seen twice keeps its first value:
//! for a moment after a pod is recreated under the same name the kubelet can report both, and
//! a duplicate series would make the whole exposition invalid.

use std::collections::{HashMap, HashSet};

use crate::model::{Family, MetricKind};

/// Families in first-use order.
#[derive(Debug, Default)]
pub struct Families {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    seen: HashSet<(usize, Vec<(String, String)>)>,
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
        let mut key: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        key.sort();
        if !self.seen.insert((i, key)) {
            self.duplicates += 1;
            return;
        }
        self.families[i].push(labels, value);
    }

    /// How many samples were dropped as duplicates of an earlier series.
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
                "dropped {} duplicate series (a pod reported twice)",
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
