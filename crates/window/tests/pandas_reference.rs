//! The windows' bars equal pandas' for the same ticks: a recorded-shaped tick
//! file (uneven spacing, ticks out of order within the lateness, late ticks
//! within the grace, ticks too late, duplicates, a feed with cumulative day
//! volume and a session reset), aggregated by `Windows` and by a pandas script
//! (`resample` per symbol: first, max, min, last, summed size, or day-volume
//! deltas), at 1 and 5 minutes.

use std::io::Write;
use std::process::Command;

use stockstream_core::Tick;
use stockstream_window::{BarLength, Output, Verdict, WindowBar, WindowConfig, Windows};

const LATENESS_MS: i64 = 5_000;
const GRACE_MS: i64 = 60_000;
/// 2024-01-02 14:30 UTC.
const START_MS: i64 = 1_704_205_800_000;

/// A deterministic generator (xorshift), so the file is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ticks in arrival order, each with whether it is too late by construction
/// (delayed by more than the lateness, the longest window and the grace).
fn recorded_ticks() -> Vec<(Tick, bool)> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut arrivals: Vec<(i64, Tick, bool)> = Vec::new();
    for (s, symbol) in ["NVDA", "TSLA", "AAPL", "META"].iter().enumerate() {
        let name: std::sync::Arc<str> = (*symbol).into();
        let day_volume_feed = s >= 2;
        let (mut t, mut price, mut day_volume) = (START_MS + s as i64 * 17, 100.0 + 50.0 * s as f64, 0.0);
        let end = START_MS + 40 * 60_000;
        while t < end {
            t += 1 + (rng.unit() * 400.0) as i64;
            price = ((price * (1.0 + (rng.unit() - 0.5) * 0.004)) * 100.0).round() / 100.0;
            let size = (1 + rng.next() % 500) as f64;
            day_volume += size;
            if symbol == &"META" && (t - START_MS) / 60_000 == 23 && day_volume > 1e5 {
                day_volume = size; // a new session's counter
            }
            let r = rng.unit();
            let (delay, too_late) = if r < 0.90 {
                (0, false)
            } else if r < 0.98 {
                ((rng.unit() * LATENESS_MS as f64) as i64, false)
            } else if r < 0.995 || t > end - 10 * 60_000 {
                // (Too late needs later ticks to have moved the watermark on.)
                (LATENESS_MS + GRACE_MS / 2, false)
            } else {
                (LATENESS_MS + 5 * 60_000 + GRACE_MS + 30_000, true)
            };
            let tick = Tick {
                symbol: name.clone(),
                time_ms: t,
                price,
                size,
                day_volume: day_volume_feed.then_some(day_volume),
                trade_id: (!day_volume_feed).then(|| format!("{s}-{t}")),
                source: "recorded".into(),
            };
            if rng.unit() < 0.005 {
                arrivals.push((t + delay + 700, tick.clone(), too_late));
            }
            arrivals.push((t + delay, tick, too_late));
        }
    }
    arrivals.sort_by_key(|(arrival, ..)| *arrival);
    arrivals.into_iter().map(|(_, tick, late)| (tick, late)).collect()
}

fn aggregate(ticks: &[(Tick, bool)], length: BarLength) -> Vec<WindowBar> {
    let config = WindowConfig { length, allowed_lateness_ms: LATENESS_MS, grace_ms: GRACE_MS };
    let mut windows = Windows::new(config);
    let mut out = Vec::new();
    for (tick, too_late) in ticks {
        let verdict = windows.push(tick, &mut out);
        assert_eq!(verdict == Verdict::Late, *too_late, "{tick:?}: {verdict:?}");
    }
    windows.flush(&mut out);
    let mut bars: Vec<WindowBar> = Vec::new();
    for bar in out.iter().map(Output::bar) {
        match bars.iter_mut().find(|b| b.symbol == bar.symbol && b.start_ms == bar.start_ms) {
            Some(b) => *b = bar.clone(),
            None => bars.push(bar.clone()),
        }
    }
    bars.sort_by(|a, b| (&*a.symbol, a.start_ms).cmp(&(&*b.symbol, b.start_ms)));
    bars
}

const REFERENCE: &str = r#"
import sys
import pandas as pd

ticks = pd.read_csv(sys.argv[1], dtype={"trade_id": str})
rule = sys.argv[2]
ticks = ticks[ticks.too_late == 0].drop_duplicates(["symbol", "time_ms", "price", "size", "trade_id"])
ticks["time"] = pd.to_datetime(ticks.time_ms, unit="ms")
ticks = ticks.sort_values(["symbol", "time"], kind="stable")
rows = []
for symbol, g in ticks.groupby("symbol"):
    r = g.set_index("time").resample(rule)
    bars = r.price.ohlc()
    bars["ticks"] = r.price.count()
    if g.day_volume.notna().all():
        last, first = r.day_volume.last(), r.day_volume.first()
        bars = bars[bars.ticks > 0].copy()
        last, first = last[bars.index], first[bars.index]
        delta = last.diff()
        delta.iloc[0] = last.iloc[0] - first.iloc[0]
        bars["volume"] = delta.where(delta >= 0, last)
    else:
        bars["volume"] = r["size"].sum()
        bars = bars[bars.ticks > 0]
    bars["symbol"] = symbol
    bars["start_ms"] = (bars.index - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
    rows.append(bars)
out = pd.concat(rows)[["symbol", "start_ms", "open", "high", "low", "close", "volume", "ticks"]]
out.to_csv(sys.stdout, index=False, float_format="%.10g")
"#;

fn pandas_bars(file: &std::path::Path, rule: &str) -> Vec<Vec<String>> {
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), REFERENCE).unwrap();
    let output = Command::new("python3")
        .arg(script.path())
        .arg(file)
        .arg(rule)
        .output()
        .expect("python3 runs (scripts/setup.sh installs pandas)");
    assert!(output.status.success(), "the pandas reference failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

#[test]
fn bars_equal_pandas_at_one_and_five_minutes() {
    let ticks = recorded_ticks();
    assert!(ticks.iter().filter(|(_, late)| *late).count() > 5, "the file holds ticks too late");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "symbol,time_ms,price,size,day_volume,trade_id,too_late").unwrap();
    for (t, late) in &ticks {
        let dv = t.day_volume.map(|v| v.to_string()).unwrap_or_default();
        let id = t.trade_id.clone().unwrap_or_default();
        writeln!(file, "{},{},{},{},{dv},{id},{}", t.symbol, t.time_ms, t.price, t.size, *late as u8).unwrap();
    }
    file.flush().unwrap();
    for (length, rule) in [(BarLength::Fixed(60_000), "1min"), (BarLength::Fixed(300_000), "5min")] {
        let ours = aggregate(&ticks, length);
        let theirs = pandas_bars(file.path(), rule);
        assert_eq!(ours.len(), theirs.len(), "{rule}: bar count");
        assert!(ours.len() >= 4 * 8, "{rule}: {} bars", ours.len());
        for (b, row) in ours.iter().zip(&theirs) {
            let n = |i: usize| row[i].parse::<f64>().unwrap();
            let context = format!("{rule} {} {}: ours {b:?}, pandas {row:?}", b.symbol, b.start_ms);
            assert_eq!((&*b.symbol, b.start_ms), (row[0].as_str(), row[1].parse::<i64>().unwrap()), "{context}");
            assert_eq!((b.open, b.high, b.low, b.close), (n(2), n(3), n(4), n(5)), "{context}");
            assert_eq!((b.volume, b.ticks as f64), (n(6), n(7)), "{context}");
        }
    }
}
