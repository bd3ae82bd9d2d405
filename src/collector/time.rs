//! `time` collector: the wall clock (`node_time_seconds`) and the local time zone's current
//! UTC offset (`node_time_zone_offset_seconds{time_zone}`), like node_exporter's time collector.
//!
//! The zone is found the way Go (and so node_exporter) finds it: `$TZ`, else `/etc/localtime`.
//! Its TZif data and POSIX TZ rule are interpreted here rather than through libc's
//! `localtime_r`, which would need `unsafe`, and no time-zone crate is a dependency.

use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Collection, Collector, CollectorError};
use crate::model::Family;

/// The UTC offset in force at some instant and the zone abbreviation that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneOffset {
    /// Abbreviation such as `UTC`, `CEST` or `+0330`; the `time_zone` label.
    pub name: String,
    /// Seconds east of UTC.
    pub offset_seconds: i32,
}

impl ZoneOffset {
    fn utc() -> Self {
        ZoneOffset {
            name: "UTC".into(),
            offset_seconds: 0,
        }
    }
}

// ---- calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ----

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since the epoch of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year containing a day since the epoch (inverse of [`days_from_civil`], year only).
fn year_of_day(z: i64) -> i64 {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let y = yoe + era * 400;
    if mp >= 10 {
        y + 1
    } else {
        y
    }
}

/// 0 = Sunday; 1970-01-01 was a Thursday.
fn weekday(day: i64) -> i64 {
    (day + 4).rem_euclid(7)
}

// ---- POSIX TZ strings (the TZif footer, or $TZ itself) ----

/// The day a DST transition falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRule {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian1(u16),
    /// `n`: day 0..=365, February 29 counted in leap years.
    Julian0(u16),
    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeekDay(u32, u32, u32),
}

impl DayRule {
    fn day(self, year: i64) -> i64 {
        let jan1 = days_from_civil(year, 1, 1);
        match self {
            DayRule::Julian1(n) => {
                let n = i64::from(n) - 1;
                jan1 + if is_leap(year) && n >= 59 { n + 1 } else { n }
            }
            DayRule::Julian0(n) => jan1 + i64::from(n),
            DayRule::MonthWeekDay(m, w, d) => {
                let first = days_from_civil(year, m, 1);
                let mut day = first + (i64::from(d) - weekday(first)).rem_euclid(7);
                day += 7 * (i64::from(w) - 1);
                while day >= first + days_in_month(year, m) {
                    day -= 7;
                }
                day
            }
        }
    }
}

/// A DST transition: the day and the local wall-clock second of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transition {
    day: DayRule,
    secs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Dst {
    name: String,
    offset: i32,
    start: Transition,
    end: Transition,
}

/// A parsed POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosixTz {
    std_name: String,
    std_offset: i32,
    dst: Option<Dst>,
}

struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn number(&mut self, max: i64) -> Result<i64, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        match digits.parse::<i64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(format!("expected a number up to {max} at byte {start}")),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.pos;
        let (from, to) = if self.eat(b'<') {
            while self.peek().is_some_and(|c| c != b'>') {
                self.pos += 1;
            }
            let to = self.pos;
            if !self.eat(b'>') {
                return Err("unterminated <zone name>".into());
            }
            (start + 1, to)
        } else {
            while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                self.pos += 1;
            }
            (start, self.pos)
        };
        match std::str::from_utf8(&self.s[from..to]) {
            Ok(n) if !n.is_empty() => Ok(n.to_owned()),
            _ => Err(format!("expected a zone name at byte {start}")),
        }
    }

    /// `[+-]hh[:mm[:ss]]` in seconds; hours up to 167 as TZif version 3 allows.
    fn hms(&mut self) -> Result<i64, String> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        let mut secs = self.number(167)? * 3600;
        if self.eat(b':') {
            secs += self.number(59)? * 60;
            if self.eat(b':') {
                secs += self.number(59)?;
            }
        }
        Ok(sign * secs)
    }

    fn transition(&mut self) -> Result<Transition, String> {
        let day = if self.eat(b'J') {
            match self.number(365)? {
                0 => return Err("J0 is not a day".into()),
                n => DayRule::Julian1(n as u16),
            }
        } else if self.eat(b'M') {
            let m = self.number(12)?;
            let w = if self.eat(b'.') { self.number(5)? } else { 0 };
            let d = if self.eat(b'.') { self.number(6)? } else { -1 };
            if m == 0 || w == 0 || d < 0 {
                return Err("expected Mm.w.d".into());
            }
            DayRule::MonthWeekDay(m as u32, w as u32, d as u32)
        } else {
            DayRule::Julian0(self.number(365)? as u16)
        };
        let secs = if self.eat(b'/') { self.hms()? } else { 7200 };
        Ok(Transition { day, secs })
    }
}

