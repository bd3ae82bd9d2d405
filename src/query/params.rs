//! Parsing of query parameters the way Prometheus' HTTP API reads them: timestamps as Unix
//! seconds (with a fraction) or RFC 3339, durations as seconds or PromQL durations (`15s`,
//! `1m30s`), and `match[]` series selectors. Shared by the HTTP API and `automon query`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::query::error::QueryError;
use crate::query::plan;
use crate::query::source::LabelMatcher;

/// Parses a timestamp into milliseconds since the epoch: `1700000000`, `1700000000.123`, or
/// RFC 3339 (`2023-11-14T22:13:20Z`, `2023-11-14T23:13:20.5+01:00`).
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > (plan::MAX_TIME_MS / 1000) as f64 {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        // Round to milliseconds like Prometheus (which keeps millisecond precision).
        return Ok((secs * 1000.0).round() as i64);
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// RFC 3339 with `Z` or a numeric offset; humantime only knows UTC, so the offset is taken
/// off by hand.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let (utc, offset_ms) = match s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        Some(rest) => (rest, 0),
        None => {
            // `+HH:MM` / `-HH:MM` after the time part (the date's own '-' come earlier).
            let cut = s.len().checked_sub(6)?;
            let (rest, off) = s.split_at(cut);
            let sign = match off.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = off[1..].split_once(':')?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            (rest, sign * (h * 3600 + m * 60) * 1000)
        }
    };
    // The date and time must both be there: a bare date is not RFC 3339.
    if !utc.contains(['T', 't']) {
        return None;
    }
    let t = humantime::parse_rfc3339_weak(&format!("{utc}Z")).ok()?;
    let ms = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).ok()?,
        Err(e) => -i64::try_from(e.duration().as_millis()).ok()?,
    };
    Some(ms - offset_ms)
}

/// Parses a duration: seconds as a float (`15`, `0.5`) or a PromQL duration (`15s`, `1m30s`,
/// `2h`, `1d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        // Checked here: `Duration::from_secs_f64` panics on negative or huge values.
        if !secs.is_finite() || secs < 0.0 || secs > (plan::MAX_TIME_MS / 1000) as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration"));
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    promql_parser::util::parse_duration(s)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parses a `match[]` series selector such as `up{job="node"}` into matchers. As in
/// Prometheus, a selector whose every matcher also matches the empty string (`{a=~".*"}`)
/// is refused: it would select every series.
pub fn parse_selector(s: &str) -> Result<Vec<LabelMatcher>, QueryError> {
    let matchers = plan::parse_selector(s)?;
    if matchers.iter().all(|m| m.matches("")) {
        return Err(QueryError::BadRequest(
            "match[] must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(matchers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_like_prometheus() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.1234"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20.5Z"), Ok(1_700_000_000_500));
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T21:13:20-01:00"),
            Ok(1_700_000_000_000)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2023-11-14").is_err());
        assert!(parse_time("NaN").is_err());
        assert!(parse_time("1e300").is_err());
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1e300").is_err());
    }

    #[test]
    fn selectors_need_a_non_empty_matcher() {
        let m = parse_selector("up{job=\"node\"}").unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_selector("{job=~\".*\"}").is_err());
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector("up{").is_err());
    }
}
