//! Loader for the shared node_exporter recording used by the codec's compression test and
//! benchmark: OpenMetrics text, one `series value timestamp` line per sample, timestamps in
//! seconds with a millisecond fraction.

use std::collections::HashMap;
use std::io::Read;

/// Where the recording sits: `shared/` lies beside the repository, locally and in CI.
pub const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/recordings/host-1s-30min.om.xz"
);

/// One series: its key (name and labels, as written) and its samples `(ms, value)`.
pub type Series = (String, Vec<(i64, f64)>);

/// Decompresses and parses the recording, grouping samples per series in first-seen order.
/// `Ok(None)` when the file is absent.
pub fn load() -> Result<Option<Vec<Series>>, String> {
    let file = match std::fs::File::open(PATH) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{PATH}: {e}")),
    };
    let mut text = String::new();
    xz2::read::XzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|e| format!("{PATH}: {e}"))?;
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut series: Vec<Series> = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        // Label values may hold spaces, so split from the right: key, value, timestamp.
        let mut parts = line.rsplitn(3, ' ');
        let (Some(ts), Some(value), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("bad line: {line}"));
        };
        let value: f64 = value.parse().map_err(|_| format!("bad value: {line}"))?;
        let ms = parse_ms(ts).ok_or_else(|| format!("bad timestamp: {line}"))?;
        let i = *index.entry(key).or_insert_with(|| {
            series.push((key.to_string(), Vec::new()));
            series.len() - 1
        });
        series[i].1.push((ms, value));
    }
    Ok(Some(series))
}

/// The recording, or `None` (with a message) when it is missing outside CI; in CI
/// (`CI=true`) a missing recording fails the test instead of silently skipping it.
#[allow(dead_code)]
pub fn load_or_skip() -> Option<Vec<Series>> {
    match load() {
        Ok(Some(s)) => Some(s),
        Ok(None) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("recording missing at {PATH}")
        }
        Ok(None) => {
            eprintln!("skipping: recording missing at {PATH}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// `"1795381810.151"` → 1795381810151, exactly (no float rounding).
fn parse_ms(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut ms: i64 = secs.parse::<i64>().ok()?.checked_mul(1000)?;
    let digits = frac.as_bytes();
    if digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    for (i, scale) in [100, 10, 1].into_iter().enumerate() {
        if let Some(d) = digits.get(i) {
            ms += i64::from(d - b'0') * scale;
        }
    }
    Some(ms)
}

/// Splits a series key `name{a="1",b="x\"y"}` into name and sorted labels (unescaped).
#[allow(dead_code)]
pub fn split_key(key: &str) -> (String, Vec<(String, String)>) {
    let Some(open) = key.find('{') else {
        return (key.to_string(), Vec::new());
    };
    let name = key[..open].to_string();
    let body = key[open + 1..].trim_end_matches('}');
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let mut k = String::new();
        while let Some(&c) = chars.peek() {
            chars.next();
            if c == '=' {
                break;
            }
            if c != ',' && c != ' ' {
                k.push(c);
            }
        }
        if k.is_empty() {
            break;
        }
        chars.next(); // opening quote
        let mut v = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => v.push('\n'),
                    Some(o) => v.push(o),
                    None => break,
                },
                '"' => break,
                c => v.push(c),
            }
        }
        labels.push((k, v));
    }
    labels.sort();
    (name, labels)
}
