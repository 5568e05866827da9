//! The static charts, drawn with plotters into PNG and SVG.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use stockstream_core::{Bar, Ts};

use crate::{CompanySeries, ReportData, CHART_SIZE};

/// Okabe–Ito: distinguishable with every common colour-vision deficiency.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];
const UP: RGBColor = RGBColor(0, 114, 178);
const DOWN: RGBColor = RGBColor(213, 94, 0);

type Area<'a, DB> = DrawingArea<DB, Shift>;
type Drawn = anyhow::Result<()>;

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

pub fn instant(ts: Ts) -> DateTime<Utc> {
    match ts {
        Ts::Date(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
        Ts::Instant(t) => t,
    }
}

fn date_label(intraday: bool) -> impl Fn(&DateTime<Utc>) -> String {
    move |t| if intraday { t.format("%m-%d %H:%M").to_string() } else { t.format("%Y-%m-%d").to_string() }
}

/// Whether the axis labels need the time of day: intraday bars over a few
/// days at most (over longer spans the dates tell more).
fn labels_need_hours(bars: &[Bar]) -> bool {
    match (bars.first(), bars.last()) {
        (Some(first), Some(last)) if first.ts.is_intraday() => {
            instant(last.ts) - instant(first.ts) <= chrono::Duration::days(3)
        }
        _ => false,
    }
}

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    // Finite whatever the values (1e308 prices exist in hostile files): axis
    // code given an infinite range never finishes.
    let width = hi - lo;
    let pad = if width.is_finite() { (width * 0.05).max(hi.abs() * 1e-6).max(1e-9) } else { 0.0 };
    let (a, b) = (lo - pad, hi + pad);
    (if a.is_finite() { a } else { lo }, if b.is_finite() { b } else { hi })
}

/// Draws one chart twice, into `name.png` and `name.svg`.
macro_rules! render {
    ($dir:expr, $name:expr, |$area:ident| $body:block) => {{
        let png = $dir.join(format!("{}.png", $name));
        let svg = $dir.join(format!("{}.svg", $name));
        {
            let mut pixels = vec![0u8; CHART_SIZE.0 as usize * CHART_SIZE.1 as usize * 3];
            {
                let $area = BitMapBackend::with_buffer(&mut pixels, CHART_SIZE).into_drawing_area();
                $area.fill(&WHITE).map_err(err)?;
                $body
                $area.present().map_err(err)?;
            }
            write_png(&png, &pixels)?;
        }
        {
            let $area = SVGBackend::new(&svg, CHART_SIZE).into_drawing_area();
            $area.fill(&WHITE).map_err(err)?;
            $body
            $area.present().map_err(err)?;
        }
        (png, svg)
    }};
}

/// Encodes an RGB buffer as PNG with the `png` crate (plotters' own encoder
/// would pull in a whole image library for this one format).
fn write_png(path: &std::path::Path, rgb: &[u8]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), CHART_SIZE.0, CHART_SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_filter(png::FilterType::Sub);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// A time-series panel: several named lines over shared dates.
fn lines<DB: DrawingBackend>(
    area: &Area<DB>,
    title: &str,
    y_label: &str,
    dates: &[DateTime<Utc>],
    series: &[(&str, Vec<Option<f64>>, RGBColor)],
    intraday: bool,
) -> Drawn {
    let (y0, y1) = span(series.iter().flat_map(|s| s.1.iter().flatten().copied()));
    let (x0, x1) = (dates[0], *dates.last().expect("not empty"));
    let x1 = if x1 > x0 { x1 } else { x0 + chrono::Duration::days(1) };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 26))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&date_label(intraday))
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for (name, values, color) in series {
        let points: Vec<(DateTime<Utc>, f64)> =
            dates.iter().zip(values).filter_map(|(d, v)| v.map(|v| (*d, v))).collect();
        let color = *color;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn candles_caption(c: &CompanySeries) -> String {
    match c.bars_per_point {
        0 | 1 => format!("{} ({}): candlesticks", c.company, c.symbol),
        n => format!("{} ({}): candlesticks, each of {n} bars", c.company, c.symbol),
    }
}

fn candles<DB: DrawingBackend>(area: &Area<DB>, c: &CompanySeries, intraday: bool) -> Drawn {
    let (top, bottom) = area.split_vertically((CHART_SIZE.1 as f64 * 0.7) as u32);
    let dates: Vec<DateTime<Utc>> = c.bars.iter().map(|b| instant(b.ts)).collect();
    let (x0, x1) = (dates[0], *dates.last().expect("not empty") + chrono::Duration::hours(12));
    let (y0, y1) = span(c.bars.iter().flat_map(|b| [b.low, b.high]));
    let mut chart = ChartBuilder::on(&top)
        .caption(candles_caption(c), ("sans-serif", 26))
        .margin(12)
        .x_label_area_size(10)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|_| String::new())
        .y_desc("Price (USD)")
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let width = ((CHART_SIZE.0 as f64 - 120.0) / c.bars.len() as f64 * 0.7).clamp(1.0, 12.0) as u32;
    chart
        .draw_series(
            c.bars
                .iter()
                .zip(&dates)
                .map(|(b, d)| CandleStick::new(*d, b.open, b.high, b.low, b.close, UP.filled(), DOWN.filled(), width)),
        )
        .map_err(err)?;
    let vmax = c.bars.iter().map(|b| b.volume).fold(0.0, f64::max).max(1.0);
    let mut vol = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, 0.0..vmax * 1.05)
        .map_err(err)?;
    vol.configure_mesh()
        .x_labels(8)
        .y_labels(4)
        .x_label_formatter(&date_label(intraday))
        .y_label_formatter(&|v| format!("{:.0}M", v / 1e6))
        .y_desc("Volume (shares)")
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    // Each volume bar as wide as the candle above it.
    let bar_width = ((x1 - x0) / c.bars.len().max(1) as i32) * 7 / 10;
    vol.draw_series(c.bars.iter().zip(&dates).map(|(b, d)| {
        let color = if b.close >= b.open { UP } else { DOWN };
        Rectangle::new([(*d, 0.0), (*d + bar_width, b.volume)], color.mix(0.6).filled())
    }))
    .map_err(err)?;
    Ok(())
}

