//! `timex` collector: the kernel clock discipline state from `adjtimex(2)` as node_exporter's
//! `node_timex_*` metrics (offset, sync status, errors, frequency, PPS counters).
//!
//! Neither `nix` nor `rustix` wraps `adjtimex`, and the one crate that does would pull in a
//! second `nix` and an NTP daemon's core crate, so the call is made through `libc` in the
//! single unsafe function [`read_adjtimex`]. Everything else is the pure [`timex_families`],
//! unit-tested on hand-built readings.

use std::io;

use super::{Collection, Collector, CollectorError};
use crate::model::Family;

/// `adjtimex` return value meaning the clock is not synchronised (`TIME_ERROR`).
pub const TIME_ERROR: i32 = 5;
/// `status` bit: `offset` and `jitter` are in nanoseconds instead of microseconds (`STA_NANO`).
pub const STA_NANO: i32 = 0x2000;

/// `freq`, `ppsfreq` and `stabil` are in ppm with a 16-bit binary fraction (adjtimex(2) NOTES).
const PPM16FRAC: f64 = 1_000_000.0 * 65536.0;
/// An |offset| above this is almost certainly the kernel's 32-bit nanosecond overflow seen on
/// some KVM/pvclock hosts rather than a real offset; node_exporter counts such readings.
const OFFSET_OVERFLOW_THRESHOLD_SECONDS: f64 = 4.0;

/// The parts of the kernel's `struct timex` that are exported, plus the clock state that
/// `adjtimex` returns. Units are the kernel's raw ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimexReading {
    /// Return value of `adjtimex`: `TIME_OK` (0) .. `TIME_ERROR` (5).
    pub state: i32,
    /// Time offset, in µs, or ns if `status` has `STA_NANO`.
    pub offset: i64,
    /// Frequency offset, ppm with 16-bit fraction.
    pub freq: i64,
    /// Maximum error, µs.
    pub maxerror: i64,
    /// Estimated error, µs.
    pub esterror: i64,
    /// Clock status bits (`STA_*`).
    pub status: i32,
    /// PLL time constant.
    pub constant: i64,
    /// µs between clock ticks.
    pub tick: i64,
    /// PPS frequency, ppm with 16-bit fraction.
    pub ppsfreq: i64,
    /// PPS jitter, µs or ns like `offset`.
    pub jitter: i64,
    /// PPS interval duration, seconds (log2).
    pub shift: i32,
    /// PPS stability, ppm with 16-bit fraction.
    pub stabil: i64,
    /// PPS count of jitter limit exceeded events.
    pub jitcnt: i64,
    /// PPS count of calibration intervals.
    pub calcnt: i64,
    /// PPS count of calibration errors.
    pub errcnt: i64,
    /// PPS count of stability limit exceeded events.
    pub stbcnt: i64,
    /// TAI offset, seconds.
    pub tai: i32,
}

impl TimexReading {
    /// Divisor turning `offset` and `jitter` into seconds, which depends on the PLL mode.
    fn offset_divisor(&self) -> f64 {
        if self.status & STA_NANO != 0 {
            1e9
        } else {
            1e6
        }
    }

    /// `offset` in seconds.
    pub fn offset_seconds(&self) -> f64 {
        self.offset as f64 / self.offset_divisor()
    }
}

/// Converts a reading into node_exporter's families. `overflow_count` is the number of
/// readings so far whose offset looked like a kernel overflow (the collector keeps it).
pub fn timex_families(r: &TimexReading, overflow_count: u64) -> Vec<Family> {
    let div = r.offset_divisor();
    let g = |name: &str, help: &str, v: f64| Family::gauge(name, help).with(&[], v);
    let c = |name: &str, help: &str, v: f64| Family::counter(name, help).with(&[], v);
    vec![
        g(
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            if r.state == TIME_ERROR { 0.0 } else { 1.0 },
        ),
        g(
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            r.offset_seconds(),
        ),
        c(
            "node_timex_offset_overflow_total",
            "Count of adjtimex() offset readings indicating kernel overflow (|offset| > 4s).",
            overflow_count as f64,
        ),
        g(
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + r.freq as f64 / PPM16FRAC,
        ),
        g(
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            r.maxerror as f64 / 1e6,
        ),
        g(
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            r.esterror as f64 / 1e6,
        ),
        g(
            "node_timex_status",
            "Value of the status array bits.",
            f64::from(r.status),
        ),
        g(
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            r.constant as f64,
        ),
        g(
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            r.tick as f64 / 1e6,
        ),
        g(
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            r.ppsfreq as f64 / PPM16FRAC,
        ),
        g(
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            r.jitter as f64 / div,
        ),
        g(
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            f64::from(r.shift),
        ),
        g(
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            r.stabil as f64 / PPM16FRAC,
        ),
        c(
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            r.jitcnt as f64,
        ),
        c(
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            r.calcnt as f64,
        ),
        c(
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            r.errcnt as f64,
        ),
        c(
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            r.stbcnt as f64,
        ),
        g(
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            f64::from(r.tai),
        ),
    ]
}

