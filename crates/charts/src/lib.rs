//! Charts and the report. Every chart is drawn once per backend from the same
//! code: PNG (bitmap) and SVG. The HTML report is one self-contained file: its
//! data, styles and scripts are inline and it loads nothing from anywhere.
#![warn(missing_docs)]

mod draw;
mod html;

use std::path::{Path, PathBuf};

use stockstream_analytics::{IndicatorRow, Insight, MarketStats, ReducedSeries};
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
    /// Bars each of `bars` stands for (more than 1 in a series reduced for
    /// its charts).
    pub bars_per_point: usize,
}

impl CompanySeries {
    /// A company's series from its bars (oldest first); None when there are none.
    pub fn new(bars: Vec<Bar>) -> Option<Self> {
        let indicators = stockstream_analytics::indicator_rows(&bars);
        Self::of(bars, indicators, 1)
    }

    /// A company's series reduced as it flowed, with its indicators (one row
    /// per point); None when it is empty.
    pub fn reduced(series: ReducedSeries) -> Option<Self> {
        let bars_per_point = series.width();
        let (bars, indicators) = series.into_parts();
        Self::of(bars, indicators, bars_per_point)
    }

    fn of(bars: Vec<Bar>, indicators: Vec<IndicatorRow>, bars_per_point: usize) -> Option<Self> {
        let first = bars.first()?;
        let (company, symbol) = (first.company.clone(), first.symbol.clone());
        Some(CompanySeries { company, symbol, bars, indicators, bars_per_point })
    }
}

/// What the report shows.
pub struct ReportData {
    /// Every company drawn.
    pub companies: Vec<CompanySeries>,
    /// The statistics the report shows: those of the companies drawn.
    pub stats: MarketStats,
    /// The insights the report shows.
    pub insights: Vec<Insight>,
    /// How many companies the statistics and insights were computed over.
    pub companies_counted: usize,
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

/// Computes the statistics and insights of every company's bars, draws the
/// charts and writes the report; returns it with the insights it shows.
pub fn build_report(
    bars_by_company: Vec<Vec<stockstream_core::Bar>>,
    dir: &Path,
) -> anyhow::Result<(Report, Vec<stockstream_analytics::Insight>)> {
    let stats = stockstream_analytics::market_stats(&bars_by_company);
    let companies: Vec<CompanySeries> = bars_by_company.into_iter().filter_map(CompanySeries::new).collect();
    anyhow::ensure!(!companies.is_empty(), "the store holds no bars in that range");
    report_of(companies, stats, dir)
}

/// Draws the charts of series and statistics already computed (a run's, as
/// its bars flowed) and writes the report; returns it with its insights.
pub fn report_of(
    companies: Vec<CompanySeries>,
    mut stats: MarketStats,
    dir: &Path,
) -> anyhow::Result<(Report, Vec<stockstream_analytics::Insight>)> {
    let insights = stockstream_analytics::insights(&stats);
    // The tables and rankings show the companies drawn (at most
    // `MAX_CHARTED`), not a page per company of a 100,000-company store;
    // the insights are those of every company.
    let companies_counted = stats.companies.len();
    let drawn: std::collections::HashSet<&str> = companies.iter().map(|c| c.company.as_str()).collect();
    stats.companies.retain(|s| drawn.contains(s.company.as_str()));
    let data = ReportData { companies, stats, insights, companies_counted };
    Ok((write_report(&data, dir)?, data.insights))
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
            vwap: None,
            trades: None,
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
        let report =
            write_report(&ReportData { companies, stats, insights, companies_counted: 2 }, dir.path()).unwrap();
        assert!(report.charts.len() >= 10);
        assert!(report.html.exists());
    }

    fn report_of(companies: Vec<CompanySeries>, dir: &std::path::Path) -> Report {
        let stats = stockstream_analytics::market_stats(&companies.iter().map(|c| c.bars.clone()).collect::<Vec<_>>());
        let insights = stockstream_analytics::insights(&stats);
        let companies_counted = companies.len();
        write_report(&ReportData { companies, stats, insights, companies_counted }, dir).unwrap()
    }

    #[test]
    fn a_report_over_many_companies_shows_those_it_draws_and_says_how_many_were_counted() {
        let bars: Vec<Vec<stockstream_core::Bar>> =
            (0..300).map(|c| (1..29).map(|d| bar(&format!("C{c:03}"), d, 10.0 + (c * d) as f64)).collect()).collect();
        let stats = stockstream_analytics::market_stats(&bars);
        let drawn = bars.into_iter().take(3).filter_map(CompanySeries::new).collect();
        let dir = tempfile::tempdir().unwrap();
        let (report, insights) = super::report_of(drawn, stats, dir.path()).unwrap();
        let html = std::fs::read_to_string(&report.html).unwrap();
        let table = html.split("<tbody>").nth(1).unwrap().split("</tbody>").next().unwrap();
        assert_eq!(table.matches("<tr>").count(), 3, "a row per company drawn");
        assert!(html.contains("The 3 companies drawn, of 300 counted in the insights"), "the report says so");
        let ranking = std::fs::read_to_string(dir.path().join("return-ranking.svg")).unwrap();
        assert!(ranking.contains("C002") && !ranking.contains("C299"), "the rankings rank those drawn");
        let texts: Vec<&str> = insights.iter().map(|i| i.text.as_str()).collect();
        assert!(texts.iter().any(|t| t.contains("C299")), "the insights count every company: {texts:?}");
    }

    #[test]
    fn companies_with_the_same_symbol_get_charts_of_their_own() {
        let series = |name: &str| {
            let bars =
                (2..30).map(|d| stockstream_core::Bar { symbol: "BERKSHIR".into(), ..bar(name, d, 10.0 + d as f64) });
            CompanySeries::new(bars.collect()).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let report = report_of(vec![series("Berkshire Hathaway A"), series("Berkshire Hathaway B")], dir.path());
        let pngs: std::collections::HashSet<_> = report.charts.iter().map(|(_, png, _)| png.clone()).collect();
        assert_eq!(pngs.len(), report.charts.len(), "every chart has a file of its own");
        assert!(pngs.iter().all(|p| p.exists()));
    }

    #[test]
    fn a_company_name_cannot_break_the_reports_script() {
        let dir = tempfile::tempdir().unwrap();
        let name = "<!--<script>&</script>";
        let report = report_of(
            vec![CompanySeries::new((2..6).map(|d| bar(name, d, 10.0 + d as f64)).collect()).unwrap()],
            dir.path(),
        );
        let html = std::fs::read_to_string(&report.html).unwrap();
        let data = html.split("<script type=\"application/json\" id=\"data\">").nth(1).unwrap();
        let data = &data[..data.find("</script>").unwrap()];
        assert!(!data.contains('<') && !data.contains('>') && !data.contains('&'), "{data}");
        let parsed: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(parsed["companies"][0]["company"], name, "the name reads back as it was");
    }
}