/// Parses a POSIX TZ rule (as in a TZif footer). Offsets in the string count west of UTC;
/// the result counts east like everything else here.
pub fn parse_posix_tz(s: &str) -> Result<PosixTz, String> {
    let mut sc = Scanner {
        s: s.as_bytes(),
        pos: 0,
    };
    let std_name = sc.name()?;
    let std_offset = -sc.hms()?;
    let dst = if sc.peek().is_none() {
        None
    } else {
        let name = sc.name()?;
        let offset = match sc.peek() {
            Some(b',') | None => std_offset + 3600,
            _ => -sc.hms()?,
        };
        let (start, end) = if sc.eat(b',') {
            let start = sc.transition()?;
            if !sc.eat(b',') {
                return Err("DST rule needs a start and an end".into());
            }
            (start, sc.transition()?)
        } else {
            // The US rules are what glibc assumes when a DST name comes without rules.
            let t = |m, w| Transition {
                day: DayRule::MonthWeekDay(m, w, 0),
                secs: 7200,
            };
            (t(3, 2), t(11, 1))
        };
        Some(Dst {
            name,
            offset: i32::try_from(offset).map_err(|_| "offset out of range")?,
            start,
            end,
        })
    };
    if sc.peek().is_some() {
        return Err(format!("trailing characters at byte {}", sc.pos));
    }
    Ok(PosixTz {
        std_name,
        std_offset: i32::try_from(std_offset).map_err(|_| "offset out of range")?,
        dst,
    })
}

impl PosixTz {
    /// The offset in force at `t` (seconds since the epoch).
    pub fn offset_at(&self, t: i64) -> ZoneOffset {
        let std = ZoneOffset {
            name: self.std_name.clone(),
            offset_seconds: self.std_offset,
        };
        let Some(dst) = &self.dst else { return std };
        let std_off = i64::from(self.std_offset);
        let dst_off = i64::from(dst.offset);
        let year = year_of_day((t + std_off).div_euclid(86_400));
        // The start time is local standard time, the end time local daylight time.
        let start = dst.start.day.day(year) * 86_400 + dst.start.secs - std_off;
        let end = dst.end.day.day(year) * 86_400 + dst.end.secs - dst_off;
        let in_dst = if start < end {
            start <= t && t < end
        } else {
            // Southern hemisphere: DST spans the new year.
            !(end <= t && t < start)
        };
        if in_dst {
            ZoneOffset {
                name: dst.name.clone(),
                offset_seconds: dst.offset,
            }
        } else {
            std
        }
    }
}

// ---- TZif files (RFC 8536) ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalTimeType {
    utoff: i32,
    abbr_index: usize,
}

/// A parsed TZif file: transitions, local time types and the footer rule for later times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tzif {
    transitions: Vec<i64>,
    transition_types: Vec<usize>,
    types: Vec<LocalTimeType>,
    abbrevs: Vec<u8>,
    footer: Option<PosixTz>,
}

struct Bytes<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("truncated TZif data")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

/// Counts of a TZif header, in file order: isut, isstd, leap, time, type, char.
fn tzif_header(b: &mut Bytes<'_>) -> Result<(u8, [usize; 6]), String> {
    if b.take(4)? != b"TZif" {
        return Err("not a TZif file".into());
    }
    let version = b.take(1)?[0];
    b.take(15)?;
    let mut counts = [0; 6];
    for c in &mut counts {
        *c = usize::try_from(u32::from_be_bytes(b.be()?)).map_err(|_| "count too large")?;
    }
    Ok((version, counts))
}

fn mul(n: usize, each: usize) -> Result<usize, String> {
    n.checked_mul(each).ok_or_else(|| "count too large".into())
}

