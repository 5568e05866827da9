//! The self-contained HTML report: data, styles and scripts inline. Charts are
//! SVG drawn in the page from the embedded data, with hover values and zoom
//! (drag across a chart; double-click to reset).

use serde::Serialize;
use stockstream_core::shown::{computed, price};

use crate::ReportData;

#[derive(Serialize)]
struct CompanyJson<'a> {
    company: &'a str,
    symbol: &'a str,
    dates: Vec<&'a str>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    sma10: Vec<Option<f64>>,
    sma30: Vec<Option<f64>>,
    sma50: Vec<Option<f64>>,
    rsi14: Vec<Option<f64>>,
    macd: Vec<Option<f64>>,
    macd_signal: Vec<Option<f64>>,
    macd_hist: Vec<Option<f64>>,
    drawdown: Vec<Option<f64>>,
    volatility20: Vec<Option<f64>>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn render(data: &ReportData) -> anyhow::Result<String> {
    let companies: Vec<CompanyJson> = data
        .companies
        .iter()
        .map(|c| {
            let col = |f: fn(&stockstream_analytics::IndicatorRow) -> Option<f64>| c.indicators.iter().map(f).collect();
            CompanyJson {
                company: &c.company,
                symbol: &c.symbol,
                dates: c.indicators.iter().map(|r| r.date.as_str()).collect(),
                open: c.bars.iter().map(|b| b.open).collect(),
                high: c.bars.iter().map(|b| b.high).collect(),
                low: c.bars.iter().map(|b| b.low).collect(),
                close: c.bars.iter().map(|b| b.close).collect(),
                volume: c.bars.iter().map(|b| b.volume).collect(),
                sma10: col(|r| r.sma10),
                sma30: col(|r| r.sma30),
                sma50: col(|r| r.sma50),
                rsi14: col(|r| r.rsi14),
                macd: col(|r| r.macd),
                macd_signal: col(|r| r.macd_signal),
                macd_hist: col(|r| r.macd_hist),
                drawdown: col(|r| r.drawdown),
                volatility20: col(|r| r.volatility20),
            }
        })
        .collect();
    // Inside <script>, "</" would end the element and "<!--" open a comment that
    // swallows the page's script: `<`, `>` and `&` only occur inside JSON
    // strings, where their \u escapes mean the same.
    #[derive(Serialize)]
    struct Payload<'a> {
        companies: Vec<CompanyJson<'a>>,
        stats: &'a stockstream_analytics::MarketStats,
    }
    let payload = serde_json::to_string(&Payload { companies, stats: &data.stats })?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let insights: String = data.insights.iter().map(|i| format!("<li>{}</li>\n", escape(&i.text))).collect();
    let rows: String = data
        .stats
        .companies
        .iter()
        .map(|s| {
            let (min, mean, max, std) = s.detail.as_deref().map_or((f64::NAN, f64::NAN, f64::NAN, f64::NAN), |d| {
                let close = &d.describe["Close"];
                (close.min, close.mean, close.max, close.std)
            });
            let percent = |v: f64, signed: bool| match signed {
                true => format!("{v:+.1}%"),
                false => format!("{v:.1}%"),
            };
            // A value a company has too few bars for is a dash saying why, not "NaN".
            let cell = |v: f64, shown: &dyn Fn(f64) -> String, needs: &str| match v.is_finite() {
                true => format!("<td>{}</td>", shown(v)),
                false => format!("<td title=\"needs {needs}\">— <small>(needs {needs})</small></td>"),
            };
            let two_bars = "2 bars";
            let two_returns = "3 bars";
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} – {}</td>{}{}{}{}{}{}{}{}</tr>\n",
                escape(&s.company),
                escape(&s.symbol),
                s.bars,
                escape(&s.first),
                escape(&s.last),
                cell(min, &price, "1 bar"),
                cell(mean, &computed, "1 bar"),
                cell(max, &price, "1 bar"),
                cell(std, &computed, two_bars),
                cell(s.total_return * 100.0, &|v| percent(v, true), two_bars),
                cell(s.trend_pct_per_year, &|v| percent(v, true), two_bars),
                cell(s.volatility * 100.0, &|v| percent(v, false), two_returns),
                cell(s.max_drawdown * 100.0, &|v| percent(v, false), "1 bar"),
            )
        })
        .collect();
    let shown = data.stats.companies.len();
    let note = match data.companies_counted > shown {
        true => format!(
            "<p class=\"hint\">The {shown} companies drawn, of {} counted in the insights; \
             <code>stockstream insights --format json</code> gives every company's statistics.</p>\n",
            data.companies_counted
        ),
        false => String::new(),
    };
    Ok(TEMPLATE
        .replace("{{INSIGHTS}}", &insights)
        .replace("{{NOTE}}", &note)
        .replace("{{ROWS}}", &rows)
        .replace("{{DATA}}", &payload))
}

