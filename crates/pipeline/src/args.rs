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

/// Ticks into bars: the bar length and how late a tick may be.
#[derive(clap::Args, Debug, Clone)]
pub struct WindowArgs {
    /// Aggregate ticks into bars of this length: 1s, 1m, 5m, 15m, 30m, 1h, or 1d
    /// (the exchange's regular session). Needed by tick sources.
    #[arg(long, env = "STOCKSTREAM_BAR")]
    pub bar: Option<stockstream_window::BarLength>,
    /// The watermark trails the latest tick's time by this much (`5s`).
    #[arg(long, env = "STOCKSTREAM_ALLOWED_LATENESS", default_value = "5s", value_parser = parse_duration)]
    pub allowed_lateness: Duration,
    /// A closed bar still takes late ticks, as revisions, this long (`1m`).
    #[arg(long, env = "STOCKSTREAM_GRACE", default_value = "1m", value_parser = parse_duration)]
    pub grace: Duration,
    /// A symbol without ticks this long (wall time) has its open bar closed
    /// (default: the bar's length).
    #[arg(long, env = "STOCKSTREAM_IDLE_CLOSE", value_parser = parse_duration)]
    pub idle_close: Option<Duration>,
}

impl WindowArgs {
    /// The tick stage's options, when a bar length was given.
    pub fn options(&self) -> Option<crate::TickOptions> {
        let mut options = crate::TickOptions::new(self.bar?);
        options.window.allowed_lateness_ms = self.allowed_lateness.as_millis() as i64;
        options.window.grace_ms = self.grace.as_millis() as i64;
        if let Some(idle) = self.idle_close {
            options.idle_close = idle;
        }
        Some(options)
    }
}

/// `500ms`, `5s`, `1m`, `2h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 500ms, 5s, 1m"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{s:?} is not a duration"))
}