fn heatmap<DB: DrawingBackend>(area: &Area<DB>, title: &str, names: &[String], m: &[impl AsRef<[f64]>]) -> Drawn {
    let n = names.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(140)
        .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
        .map_err(err)?;
    let at = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(k) | SegmentValue::Exact(k) => *k,
        SegmentValue::Last => n,
    };
    // Row 0 is drawn at the top.
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&|v| names.get(at(v)).cloned().unwrap_or_default())
        .y_label_formatter(&|v| names.get(n.wrapping_sub(1 + at(v))).cloned().unwrap_or_default())
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    // Diverging blue–white–orange: readable with red–green colour blindness.
    let colour = |v: f64| {
        let v = if v.is_finite() { v.clamp(-1.0, 1.0) } else { 0.0 };
        let mix = |a: u8, b: u8, t: f64| (a as f64 + (b as f64 - a as f64) * t) as u8;
        if v >= 0.0 {
            RGBColor(mix(255, 230, v), mix(255, 97, v), mix(255, 1, v))
        } else {
            RGBColor(mix(255, 33, -v), mix(255, 102, -v), mix(255, 172, -v))
        }
    };
    let centred = ("sans-serif", 18).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
    for (i, values) in m.iter().enumerate().take(n) {
        let row = n - 1 - i;
        for (j, &v) in values.as_ref().iter().enumerate().take(n) {
            let cell = [
                (SegmentValue::Exact(j), SegmentValue::Exact(row)),
                (SegmentValue::Exact(j + 1), SegmentValue::Exact(row + 1)),
            ];
            chart.draw_series(std::iter::once(Rectangle::new(cell, colour(v).filled()))).map_err(err)?;
            let text = if v.is_finite() { format!("{v:.2}") } else { "n/a".into() };
            let middle = (SegmentValue::CenterOf(j), SegmentValue::CenterOf(row));
            chart.draw_series(std::iter::once(Text::new(text, middle, centred.clone()))).map_err(err)?;
        }
    }
    Ok(())
}

fn boxes<DB: DrawingBackend>(
    area: &Area<DB>,
    title: &str,
    y_label: &str,
    names: &[String],
    data: &[Vec<f64>],
) -> Drawn {
    // Box plots are drawn in f32: values beyond its range are drawn at its edge.
    let (y0, y1) = span(data.iter().flatten().map(|v| v.clamp(f32::MIN as f64, f32::MAX as f64)));
    let (y0, y1) = (y0.max(f32::MIN as f64), y1.min(f32::MAX as f64));
    let labels: Vec<String> = names.to_vec();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 26))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(labels.as_slice().into_segmented(), y0 as f32..y1 as f32)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(s) | SegmentValue::Exact(s) => s.to_string(),
            SegmentValue::Last => String::new(),
        })
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    chart
        // A company with no values (one bar has no return) gets no box.
        .draw_series(labels.iter().zip(data).enumerate().filter(|(_, (_, v))| !v.is_empty()).map(
            |(i, (name, values))| {
                let q = Quartiles::new(values);
                Boxplot::new_vertical(SegmentValue::CenterOf(name), &q)
                    .width(40)
                    .style(PALETTE[i % PALETTE.len()].stroke_width(2))
            },
        ))
        .map_err(err)?;
    Ok(())
}

