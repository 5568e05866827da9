//! Charts and the report. Every chart is drawn once per backend from the same
//! code: PNG (bitmap) and SVG. The HTML report is one self-contained file: its
//! data, styles and scripts are inline and it loads nothing from anywhere.
#![warn(missing_docs)]

mod draw;
mod html;

use std::path::{Path, PathBuf};

use stockstream_analytics::{IndicatorRow, Insight, MarketStats};
use stockstream_core::Bar;

/// One company's bars (oldest first) with their indicators.
pub struct CompanySeries {
    /// The company.
    pub company: String,
    /// Its symbol.
    pub symbol: String,
    /// Its bars, oldest first.
    pub bars: Vec<Bar>,
    /// Indicators of each bar.
    pub indicators: Vec<IndicatorRow>,
}

impl CompanySeries {
    /// A company's series from its bars (oldest first); None when there are none.
    pub fn new(bars: Vec<Bar>) -> Option<Self> {
        let first = bars.first()?;
        let (company, symbol) = (first.company.clone(), first.symbol.clone());
        let indicators = stockstream_analytics::indicator_rows(&bars);
        Some(CompanySeries { company, symbol, bars, indicators })
    }
}

/// What the report shows.
pub struct ReportData {
    /// Every company drawn.
    pub companies: Vec<CompanySeries>,
    /// The statistics the report shows.
    pub stats: MarketStats,
    /// The insights the report shows.
    pub insights: Vec<Insight>,
}

/// The files a report consists of.
#[derive(Debug)]
pub struct Report {
    /// The HTML page.
    pub html: PathBuf,
    /// Every chart as (title, PNG path, SVG path).
    pub charts: Vec<(String, PathBuf, PathBuf)>,
}

/// Size of every PNG and SVG chart.
pub const CHART_SIZE: (u32, u32) = (1280, 720);

/// Writes every chart (PNG and SVG) and `report.html` into `dir`.
pub fn write_report(data: &ReportData, dir: &Path) -> anyhow::Result<Report> {
    std::fs::create_dir_all(dir)?;
    let charts = draw::all_charts(data, dir)?;
    let html = dir.join("report.html");
    std::fs::write(&html, html::render(data)?)?;
    Ok(Report { html, charts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(company: &str, day: u32, close: f64) -> stockstream_core::Bar {
        stockstream_core::Bar {
            symbol: company.to_uppercase(),
            company: company.into(),
            ts: format!("2024-01-{day:02}").parse().unwrap(),
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 10.0,
        }
    }

    #[test]
    fn a_company_with_a_single_bar_still_gets_a_report() {
        let companies: Vec<CompanySeries> = vec![
            CompanySeries::new(vec![bar("Solo", 2, 10.0)]).unwrap(),
            CompanySeries::new((2..6).map(|d| bar("Many", d, 10.0 + d as f64)).collect()).unwrap(),
        ];
        let stats = stockstream_analytics::market_stats(&companies.iter().map(|c| c.bars.clone()).collect::<Vec<_>>());
        let insights = stockstream_analytics::insights(&stats);
        let dir = tempfile::tempdir().unwrap();
        let report = write_report(&ReportData { companies, stats, insights }, dir.path()).unwrap();
        assert!(report.charts.len() >= 10);
        assert!(report.html.exists());
    }
}
