//! The metric data model shared by collectors, the pipeline, the exposition and (later) the store.
//!
//! It follows Prometheus: a *family* has a name, help text and a type, and holds samples; a
//! sample is a full sample name (equal to the family name except for histogram and summary
//! parts such as `_bucket`), a sorted label set and an `f64` value.

use std::fmt::Write as _;

/// The Prometheus metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A monotonically increasing value (name ends in `_total` by convention).
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// Cumulative histogram buckets with `_sum` and `_count`.
    Histogram,
    /// Quantiles with `_sum` and `_count`.
    Summary,
    /// No type information (plugins that omit `# TYPE`).
    Untyped,
}

impl MetricKind {
    /// The keyword used on a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
            MetricKind::Untyped => "untyped",
        }
    }
}

/// A label set: `(name, value)` pairs sorted by name, without duplicates.
pub type Labels = Vec<(String, String)>;

/// One sample of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Full sample name; usually the family name.
    pub name: String,
    /// Sorted labels.
    pub labels: Labels,
    /// The value.
    pub value: f64,
    /// Explicit timestamp in milliseconds, only for plugins that report one.
    pub timestamp_ms: Option<i64>,
}

/// A metric family: name, help, type and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Metric name.
    pub name: String,
    /// One-line help text.
    pub help: String,
    /// Metric type.
    pub kind: MetricKind,
    /// Samples of this family.
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty family.
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricKind) -> Self {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        }
    }

    /// An empty counter family.
    pub fn counter(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricKind::Counter)
    }

    /// An empty gauge family.
    pub fn gauge(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricKind::Gauge)
    }

    /// Adds a sample named after the family; labels are sorted here so callers may pass them
    /// in any order.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut labels: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        self.samples.push(Sample {
            name: self.name.clone(),
            labels,
            value,
            timestamp_ms: None,
        });
    }

    /// Builder form of [`Family::push`] for single-sample families.
    pub fn with(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        self.push(labels, value);
        self
    }
}

/// What one collector run produced, sent from the scheduler to the ingest task.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Name of the collector instance.
    pub collector: String,
    /// Collection time in milliseconds since the Unix epoch (the tick, not the finish time).
    pub timestamp_ms: i64,
    /// The families collected.
    pub families: Vec<Family>,
}

/// Formats a float as the Prometheus text format expects (`NaN`, `+Inf`, `-Inf`).
pub fn format_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == v.trunc() && v.abs() < 1e15 {
        // Integers print without an exponent or trailing ".0", like Go's strconv 'g' format.
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends one family in the Prometheus text format 0.0.4. Families without samples print
/// nothing, because `promtool check metrics` rejects a TYPE line with no samples.
pub fn render_family(out: &mut String, family: &Family) {
    if family.samples.is_empty() {
        return;
    }
    out.push_str("# HELP ");
    out.push_str(&family.name);
    out.push(' ');
    escape_help(out, &family.help);
    out.push_str("\n# TYPE ");
    out.push_str(&family.name);
    out.push(' ');
    out.push_str(family.kind.as_str());
    out.push('\n');
    for s in &family.samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        format_value(out, s.value);
        if let Some(ts) = s.timestamp_ms {
            let _ = write!(out, " {ts}");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_sorted_and_escaped() {
        let fam =
            Family::gauge("x", "help \\ with\nnewline").with(&[("b", "q\"\n\\"), ("a", "1")], 1.5);
        let mut s = String::new();
        render_family(&mut s, &fam);
        assert_eq!(
            s,
            "# HELP x help \\\\ with\\nnewline\n# TYPE x gauge\nx{a=\"1\",b=\"q\\\"\\n\\\\\"} 1.5\n"
        );
    }

    #[test]
    fn formats_special_values() {
        let mut s = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 3.0, -0.25, 1e20] {
            format_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "NaN +Inf -Inf 3 -0.25 100000000000000000000 ");
    }

    #[test]
    fn empty_family_renders_nothing() {
        let mut s = String::new();
        render_family(&mut s, &Family::counter("c_total", "c"));
        assert!(s.is_empty());
    }
}