fn ranking<DB: DrawingBackend>(area: &Area<DB>, title: &str, x_label: &str, items: &[(String, f64)]) -> Drawn {
    let (lo, hi) = span(items.iter().map(|i| i.1).chain([0.0]));
    let n = items.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(140)
        .build_cartesian_2d(lo..hi, (0..n - 1).into_segmented())
        .map_err(err)?;
    // The first item is drawn at the top.
    let name = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(k) | SegmentValue::Exact(k) => {
            items.get(n.wrapping_sub(1 + *k)).map(|i| i.0.clone()).unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    };
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&name)
        .disable_y_mesh()
        .x_desc(x_label)
        .x_label_formatter(&|v| format!("{:.0}%", v * 100.0 + 0.0))
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let row = n - 1 - i;
            let color = if *v >= 0.0 { UP } else { DOWN };
            let mut bar = Rectangle::new(
                [(0.0, SegmentValue::Exact(row)), (*v, SegmentValue::Exact(row + 1))],
                color.mix(0.8).filled(),
            );
            bar.set_margin(10, 10, 0, 0);
            bar
        }))
        .map_err(err)?;
    let label = ("sans-serif", 15).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    chart
        .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            Text::new(format!(" {:+.1}%", v * 100.0), (v.max(0.0), SegmentValue::CenterOf(n - 1 - i)), label.clone())
        }))
        .map_err(err)?;
    Ok(())
}

/// A company's charts, in the report's order.
#[derive(Debug, Clone, Copy)]
enum CompanyChart {
    Price,
    Candles,
    Momentum,
    Drawdown,
    OhlcvCorrelation,
}

const COMPANY_CHARTS: [CompanyChart; 5] = [
    CompanyChart::Price,
    CompanyChart::Candles,
    CompanyChart::Momentum,
    CompanyChart::Drawdown,
    CompanyChart::OhlcvCorrelation,
];

/// What a company's charts are drawn from.
struct CompanyView<'a> {
    c: &'a CompanySeries,
    stats: Option<&'a stockstream_analytics::CompanyStats>,
    dates: Vec<DateTime<Utc>>,
    intraday: bool,
}

impl CompanyView<'_> {
    /// One indicator column, bar by bar.
    fn col(&self, f: fn(&stockstream_analytics::IndicatorRow) -> Option<f64>) -> Vec<Option<f64>> {
        self.c.indicators.iter().map(f).collect()
    }
}

