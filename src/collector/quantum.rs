//! `quantum` collector: calibration data of quantum devices in Qiskit's `BackendProperties`
//! JSON (the format IBM Quantum publishes), from a local file or an HTTPS endpoint, as
//! `automon_quantum_*` metrics in base units (seconds, hertz, probabilities).
//!
//! - Each configured device is read on every run. A document whose bytes are identical to the
//!   last good one is not parsed again (its values are rebuilt from the cached calibration,
//!   only the age moves on). Comparing bytes rather than `last_update_date` alone also
//!   catches a document that was rewritten, or broken, under the same date.
//! - A device whose document cannot be read or is malformed exports `automon_quantum_up 0`
//!   and none of its calibration values: the last good values are dropped, not re-served as
//!   if fresh. Only `automon_quantum_calibration_timestamp_seconds` / `_age_seconds` of the
//!   last good document stay, because they say exactly how old the newest calibration we
//!   know is, which keeps the "calibration too old" rule meaningful during a feed outage.
//! - Any device failing is named, with the reason, in `/health`: as the collection's note
//!   when other devices are fine, as the collection's error when all fail.
//!
//! Parsing lives in [`props`]; this file reads sources and builds the families.

pub mod props;

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Collection, Collector, CollectorError};
use crate::config::{QuantumConfig, QuantumDeviceConfig};
use crate::model::Family;
use props::{median, Calibration};

/// Largest document accepted: the biggest IBM device (156 qubits) writes about 700 KB, so
/// 32 MiB leaves room for far larger machines while bounding memory.
pub const MAX_DOCUMENT_BYTES: u64 = 32 * 1024 * 1024;

/// Where a device's document comes from.
enum Source {
    File(PathBuf),
    Http {
        url: String,
        token_file: Option<PathBuf>,
        agent: ureq::Agent,
    },
}

struct Device {
    name: String,
    source: Source,
    /// Hash of the last document parsed successfully, with its calibration.
    last_good: Option<(u64, Arc<Calibration>)>,
}

/// Reads the configured devices; see the module documentation.
pub struct QuantumCollector {
    devices: Vec<Device>,
}

/// Why one device yielded nothing this time.
#[derive(Debug, thiserror::Error)]
enum DeviceError {
    #[error("{0}")]
    Fetch(String),
    #[error("malformed document: {0}")]
    Malformed(#[from] props::PropsError),
}

impl QuantumCollector {
    /// Builds the collector. `timeout` is the collection's deadline; the HTTP devices, fetched
    /// one after the other, share it, so that one slow endpoint cannot make the others miss it.
    pub fn new(cfg: &QuantumConfig, timeout: Duration) -> Result<Self, CollectorError> {
        let remote = cfg
            .devices
            .iter()
            .filter(|d| d.url.is_some())
            .count()
            .max(1);
        let timeout = timeout / remote as u32;
        let devices = cfg
            .devices
            .iter()
            .map(|d| {
                Ok(Device {
                    name: d.name.clone(),
                    source: source(d, timeout)?,
                    last_good: None,
                })
            })
            .collect::<Result<_, CollectorError>>()?;
        Ok(QuantumCollector { devices })
    }
}

fn source(d: &QuantumDeviceConfig, timeout: Duration) -> Result<Source, CollectorError> {
    if let Some(url) = &d.url {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &d.ca_file {
            let pem = std::fs::read(ca).map_err(|source| CollectorError::Io {
                path: ca.clone(),
                source,
            })?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| super::parse_error(ca, format!("not a PEM file: {e}")))?;
            if certs.is_empty() {
                return Err(super::parse_error(ca, "holds no PEM certificate"));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(timeout))
            // A redirect to http:// would send the token in clear; vendors do not redirect.
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Source::Http {
            url: url.clone(),
            token_file: d.bearer_token_file.clone(),
            agent,
        })
    } else if let Some(path) = &d.path {
        Ok(Source::File(path.clone()))
    } else {
        Err(CollectorError::Other(format!(
            "device {}: no path or url",
            d.name
        )))
    }
}

/// Reads at most [`MAX_DOCUMENT_BYTES`] from `r`; more is an error.
fn read_bounded(r: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    r.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading {what}: {e}"))?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "{what} is larger than {} MiB",
            MAX_DOCUMENT_BYTES >> 20
        ));
    }
    Ok(bytes)
}

