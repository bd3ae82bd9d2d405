//! Alerting: rules evaluated on the store, alert state, routing and grouping into
//! notifications, silences, the persistent outbox and the receivers that deliver.

pub mod db;
pub mod group;
pub mod matcher;
pub mod notify;
pub mod route;
pub mod rule;
pub mod silence;
pub mod template;

use std::collections::BTreeMap;

/// Identity of an alert instance: a hash of its labels.
pub type Fingerprint = u64;

/// FNV-1a over the sorted labels: stable across versions and restarts (it is persisted and
/// sent to receivers), unlike `std`'s randomly seeded hasher.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> Fingerprint {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (k, v) in labels {
        feed(k.as_bytes());
        feed(&[0xff]);
        feed(v.as_bytes());
        feed(&[0xff]);
    }
    h
}

/// A fingerprint as Alertmanager prints it: 16 hex digits.
pub fn fingerprint_hex(fp: Fingerprint) -> String {
    format!("{fp:016x}")
}