const TEMPLATE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stockstream report</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1a1a1a; background: #fafafa; }
header { background: #0b3d5c; color: #fff; padding: 18px 28px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; opacity: .85; font-size: 14px; }
main { max-width: 1280px; margin: 0 auto; padding: 18px 28px 40px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.card { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; padding: 10px 12px; margin: 12px 0; position: relative; }
.card h3 { margin: 0 0 6px; font-size: 15px; font-weight: 600; }
.hint { color: #666; font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; width: 100%; background: #fff; }
th, td { border: 1px solid #e2e2e2; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child, td:nth-child(2) { text-align: left; }
th { background: #f0f3f6; }
ul.insights li { margin: 4px 0; }
.tip { position: absolute; pointer-events: none; background: rgba(255,255,255,.95); border: 1px solid #999; border-radius: 4px; padding: 4px 6px; font-size: 12px; white-space: nowrap; display: none; z-index: 5; }
select { font-size: 14px; padding: 2px 6px; }
svg text { font-family: system-ui, sans-serif; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header><h1>stockstream report</h1><p>Prices, moving averages, momentum, risk and correlations computed from the stored bars.</p></header>
<main>
<h2>Insights</h2>
<ul class="insights">
{{INSIGHTS}}</ul>
<h2>Summary by company</h2>
{{NOTE}}<table>
<thead><tr><th>Company</th><th>Symbol</th><th>Bars</th><th>Range</th><th>Min close</th><th>Mean close</th><th>Max close</th><th>Std close</th><th>Total return</th><th>Trend / year</th><th>Volatility</th><th>Max drawdown</th></tr></thead>
<tbody>
{{ROWS}}</tbody>
</table>
<h2>Across companies</h2>
<p class="hint">Hover a chart for values; drag across it to zoom in, double-click to zoom out.</p>
<div id="market"></div>
<h2>By company <select id="pick"></select></h2>
<div id="company"></div>
</main>
<script type="application/json" id="data">{{DATA}}</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
// Okabe–Ito palette: distinguishable with common colour-vision deficiencies.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"];
const W = 1200, H = 380, M = { l: 70, r: 20, t: 10, b: 40 };
const esc = t => String(t).replace(/[&<>"]/g, ch => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
// A stored price with every digit it has (1.07296 stays 1.07296), at least two decimals.
const price = v => v == null || !isFinite(v) ? "–" : (String(v).split(".")[1] || "").length > 2 ? String(v) : v.toFixed(2);
const fmt = v => v == null || !isFinite(v) ? "–" : Math.abs(v) >= 1e6 ? (v / 1e6).toFixed(2) + "M" : Math.abs(v) < 1 ? v.toFixed(4) : v.toFixed(2);

function card(parent, title) {
  const c = document.createElement("div");
  c.className = "card";
  c.innerHTML = "<h3></h3><div class=chart></div><div class=tip></div>";
  c.querySelector("h3").textContent = title;
  parent.appendChild(c);
  return c;
}

function ticks(lo, hi, n) {
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n || 1)));
  const s = [1, 2, 5, 10].map(k => k * step).find(k => (hi - lo) / k <= n) || step * 10;
  const out = [];
  for (let v = Math.ceil(lo / s) * s; v <= hi + 1e-12; v += s) out.push(+v.toFixed(10));
  return out;
}

// A time chart of named series over shared dates, with hover and zoom.
function timeChart(parent, title, dates, series, opts = {}) {
  const c = card(parent, title);
  const box = c.querySelector(".chart"), tip = c.querySelector(".tip");
  let lo = 0, hi = dates.length - 1;
  function draw() {
    const idx = [];
    for (let i = lo; i <= hi; i++) idx.push(i);
    let ymin = Infinity, ymax = -Infinity;
    for (const s of series) for (const i of idx) { const v = s.values[i]; if (v != null && isFinite(v)) { ymin = Math.min(ymin, v); ymax = Math.max(ymax, v); } }
    if (opts.candles) for (const i of idx) { ymin = Math.min(ymin, opts.candles.low[i]); ymax = Math.max(ymax, opts.candles.high[i]); }
    if (!isFinite(ymin)) { ymin = 0; ymax = 1; }
    const pad = (ymax - ymin) * 0.05 || 1; ymin -= pad; ymax += pad;
    const x = i => M.l + (hi === lo ? 0 : (i - lo) / (hi - lo)) * (W - M.l - M.r);
    const y = v => M.t + (1 - (v - ymin) / (ymax - ymin)) * (H - M.t - M.b);
    let svg = `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(title)}">`;
    for (const t of ticks(ymin, ymax, 6)) svg += `<line x1=${M.l} x2=${W - M.r} y1=${y(t)} y2=${y(t)} stroke="#eee"/><text x=${M.l - 6} y=${y(t) + 4} font-size=12 text-anchor=end>${fmt(t)}</text>`;
    const nx = Math.min(8, idx.length);
    for (let k = 0; k < nx; k++) { const i = lo + Math.round(k * (hi - lo) / Math.max(1, nx - 1)); const anchor = k === 0 ? "start" : k === nx - 1 ? "end" : "middle"; svg += `<text x=${x(i)} y=${H - 12} font-size=12 text-anchor=${anchor}>${dates[i].slice(0, dates[i].length > 10 ? 16 : 10).replace("T", " ")}</text>`; }
    svg += `<text x=14 y=${H / 2} font-size=12 transform="rotate(-90 14 ${H / 2})" text-anchor=middle>${opts.yLabel || ""}</text>`;
    if (opts.candles) {
      const w = Math.max(1, (W - M.l - M.r) / idx.length * 0.7);
      for (const i of idx) {
        const k = opts.candles, up = k.close[i] >= k.open[i], col = up ? "#0072B2" : "#D55E00";
        svg += `<line x1=${x(i)} x2=${x(i)} y1=${y(k.high[i])} y2=${y(k.low[i])} stroke="${col}"/><rect x=${x(i) - w / 2} width=${w} y=${y(Math.max(k.open[i], k.close[i]))} height=${Math.max(1, Math.abs(y(k.open[i]) - y(k.close[i])))} fill="${col}"/>`;
      }
    }
    series.forEach((s, k) => {
      let d = "", pen = false;
      for (const i of idx) { const v = s.values[i]; if (v == null || !isFinite(v)) { pen = false; continue; } d += (pen ? "L" : "M") + x(i).toFixed(1) + "," + y(v).toFixed(1); pen = true; }
      if (s.bars) for (const i of idx) { const v = s.values[i]; if (v != null) svg += `<rect x=${x(i) - 1} width=2 y=${Math.min(y(v), y(0))} height=${Math.abs(y(v) - y(0))} fill="${s.color}" opacity=.6 />`; }
      else svg += `<path d="${d}" fill="none" stroke="${s.color || PALETTE[k % 8]}" stroke-width="${s.width || 1.6}" ${s.dash ? 'stroke-dasharray="6 4"' : ""}><title>${esc(s.name)}</title></path>`;
    });
    let lx = M.l + 10;
    series.forEach((s, k) => { svg += `<rect x=${lx} y=${M.t + 4} width=14 height=4 fill="${s.color || PALETTE[k % 8]}"/><text x=${lx + 18} y=${M.t + 10} font-size=12>${esc(s.name)}</text>`; lx += 24 + 7 * s.name.length; });
    svg += `<line class=cursor y1=${M.t} y2=${H - M.b} stroke="#888" visibility=hidden /><rect class=sel y=${M.t} height=${H - M.t - M.b} fill="#0072B2" opacity=.15 visibility=hidden /></svg>`;
    box.innerHTML = svg;
    const el = box.querySelector("svg"), cursor = el.querySelector(".cursor"), sel = el.querySelector(".sel");
    const at = ev => { const r = el.getBoundingClientRect(); const px = (ev.clientX - r.left) * W / r.width; return Math.max(lo, Math.min(hi, Math.round(lo + (px - M.l) / (W - M.l - M.r) * (hi - lo)))); };
    let start = null;
    el.onmousemove = ev => {
      const i = at(ev);
      cursor.setAttribute("x1", x(i)); cursor.setAttribute("x2", x(i)); cursor.setAttribute("visibility", "visible");
      let html = `<b>${dates[i].replace("T", " ")}</b>`;
      if (opts.candles) { const k = opts.candles; html += `<br>O ${price(k.open[i])} H ${price(k.high[i])} L ${price(k.low[i])} C ${price(k.close[i])}`; }
      for (const s of series) html += `<br><span style="color:${s.color}">■</span> ${esc(s.name)}: ${fmt(s.values[i])}`;
      tip.innerHTML = html; tip.style.display = "block";
      const r = c.getBoundingClientRect(); tip.style.left = Math.min(ev.clientX - r.left + 14, r.width - 220) + "px"; tip.style.top = (ev.clientY - r.top + 14) + "px";
      if (start != null) { const a = Math.min(x(start), x(i)), b = Math.max(x(start), x(i)); sel.setAttribute("x", a); sel.setAttribute("width", b - a); sel.setAttribute("visibility", "visible"); }
    };
    el.onmouseleave = () => { tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); };
    el.onmousedown = ev => { start = at(ev); ev.preventDefault(); };
    el.onmouseup = ev => { const end = at(ev); if (start != null && Math.abs(end - start) > 2) { lo = Math.min(start, end); hi = Math.max(start, end); start = null; draw(); } start = null; sel.setAttribute("visibility", "hidden"); };
    el.ondblclick = () => { lo = 0; hi = dates.length - 1; draw(); };
  }
  draw();
}

function heatmap(parent, title, names, m) {
  const c = card(parent, title);
  const colour = v => { if (v == null || !isFinite(v)) return "#fff"; const t = Math.min(1, Math.abs(v)); const mix = (a, b) => Math.round(a + (b - a) * t); return v >= 0 ? `rgb(${mix(255, 230)},${mix(255, 97)},${mix(255, 1)})` : `rgb(${mix(255, 33)},${mix(255, 102)},${mix(255, 172)})`; };
  let html = "<table><tr><th></th>" + names.map(n => `<th>${esc(n)}</th>`).join("") + "</tr>";
  m.forEach((row, i) => { html += `<tr><th>${esc(names[i])}</th>` + row.map((v, j) => `<td style="background:${colour(v)}" title="${esc(names[i])} / ${esc(names[j])}: ${fmt(v)}">${v == null ? "–" : v.toFixed(2)}</td>`).join("") + "</tr>"; });
  c.querySelector(".chart").innerHTML = html + "</table>";
}

function boxChart(parent, title, items, yLabel) {
  const c = card(parent, title);
  const lo = Math.min(...items.map(b => Math.min(b.whisker_low, ...b.outliers))), hi = Math.max(...items.map(b => Math.max(b.whisker_high, ...b.outliers)));
  const y = v => M.t + (1 - (v - lo) / (hi - lo || 1)) * (H - M.t - M.b), step = (W - M.l - M.r) / items.length;
  let svg = `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(title)}">`;
  for (const t of ticks(lo, hi, 6)) svg += `<line x1=${M.l} x2=${W - M.r} y1=${y(t)} y2=${y(t)} stroke="#eee"/><text x=${M.l - 6} y=${y(t) + 4} font-size=12 text-anchor=end>${fmt(t)}</text>`;
  svg += `<text x=14 y=${H / 2} font-size=12 transform="rotate(-90 14 ${H / 2})" text-anchor=middle>${yLabel}</text>`;
  items.forEach((b, k) => {
    const cx = M.l + step * (k + 0.5), col = PALETTE[k % 8];
    svg += `<g><title>${esc(b.name)}: whiskers ${fmt(b.whisker_low)}–${fmt(b.whisker_high)}, quartiles ${fmt(b.q1)} / ${fmt(b.median)} / ${fmt(b.q3)}, ${b.outliers.length} outliers</title>`;
    svg += `<line x1=${cx} x2=${cx} y1=${y(b.whisker_low)} y2=${y(b.whisker_high)} stroke="${col}"/><rect x=${cx - 25} width=50 y=${y(b.q3)} height=${y(b.q1) - y(b.q3)} fill="${col}" fill-opacity=.25 stroke="${col}"/><line x1=${cx - 25} x2=${cx + 25} y1=${y(b.median)} y2=${y(b.median)} stroke="${col}" stroke-width=3 />`;
    for (const o of b.outliers) svg += `<circle cx=${cx} cy=${y(o)} r=2.5 fill="none" stroke="${col}"/>`;
    svg += `</g><text x=${cx} y=${H - 12} font-size=12 text-anchor=middle>${esc(b.name)}</text>`;
  });
  c.querySelector(".chart").innerHTML = svg + "</svg>";
}

function ranking(parent, title, items, label) {
  const c = card(parent, title);
  const max = Math.max(...items.map(i => Math.abs(i.value)), 1e-9);
  c.querySelector(".chart").innerHTML = "<table>" + items.map(i => `<tr><td style="width:140px">${esc(i.name)}</td><td style="text-align:left"><div title="${esc(i.name)}: ${(i.value * 100).toFixed(1)}%" style="height:14px;width:${Math.abs(i.value) / max * 80}%;background:${i.value >= 0 ? "#0072B2" : "#D55E00"}"></div></td><td style="width:90px">${(i.value * 100).toFixed(1)}%</td></tr>`).join("") + `</table><p class=hint>${label}</p>`;
}

const S = DATA.stats, C = DATA.companies;
const market = document.getElementById("market");
if (C.length) {
  const longest = C.reduce((a, b) => b.dates.length > a.dates.length ? b : a);
  const align = (c, values) => { const at = new Map(c.dates.map((d, i) => [d, i])); return longest.dates.map(d => at.has(d) ? values[at.get(d)] : null); };
  timeChart(market, "Normalised performance (first close = 100)", longest.dates, C.map((c, k) => ({ name: c.company, color: PALETTE[k % 8], values: align(c, c.close.map(v => v / c.close[0] * 100)) })), { yLabel: "Index" });
  timeChart(market, "Rolling volatility (20 bars, annualised)", longest.dates, C.map((c, k) => ({ name: c.company, color: PALETTE[k % 8], values: align(c, c.volatility20) })), { yLabel: "Volatility" });
  boxChart(market, "Closing prices by company (box plot)", S.companies.map(s => ({ name: s.company, ...s.close_box })), "Close (USD)");
  boxChart(market, "Daily returns by company (box plot)", S.companies.map(s => ({ name: s.company, ...s.return_box })), "Return");
  heatmap(market, "Correlation of daily returns between companies", S.names, S.return_correlation);
  ranking(market, "Volatility ranking", S.companies.map(s => ({ name: s.company, value: s.volatility })).sort((a, b) => b.value - a.value), "Annualised volatility of log returns");
  ranking(market, "Total return ranking", S.companies.map(s => ({ name: s.company, value: s.total_return })).sort((a, b) => b.value - a.value), "Last close over first close, minus one");
}
const pick = document.getElementById("pick"), holder = document.getElementById("company");
C.forEach((c, i) => { const o = document.createElement("option"); o.value = i; o.textContent = `${c.company} (${c.symbol})`; pick.appendChild(o); });
function showCompany(i) {
  const c = C[i], s = S.companies.find(x => x.company === c.company);
  holder.innerHTML = "";
  timeChart(holder, `${c.company}: Close with 10/30/50-day moving averages`, c.dates, [
    { name: "Close", color: "#000000", values: c.close }, { name: "SMA 10", color: "#E69F00", values: c.sma10 },
    { name: "SMA 30", color: "#0072B2", values: c.sma30 }, { name: "SMA 50", color: "#CC79A7", values: c.sma50 }], { yLabel: "Price (USD)" });
  timeChart(holder, `${c.company}: candlesticks`, c.dates, [], { candles: c, yLabel: "Price (USD)" });
  timeChart(holder, `${c.company}: volume`, c.dates, [{ name: "Volume", color: "#56B4E9", values: c.volume, bars: true }], { yLabel: "Shares" });
  timeChart(holder, `${c.company}: RSI 14`, c.dates, [{ name: "RSI 14", color: "#0072B2", values: c.rsi14 },
    { name: "70", color: "#D55E00", values: c.dates.map(() => 70), dash: true }, { name: "30", color: "#009E73", values: c.dates.map(() => 30), dash: true }], { yLabel: "RSI" });
  timeChart(holder, `${c.company}: MACD 12/26/9`, c.dates, [{ name: "MACD", color: "#0072B2", values: c.macd },
    { name: "Signal", color: "#E69F00", values: c.macd_signal }, { name: "Histogram", color: "#000000", values: c.macd_hist, bars: true }], { yLabel: "MACD" });
  timeChart(holder, `${c.company}: drawdown from the running peak`, c.dates, [{ name: "Drawdown", color: "#D55E00", values: c.drawdown }], { yLabel: "Fraction of peak" });
  if (s) heatmap(holder, `${c.company}: correlation of Open, High, Low, Close, Volume`, ["Open", "High", "Low", "Close", "Volume"], s.ohlcv_correlation);
}
pick.onchange = () => showCompany(+pick.value);
if (C.length) showCompany(0);
</script>
</body>
</html>
"##;
