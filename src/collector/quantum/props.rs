//! Qiskit `BackendProperties` JSON (IBM Quantum calibration data) into a [`Calibration`] in
//! base units, parsed defensively.
//!
//! The format has drifted across device generations, so everything below the top level is
//! optional: Falcon-era documents give T1 in `"µs"`, later ones in `"us"`; Heron documents
//! have no qubit frequency; old ones name no gates; dates carry whatever offset the
//! calibration system had (`-05:00` and `-04:00` in one file across a DST change, fractional
//! seconds in newer ones). Each value is converted by its own `unit` field; a value whose unit
//! is unknown or missing where one is needed is skipped and counted, never guessed. The
//! document as a whole is *malformed* (an error) only when it cannot be what it claims: not
//! JSON, no `last_update_date` to judge freshness by, or no qubit or gate data at all.

use std::collections::HashSet;

use serde::Deserialize;

/// A document that cannot be used at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PropsError {
    /// Not JSON, or the top level is not the expected object.
    #[error("not a BackendProperties document: {0}")]
    Json(String),
    /// Freshness cannot be judged without the document's date.
    #[error("no last_update_date")]
    NoDate,
    /// The date is there but unreadable.
    #[error("last_update_date {0:?} is not an RFC 3339 date")]
    BadDate(String),
    /// Neither qubit nor gate properties: nothing to monitor, most likely a wrong document.
    #[error("no qubit or gate properties")]
    Empty,
}

/// One qubit's calibration in base units; `None` where the document has no usable value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qubit {
    /// Energy relaxation time, seconds.
    pub t1_seconds: Option<f64>,
    /// Dephasing time, seconds.
    pub t2_seconds: Option<f64>,
    /// Qubit frequency, hertz.
    pub frequency_hertz: Option<f64>,
    /// Anharmonicity, hertz (negative for transmons).
    pub anharmonicity_hertz: Option<f64>,
    /// Probability of reading the wrong state, 0..1.
    pub readout_error: Option<f64>,
    /// P(measure 0 | prepared 1).
    pub prob_meas0_prep1: Option<f64>,
    /// P(measure 1 | prepared 0).
    pub prob_meas1_prep0: Option<f64>,
    /// Readout duration, seconds.
    pub readout_length_seconds: Option<f64>,
    /// The vendor's `operational` flag, when present.
    pub operational: Option<bool>,
}

/// One gate's calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Gate type (`cx`, `sx`, `cz`, ...).
    pub gate: String,
    /// Qubits it acts on, in order (`cx 0_1` differs from `cx 1_0`).
    pub qubits: Vec<u32>,
    /// Error rate, 0..1; 1 marks a broken gate.
    pub error: Option<f64>,
    /// Duration, seconds.
    pub length_seconds: Option<f64>,
    /// The vendor's `operational` flag, when present.
    pub operational: Option<bool>,
}

impl Gate {
    /// Qubits joined as in Qiskit's gate names (`0_1`), the `qubits` label value.
    pub fn qubits_label(&self) -> String {
        let parts: Vec<String> = self.qubits.iter().map(u32::to_string).collect();
        parts.join("_")
    }

    /// Broken: `gate_error` of 1 (IBM's marker for a disabled coupler) or `operational` false.
    pub fn is_operational(&self) -> bool {
        self.operational != Some(false) && !self.error.is_some_and(|e| e >= 1.0)
    }
}

/// A parsed document in base units.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// `backend_name`, if given.
    pub backend_name: Option<String>,
    /// `backend_version`, if given.
    pub backend_version: Option<String>,
    /// `last_update_date` as Unix seconds.
    pub last_update: f64,
    /// Per qubit, indexed by position in the document.
    pub qubits: Vec<Qubit>,
    /// Gates, in document order, first of each (gate, qubits) pair.
    pub gates: Vec<Gate>,
    /// Values skipped (unknown unit, non-numeric value, ...), with up to a few examples.
    pub skipped: Skipped,
}

/// Values left out of a document, for the collector's note.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Skipped {
    /// How many.
    pub count: usize,
    /// The first few reasons.
    pub examples: Vec<String>,
}

impl Skipped {
    const MAX_EXAMPLES: usize = 3;

    fn add(&mut self, why: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < Self::MAX_EXAMPLES {
            self.examples.push(why());
        }
    }
}

#[derive(Deserialize)]
struct RawDoc {
    backend_name: Option<String>,
    backend_version: Option<String>,
    last_update_date: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    qubits: Vec<Vec<RawNduv>>,
    #[serde(default, deserialize_with = "null_as_default")]
    gates: Vec<RawGate>,
}

