//! Alerting: rules evaluated on the store, alert state, routing and grouping into
//! notifications, silences, the persistent outbox and the receivers that deliver.

pub mod db;
pub mod external;
pub mod group;
pub mod manager;
pub mod matcher;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod route;
pub mod rule;
pub mod service;
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

/// Unix milliseconds as RFC 3339 in UTC with millisecond precision
/// (`2026-11-23T01:02:03.456Z`), the form Prometheus' and Alertmanager's APIs use.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn fingerprints_are_stable() {
        let l: BTreeMap<String, String> = [("alertname".to_string(), "X".to_string())].into();
        assert_eq!(
            fingerprint_hex(fingerprint(&l)),
            fingerprint_hex(fingerprint(&l.clone()))
        );
        assert_eq!(
            fingerprint_hex(fingerprint(&BTreeMap::new())),
            "cbf29ce484222325"
        );
    }
}
