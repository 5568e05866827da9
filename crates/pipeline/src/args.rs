//! The pipeline's command-line options (flags, `STOCKSTREAM_*` variables, or
//! `stockstream.toml` keys of the same names).

use std::time::Duration;

use stockstream_core::MissingPolicy;

use crate::{ConsumeOptions, Pace};

/// How fast the producer sends.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PaceArgs {
    /// Send at most this many records per second.
    #[arg(long, env = "STOCKSTREAM_RATE", conflicts_with = "speed")]
    pub rate: Option<f64>,
    /// Replay history this many times faster than its timestamps (`60x`).
    #[arg(long, env = "STOCKSTREAM_SPEED", value_parser = parse_speed)]
    pub speed: Option<f64>,
    /// As fast as possible (the default).
    #[arg(long, conflicts_with_all = ["rate", "speed"])]
    pub max: bool,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim_end_matches(['x', 'X']).parse().map_err(|_| format!("{s:?} is not a speed like 60x"))?;
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(format!("speed {s:?} must be positive"))
    }
}

impl PaceArgs {
    /// The pace asked for.
    pub fn pace(&self) -> Pace {
        match (self.rate, self.speed) {
            (Some(r), _) if r > 0.0 => Pace::Rate(r),
            (_, Some(x)) => Pace::Speed(x),
            _ => Pace::Max,
        }
    }
}

/// Consumer-side options.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsumeArgs {
    /// What to do with a missing value: fill it from the company's previous bar, or drop the row.
    #[arg(long, env = "STOCKSTREAM_MISSING", default_value = "ffill")]
    pub missing: MissingPolicy,
    /// Bars per store write.
    #[arg(long, env = "STOCKSTREAM_BATCH_SIZE", default_value_t = 5000)]
    pub batch_size: usize,
    /// A partial batch is written after this many milliseconds.
    #[arg(long, env = "STOCKSTREAM_FLUSH_MS", default_value_t = 200)]
    pub flush_ms: u64,
}

impl ConsumeArgs {
    /// The consume loop's options (no analytics stage yet).
    pub fn options(&self) -> ConsumeOptions {
        ConsumeOptions {
            batch_size: self.batch_size.max(1),
            flush_interval: Duration::from_millis(self.flush_ms.max(1)),
            missing: self.missing,
            ..Default::default()
        }
    }
}