/// Qiskit's `Nduv`: name, date, unit, value. Every field is optional here; `value` is any
/// JSON so that a string or null in one entry skips that entry instead of the document.
#[derive(Deserialize)]
struct RawNduv {
    name: Option<String>,
    unit: Option<String>,
    value: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawGate {
    gate: Option<String>,
    name: Option<String>,
    qubits: Option<Vec<serde_json::Value>>,
    #[serde(default, deserialize_with = "null_as_default")]
    parameters: Vec<RawNduv>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What a property's unit must measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Time,
    Frequency,
    /// Probabilities and flags: no unit, or an explicit dimensionless spelling.
    Ratio,
}

/// How to get to base units: multiply by a factor, or divide by one. Dividing by 1e9 rather
/// than multiplying by 1e-9 (which is not exact in binary) gives the correctly rounded result,
/// so 300 ns is exactly the f64 nearest 3e-7 s, as a reader of the document would expect.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    Mul(f64),
    Div(f64),
}

impl Scale {
    fn apply(self, v: f64) -> f64 {
        match self {
            Scale::Mul(f) => v * f,
            Scale::Div(f) => v / f,
        }
    }
}

/// The scale to base units of `unit` for a value of `dim`, or `None` if the unit is unknown
/// or measures something else. Spellings seen in real documents and plausible variants.
fn unit_scale(dim: Dimension, unit: Option<&str>) -> Option<Scale> {
    use Scale::{Div, Mul};
    let unit = unit.map(str::trim);
    match dim {
        Dimension::Ratio => match unit {
            None | Some("" | "1" | "ratio") => Some(Mul(1.0)),
            Some("%") => Some(Div(100.0)),
            _ => None,
        },
        Dimension::Time => match unit? {
            "s" | "sec" | "secs" | "second" | "seconds" => Some(Mul(1.0)),
            "ms" | "msec" => Some(Div(1e3)),
            // "µs" with MICRO SIGN (U+00B5, what IBM writes) and GREEK SMALL LETTER MU.
            "us" | "µs" | "μs" | "usec" => Some(Div(1e6)),
            "ns" | "nsec" => Some(Div(1e9)),
            "ps" => Some(Div(1e12)),
            _ => None,
        },
        Dimension::Frequency => match unit?.to_ascii_lowercase().as_str() {
            "hz" => Some(Mul(1.0)),
            "khz" => Some(Mul(1e3)),
            "mhz" => Some(Mul(1e6)),
            "ghz" => Some(Mul(1e9)),
            _ => None,
        },
    }
}

/// Converts one `Nduv` of dimension `dim`, or says why not.
fn convert(p: &RawNduv, dim: Dimension) -> Result<f64, String> {
    let raw = match &p.value {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        // Flags sometimes come as booleans.
        Some(serde_json::Value::Bool(b)) if dim == Dimension::Ratio => Some(f64::from(*b)),
        _ => None,
    };
    let Some(raw) = raw else {
        return Err(format!("value {} is not a number", describe(&p.value)));
    };
    let Some(scale) = unit_scale(dim, p.unit.as_deref()) else {
        return Err(match &p.unit {
            Some(u) => format!("unknown unit {u:?}"),
            None => "no unit".to_owned(),
        });
    };
    Ok(scale.apply(raw))
}

fn describe(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "missing".to_owned(),
        Some(v) => {
            let mut s = v.to_string();
            s.truncate(40);
            s
        }
    }
}

