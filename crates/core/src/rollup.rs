//! Bars of a longer interval made from stored shorter ones: open of the
//! first, highest high, lowest low, close of the last, summed volume, each
//! bucket the [`BarLength::window`] of its bars (aligned to the regular
//! session's open) and dated by its start; a daily bucket takes the regular
//! session's bars only and is dated by its New York date. VWAP is weighted by
//! volume and trades are summed, each unknown if any part's is.

use chrono::DateTime;

use crate::{Bar, BarLength, Ts};

/// The bucket of `length` a bar of a shorter interval falls in, as the date
/// the rolled-up bar carries; None for a bar outside every bucket (a
/// pre-market minute of a daily bucket, a daily bar).
pub fn bucket_of(length: BarLength, ts: &Ts) -> Option<Ts> {
    let Ts::Instant(t) = ts else { return None };
    let (start, _) = length.window(t.timestamp_millis())?;
    Some(match length {
        BarLength::Day => Ts::Date(crate::calendar::NewYorkDay::of(start)?.date),
        BarLength::Fixed(_) => Ts::Instant(DateTime::from_timestamp_millis(start)?),
    })
}

/// The end (exclusive, Unix milliseconds) of the bucket dated `bucket`.
pub fn bucket_end(length: BarLength, bucket: &Ts) -> Option<i64> {
    let start = match bucket {
        Ts::Instant(t) => t.timestamp_millis(),
        Ts::Date(d) => crate::calendar::session_open_utc(*d).and_utc().timestamp_millis(),
    };
    length.window(start).map(|(_, end)| end)
}

