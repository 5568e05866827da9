//! Counters shared by the stages, read by the summary, the progress bar and
//! `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use stockstream_core::metrics::Histogram;
use stockstream_core::Reject;

/// What the pipeline has done so far.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records taken from the source (producer side).
    pub read: AtomicU64,
    /// Messages handed to the bus.
    pub produced: AtomicU64,
    /// Messages taken off the bus (consumer side).
    pub consumed: AtomicU64,
    /// Bars acknowledged by the store.
    pub stored: AtomicU64,
    /// Records kept as dead letters.
    pub rejected: AtomicU64,
    /// Records completed by forward fill.
    pub imputed: AtomicU64,
    /// Messages on the bus not yet committed, when last measured.
    pub lag: AtomicU64,
    /// Decoding, cleaning and validating one polled batch.
    pub decode_seconds: Histogram,
    /// One store write (a batch).
    pub store_write_seconds: Histogram,
    /// From the tick that closed (or revised) a bar entering the bus to the
    /// bar being in the store.
    pub tick_to_store_seconds: Histogram,
    rejected_by_kind: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    /// Counts rejects by their reason's code.
    pub fn count_rejects(&self, rejects: &[Reject]) {
        if rejects.is_empty() {
            return;
        }
        self.rejected.fetch_add(rejects.len() as u64, Ordering::Relaxed);
        let mut by_kind = self.rejected_by_kind.lock().expect("stats lock");
        for r in rejects {
            *by_kind.entry(r.kind.as_str()).or_default() += 1;
        }
    }

    /// Rejects so far, by reason code.
    pub fn rejected_by_kind(&self) -> BTreeMap<&'static str, u64> {
        self.rejected_by_kind.lock().expect("stats lock").clone()
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counters and histograms in Prometheus' text format.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for (name, help, v) in [
            ("stockstream_records_read_total", "Records taken from the source.", &self.read),
            ("stockstream_records_produced_total", "Messages handed to the bus.", &self.produced),
            ("stockstream_records_consumed_total", "Messages taken off the bus.", &self.consumed),
            ("stockstream_records_stored_total", "Bars acknowledged by the store.", &self.stored),
            ("stockstream_records_rejected_total", "Records kept as dead letters.", &self.rejected),
            ("stockstream_records_imputed_total", "Records completed by forward-fill.", &self.imputed),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", Self::get(v));
        }
        let _ = writeln!(
            out,
            "# HELP stockstream_rejects_total Records kept as dead letters, by kind (RejectKind).\n# TYPE stockstream_rejects_total counter"
        );
        for (kind, n) in self.rejected_by_kind() {
            let _ = writeln!(out, "stockstream_rejects_total{{kind=\"{kind}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP stockstream_consumer_lag Messages on the bus not yet committed.\n# TYPE stockstream_consumer_lag gauge\nstockstream_consumer_lag {}",
            Self::get(&self.lag)
        );
        self.decode_seconds.render("stockstream_decode_seconds", "Decoding and validating one polled batch.", &mut out);
        self.store_write_seconds.render("stockstream_store_write_seconds", "One store write.", &mut out);
        self.tick_to_store_seconds.render(
            "stockstream_tick_to_store_seconds",
            "From the tick that closed a bar entering the bus to the bar in the store.",
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use stockstream_core::{Refusal, RejectKind};

    use super::*;

    #[test]
    fn rejects_are_counted_by_kind_in_the_metrics() {
        let stats = Stats::default();
        let reject = |kind| Refusal::new(kind, "why").into_reject("f.csv:2", Vec::new());
        stats.count_rejects(&[
            reject(RejectKind::BadDate),
            reject(RejectKind::Superseded),
            reject(RejectKind::BadDate),
        ]);
        let text = stats.prometheus();
        assert!(text.contains("stockstream_records_rejected_total 3"), "{text}");
        assert!(text.contains("stockstream_rejects_total{kind=\"bad_date\"} 2"), "{text}");
        assert!(text.contains("stockstream_rejects_total{kind=\"superseded\"} 1"), "{text}");
    }
}