/// Parses a document. Values that cannot be used are skipped and counted in
/// [`Calibration::skipped`]; see the module documentation for what makes a whole document bad.
pub fn parse(bytes: &[u8]) -> Result<Calibration, PropsError> {
    let raw: RawDoc = serde_json::from_slice(bytes).map_err(|e| PropsError::Json(e.to_string()))?;
    let date = raw.last_update_date.ok_or(PropsError::NoDate)?;
    let last_update = parse_rfc3339(&date).ok_or_else(|| PropsError::BadDate(date.clone()))?;
    if raw.qubits.is_empty() && raw.gates.is_empty() {
        return Err(PropsError::Empty);
    }
    let mut skipped = Skipped::default();

    let mut qubits = Vec::with_capacity(raw.qubits.len());
    for (i, props) in raw.qubits.iter().enumerate() {
        let mut q = Qubit::default();
        for p in props {
            let Some(name) = p.name.as_deref() else {
                skipped.add(|| format!("qubit {i}: a property without a name"));
                continue;
            };
            let (slot, dim) = match name {
                "T1" => (&mut q.t1_seconds, Dimension::Time),
                "T2" => (&mut q.t2_seconds, Dimension::Time),
                "frequency" => (&mut q.frequency_hertz, Dimension::Frequency),
                "anharmonicity" => (&mut q.anharmonicity_hertz, Dimension::Frequency),
                "readout_error" => (&mut q.readout_error, Dimension::Ratio),
                "prob_meas0_prep1" => (&mut q.prob_meas0_prep1, Dimension::Ratio),
                "prob_meas1_prep0" => (&mut q.prob_meas1_prep0, Dimension::Ratio),
                "readout_length" => (&mut q.readout_length_seconds, Dimension::Time),
                "operational" => {
                    match convert(p, Dimension::Ratio) {
                        Ok(v) => q.operational = Some(v != 0.0),
                        Err(why) => skipped.add(|| format!("qubit {i} operational: {why}")),
                    }
                    continue;
                }
                // Vendors add properties over time; unknown ones are not errors.
                _ => continue,
            };
            match convert(p, dim) {
                // The first value of a name wins, as in Qiskit's own lookup.
                Ok(v) if slot.is_none() => *slot = Some(v),
                Ok(_) => {}
                Err(why) => skipped.add(|| format!("qubit {i} {name}: {why}")),
            }
        }
        qubits.push(q);
    }

    let mut gates = Vec::with_capacity(raw.gates.len());
    let mut seen: HashSet<(String, Vec<u32>)> = HashSet::with_capacity(raw.gates.len());
    for (i, g) in raw.gates.iter().enumerate() {
        // Old documents have no `name`; `gate` + `qubits` identify a gate anyway.
        let label = || g.name.clone().unwrap_or_else(|| format!("gate #{i}"));
        let Some(kind) = g.gate.as_deref().filter(|k| !k.is_empty()) else {
            skipped.add(|| format!("{}: no gate type", label()));
            continue;
        };
        let qs: Option<Vec<u32>> = g.qubits.as_ref().and_then(|qs| {
            qs.iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        });
        let Some(qs) = qs.filter(|qs| !qs.is_empty()) else {
            skipped.add(|| format!("{}: no valid qubit list", label()));
            continue;
        };
        if !seen.insert((kind.to_owned(), qs.clone())) {
            skipped.add(|| format!("{}: duplicate of an earlier {kind} gate", label()));
            continue;
        }
        let mut gate = Gate {
            gate: kind.to_owned(),
            qubits: qs,
            error: None,
            length_seconds: None,
            operational: None,
        };
        for p in &g.parameters {
            let (slot, dim) = match p.name.as_deref() {
                Some("gate_error") => (&mut gate.error, Dimension::Ratio),
                Some("gate_length") => (&mut gate.length_seconds, Dimension::Time),
                Some("operational") => {
                    match convert(p, Dimension::Ratio) {
                        Ok(v) => gate.operational = Some(v != 0.0),
                        Err(why) => skipped.add(|| format!("{} operational: {why}", label())),
                    }
                    continue;
                }
                _ => continue,
            };
            match convert(p, dim) {
                Ok(v) if slot.is_none() => *slot = Some(v),
                Ok(_) => {}
                Err(why) => skipped.add(|| format!("{}: {why}", label())),
            }
        }
        gates.push(gate);
    }

    Ok(Calibration {
        backend_name: raw.backend_name,
        backend_version: raw.backend_version,
        last_update,
        qubits,
        gates,
        skipped,
    })
}