/// Parses a TZif file of any version, using the 64-bit block when there is one.
pub fn parse_tzif(data: &[u8]) -> Result<Tzif, String> {
    let mut b = Bytes { b: data, pos: 0 };
    let (version, mut counts) = tzif_header(&mut b)?;
    let mut time_size = 4;
    if version >= b'2' {
        let [isut, isstd, leap, time, typ, chr] = counts;
        let v1 = mul(time, 5)? + mul(typ, 6)? + chr + mul(leap, 8)? + isstd + isut;
        b.take(v1)?;
        counts = tzif_header(&mut b)?.1;
        time_size = 8;
    }
    let [isut, isstd, leap, time, typ, chr] = counts;
    if typ == 0 {
        return Err("TZif file has no local time types".into());
    }
    let mut transitions = Vec::with_capacity(time.min(4096));
    for _ in 0..time {
        transitions.push(if time_size == 8 {
            i64::from_be_bytes(b.be()?)
        } else {
            i64::from(i32::from_be_bytes(b.be()?))
        });
    }
    let transition_types: Vec<usize> = b.take(time)?.iter().map(|&i| usize::from(i)).collect();
    if transition_types.iter().any(|&i| i >= typ) {
        return Err("transition refers to a missing local time type".into());
    }
    let mut types = Vec::with_capacity(typ.min(256));
    for _ in 0..typ {
        let utoff = i32::from_be_bytes(b.be()?);
        let [_isdst, idx] = b.be::<2>()?;
        if usize::from(idx) >= chr {
            return Err("abbreviation index out of range".into());
        }
        types.push(LocalTimeType {
            utoff,
            abbr_index: usize::from(idx),
        });
    }
    let abbrevs = b.take(chr)?.to_vec();
    b.take(mul(leap, time_size + 4)? + isstd + isut)?;
    let footer = if version >= b'2' {
        let rest = &data[b.pos..];
        let tz = rest
            .strip_prefix(b"\n")
            .and_then(|r| r.split(|&c| c == b'\n').next())
            .ok_or("missing TZif footer")?;
        let tz = std::str::from_utf8(tz).map_err(|_| "footer is not UTF-8")?;
        if tz.is_empty() {
            None
        } else {
            Some(parse_posix_tz(tz).map_err(|e| format!("footer {tz:?}: {e}"))?)
        }
    } else {
        None
    };
    Ok(Tzif {
        transitions,
        transition_types,
        types,
        abbrevs,
        footer,
    })
}

impl Tzif {
    fn abbrev(&self, ty: LocalTimeType) -> String {
        let rest = &self.abbrevs[ty.abbr_index..];
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }

    /// The offset in force at `t` (seconds since the epoch).
    pub fn offset_at(&self, t: i64) -> ZoneOffset {
        let after_last = self.transitions.last().is_none_or(|&last| t >= last);
        if after_last {
            if let Some(rule) = &self.footer {
                return rule.offset_at(t);
            }
        }
        // Before the first transition the first type applies (RFC 8536 section 3.2).
        let ty = match self.transitions.partition_point(|&x| x <= t) {
            0 => self.types[0],
            n => self.types[self.transition_types[n - 1]],
        };
        ZoneOffset {
            name: self.abbrev(ty),
            offset_seconds: ty.utoff,
        }
    }
}

