//! Charts and the HTML report through the real binary.

mod common;

use std::path::Path;

use common::{ok, stockstream};

/// Width, height and the variance of the pixels' brightness.
fn png_stats(path: &Path) -> (u32, u32, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<f64> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| p.iter().take(3).map(|v| *v as f64).sum::<f64>() / 3.0)
        .collect();
    let mean = pixels.iter().sum::<f64>() / pixels.len() as f64;
    let var = pixels.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / pixels.len() as f64;
    (info.width, info.height, var)
}

#[test]
fn run_writes_twenty_plus_charts_and_a_self_contained_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["run"]);
    assert!(out.contains("report     report/report.html (42 charts"), "{out}");
    let report = dir.path().join("report");
    let mut pngs: Vec<_> = std::fs::read_dir(&report)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pngs.sort();
    assert!(pngs.len() >= 20, "{} charts", pngs.len());
    for png in &pngs {
        let (w, h, var) = png_stats(png);
        assert_eq!((w, h), (1280, 720), "{}", png.display());
        assert!(var > 50.0, "{} looks blank (variance {var})", png.display());
        let svg = std::fs::read_to_string(png.with_extension("svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.len() > 2000, "{}", png.display());
    }
    // SVGs name their series and say what they show.
    let price = std::fs::read_to_string(report.join("nvda-price.svg")).unwrap();
    for name in
        ["Close", "SMA 10", "SMA 30", "SMA 50", "NVIDIA (NVDA): Close with 10/30/50-day moving averages", "Price (USD)"]
    {
        assert!(price.contains(name), "nvda-price.svg lacks {name:?}");
    }
    let performance = std::fs::read_to_string(report.join("performance.svg")).unwrap();
    for company in ["NVIDIA", "Tesla", "Meta", "Amazon", "Apple", "Netflix", "Google"] {
        assert!(performance.contains(company), "performance.svg lacks {company}");
    }

    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "report.html refers to the network");
    assert!(!html.contains("<link") && !html.contains("src="), "report.html loads a file");
    // Its insights are the analytics' own.
    let insights: serde_json::Value = serde_json::from_str(&ok(dir.path(), &["insights", "--format", "json"])).unwrap();
    for i in insights["insights"].as_array().unwrap() {
        let text = i["text"].as_str().unwrap().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        assert!(html.contains(&format!("<li>{text}</li>")), "report lacks insight {text:?}");
    }
    for company in ["NVIDIA", "Tesla", "Meta", "Amazon", "Apple", "Netflix", "Google"] {
        assert!(html.contains(&format!("<tr><td>{company}</td>")), "summary row of {company}");
    }
}

#[test]
fn report_command_writes_a_range_and_no_report_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &["run", "--no-report", "--symbols", "AAPL,TSLA", "--start", "2024-01-02", "--end", "2024-06-28"],
    );
    assert!(!out.contains("report     "), "{out}");
    assert!(!dir.path().join("report").exists());
    let out = ok(dir.path(), &["report", "--from", "2024-03-01", "--out", "march"]);
    assert!(out.contains("march/report.html ("), "{out}");
    let html = std::fs::read_to_string(dir.path().join("march/report.html")).unwrap();
    assert!(html.contains("2024-03-01 – 2024-06-28"), "the range shows in the summary");
    assert!(dir.path().join("march/aapl-candles.png").exists() && dir.path().join("march/tsla-candles.svg").exists());
    let empty = stockstream(dir.path(), &["report", "--from", "2030-01-01"]);
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no bars in that range"));
}

/// A company with one bar and an FX pair: the report shows every digit a price
/// has, a dash with its reason where a value needs more bars, and insights that
/// rank only what can be compared.
#[test]
fn a_one_bar_company_gets_dashes_with_reasons_and_no_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("Date,Open,High,Low,Close,Volume,Company Name\n2024-01-02,5,6,4,5.5,100,Tiny\n");
    for (i, close) in [1.0716, 1.07296, 1.07083, 1.07219].iter().enumerate() {
        csv.push_str(&format!("2024-01-0{},{close},{close},{close},{close},0,EURUSD\n", i + 2));
    }
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let out = ok(dir.path(), &["run", "--input", "in.csv", "--db", "one.db"]);
    let html = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    assert!(!html.contains("NaN"), "no NaN in the report");
    assert!(html.contains("— <small>(needs 2 bars)</small>"), "a dash with its reason");
    assert!(html.contains("<td>1.07083</td>") && html.contains("<td>1.07296</td>"), "every digit of a price");
    for ranked in ["strongest", "weakest", "most volatile", "least volatile"] {
        assert!(!out.contains(ranked) && !html.contains(ranked), "{ranked}: nothing to rank with too few bars");
    }
}

#[test]
fn a_runs_report_holds_at_most_a_charts_worth_of_points_and_the_stores_insights() {
    // 3,000 one-minute bars a company: more than a chart's 2,048 points.
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["generate", "--rows", "21000", "--interval", "1m", "--out", "bars.csv"]);
    let run = ok(dir.path(), &["run", "--input", "bars.csv"]);
    let html = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    let data = html.split("<script type=\"application/json\" id=\"data\">").nth(1).unwrap();
    let data: serde_json::Value = serde_json::from_str(&data[..data.find("</script>").unwrap()]).unwrap();
    let companies = data["companies"].as_array().unwrap();
    assert_eq!(companies.len(), 7);
    for c in companies {
        // Each point stands for two bars: their summed volume, the later close.
        assert_eq!(c["close"].as_array().unwrap().len(), 1500, "{}", c["company"]);
        assert_eq!(c["dates"].as_array().unwrap().len(), 1500);
    }
    let candles = std::fs::read_to_string(dir.path().join("report/nvda-candles.svg")).unwrap();
    assert!(candles.contains("candlesticks, each of 2 bars"), "the chart says what a candle stands for");
    // The volumes of the points add up to the stored ones.
    let nvidia = companies.iter().find(|c| c["company"] == "NVIDIA").unwrap();
    let charted: f64 = nvidia["volume"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
    let stored = ok(dir.path(), &["query", "--company", "NVIDIA", "--interval", "1m", "--format", "csv"]);
    let stored: f64 = stored.lines().skip(1).map(|l| l.split(',').nth(5).unwrap().parse::<f64>().unwrap()).sum();
    assert_eq!(charted, stored);
    // Counted as the bars flowed, the insights are those of the stored bars.
    let from_run: Vec<&str> = run.lines().skip_while(|l| *l != "insights").skip(1).collect();
    assert_eq!(from_run, ok(dir.path(), &["insights", "--interval", "1m"]).lines().collect::<Vec<_>>());
}