/// Parses an RFC 3339 / ISO 8601 date-time into Unix seconds: `2021-03-15T00:40:24-04:00`,
/// `...Z`, `...+0200`, fractional seconds, a space instead of `T`. A date without an offset
/// is taken as UTC (Python's `isoformat()` of a naive datetime writes none).
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // 60 allows a leap second.
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        fraction = format!("0.{}", &after_dot[..digits]).parse().ok()?;
        rest = &after_dot[digits..];
    }
    let offset_seconds = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = &rest[1..];
            let (h, m) = match hm.len() {
                5 if hm.as_bytes()[2] == b':' => (hm.get(0..2)?, hm.get(3..5)?),
                4 => (hm.get(0..2)?, hm.get(2..4)?),
                2 => (hm, "00"),
                _ => return None,
            };
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(secs as f64 + fraction)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_with_offsets_fractions_and_zones() {
        // 2021-03-15T04:40:24Z = 1615783224.
        let utc = 1_615_783_224.0;
        assert_eq!(parse_rfc3339("2021-03-15T00:40:24-04:00"), Some(utc));
        assert_eq!(parse_rfc3339("2021-03-15T04:40:24Z"), Some(utc));
        assert_eq!(parse_rfc3339("2021-03-15T04:40:24+00:00"), Some(utc));
        assert_eq!(parse_rfc3339("2021-03-15T06:40:24+0200"), Some(utc));
        assert_eq!(parse_rfc3339("2021-03-15 04:40:24"), Some(utc));
        assert_eq!(parse_rfc3339("2021-03-14T23:40:24-05"), Some(utc));
        assert_eq!(parse_rfc3339("2021-03-15T04:40:24.25Z"), Some(utc + 0.25));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400.0));
        for bad in [
            "",
            "2021-03-15",
            "2021-13-15T00:00:00Z",
            "2021-03-15T25:00:00Z",
            "2021-03-15T00:00:00+25:00",
            "2021-03-15T00:00:00.Z",
            "2021-03-15T00:00:00 UTC",
            "20x1-03-15T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn units_convert_by_their_own_field() {
        let conv = |dim, unit: &str, v: f64| unit_scale(dim, Some(unit)).map(|s| s.apply(v));
        for unit in ["us", "µs", "μs"] {
            assert_eq!(conv(Dimension::Time, unit, 182.5), Some(182.5e-6), "{unit}");
        }
        assert_eq!(conv(Dimension::Time, "ns", 300.0), Some(3e-7));
        assert_eq!(conv(Dimension::Time, "ms", 2.5), Some(2.5e-3));
        assert_eq!(conv(Dimension::Time, "s", 1.5), Some(1.5));
        for unit in ["GHz", "ghz"] {
            assert_eq!(conv(Dimension::Frequency, unit, 4.5), Some(4.5e9), "{unit}");
        }
        assert_eq!(conv(Dimension::Frequency, "MHz", 5000.0), Some(5e9));
        assert_eq!(conv(Dimension::Frequency, "Hz", 7.0), Some(7.0));
        assert_eq!(conv(Dimension::Ratio, "", 0.25), Some(0.25));
        assert_eq!(conv(Dimension::Ratio, "%", 25.0), Some(0.25));
        assert_eq!(unit_scale(Dimension::Ratio, None), Some(Scale::Mul(1.0)));
        // A time without a unit, or in a frequency unit, is never guessed.
        assert_eq!(unit_scale(Dimension::Time, Some("")), None);
        assert_eq!(unit_scale(Dimension::Time, None), None);
        assert_eq!(unit_scale(Dimension::Time, Some("GHz")), None);
        assert_eq!(unit_scale(Dimension::Frequency, Some("us")), None);
        assert_eq!(unit_scale(Dimension::Ratio, Some("ns")), None);
    }

    #[test]
    fn skips_bad_values_and_keeps_the_rest() {
        let doc = br#"{
            "backend_name": "lab1", "last_update_date": "2024-01-01T00:00:00Z",
            "qubits": [
                [{"name": "T1", "unit": "furlong", "value": 3},
                 {"name": "T2", "unit": "us", "value": "n/a"},
                 {"name": "frequency", "unit": "MHz", "value": 5000},
                 {"unit": "us", "value": 1},
                 {"name": "operational", "unit": "", "value": 0},
                 {"name": "T1_echo", "unit": "us", "value": 1}],
                []
            ],
            "gates": [
                {"gate": "cx", "qubits": [0, 1], "parameters": [
                    {"name": "gate_error", "unit": "", "value": 1},
                    {"name": "gate_length", "unit": "ns", "value": 300}]},
                {"gate": "cx", "qubits": [0, 1], "parameters": []},
                {"qubits": [0], "parameters": []},
                {"gate": "x", "qubits": [-1], "parameters": []},
                {"gate": "reset", "qubits": [1], "parameters": null}
            ]
        }"#;
        let c = parse(doc).unwrap();
        assert_eq!(c.backend_name.as_deref(), Some("lab1"));
        assert_eq!(c.qubits.len(), 2);
        assert_eq!(c.qubits[0].t1_seconds, None);
        assert_eq!(c.qubits[0].t2_seconds, None);
        assert_eq!(c.qubits[0].frequency_hertz, Some(5e9));
        assert_eq!(c.qubits[0].operational, Some(false));
        assert_eq!(c.qubits[1], Qubit::default());
        assert_eq!(c.gates.len(), 2);
        assert_eq!(c.gates[0].qubits_label(), "0_1");
        assert_eq!(c.gates[0].length_seconds, Some(300e-9));
        assert!(!c.gates[0].is_operational());
        assert!(c.gates[1].is_operational());
        // T1 unit, T2 value, nameless property, duplicate cx, typeless gate, bad qubit.
        assert_eq!(c.skipped.count, 6, "{:?}", c.skipped);
        assert!(c.skipped.examples[0].contains("furlong"), "{:?}", c.skipped);
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(matches!(parse(b"{"), Err(PropsError::Json(_))));
        assert!(matches!(parse(b"[]"), Err(PropsError::Json(_))));
        assert!(matches!(
            parse(br#"{"qubits": "many", "last_update_date": "2024-01-01T00:00:00Z"}"#),
            Err(PropsError::Json(_))
        ));
        assert_eq!(parse(br#"{"qubits": [[]]}"#), Err(PropsError::NoDate));
        assert_eq!(
            parse(br#"{"last_update_date": "yesterday", "qubits": [[]]}"#),
            Err(PropsError::BadDate("yesterday".into()))
        );
        assert_eq!(
            parse(br#"{"last_update_date": "2024-01-01T00:00:00Z", "qubits": null}"#),
            Err(PropsError::Empty)
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