impl CompanyChart {
    /// The end of its files' names (`nvda-price.png`).
    fn file(self) -> &'static str {
        match self {
            CompanyChart::Price => "price",
            CompanyChart::Candles => "candles",
            CompanyChart::Momentum => "momentum",
            CompanyChart::Drawdown => "drawdown",
            CompanyChart::OhlcvCorrelation => "ohlcv-correlation",
        }
    }

    fn title(self, c: &CompanySeries) -> String {
        let what = match self {
            CompanyChart::Price => "Close with 10/30/50-day moving averages",
            CompanyChart::Candles => "candlesticks and volume",
            CompanyChart::Momentum => "RSI 14 and MACD 12/26/9",
            CompanyChart::Drawdown => "drawdown from the running peak",
            CompanyChart::OhlcvCorrelation => "correlation of Open, High, Low, Close, Volume",
        };
        format!("{} ({}): {what}", c.company, c.symbol)
    }

    /// Whether there is anything to draw (a company without statistics has
    /// no correlation of its columns).
    fn applies(self, v: &CompanyView) -> bool {
        !matches!(self, CompanyChart::OhlcvCorrelation) || v.stats.is_some()
    }

    fn draw<DB: DrawingBackend>(self, area: &Area<DB>, v: &CompanyView, title: &str) -> Drawn {
        let (c, dates, intraday) = (v.c, &v.dates, v.intraday);
        let palette = |i: usize| PALETTE[i % PALETTE.len()];
        match self {
            CompanyChart::Price => lines(
                area,
                title,
                "Price (USD)",
                dates,
                &[
                    ("Close", v.col(|r| Some(r.close)), palette(6)),
                    ("SMA 10", v.col(|r| r.sma10), palette(1)),
                    ("SMA 30", v.col(|r| r.sma30), palette(0)),
                    ("SMA 50", v.col(|r| r.sma50), palette(3)),
                ],
                intraday,
            ),
            CompanyChart::Candles => candles(area, c, intraday),
            CompanyChart::Momentum => {
                let (top, bottom) = area.split_vertically(CHART_SIZE.1 / 2);
                lines(
                    &top,
                    &format!("{} ({}): RSI 14 (70 overbought, 30 oversold)", c.company, c.symbol),
                    "RSI",
                    dates,
                    &[
                        ("RSI 14", v.col(|r| r.rsi14), palette(0)),
                        ("70", vec![Some(70.0); dates.len()], palette(5)),
                        ("30", vec![Some(30.0); dates.len()], palette(2)),
                    ],
                    intraday,
                )?;
                lines(
                    &bottom,
                    &format!("{} ({}): MACD 12/26/9", c.company, c.symbol),
                    "MACD (USD)",
                    dates,
                    &[
                        ("MACD", v.col(|r| r.macd), palette(0)),
                        ("Signal", v.col(|r| r.macd_signal), palette(1)),
                        ("Histogram", v.col(|r| r.macd_hist), palette(6)),
                    ],
                    intraday,
                )
            }
            CompanyChart::Drawdown => lines(
                area,
                title,
                "Drawdown (fraction of peak)",
                dates,
                &[("Drawdown", v.col(|r| r.drawdown), palette(5))],
                intraday,
            ),
            CompanyChart::OhlcvCorrelation => {
                let names: Vec<String> = stockstream_analytics::stats::FIELDS.iter().map(|s| s.to_string()).collect();
                let s = v.stats.expect("applies only with statistics");
                heatmap(area, title, &names, &s.ohlcv_correlation)
            }
        }
    }
}

/// The charts across companies, in the report's order.
#[derive(Debug, Clone, Copy)]
enum MarketChart {
    BoxClose,
    BoxReturns,
    Performance,
    Volatility,
    ReturnCorrelation,
    VolatilityRanking,
    ReturnRanking,
}

const MARKET_CHARTS: [MarketChart; 7] = [
    MarketChart::BoxClose,
    MarketChart::BoxReturns,
    MarketChart::Performance,
    MarketChart::Volatility,
    MarketChart::ReturnCorrelation,
    MarketChart::VolatilityRanking,
    MarketChart::ReturnRanking,
];

/// What the charts across companies are drawn from.
struct MarketView<'a> {
    data: &'a ReportData,
    names: Vec<String>,
    intraday: bool,
    /// The longest series' dates carry the shared axis.
    dates: Vec<DateTime<Utc>>,
    longest: &'a CompanySeries,
}

impl<'a> MarketView<'a> {
    fn new(data: &'a ReportData) -> Option<Self> {
        let longest = data.companies.iter().max_by_key(|c| c.bars.len())?;
        Some(MarketView {
            data,
            names: data.companies.iter().map(|c| c.company.clone()).collect(),
            intraday: labels_need_hours(&data.companies[0].bars),
            dates: longest.bars.iter().map(|b| instant(b.ts)).collect(),
            longest,
        })
    }

    /// A company's values on the shared dates (None where it has no bar).
    fn aligned(&self, c: &CompanySeries, f: &dyn Fn(usize) -> Option<f64>) -> Vec<Option<f64>> {
        let by_ts: std::collections::HashMap<Ts, usize> = c.bars.iter().enumerate().map(|(i, b)| (b.ts, i)).collect();
        self.longest.bars.iter().map(|b| by_ts.get(&b.ts).and_then(|i| f(*i))).collect()
    }

    /// Every company's line on the shared dates, in the palette's colours.
    fn per_company(
        &self,
        f: &dyn Fn(&CompanySeries, usize) -> Option<f64>,
    ) -> Vec<(&'a str, Vec<Option<f64>>, RGBColor)> {
        let companies = &self.data.companies;
        companies
            .iter()
            .enumerate()
            .map(|(k, c)| (c.company.as_str(), self.aligned(c, &|i| f(c, i)), PALETTE[k % PALETTE.len()]))
            .collect()
    }

