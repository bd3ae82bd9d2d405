//! The in-memory head: samples of windows not yet sealed, per series and window. Samples
//! are kept in small compressed blocks plus an uncompressed tail, so an active series costs
//! well under 2 KiB even at a 15 s interval over a 2 h window.

use std::collections::BTreeMap;

use super::fxhash::FxHashMap;

use super::codec;
use super::index::SeriesId;

/// Samples of one series in one window, taken out of the head for sealing.
pub type TakenWindow = (SeriesId, i64, Vec<(i64, f64)>);

/// Samples per compressed block; the tail holds fewer than this.
const BLOCK: usize = 32;

/// One series' samples in one window.
#[derive(Debug, Default, Clone)]
pub struct WindowBuf {
    blocks: Vec<Box<[u8]>>,
    tail: Vec<(i64, f64)>,
    last_ts: Option<i64>,
    count: usize,
}

impl WindowBuf {
    /// Appends a sample; returns false (and keeps nothing) when it is not newer than the last
    /// one, as Prometheus rejects out-of-order samples.
    pub fn push(&mut self, ts: i64, v: f64) -> bool {
        if self.last_ts.is_some_and(|l| ts <= l) {
            return false;
        }
        self.tail.push((ts, v));
        self.last_ts = Some(ts);
        self.count += 1;
        if self.tail.len() >= BLOCK {
            self.blocks
                .push(codec::encode(&self.tail).into_boxed_slice());
            self.tail.clear();
        }
        true
    }

    /// Every sample, in order.
    pub fn samples(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.count);
        for b in &self.blocks {
            // Blocks were encoded here from valid samples, so decoding cannot fail short of
            // memory corruption; skip rather than panic.
            if let Ok(s) = codec::decode(b) {
                out.extend(s);
            }
        }
        out.extend_from_slice(&self.tail);
        out
    }

    /// Samples with `start <= ts <= end`.
    pub fn samples_in(&self, start: i64, end: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        for b in &self.blocks {
            if let Ok(s) = codec::decode_range(b, start..=end) {
                out.extend(s);
            }
        }
        out.extend(self.tail.iter().filter(|(t, _)| *t >= start && *t <= end));
        out
    }

    /// Bytes used, approximately.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.blocks.iter().map(|b| b.len() + 16).sum::<usize>()
            + self.tail.capacity() * 16
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.count
    }
}

/// All unsealed samples.
#[derive(Debug, Default)]
pub struct Head {
    series: FxHashMap<SeriesId, BTreeMap<i64, WindowBuf>>,
    samples: usize,
}

impl Head {
    /// Appends a sample to `window`; false when out of order.
    pub fn push(&mut self, id: SeriesId, window: i64, ts: i64, v: f64) -> bool {
        let ok = self
            .series
            .entry(id)
            .or_default()
            .entry(window)
            .or_default()
            .push(ts, v);
        if ok {
            self.samples += 1;
        }
        ok
    }

    /// The oldest window held.
    pub fn min_window(&self) -> Option<i64> {
        self.series
            .values()
            .filter_map(|w| w.keys().next().copied())
            .min()
    }

    /// Removes and returns every window `<= upto`, per series.
    pub fn take_upto(&mut self, upto: i64) -> Vec<TakenWindow> {
        let mut out = Vec::new();
        for (id, windows) in self.series.iter_mut() {
            let later = windows.split_off(&(upto.saturating_add(1)));
            let sealed = std::mem::replace(windows, later);
            for (w, buf) in sealed {
                self.samples -= buf.len();
                out.push((*id, w, buf.samples()));
            }
        }
        self.series.retain(|_, w| !w.is_empty());
        out
    }

    /// Puts samples back (after a failed seal) so they stay visible until the next try.
    pub fn restore(&mut self, taken: Vec<TakenWindow>) {
        for (id, w, samples) in taken {
            for (ts, v) in samples {
                self.push(id, w, ts, v);
            }
        }
    }

    /// Samples of one series in `[start, end]`.
    pub fn samples_in(&self, id: SeriesId, start: i64, end: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        if let Some(windows) = self.series.get(&id) {
            for buf in windows.values() {
                out.extend(buf.samples_in(start, end));
            }
        }
        out
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples
    }

    /// Bytes used, approximately.
    pub fn memory_bytes(&self) -> usize {
        self.series
            .values()
            .map(|w| 48 + w.values().map(|b| b.memory_bytes() + 32).sum::<usize>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_take_and_range() {
        let mut h = Head::default();
        for i in 0..100 {
            assert!(h.push(1, i / 50, i * 1000, i as f64));
        }
        assert!(!h.push(1, 1, 5_000, 0.0), "out of order must be refused");
        assert_eq!(h.len(), 100);
        assert_eq!(h.samples_in(1, 10_000, 12_000).len(), 3);
        let taken = h.take_upto(0);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].2.len(), 50);
        assert_eq!(h.len(), 50);
        assert_eq!(h.min_window(), Some(1));
    }

    #[test]
    fn memory_per_series_at_15s_over_2h_is_small() {
        let mut h = Head::default();
        let mut v = 1000.0;
        for i in 0..480 {
            v += 0.25 * ((i % 7) as f64);
            h.push(1, 0, i * 15_000, v);
        }
        assert!(h.memory_bytes() < 2048, "{} bytes", h.memory_bytes());
    }
}