fn fetch(source: &Source) -> Result<Vec<u8>, String> {
    match source {
        Source::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            read_bounded(file, &path.display().to_string())
        }
        Source::Http {
            url,
            token_file,
            agent,
        } => {
            let mut req = agent.get(url);
            if let Some(tf) = token_file {
                let token = read_token(tf)?;
                req = req.header("Authorization", &format!("Bearer {token}"));
            }
            let mut resp = req.call().map_err(|e| format!("GET {url}: {e}"))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!("GET {url}: HTTP {status}"));
            }
            read_bounded(resp.body_mut().as_reader(), url)
        }
    }
}

/// Re-read on every fetch so that a rotated token is used at once.
fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("bearer token file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("bearer token file {} is empty", path.display()));
    }
    if token.contains(['\r', '\n']) {
        return Err(format!(
            "bearer token file {} holds more than one line",
            path.display()
        ));
    }
    Ok(token.to_owned())
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl Device {
    /// The current calibration, parsing only when the document changed.
    fn refresh(&mut self) -> Result<Arc<Calibration>, DeviceError> {
        let bytes = fetch(&self.source).map_err(DeviceError::Fetch)?;
        let h = hash(&bytes);
        if let Some((last, cal)) = &self.last_good {
            if *last == h {
                return Ok(cal.clone());
            }
        }
        let cal = Arc::new(props::parse(&bytes)?);
        self.last_good = Some((h, cal.clone()));
        Ok(cal)
    }
}

impl Collector for QuantumCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut out = Families::new();
        let mut failures = Vec::new();
        let mut notes = Vec::new();
        for device in &mut self.devices {
            match device.refresh() {
                Ok(cal) => {
                    out.device(&device.name, &cal, now);
                    if cal.skipped.count > 0 {
                        notes.push(format!(
                            "{}: skipped {} value(s), e.g. {}",
                            device.name,
                            cal.skipped.count,
                            cal.skipped.examples.join("; ")
                        ));
                    }
                }
                Err(e) => {
                    // The last good calibration stays cached only for its date (the age
                    // metric) and for the case that the very same bytes come back.
                    let last = device.last_good.as_ref().map(|(_, c)| c.clone());
                    out.down(&device.name, last.as_deref(), now);
                    failures.push(format!("{}: {e}", device.name));
                }
            }
        }
        if !failures.is_empty() {
            for f in &failures {
                tracing::warn!("quantum: {f}");
            }
            if failures.len() == self.devices.len() {
                return Err(CollectorError::Other(failures.join("; ")));
            }
            notes.splice(0..0, failures);
        }
        Ok(Collection {
            families: out.finish(),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }
}

/// The metric families, filled device by device.
struct Families {
    up: Family,
    info: Family,
    timestamp: Family,
    age: Family,
    t1: Family,
    t2: Family,
    frequency: Family,
    anharmonicity: Family,
    readout_error: Family,
    readout_fidelity: Family,
    meas0_prep1: Family,
    meas1_prep0: Family,
    readout_length: Family,
    qubit_operational: Family,
    gate_error: Family,
    gate_duration: Family,
    qubits: Family,
    qubits_broken: Family,
    gates_broken: Family,
    t1_median: Family,
    t1_min: Family,
    t2_median: Family,
    t2_min: Family,
    single_error_median: Family,
    two_error_median: Family,
    readout_fidelity_median: Family,
}

const P: &str = "automon_quantum_";

fn gauge(name: &str, help: &str) -> Family {
    Family::gauge(format!("{P}{name}"), help)
}

