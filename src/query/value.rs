//! Query results (scalar, instant vector, range vector, string) and their serialization in
//! the exact JSON shape of Prometheus' HTTP API `data` object:
//! `{"resultType": "vector", "result": [{"metric": {...}, "value": [1700000000.5, "1.25"]}]}`.

use std::fmt::Write as _;

use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::model::Labels;
pub use crate::query::source::Point;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sorted labels.
    pub labels: Labels,
    /// Timestamp in milliseconds (the evaluation time).
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// An instant vector.
pub type Vector = Vec<Sample>;

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Sorted labels.
    pub labels: Labels,
    /// Points sorted by time.
    pub points: Vec<Point>,
}

/// A range vector: the result of a range query, or of an instant query for `x[5m]`.
pub type Matrix = Vec<RangeSeries>;

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number at a time.
    Scalar {
        /// Milliseconds.
        t: i64,
        /// Value.
        v: f64,
    },
    /// An instant vector.
    Vector(Vector),
    /// A range vector.
    Matrix(Matrix),
    /// A string at a time.
    String {
        /// Milliseconds.
        t: i64,
        /// The string.
        s: String,
    },
}

impl Value {
    /// Prometheus' name for the result type (`scalar`, `vector`, `matrix`, `string`).
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
            Value::String { .. } => "string",
        }
    }
}

/// Formats a sample value exactly like Prometheus' JSON API: Go's `strconv.FormatFloat` with
/// the shortest representation, `'e'` notation below 1e-6 and from 1e21 on, `NaN`, `+Inf`,
/// `-Inf`.
pub fn format_sample_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` gives the shortest round-trip digits ("1.5e-7"); Go writes the exponent
        // with a sign and at least two digits ("1.5e-07").
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((mant, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                let mut out = String::with_capacity(s.len() + 2);
                let _ = write!(out, "{mant}e{sign}");
                if digits.len() < 2 {
                    out.push('0');
                }
                out.push_str(digits);
                out
            }
            None => s,
        }
    } else {
        // Rust's Display for f64 is the shortest round-trip representation without an
        // exponent, which is what Go's 'f' format with precision -1 produces.
        format!("{v}")
    }
}

/// Unix seconds, which is how Prometheus writes timestamps in JSON: an integer when the
/// timestamp is a whole second, else a float with up to three decimals.
struct Seconds(i64);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_i64(self.0 / 1000)
        } else {
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

struct LabelsJson<'a>(&'a Labels);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `[<seconds>, "<value>"]`.
struct PairJson<'a> {
    t: i64,
    v: &'a str,
}

impl Serialize for PairJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(&Seconds(self.t))?;
        seq.serialize_element(self.v)?;
        seq.end()
    }
}

struct PointJson(Point);

impl Serialize for PointJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PairJson {
            t: self.0.t,
            v: &format_sample_value(self.0.v),
        }
        .serialize(s)
    }
}

struct PointsJson<'a>(&'a [Point]);

impl Serialize for PointsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&PointJson(*p))?;
        }
        seq.end()
    }
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Sample", 2)?;
        st.serialize_field("metric", &LabelsJson(&self.labels))?;
        st.serialize_field(
            "value",
            &PointJson(Point {
                t: self.t,
                v: self.v,
            }),
        )?;
        st.end()
    }
}

impl Serialize for RangeSeries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RangeSeries", 2)?;
        st.serialize_field("metric", &LabelsJson(&self.labels))?;
        st.serialize_field("values", &PointsJson(&self.points))?;
        st.end()
    }
}

struct ResultJson<'a>(&'a Value);

impl Serialize for ResultJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Scalar { t, v } => PointJson(Point { t: *t, v: *v }).serialize(s),
            Value::String { t, s: text } => PairJson { t: *t, v: text }.serialize(s),
            Value::Vector(v) => v.serialize(s),
            Value::Matrix(m) => m.serialize(s),
        }
    }
}

/// Serializes as Prometheus' `data` object: `{"resultType": ..., "result": ...}`.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("QueryData", 2)?;
        st.serialize_field("resultType", self.result_type())?;
        st.serialize_field("result", &ResultJson(self))?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_format_like_go() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e22, "1.5e+22"),
            (1e-6, "0.000001"),
            (1.5e-7, "1.5e-07"),
            (-1e-300, "-1e-300"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (v, want) in cases {
            assert_eq!(format_sample_value(v), want, "{v}");
        }
    }

    #[test]
    fn serializes_in_prometheus_shape() {
        let v = Value::Vector(vec![Sample {
            labels: labels(&[("__name__", "up"), ("job", "node")]),
            t: 1_700_000_000_500,
            v: f64::NAN,
        }]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"node"},"value":[1700000000.5,"NaN"]}]}"#
        );
        let m = Value::Matrix(vec![RangeSeries {
            labels: vec![],
            points: vec![
                Point { t: 1000, v: 1.0 },
                Point {
                    t: 2000,
                    v: f64::INFINITY,
                },
            ],
        }]);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"+Inf"]]}]}"#
        );
        let s = Value::Scalar { t: 1500, v: 2.0 };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"resultType":"scalar","result":[1.5,"2"]}"#
        );
        let s = Value::String {
            t: 0,
            s: "x".into(),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"resultType":"string","result":[0,"x"]}"#
        );
    }
}
