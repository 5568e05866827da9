//! A Prometheus-style histogram: fixed buckets, lock-free updates.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in µs since the epoch: the clock of a message's `sent_at_micros`,
/// against which every latency from the bus on is measured.
pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Upper bounds in seconds, from 100 µs to 10 s.
const BOUNDS: [f64; 14] = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Fine buckets for quantiles: the first ends at 10 µs, each next one 2^(1/8)
/// (9%) wider, up to about 10 minutes.
const FINE: usize = 208;
const FINE_FIRST: f64 = 1e-5;
const FINE_RATIO: f64 = 1.090_507_732_665_257_7; // 2^(1/8)

#[derive(Debug)]
/// A latency histogram with fixed buckets, rendered for Prometheus, and fine
/// ones from which quantiles are read to within 9%.
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    fine: [AtomicU64; FINE],
    count: AtomicU64,
    /// Sum in microseconds (atomics hold integers).
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: Default::default(),
            fine: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        let fine =
            if seconds <= FINE_FIRST { 0 } else { ((seconds / FINE_FIRST).ln() / FINE_RATIO.ln()).ceil() as usize };
        self.fine[fine.min(FINE - 1)].fetch_add(1, Ordering::Relaxed);
        for (b, bound) in self.buckets.iter().zip(BOUNDS) {
            if seconds <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The duration below which a fraction `q` of those recorded fell: the
    /// upper end of its fine bucket (at most 9% above the true value). None
    /// before anything is recorded.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count: u64 = self.fine.iter().map(|b| b.load(Ordering::Relaxed)).sum();
        if count == 0 {
            return None;
        }
        let rank = ((count as f64 * q.clamp(0.0, 1.0)).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in self.fine.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(FINE_FIRST * FINE_RATIO.powi(i as i32));
            }
        }
        None
    }

    /// The histogram in Prometheus' text format.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, bound) in self.buckets.iter().zip(BOUNDS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", b.load(Ordering::Relaxed));
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_nine_percent() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for i in 1..=1000 {
            h.observe(i as f64 * 1e-5); // 10 µs … 10 ms
        }
        for (q, truth) in [(0.5, 5e-3), (0.99, 9.9e-3), (0.01, 1e-4)] {
            let got = h.quantile(q).unwrap();
            assert!(got >= truth && got <= truth * 1.091, "q{q}: {got} vs {truth}");
        }
    }

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(0.003);
        h.observe(0.5);
        let mut text = String::new();
        h.render("x_seconds", "x", &mut text);
        assert!(text.contains("x_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("x_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("x_seconds_bucket{le=\"0.5\"} 2\n"));
        assert!(text.contains("x_seconds_count 2\n"));
        assert!(text.contains("x_seconds_sum 0.503\n"));
    }
}