impl Families {
    fn new() -> Self {
        Families {
            up: gauge("up", "1 if the device's calibration document was read and parsed, 0 otherwise."),
            info: gauge("device_info", "Backend name and version from the calibration document; always 1."),
            timestamp: gauge("calibration_timestamp_seconds", "last_update_date of the newest good calibration document, Unix seconds."),
            age: gauge("calibration_age_seconds", "Seconds since last_update_date of the newest good calibration document."),
            t1: gauge("qubit_t1_seconds", "Qubit energy relaxation time T1."),
            t2: gauge("qubit_t2_seconds", "Qubit dephasing time T2."),
            frequency: gauge("qubit_frequency_hertz", "Qubit frequency."),
            anharmonicity: gauge("qubit_anharmonicity_hertz", "Qubit anharmonicity."),
            readout_error: gauge("qubit_readout_error", "Probability of reading the wrong state."),
            readout_fidelity: gauge("qubit_readout_fidelity", "1 - readout_error."),
            meas0_prep1: gauge("qubit_prob_meas0_prep1", "Probability of measuring 0 after preparing 1."),
            meas1_prep0: gauge("qubit_prob_meas1_prep0", "Probability of measuring 1 after preparing 0."),
            readout_length: gauge("qubit_readout_length_seconds", "Duration of a qubit readout."),
            qubit_operational: gauge("qubit_operational", "The vendor's operational flag of a qubit (only when the document has one)."),
            gate_error: gauge("gate_error", "Gate error rate; 1 marks a broken gate."),
            gate_duration: gauge("gate_duration_seconds", "Gate duration."),
            qubits: gauge("device_qubits", "Number of qubits in the calibration document."),
            qubits_broken: gauge("device_qubits_non_operational", "Qubits flagged non-operational."),
            gates_broken: gauge("device_gates_non_operational", "Gates with gate_error 1 or flagged non-operational."),
            t1_median: gauge("device_t1_median_seconds", "Median T1 over the device's qubits."),
            t1_min: gauge("device_t1_min_seconds", "Smallest T1 of the device's qubits."),
            t2_median: gauge("device_t2_median_seconds", "Median T2 over the device's qubits."),
            t2_min: gauge("device_t2_min_seconds", "Smallest T2 of the device's qubits."),
            single_error_median: gauge("device_single_qubit_gate_error_median", "Median error of operational single-qubit gates of non-zero duration (virtual rz excluded)."),
            two_error_median: gauge("device_two_qubit_gate_error_median", "Median error of operational two-qubit gates."),
            readout_fidelity_median: gauge("device_readout_fidelity_median", "Median readout fidelity over the device's qubits."),
        }
    }

    fn age(&mut self, device: &str, last: Option<&Calibration>, now: f64) {
        if let Some(cal) = last {
            let d = [("device", device)];
            self.timestamp.push(&d, cal.last_update);
            self.age.push(&d, (now - cal.last_update).max(0.0));
        }
    }

    fn down(&mut self, device: &str, last: Option<&Calibration>, now: f64) {
        self.up.push(&[("device", device)], 0.0);
        self.age(device, last, now);
    }

    fn device(&mut self, device: &str, cal: &Calibration, now: f64) {
        let d = [("device", device)];
        self.up.push(&d, 1.0);
        self.info.push(
            &[
                ("device", device),
                ("backend_name", cal.backend_name.as_deref().unwrap_or("")),
                (
                    "backend_version",
                    cal.backend_version.as_deref().unwrap_or(""),
                ),
            ],
            1.0,
        );
        self.age(device, Some(cal), now);

        let mut t1s = Vec::with_capacity(cal.qubits.len());
        let mut t2s = Vec::with_capacity(cal.qubits.len());
        let mut fidelities = Vec::with_capacity(cal.qubits.len());
        let mut qubits_broken = 0;
        for (i, q) in cal.qubits.iter().enumerate() {
            let idx = i.to_string();
            let l = [("device", device), ("qubit", idx.as_str())];
            let pairs = [
                (&mut self.t1, q.t1_seconds),
                (&mut self.t2, q.t2_seconds),
                (&mut self.frequency, q.frequency_hertz),
                (&mut self.anharmonicity, q.anharmonicity_hertz),
                (&mut self.readout_error, q.readout_error),
                (&mut self.readout_fidelity, q.readout_error.map(|e| 1.0 - e)),
                (&mut self.meas0_prep1, q.prob_meas0_prep1),
                (&mut self.meas1_prep0, q.prob_meas1_prep0),
                (&mut self.readout_length, q.readout_length_seconds),
                (
                    &mut self.qubit_operational,
                    q.operational.map(|o| if o { 1.0 } else { 0.0 }),
                ),
            ];
            for (family, value) in pairs {
                if let Some(v) = value {
                    family.push(&l, v);
                }
            }
            t1s.extend(q.t1_seconds);
            t2s.extend(q.t2_seconds);
            fidelities.extend(q.readout_error.map(|e| 1.0 - e));
            if q.operational == Some(false) {
                qubits_broken += 1;
            }
        }

        let mut single = Vec::new();
        let mut two = Vec::new();
        let mut gates_broken = 0;
        for g in &cal.gates {
            let qubits = g.qubits_label();
            let l = [
                ("device", device),
                ("gate", g.gate.as_str()),
                ("qubits", qubits.as_str()),
            ];
            if let Some(e) = g.error {
                self.gate_error.push(&l, e);
            }
            if let Some(len) = g.length_seconds {
                self.gate_duration.push(&l, len);
            }
            if !g.is_operational() {
                gates_broken += 1;
                continue;
            }
            match (g.qubits.len(), g.error) {
                // rz is virtual (error 0, duration 0): it would drag the median to zero.
                (1, Some(e)) if g.length_seconds.is_some_and(|len| len > 0.0) => single.push(e),
                (2, Some(e)) => two.push(e),
                _ => {}
            }
        }

        self.qubits.push(&d, cal.qubits.len() as f64);
        self.qubits_broken.push(&d, qubits_broken as f64);
        self.gates_broken.push(&d, gates_broken as f64);
        let min = |v: &[f64]| v.iter().copied().reduce(f64::min);
        for (family, value) in [
            (&mut self.t1_min, min(&t1s)),
            (&mut self.t2_min, min(&t2s)),
            (&mut self.t1_median, median(&mut t1s)),
            (&mut self.t2_median, median(&mut t2s)),
            (&mut self.single_error_median, median(&mut single)),
            (&mut self.two_error_median, median(&mut two)),
            (&mut self.readout_fidelity_median, median(&mut fidelities)),
        ] {
            if let Some(v) = value {
                family.push(&d, v);
            }
        }
    }

