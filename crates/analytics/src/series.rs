//! A company's series reduced as it flows, for charts: at most
//! [`CHART_POINTS`] points at any length (a chart has fewer pixels than that),
//! so a run's report takes memory bounded by the number of companies.

use stockstream_core::Bar;

use crate::IndicatorRow;

/// Points a reduced series holds at most; once reduced, between half of
/// this and this.
pub const CHART_POINTS: usize = 2048;

/// Companies a run's report charts at most (the first ones seen): a series
/// takes up to ~1 MB, and a file may name any number of companies.
pub const MAX_CHARTED: usize = 50;

/// Bars and their indicators, oldest first. Each point stands for `width`
/// consecutive bars: the first one's time and open, the highest high, the
/// lowest low, the last close, the summed volume, and the last bar's
/// indicators. While the series holds at most [`CHART_POINTS`] bars, every
/// point is one bar.
#[derive(Debug, Clone, Default)]
pub struct ReducedSeries {
    bars: Vec<Bar>,
    rows: Vec<IndicatorRow>,
    /// Bars per point.
    width: usize,
    /// Bars in the newest point.
    filled: usize,
}

impl ReducedSeries {
    /// Takes the next bar (after every earlier one) and its indicators.
    pub fn push(&mut self, bar: &Bar, row: &IndicatorRow) {
        self.width = self.width.max(1);
        if self.filled > 0 && self.filled < self.width {
            let (point, last_row) = (self.bars.last_mut(), self.rows.last_mut());
            if let (Some(point), Some(last_row)) = (point, last_row) {
                absorb(point, bar);
                last_row.assign(row);
                self.filled += 1;
                return;
            }
        }
        if self.bars.len() == CHART_POINTS {
            self.halve();
        }
        self.bars.push(bar.clone());
        self.rows.push(row.clone());
        self.filled = 1;
    }

    /// Every pair of points made one: the points stand for twice as many bars.
    fn halve(&mut self) {
        let (bars, rows) = (std::mem::take(&mut self.bars), std::mem::take(&mut self.rows));
        let mut rows = rows.into_iter();
        for pair in bars.chunks(2) {
            let mut point = pair[0].clone();
            let mut row = rows.next().expect("a row per point");
            if let Some(second) = pair.get(1) {
                absorb(&mut point, second);
                row = rows.next().expect("a row per point");
            }
            self.bars.push(point);
            self.rows.push(row);
        }
        self.width *= 2;
        // Every point was full: so is the newest one, at twice the width.
        self.filled = self.width;
    }

    /// The points and their indicators, oldest first.
    pub fn into_parts(self) -> (Vec<Bar>, Vec<IndicatorRow>) {
        (self.bars, self.rows)
    }

    /// The company of its bars (None before the first).
    pub fn company(&self) -> Option<&str> {
        self.bars.first().map(|b| b.company.as_str())
    }

    /// Bars each point stands for.
    pub fn width(&self) -> usize {
        self.width.max(1)
    }
}

/// A later bar into the point that began before it.
fn absorb(point: &mut Bar, later: &Bar) {
    point.high = point.high.max(later.high);
    point.low = point.low.min(later.low);
    point.close = later.close;
    point.volume += later.volume;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(i: usize) -> Bar {
        // Prices that go up and down, so that every point's extremes matter.
        let close = 100.0 + ((i * 37) % 101) as f64 - ((i * 11) % 53) as f64;
        Bar {
            symbol: "NVDA".into(),
            company: "NVIDIA".into(),
            ts: stockstream_core::Ts::Instant(
                chrono::DateTime::from_timestamp(1_700_000_000 + 60 * i as i64, 0).unwrap(),
            ),
            open: close - 0.5,
            high: close + (i % 7) as f64,
            low: close - (i % 5) as f64,
            close,
            volume: (i % 13) as f64 + 1.0,
            vwap: None,
            trades: None,
        }
    }

    fn row(b: &Bar) -> IndicatorRow {
        IndicatorRow { date: b.ts.to_string(), company: b.company.clone(), close: b.close, ..Default::default() }
    }

    fn reduced(n: usize) -> (Vec<Bar>, ReducedSeries) {
        let bars: Vec<Bar> = (0..n).map(bar).collect();
        let mut series = ReducedSeries::default();
        for b in &bars {
            series.push(b, &row(b));
        }
        (bars, series)
    }

    #[test]
    fn a_short_series_is_kept_whole() {
        let (bars, series) = reduced(CHART_POINTS);
        assert_eq!(series.width(), 1);
        let (points, rows) = series.into_parts();
        assert_eq!(points, bars);
        assert_eq!(rows, bars.iter().map(row).collect::<Vec<_>>());
    }

    #[test]
    fn a_long_series_keeps_at_most_its_points_each_the_aggregate_of_its_bars() {
        for n in [CHART_POINTS + 1, 3 * CHART_POINTS + 123, 10 * CHART_POINTS] {
            let (bars, series) = reduced(n);
            let width = series.width();
            let (points, rows) = series.into_parts();
            assert!(points.len() <= CHART_POINTS && points.len() > CHART_POINTS / 4, "{n}: {} points", points.len());
            assert_eq!(points.len(), n.div_ceil(width), "{n}: every point but the newest holds {width} bars");
            for ((point, r), group) in points.iter().zip(&rows).zip(bars.chunks(width)) {
                let last = group.last().unwrap();
                assert_eq!(point.ts, group[0].ts);
                assert_eq!(point.open, group[0].open);
                assert_eq!(point.close, last.close);
                assert_eq!(point.high, group.iter().map(|b| b.high).fold(f64::MIN, f64::max));
                assert_eq!(point.low, group.iter().map(|b| b.low).fold(f64::MAX, f64::min));
                assert_eq!(point.volume, group.iter().map(|b| b.volume).sum::<f64>());
                assert_eq!(*r, row(last), "a point carries its last bar's indicators");
            }
        }
    }
}
