//! The in-memory series index: id ↔ (name, labels), and postings by metric name. Loaded from
//! the `series` table at open; the writer adds new series; readers match selectors against it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::fxhash::{FxHashMap, FxHasher};

use crate::model::Labels;

/// Stable numeric id of a series (its `series.id` row).
pub type SeriesId = u32;

/// Name and labels of one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesMeta {
    /// Metric name.
    pub name: String,
    /// Sorted labels, without `__name__`.
    pub labels: Labels,
}

/// All known series.
#[derive(Debug, Default)]
pub struct SeriesIndex {
    /// Meta by id; ids are dense enough that a map keeps this simple.
    meta: FxHashMap<SeriesId, SeriesMeta>,
    /// Hash of (name, labels) → ids with that hash (collisions compared in full).
    by_hash: FxHashMap<u64, Vec<SeriesId>>,
    /// Metric name → ids.
    by_name: HashMap<String, Vec<SeriesId>>,
    max_id: SeriesId,
}

/// Hash of a series identity.
pub fn series_hash(name: &str, labels: &[(String, String)]) -> u64 {
    let mut h = FxHasher::default();
    name.hash(&mut h);
    for (k, v) in labels {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

impl SeriesIndex {
    /// Looks up a series.
    pub fn get(&self, name: &str, labels: &[(String, String)]) -> Option<SeriesId> {
        let h = series_hash(name, labels);
        self.by_hash.get(&h)?.iter().copied().find(|id| {
            self.meta
                .get(id)
                .is_some_and(|m| m.name == name && m.labels == labels)
        })
    }

    /// Adds a series with a known id (from the table or just inserted).
    pub fn insert(&mut self, id: SeriesId, meta: SeriesMeta) {
        let h = series_hash(&meta.name, &meta.labels);
        self.by_hash.entry(h).or_default().push(id);
        self.by_name.entry(meta.name.clone()).or_default().push(id);
        self.meta.insert(id, meta);
        self.max_id = self.max_id.max(id);
    }

    /// Meta of a series.
    pub fn meta(&self, id: SeriesId) -> Option<&SeriesMeta> {
        self.meta.get(&id)
    }

    /// Ids of series with this metric name.
    pub fn ids_for_name(&self, name: &str) -> &[SeriesId] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every series.
    pub fn iter(&self) -> impl Iterator<Item = (SeriesId, &SeriesMeta)> {
        self.meta.iter().map(|(id, m)| (*id, m))
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Every metric name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Highest id in use.
    pub fn max_id(&self) -> SeriesId {
        self.max_id
    }
}

/// Canonical text form of labels stored in the `series` table (JSON object, sorted keys).
pub fn labels_to_json(labels: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Parses [`labels_to_json`] output.
pub fn labels_from_json(s: &str) -> Option<Labels> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let obj = v.as_object()?;
    let mut out: Labels = obj
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect();
    out.sort();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_get() {
        let mut ix = SeriesIndex::default();
        let l = vec![("cpu".to_string(), "0".to_string())];
        ix.insert(
            1,
            SeriesMeta {
                name: "a".into(),
                labels: l.clone(),
            },
        );
        assert_eq!(ix.get("a", &l), Some(1));
        assert_eq!(ix.get("a", &[]), None);
        assert_eq!(ix.ids_for_name("a"), &[1]);
        assert_eq!(labels_from_json(&labels_to_json(&l)), Some(l));
    }
}