    /// The families that have samples, in a fixed order.
    fn finish(self) -> Vec<Family> {
        let Families {
            up,
            info,
            timestamp,
            age,
            t1,
            t2,
            frequency,
            anharmonicity,
            readout_error,
            readout_fidelity,
            meas0_prep1,
            meas1_prep0,
            readout_length,
            qubit_operational,
            gate_error,
            gate_duration,
            qubits,
            qubits_broken,
            gates_broken,
            t1_median,
            t1_min,
            t2_median,
            t2_min,
            single_error_median,
            two_error_median,
            readout_fidelity_median,
        } = self;
        [
            up,
            info,
            timestamp,
            age,
            qubits,
            qubits_broken,
            gates_broken,
            t1_median,
            t1_min,
            t2_median,
            t2_min,
            single_error_median,
            two_error_median,
            readout_fidelity_median,
            t1,
            t2,
            frequency,
            anharmonicity,
            readout_error,
            readout_fidelity,
            meas0_prep1,
            meas1_prep0,
            readout_length,
            qubit_operational,
            gate_error,
            gate_duration,
        ]
        .into_iter()
        .filter(|f| !f.samples.is_empty())
        .collect()
    }
}

/// Renders the families of one document as the text exposition, with the age computed at
/// `now`; for golden tests and benchmarks.
pub fn render_document(device: &str, bytes: &[u8], now: f64) -> Result<String, String> {
    let cal = props::parse(bytes).map_err(|e| e.to_string())?;
    let mut f = Families::new();
    f.device(device, &cal, now);
    let mut out = String::new();
    for family in f.finish() {
        crate::model::render_family(&mut out, &family);
    }
    Ok(out)
}