/// Where the local zone comes from: `$TZ` as Go reads it, else `/etc/localtime`; no zone
/// information at all means UTC, as for Go.
pub fn local_offset_at(t: i64) -> Result<ZoneOffset, String> {
    let from_file = |path: &Path| -> Result<Option<ZoneOffset>, String> {
        match std::fs::read(path) {
            Ok(data) => parse_tzif(&data)
                .map(|z| Some(z.offset_at(t)))
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    };
    let Some(tz) = std::env::var_os("TZ") else {
        return Ok(from_file(Path::new("/etc/localtime"))?.unwrap_or_else(ZoneOffset::utc));
    };
    let tz = tz.to_string_lossy();
    let tz = tz.strip_prefix(':').unwrap_or(&tz);
    if tz.is_empty() {
        return Ok(ZoneOffset::utc());
    }
    if tz.starts_with('/') {
        return Ok(from_file(Path::new(tz))?.unwrap_or_else(ZoneOffset::utc));
    }
    if !tz.split('/').any(|c| c == "..") {
        if let Some(z) = from_file(&Path::new("/usr/share/zoneinfo").join(tz))? {
            return Ok(z);
        }
    }
    parse_posix_tz(tz)
        .map(|r| r.offset_at(t))
        .map_err(|e| format!("TZ={tz:?}: {e}"))
}

/// Builds the two families for instant `now` (seconds since the epoch) in `zone`.
pub fn time_families(now: f64, zone: Option<&ZoneOffset>) -> Vec<Family> {
    let mut out = vec![Family::gauge(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
    )
    .with(&[], now)];
    if let Some(z) = zone {
        out.push(
            Family::gauge(
                "node_time_zone_offset_seconds",
                "System time zone offset in seconds.",
            )
            .with(&[("time_zone", &z.name)], f64::from(z.offset_seconds)),
        );
    }
    out
}

/// Reports the wall clock and the local zone offset.
pub struct TimeCollector;

impl TimeCollector {
    /// A new collector.
    pub fn new() -> Self {
        TimeCollector
    }
}

impl Default for TimeCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for TimeCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let now = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        // The zone is looked up every time: an operator may change it while we run.
        let zone = local_offset_at(now.floor() as i64);
        let note = zone.as_ref().err().map(|e| {
            format!("local time zone unreadable ({e}); node_time_zone_offset_seconds skipped")
        });
        Ok(Collection {
            families: time_families(now, zone.ok().as_ref()),
            note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(name: &str, s: i32) -> ZoneOffset {
        ZoneOffset {
            name: name.into(),
            offset_seconds: s,
        }
    }

    #[test]
    fn calendar_helpers() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 7, 1), 1719792000 / 86400);
        assert_eq!(year_of_day(days_from_civil(2024, 12, 31)), 2024);
        assert_eq!(year_of_day(days_from_civil(2025, 1, 1)), 2025);
        assert_eq!(year_of_day(-1), 1969);
        assert_eq!(weekday(0), 4);
        // J60 skips February 29, n=59 does not.
        assert_eq!(DayRule::Julian1(60).day(2024), days_from_civil(2024, 3, 1));
        assert_eq!(DayRule::Julian0(59).day(2024), days_from_civil(2024, 2, 29));
        // Last Sunday of March 2024 is the 31st; second Sunday of March is the 10th.
        assert_eq!(
            DayRule::MonthWeekDay(3, 5, 0).day(2024),
            days_from_civil(2024, 3, 31)
        );
        assert_eq!(
            DayRule::MonthWeekDay(3, 2, 0).day(2024),
            days_from_civil(2024, 3, 10)
        );
    }

    #[test]
    fn posix_rules() {
        let cet = parse_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(cet.offset_at(1705276800), off("CET", 3600));
        assert_eq!(cet.offset_at(1719792000), off("CEST", 7200));
        assert_eq!(cet.offset_at(1711846799), off("CET", 3600));
        assert_eq!(cet.offset_at(1711846800), off("CEST", 7200));
        assert_eq!(cet.offset_at(1729990799), off("CEST", 7200));
        assert_eq!(cet.offset_at(1729990800), off("CET", 3600));

        let us = parse_posix_tz("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(us.offset_at(1710053999), off("EST", -18000));
        assert_eq!(us.offset_at(1710054000), off("EDT", -14400));
        assert_eq!(us.offset_at(1730613599), off("EDT", -14400));
        assert_eq!(us.offset_at(1730613600), off("EST", -18000));

        let au = parse_posix_tz("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(au.offset_at(1705276800), off("AEDT", 39600));
        assert_eq!(au.offset_at(1719792000), off("AEST", 36000));

        assert_eq!(
            parse_posix_tz("<+0330>-3:30").unwrap().offset_at(0),
            off("+0330", 12600)
        );
        assert_eq!(
            parse_posix_tz("UTC0").unwrap().offset_at(1719792000),
            off("UTC", 0)
        );
    }

    #[test]
    fn rejects_malformed_posix_rules() {
        for bad in [
            "",
            "CET",
            "-1",
            "CET-1CEST,M13.1.0,M10.5.0",
            "CET-1CEST,M3.5.0",
            "CET-1CEST,M3.5,M10.5.0",
            "<+03-3",
            "UTC0 junk",
            "X200",
        ] {
            assert!(parse_posix_tz(bad).is_err(), "{bad:?}");
        }
    }

    /// A version 2 TZif file with an empty version 1 block.
    fn tzif(
        transitions: &[(i64, u8)],
        types: &[(i32, u8)],
        abbrevs: &[u8],
        footer: &str,
    ) -> Vec<u8> {
        let header = |time: usize, typ: usize, chr: usize| {
            let mut h = b"TZif2".to_vec();
            h.extend([0; 15]);
            for c in [0, 0, 0, time, typ, chr] {
                h.extend((c as u32).to_be_bytes());
            }
            h
        };
        let mut out = header(0, 1, 1);
        out.extend([0, 0, 0, 0, 0, 0, 0]);
        out.extend(header(transitions.len(), types.len(), abbrevs.len()));
        for (t, _) in transitions {
            out.extend(t.to_be_bytes());
        }
        out.extend(transitions.iter().map(|(_, i)| *i));
        for (utoff, idx) in types {
            out.extend(utoff.to_be_bytes());
            out.extend([0, *idx]);
        }
        out.extend(abbrevs);
        out.push(b'\n');
        out.extend(footer.as_bytes());
        out.push(b'\n');
        out
    }

    #[test]
    fn tzif_transitions_and_footer() {
        // LMT until 1893, then CET and CEST by table until 2000, then the footer rule.
        let data = tzif(
            &[(-2422054408, 1), (10, 2), (946684800, 1)],
            &[(3208, 0), (3600, 4), (7200, 8)],
            b"LMT\0CET\0CEST\0",
            "CET-1CEST,M3.5.0,M10.5.0/3",
        );
        let z = parse_tzif(&data).unwrap();
        assert_eq!(z.offset_at(-3_000_000_000), off("LMT", 3208));
        assert_eq!(z.offset_at(9), off("CET", 3600));
        assert_eq!(z.offset_at(10), off("CEST", 7200));
        assert_eq!(z.offset_at(1719792000), off("CEST", 7200));
        assert_eq!(z.offset_at(1705276800), off("CET", 3600));

        let utc = parse_tzif(&tzif(&[], &[(0, 0)], b"UTC\0", "UTC0")).unwrap();
        assert_eq!(utc.offset_at(1719792000), off("UTC", 0));
        let no_footer = parse_tzif(&tzif(&[], &[(19800, 0)], b"IST\0", "")).unwrap();
        assert_eq!(no_footer.offset_at(1719792000), off("IST", 19800));
    }

    #[test]
    fn rejects_malformed_tzif() {
        let good = tzif(&[(0, 0)], &[(0, 0)], b"UTC\0", "UTC0");
        assert!(parse_tzif(&good).is_ok());
        assert!(parse_tzif(b"").is_err());
        assert!(parse_tzif(b"TZjf2").is_err());
        for cut in [10, 50, good.len() - 8] {
            assert!(parse_tzif(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_tzif(&tzif(&[(0, 3)], &[(0, 0)], b"UTC\0", "")).is_err());
        assert!(parse_tzif(&tzif(&[], &[(0, 9)], b"UTC\0", "")).is_err());
        assert!(parse_tzif(&tzif(&[], &[(0, 0)], b"UTC\0", "UTC0 x")).is_err());
    }

    #[test]
    fn reads_system_zoneinfo_when_present() {
        let Ok(data) = std::fs::read("/usr/share/zoneinfo/Europe/Berlin") else {
            return;
        };
        let z = parse_tzif(&data).unwrap();
        assert_eq!(z.offset_at(1719792000), off("CEST", 7200));
        assert_eq!(z.offset_at(1705276800), off("CET", 3600));
        // Far beyond the table, where only the footer rule answers.
        assert_eq!(z.offset_at(4_102_444_800 + 200 * 86400), off("CEST", 7200));
    }

    #[test]
    fn collects_now() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let out = TimeCollector::new().collect().unwrap();
        let t = out.families[0].samples[0].value;
        assert_eq!(out.families[0].name, "node_time_seconds");
        assert!(t >= before && t < before + 60.0, "{t}");
        if out.note.is_none() {
            let tz = &out.families[1];
            assert_eq!(tz.name, "node_time_zone_offset_seconds");
            assert_eq!(tz.samples[0].labels[0].0, "time_zone");
        }
    }
}