    /// Companies ranked by a statistic, highest first.
    fn ranked(&self, f: fn(&stockstream_analytics::CompanyStats) -> f64) -> Vec<(String, f64)> {
        let mut ranked: Vec<(String, f64)> =
            self.data.stats.companies.iter().map(|s| (s.company.clone(), f(s))).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }
}

impl MarketChart {
    fn file(self) -> &'static str {
        match self {
            MarketChart::BoxClose => "box-close",
            MarketChart::BoxReturns => "box-returns",
            MarketChart::Performance => "performance",
            MarketChart::Volatility => "volatility",
            MarketChart::ReturnCorrelation => "return-correlation",
            MarketChart::VolatilityRanking => "volatility-ranking",
            MarketChart::ReturnRanking => "return-ranking",
        }
    }

    fn title(self) -> &'static str {
        match self {
            MarketChart::BoxClose => "Closing prices by company (box plot)",
            MarketChart::BoxReturns => "Daily returns by company (box plot)",
            MarketChart::Performance => "Normalised performance (first close = 100)",
            MarketChart::Volatility => "Rolling volatility (20 bars, annualised)",
            MarketChart::ReturnCorrelation => "Correlation of daily returns between companies",
            MarketChart::VolatilityRanking => "Volatility ranking (annualised)",
            MarketChart::ReturnRanking => "Total return ranking",
        }
    }

    fn draw<DB: DrawingBackend>(self, area: &Area<DB>, v: &MarketView) -> Drawn {
        let (companies, title) = (&v.data.companies, self.title());
        match self {
            MarketChart::BoxClose => {
                let closes: Vec<Vec<f64>> =
                    companies.iter().map(|c| c.bars.iter().map(|b| b.close).collect()).collect();
                boxes(area, title, "Close (USD)", &v.names, &closes)
            }
            MarketChart::BoxReturns => {
                let returns: Vec<Vec<f64>> =
                    companies.iter().map(|c| c.indicators.iter().filter_map(|r| r.ret).collect()).collect();
                boxes(area, title, "Return (fraction)", &v.names, &returns)
            }
            MarketChart::Performance => {
                let perf = v.per_company(&|c, i| Some(c.bars[i].close / c.bars[0].close * 100.0));
                lines(area, title, "Index (first close = 100)", &v.dates, &perf, v.intraday)
            }
            MarketChart::Volatility => {
                let vol = v.per_company(&|c, i| c.indicators.get(i).and_then(|r| r.volatility20));
                lines(area, title, "Volatility (annualised)", &v.dates, &vol, v.intraday)
            }
            MarketChart::ReturnCorrelation => {
                heatmap(area, title, &v.data.stats.names, &v.data.stats.return_correlation)
            }
            MarketChart::VolatilityRanking => {
                ranking(area, title, "Annualised volatility", &v.ranked(|s| s.volatility))
            }
            MarketChart::ReturnRanking => ranking(area, title, "Total return", &v.ranked(|s| s.total_return)),
        }
    }
}

/// Every chart of the report, each as PNG and SVG: each company's
/// (`COMPANY_CHARTS`), then those across companies (`MARKET_CHARTS`).
pub fn all_charts(data: &ReportData, dir: &Path) -> anyhow::Result<Vec<(String, PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    let mut slugs = std::collections::HashSet::new();
    for c in &data.companies {
        let view = CompanyView {
            c,
            stats: data.stats.companies.iter().find(|s| s.company == c.company),
            dates: c.indicators.iter().map(|r| instant(r.date.parse().expect("own dates parse"))).collect(),
            intraday: labels_need_hours(&c.bars),
        };
        // File names from the symbol, made unique: two companies may derive the
        // same symbol ("Berkshire Hathaway A" and "B").
        let base = c.symbol.to_ascii_lowercase().replace(|ch: char| !ch.is_ascii_alphanumeric(), "-");
        let slug = (1..)
            .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
            .find(|s| slugs.insert(s.clone()))
            .expect("some name is free");
        for chart in COMPANY_CHARTS.into_iter().filter(|chart| chart.applies(&view)) {
            let title = chart.title(c);
            let (png, svg) = render!(dir, format!("{slug}-{}", chart.file()), |area| {
                chart.draw(&area, &view, &title)?;
            });
            out.push((title, png, svg));
        }
    }
    let Some(view) = MarketView::new(data) else { return Ok(out) };
    for chart in MARKET_CHARTS {
        let (png, svg) = render!(dir, chart.file(), |area| {
            chart.draw(&area, &view)?;
        });
        out.push((chart.title().to_string(), png, svg));
    }
    Ok(out)
}