/// Bars (one company's, oldest first) rolled up into buckets of `length`.
pub fn roll_up<'a>(bars: impl IntoIterator<Item = &'a Bar>, length: BarLength) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::new();
    for bar in bars {
        let Some(bucket) = bucket_of(length, &bar.ts) else { continue };
        match out.last_mut() {
            Some(last) if last.ts == bucket => {
                let volume = last.volume + bar.volume;
                last.vwap = match (last.vwap, bar.vwap) {
                    (Some(a), Some(b)) if volume > 0.0 => Some((a * last.volume + b * bar.volume) / volume),
                    _ => None,
                };
                last.trades = last.trades.zip(bar.trades).map(|(a, b)| a + b);
                last.high = last.high.max(bar.high);
                last.low = last.low.min(bar.low);
                last.close = bar.close;
                last.volume = volume;
            }
            _ => out.push(Bar { ts: bucket, ..bar.clone() }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(at: &str, open: f64, high: f64, low: f64, close: f64, volume: f64) -> Bar {
        Bar {
            symbol: "NVDA".into(),
            company: "NVIDIA".into(),
            ts: at.parse().unwrap(),
            open,
            high,
            low,
            close,
            volume,
            vwap: None,
            trades: None,
        }
    }

    #[test]
    fn hours_start_at_the_open_and_stop_at_the_close() {
        let h: BarLength = "1h".parse().unwrap();
        // 2024-07-01: New York is UTC-4; the session runs 13:30–20:00 UTC.
        let bars = [
            minute("2024-07-01T13:29:00Z", 1.0, 1.0, 1.0, 1.0, 1.0), // pre-market, 08:30–09:30
            minute("2024-07-01T13:30:00Z", 2.0, 5.0, 2.0, 3.0, 10.0),
            minute("2024-07-01T14:29:00Z", 3.0, 4.0, 0.5, 3.5, 20.0),
            minute("2024-07-01T14:30:00Z", 4.0, 4.0, 4.0, 4.0, 1.0),
            minute("2024-07-01T19:59:00Z", 6.0, 6.0, 6.0, 6.0, 1.0), // 15:30–16:00, cut at the close
            minute("2024-07-01T20:00:00Z", 7.0, 7.0, 7.0, 7.0, 1.0), // post-market from 16:00
        ];
        let rolled = roll_up(&bars, h);
        let dates: Vec<String> = rolled.iter().map(|b| b.ts.to_string()).collect();
        assert_eq!(
            dates,
            [
                "2024-07-01T12:30:00Z",
                "2024-07-01T13:30:00Z",
                "2024-07-01T14:30:00Z",
                "2024-07-01T19:30:00Z",
                "2024-07-01T20:00:00Z"
            ]
        );
        let first_hour = &rolled[1];
        assert_eq!((first_hour.open, first_hour.high, first_hour.low, first_hour.close), (2.0, 5.0, 0.5, 3.5));
        assert_eq!(first_hour.volume, 30.0);
        let close = "2024-07-01T20:00:00Z".parse::<DateTime<chrono::Utc>>().unwrap().timestamp_millis();
        assert_eq!(bucket_end(h, &rolled[3].ts), Some(close), "the last hour of the session is half an hour");
        assert_eq!(bucket_end(BarLength::Day, &"2024-07-01".parse().unwrap()), Some(close));
    }

    #[test]
    fn days_take_the_regular_session_by_new_york_date() {
        let bars = [
            minute("2024-11-29T14:00:00Z", 1.0, 1.0, 1.0, 1.0, 5.0), // 09:00 pre-market
            minute("2024-11-29T14:30:00Z", 2.0, 3.0, 2.0, 2.5, 1.0),
            minute("2024-11-29T17:59:00Z", 2.5, 2.5, 1.5, 2.0, 1.0), // 12:59, the early close's last minute
            minute("2024-11-29T18:00:00Z", 9.0, 9.0, 9.0, 9.0, 9.0), // 13:00: after the early close
            minute("2024-12-02T14:30:00Z", 3.0, 3.0, 3.0, 3.0, 1.0),
        ];
        let rolled = roll_up(&bars, BarLength::Day);
        assert_eq!(rolled.len(), 2);
        assert_eq!(rolled[0].ts.to_string(), "2024-11-29");
        assert_eq!(
            (rolled[0].open, rolled[0].high, rolled[0].low, rolled[0].close, rolled[0].volume),
            (2.0, 3.0, 1.5, 2.0, 2.0)
        );
        assert_eq!(rolled[1].ts.to_string(), "2024-12-02");
    }

    #[test]
    fn vwap_is_weighted_by_volume_and_unknown_if_any_part_is() {
        let m5: BarLength = "5m".parse().unwrap();
        let traded = |at: &str, vwap: Option<f64>, volume: f64, trades: Option<u64>| Bar {
            vwap,
            trades,
            ..minute(at, 10.0, 12.0, 9.0, 11.0, volume)
        };
        let bars = [
            traded("2024-01-02T14:30:00Z", Some(10.0), 100.0, Some(3)),
            traded("2024-01-02T14:31:00Z", Some(11.0), 300.0, Some(5)),
            traded("2024-01-02T14:35:00Z", Some(10.0), 100.0, Some(1)),
            traded("2024-01-02T14:36:00Z", None, 100.0, None),
        ];
        let rolled = roll_up(&bars, m5);
        assert_eq!((rolled[0].vwap, rolled[0].trades), (Some(10.75), Some(8)));
        assert_eq!((rolled[1].vwap, rolled[1].trades), (None, None));
    }

    #[test]
    fn five_minutes_follow_the_clock() {
        let m5: BarLength = "5m".parse().unwrap();
        let bars = [
            minute("2024-01-02T14:34:00Z", 1.0, 1.0, 1.0, 1.0, 1.0),
            minute("2024-01-02T14:35:00Z", 2.0, 2.0, 2.0, 2.0, 1.0),
        ];
        let rolled = roll_up(&bars, m5);
        assert_eq!(
            rolled.iter().map(|b| b.ts.to_string()).collect::<Vec<_>>(),
            ["2024-01-02T14:30:00Z", "2024-01-02T14:35:00Z"]
        );
    }
}