#[cfg(test)]
// The expected values are the documents' digits, copied verbatim so they can be checked by eye.
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;
    use crate::config::{QuantumConfig, QuantumDeviceConfig};
    use crate::model::Sample;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/quantum")
            .join(name)
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(fixture(name)).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }

    fn file_collector(devices: &[(&str, PathBuf)]) -> QuantumCollector {
        let cfg = QuantumConfig {
            enabled: true,
            interval: None,
            timeout: None,
            devices: devices
                .iter()
                .map(|(name, path)| QuantumDeviceConfig {
                    name: (*name).into(),
                    path: Some(path.clone()),
                    ..Default::default()
                })
                .collect(),
        };
        QuantumCollector::new(&cfg, Duration::from_secs(5)).unwrap()
    }

    fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let f = families.iter().find(|f| f.name == name)?;
        f.samples
            .iter()
            .find(|s: &&Sample| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }

    // Expected values below are the raw numbers of the JSON files, converted by hand.
    #[test]
    fn hanoi_hand_checked() {
        let c = props::parse(&read("props_hanoi.json")).unwrap();
        assert_eq!(c.backend_name.as_deref(), Some("ibm_hanoi"));
        assert_eq!(c.last_update, 1_740_600_794.0); // date -d 2025-02-26T15:13:14-05:00 +%s
        assert_eq!(c.qubits.len(), 27);
        let q5 = &c.qubits[5];
        assert!(close(q5.t1_seconds.unwrap(), 91.54500172086323e-6));
        assert!(close(q5.t2_seconds.unwrap(), 212.42572781401287e-6));
        assert!(close(q5.frequency_hertz.unwrap(), 5.207023129417927e9));
        assert!(close(
            q5.anharmonicity_hertz.unwrap(),
            -0.34103575141973025e9
        ));
        assert!(close(q5.readout_error.unwrap(), 0.00660000000000005));
        assert!(close(q5.prob_meas0_prep1.unwrap(), 0.0092));
        assert!(close(
            q5.readout_length_seconds.unwrap(),
            817.7777777777777e-9
        ));
        let cx01 = c
            .gates
            .iter()
            .find(|g| g.gate == "cx" && g.qubits == [0, 1])
            .unwrap();
        assert!(close(cx01.error.unwrap(), 0.0068192304769660594));
        assert!(close(cx01.length_seconds.unwrap(), 327.1111111111111e-9));
        let broken: Vec<String> = c
            .gates
            .iter()
            .filter(|g| !g.is_operational())
            .map(|g| format!("{}{}", g.gate, g.qubits_label()))
            .collect();
        assert_eq!(broken, ["cx19_20", "cx5_8"]);
        assert_eq!(c.skipped.count, 0, "{:?}", c.skipped);

        let mut col = file_collector(&[("hanoi", fixture("props_hanoi.json"))]);
        let out = col.collect().unwrap();
        assert_eq!(out.note, None);
        let f = &out.families;
        let d = [("device", "hanoi")];
        assert_eq!(value(f, "automon_quantum_up", &d), Some(1.0));
        assert_eq!(value(f, "automon_quantum_device_qubits", &d), Some(27.0));
        assert_eq!(
            value(f, "automon_quantum_device_gates_non_operational", &d),
            Some(2.0)
        );
        // Median and minimum of the 27 T1 values (Python's statistics.median: 137.5359798523607 us).
        assert!(close(
            value(f, "automon_quantum_device_t1_median_seconds", &d).unwrap(),
            137.5359798523607e-6
        ));
        assert!(close(
            value(f, "automon_quantum_device_t1_min_seconds", &d).unwrap(),
            43.86484443899163e-6
        ));
        // The 54 working cx gates (the two broken ones excluded).
        assert!(close(
            value(f, "automon_quantum_device_two_qubit_gate_error_median", &d).unwrap(),
            0.0063176298357275895
        ));
        assert_eq!(
            value(
                f,
                "automon_quantum_gate_error",
                &[("gate", "cx"), ("qubits", "19_20")]
            ),
            Some(1.0)
        );
        assert!(close(
            value(
                f,
                "automon_quantum_qubit_readout_fidelity",
                &[("qubit", "5")]
            )
            .unwrap(),
            1.0 - 0.00660000000000005
        ));
        let age = value(f, "automon_quantum_calibration_age_seconds", &d).unwrap();
        assert!(age > 0.0);
    }

    #[test]
    fn burlington_micro_sign_and_nameless_gates() {
        let c = props::parse(&read("props_burlington.json")).unwrap();
        assert_eq!(c.last_update, 1_591_861_003.0); // 2020-06-11T07:36:43+00:00
        assert!(close(
            c.qubits[0].t1_seconds.unwrap(),
            101.25901768767605e-6
        ));
        assert!(close(c.qubits[0].t2_seconds.unwrap(), 38.01616808767574e-6));
        assert!(close(
            c.qubits[0].frequency_hertz.unwrap(),
            4.641399389347555e9
        ));
        assert_eq!(c.qubits[0].readout_length_seconds, None);
        assert_eq!(c.qubits[0].anharmonicity_hertz, None);
        // No gate has a `name`, yet all are kept, identified by type and qubits.
        let id0 = c
            .gates
            .iter()
            .find(|g| g.gate == "id" && g.qubits == [0])
            .unwrap();
        assert!(close(id0.error.unwrap(), 0.00031287887870301703));
        assert!(close(id0.length_seconds.unwrap(), 53.33333333333333e-9));
        assert_eq!(c.skipped.count, 0, "{:?}", c.skipped);
    }

    #[test]
    fn fez_heron_without_frequency() {
        let c = props::parse(&read("props_fez.json")).unwrap();
        assert_eq!(c.last_update, 1_740_600_985.0); // 2025-02-26T15:16:25-05:00
        assert_eq!(c.qubits.len(), 156);
        assert!(close(
            c.qubits[0].t1_seconds.unwrap(),
            48.806207822303335e-6
        ));
        assert!(close(c.qubits[0].readout_length_seconds.unwrap(), 1560e-9));
        assert!(c.qubits.iter().all(|q| q.frequency_hertz.is_none()));
        assert_eq!(c.gates.len(), 1640);
        assert_eq!(c.gates.iter().filter(|g| !g.is_operational()).count(), 112);
    }

    #[test]
    fn casablanca_reset_has_only_a_length() {
        let c = props::parse(&read("props_casablanca.json")).unwrap();
        let reset0 = c
            .gates
            .iter()
            .find(|g| g.gate == "reset" && g.qubits == [0])
            .unwrap();
        assert_eq!(reset0.error, None);
        assert!(close(reset0.length_seconds.unwrap(), 5564.444444444444e-9));
        // A gate without an error is neither counted broken nor in the medians.
        assert!(reset0.is_operational());
    }

    /// The rendered families of each real document, compared with a reviewed golden file.
    /// `UPDATE_GOLDEN=1 cargo test --lib quantum` rewrites them after a deliberate change.
    #[test]
    fn golden_output() {
        // A fixed "now", so the age in the golden file is stable.
        let now = 1_740_700_000.0;
        for (device, file) in [
            ("armonk", "props_armonk.json"),
            ("casablanca", "props_casablanca.json"),
            ("burlington", "props_burlington.json"),
        ] {
            let text = render_document(device, &read(file), now).unwrap();
            let golden = fixture(&format!("golden/{device}.prom"));
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
                std::fs::write(&golden, &text).unwrap();
            }
            let want = std::fs::read_to_string(&golden).unwrap();
            assert_eq!(
                text,
                want,
                "{device}: output differs from {}",
                golden.display()
            );
            // And it parses back as the text format.
            crate::exposition::parse_text(&text).unwrap();
        }
    }

    #[test]
    fn unchanged_document_is_not_reparsed_and_a_broken_one_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.json");
        let other = dir.path().join("b.json");
        std::fs::copy(fixture("props_armonk.json"), &good).unwrap();
        std::fs::copy(fixture("props_casablanca.json"), &other).unwrap();
        let mut col = file_collector(&[("a", good.clone()), ("b", other.clone())]);
        col.collect().unwrap();
        let first = col.devices[0].last_good.as_ref().unwrap().1.clone();
        col.collect().unwrap();
        let second = col.devices[0].last_good.as_ref().unwrap().1.clone();
        assert!(
            Arc::ptr_eq(&first, &second),
            "same bytes must reuse the parse"
        );

        // Truncated mid-write: device a is down, its values gone, b unaffected.
        let bytes = read("props_armonk.json");
        std::fs::write(&good, &bytes[..bytes.len() / 2]).unwrap();
        let out = col.collect().unwrap();
        let f = &out.families;
        assert_eq!(
            value(f, "automon_quantum_up", &[("device", "a")]),
            Some(0.0)
        );
        assert_eq!(
            value(f, "automon_quantum_up", &[("device", "b")]),
            Some(1.0)
        );
        assert_eq!(
            value(f, "automon_quantum_qubit_t1_seconds", &[("device", "a")]),
            None
        );
        // The age of the newest good calibration stays, and keeps growing.
        assert_eq!(
            value(
                f,
                "automon_quantum_calibration_timestamp_seconds",
                &[("device", "a")]
            ),
            Some(1_615_783_224.0)
        );
        let note = out.note.unwrap();
        assert!(
            note.starts_with("a: malformed document: not a BackendProperties"),
            "{note}"
        );

        // Both broken: the collection fails with both reasons.
        std::fs::write(&other, b"{\"qubits\": [[]]}").unwrap();
        let err = col.collect().unwrap_err().to_string();
        assert!(
            err.contains("a: malformed")
                && err.contains("b: malformed document: no last_update_date"),
            "{err}"
        );

        // Repaired: served again.
        std::fs::copy(fixture("props_armonk.json"), &good).unwrap();
        std::fs::remove_file(&other).unwrap();
        let out = col.collect().unwrap();
        assert_eq!(
            value(&out.families, "automon_quantum_up", &[("device", "a")]),
            Some(1.0)
        );
        assert!(
            out.note.unwrap().contains("b: "),
            "missing file is reported"
        );
    }
}
