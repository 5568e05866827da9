// Opens URL in headless Chromium (PLAYWRIGHT_CORE names the installed
// playwright-core folder) and records what a person would not want: console
// errors and requests to other hosts.
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

module.exports = async function open(url, viewport) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport });
  const errors = [], external = [];
  page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", e => errors.push(String(e)));
  const origin = new URL(url).origin;
  page.on("request", r => { if (!r.url().startsWith("data:") && new URL(r.url()).origin !== origin) external.push(r.url()); });
  // Bytes over the wire (headers and bodies as sent, compressed), of every
  // request finished so far: the event stream never finishes.
  const sizes = [];
  page.on("requestfinished", r => sizes.push(r.sizes().then(s => s.responseHeadersSize + s.responseBodySize).catch(() => 0)));
  const transferred = async () => (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
  await page.goto(url);
  return { browser, page, errors, external, transferred };
};

// What the dashboard shows: the chart's candles (closed and forming), its
// alert markers and trace names, the watchlist, the alerts feed, the legend.
module.exports.look = page => page.evaluate(() => {
  const gd = document.getElementById("chart"), trace = name => (gd.data || []).find(t => t.name === name);
  const candles = trace("price"), forming = trace("forming"), markers = trace("alerts");
  const last = (t, k) => t && t[k].length ? t[k][t[k].length - 1] : null;
  return {
    candles: candles ? candles.x.length : 0,
    loaded: Number(gd.dataset.loaded || 0),
    lastCandle: candles ? `${last(candles, "x")} ${last(candles, "close")}` : null,
    // The forming candle's shape and its volume bar (the last one).
    forming: forming && forming.x.length
      ? ["x", "open", "high", "low", "close"].map(k => last(forming, k)).join(" ") + ` V ${last(trace("volume"), "y")}` : null,
    markers: markers ? markers.x.length : 0,
    // The price pane's lines (SMAs, bands): points in view, and those of
    // them off its axis (cut off).
    overlayPoints: (() => {
      const [x0, x1] = (gd.layout && gd.layout.xaxis.range || []).map(String), [lo, hi] = (gd.layout && gd.layout.yaxis.range) || [];
      if (x0 === undefined || lo === undefined) return { shown: 0, off: 0 };
      const shown = (gd.data || []).filter(t => t.mode === "lines" && (t.yaxis || "y") === "y")
        .flatMap(t => t.y.filter((v, i) => v != null && String(t.x[i]) >= x0 && String(t.x[i]) <= x1));
      return { shown: shown.length, off: shown.filter(v => v < lo || v > hi).length, range: [x0, x1, lo, hi] };
    })(),
    traces: (gd.data || []).map(t => t.name),
    // Each drawn series' colour: the rising and falling candles, the lines
    // (Bollinger's two as one) and the alert markers.
    palette: (gd.data || []).flatMap(t => {
      if (t.type === "candlestick") return t.name === "price" ? [{ name: "rising", color: t.increasing.line.color }, { name: "falling", color: t.decreasing.line.color }] : [];
      if (t.type === "scatter" && String(t.mode).includes("lines")) return [{ name: String(t.name).startsWith("Bollinger") ? "Bollinger" : t.name, color: t.line.color }];
      if (t.type === "scatter" && t.mode === "markers") return [{ name: t.name, color: t.marker.color }];
      return [];
    }),
    // The series the legend lists, without their values.
    legendSeries: [...document.querySelectorAll("#legend .series")].map(e => e.textContent.replace(/ [-–\d.]+$/, "")),
    watchlist: document.querySelector("#watchlist tbody").innerText,
    rows: document.querySelectorAll("#watchlist tbody tr").length,
    sparklines: document.querySelectorAll("#watchlist svg.spark polyline").length,
    feed: document.querySelectorAll("#alerts li").length,
    legend: document.getElementById("legend").textContent,
    status: document.getElementById("status").textContent,
    company: document.getElementById("company").value,
    interval: document.getElementById("interval").value,
    theme: document.documentElement.dataset.theme,
    url: location.search,
    background: getComputedStyle(document.body).backgroundColor,
  };
});