/// Reads the kernel clock state without changing it.
#[allow(unsafe_code)]
pub fn read_adjtimex() -> io::Result<TimexReading> {
    // SAFETY: `libc::timex` is a plain C struct of integers and a `timeval`, for which all
    // zero bytes are a valid value; zero `modes` is also what makes the call read-only.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a live, exclusively borrowed `timex` for the whole call; with `modes`
    // zero the kernel only writes into it and keeps no pointer after returning.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(io::Error::last_os_error());
    }
    // `c_long` is i64 here but i32 on 32-bit targets, where the conversion is not useless.
    #[allow(clippy::useless_conversion)]
    Ok(TimexReading {
        state,
        offset: i64::from(tx.offset),
        freq: i64::from(tx.freq),
        maxerror: i64::from(tx.maxerror),
        esterror: i64::from(tx.esterror),
        status: tx.status,
        constant: i64::from(tx.constant),
        tick: i64::from(tx.tick),
        ppsfreq: i64::from(tx.ppsfreq),
        jitter: i64::from(tx.jitter),
        shift: tx.shift,
        stabil: i64::from(tx.stabil),
        jitcnt: i64::from(tx.jitcnt),
        calcnt: i64::from(tx.calcnt),
        errcnt: i64::from(tx.errcnt),
        stbcnt: i64::from(tx.stbcnt),
        tai: tx.tai,
    })
}

/// Queries `adjtimex(2)` each run.
pub struct TimexCollector {
    overflow_count: u64,
}

impl TimexCollector {
    /// A new collector.
    pub fn new() -> Self {
        TimexCollector { overflow_count: 0 }
    }
}

impl Default for TimexCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for TimexCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let r = match read_adjtimex() {
            Ok(r) => r,
            // A seccomp profile (some container runtimes) may forbid even the read-only call;
            // that is a deployment fact, not a failure of this collection.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Ok(Collection {
                    families: vec![],
                    note: Some(format!(
                        "adjtimex(2) not permitted ({e}); timex metrics skipped"
                    )),
                })
            }
            Err(e) => return Err(CollectorError::Other(format!("adjtimex(2): {e}"))),
        };
        if r.offset_seconds().abs() > OFFSET_OVERFLOW_THRESHOLD_SECONDS {
            self.overflow_count += 1;
        }
        Ok(timex_families(&r, self.overflow_count).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(fams: &[Family], name: &str) -> f64 {
        fams.iter()
            .find(|f| f.name == name)
            .map(|f| f.samples[0].value)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    fn reading() -> TimexReading {
        TimexReading {
            state: 0,
            offset: 1_500_000,
            freq: 10 * 65536,
            maxerror: 16_000_000,
            esterror: 500,
            status: 0x0001, // STA_PLL
            constant: 7,
            tick: 10_000,
            ppsfreq: 65536,
            jitter: 2_000,
            shift: 4,
            stabil: 3 * 65536,
            jitcnt: 1,
            calcnt: 2,
            errcnt: 3,
            stbcnt: 4,
            tai: 37,
        }
    }

    #[test]
    fn microsecond_mode() {
        let f = timex_families(&reading(), 0);
        assert_eq!(f.len(), 18);
        assert_eq!(value(&f, "node_timex_offset_seconds"), 1.5);
        assert_eq!(value(&f, "node_timex_pps_jitter_seconds"), 0.002);
        assert_eq!(value(&f, "node_timex_sync_status"), 1.0);
        let ratio = value(&f, "node_timex_frequency_adjustment_ratio");
        assert!((ratio - 1.00001).abs() < 1e-12, "{ratio}");
        assert_eq!(value(&f, "node_timex_maxerror_seconds"), 16.0);
        assert_eq!(value(&f, "node_timex_estimated_error_seconds"), 0.0005);
        assert_eq!(value(&f, "node_timex_status"), 1.0);
        assert_eq!(value(&f, "node_timex_loop_time_constant"), 7.0);
        assert_eq!(value(&f, "node_timex_tick_seconds"), 0.01);
        assert_eq!(value(&f, "node_timex_pps_frequency_hertz"), 0.000001);
        assert_eq!(value(&f, "node_timex_pps_stability_hertz"), 0.000003);
        assert_eq!(value(&f, "node_timex_pps_shift_seconds"), 4.0);
        assert_eq!(value(&f, "node_timex_pps_error_total"), 3.0);
        assert_eq!(value(&f, "node_timex_tai_offset_seconds"), 37.0);
    }

    #[test]
    fn nanosecond_mode_and_unsynchronised() {
        let r = TimexReading {
            state: TIME_ERROR,
            status: STA_NANO | 0x0040, // STA_UNSYNC
            ..reading()
        };
        let f = timex_families(&r, 2);
        assert_eq!(value(&f, "node_timex_offset_seconds"), 0.0015);
        assert_eq!(value(&f, "node_timex_pps_jitter_seconds"), 0.000002);
        assert_eq!(value(&f, "node_timex_sync_status"), 0.0);
        assert_eq!(value(&f, "node_timex_status"), f64::from(0x2040));
        assert_eq!(value(&f, "node_timex_offset_overflow_total"), 2.0);
    }

    #[test]
    fn types_match_node_exporter() {
        use crate::model::MetricKind;
        for f in timex_families(&reading(), 0) {
            let want = if f.name.ends_with("_total") {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            };
            assert_eq!(f.kind, want, "{}", f.name);
        }
    }

    #[test]
    fn collects_from_this_kernel() {
        let out = TimexCollector::new().collect().unwrap();
        if out.note.is_none() {
            let tick = value(&out.families, "node_timex_tick_seconds");
            assert!(tick > 0.0 && tick < 1.0, "tick {tick}");
        }
    }
}
