// @ts-check: TypeScript's checker reads this file in the test command
// (crates/server/tsconfig.json).
"use strict";
/** The page's element of this id (inputs, selects and Plotly's chart alike). @type {(id: string) => any} */
const $ = id => document.getElementById(id);
const esc = t => String(t).replace(/[&<>"]/g, ch => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
// A stored price with every digit it has (1.07296 stays 1.07296), at least two decimals.
const price = v => v == null || !isFinite(v) ? "–" : (String(v).split(".")[1] || "").length > 2 ? String(v) : v.toFixed(2);
const fixed = (v, d = 2) => v == null || !isFinite(v) ? "–" : v.toFixed(d);
const pct = v => v == null || !isFinite(v) ? "–" : (v >= 0 ? "+" : "") + (v * 100).toFixed(2) + "%";
// Intraday times are drawn in a zone: the exchange's (New York) unless the
// URL says `tz=utc` or `tz=local` (the browser's). Plotly reads a date
// without a zone as it is: a bar's instant becomes a wall time of the zone,
// and a date Plotly gives back becomes an instant again. Days have no zone.
const ZONES = { exchange: "America/New_York", utc: "UTC", local: Intl.DateTimeFormat().resolvedOptions().timeZone };
const ZONE_TITLES = { exchange: "New York time", utc: "UTC", local: `local time (${ZONES.local})` };
/** @type {Intl.DateTimeFormat} */
let wallFormat;
const wallCache = new Map();
function setZone(tz) {
  view.tz = tz in ZONES ? tz : "exchange";
  wallFormat = new Intl.DateTimeFormat("en-CA", { timeZone: ZONES[view.tz], hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  wallCache.clear();
}
const zoned = () => !shown().endsWith("d");
// An instant's wall time in the zone: `2024-01-02 09:30:00`.
function wall(t) {
  let w = wallCache.get(t);
  if (w === undefined) {
    /** @type {Record<string, string>} */
    const p = {};
    for (const { type, value } of wallFormat.formatToParts(t)) p[type] = value;
    const frac = ((t % 1000) + 1000) % 1000;
    w = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}${frac ? "." + String(frac).padStart(3, "0") : ""}`;
    if (wallCache.size > 50000) wallCache.clear();
    wallCache.set(t, w);
  }
  return w;
}
// The instant of a wall time read as if in UTC (`naive`): less the zone's
// offset then, found again at the result (a change of offset between).
function fromWall(naive) {
  let t = naive;
  for (let i = 0; i < 2; i++) t = naive - (Date.parse(wall(t).replace(" ", "T") + "Z") - t);
  return t;
}
// A bar's date as Plotly draws it.
const plotDate = d => d.length <= 10 ? d : zoned() ? wall(Date.parse(d)) : d.replace("T", " ").replace("Z", "");
// Milliseconds since the epoch of a bar's date (UTC) or of a date Plotly
// gives back (a wall time, text or number).
const ms = d => {
  if (typeof d === "number") return zoned() ? fromWall(d) : d;
  const s = String(d);
  if (s.length <= 10) return Date.parse(s + "T00:00:00Z");
  if (s.includes("T")) return Date.parse(s.endsWith("Z") ? s : s + "Z");
  const naive = Date.parse(s.replace(" ", "T").slice(0, 23) + "Z");
  return zoned() ? fromWall(naive) : naive;
};
const time = b => ms(b.date);
// Offered when the server does not say which it can read.
const INTERVALS = ["1s", "1m", "5m", "15m", "30m", "1h", "1d"];
// The first page holds what is shown and a little more (fewer candles draw
// sooner); older pages come as they scroll into view.
const FIRST_PAGE = 200, PAGE = 500, MAX_LOADED = 50000, SPARK = 60, VISIBLE = 120;

// What the URL keeps: company, interval, theme, overlays and whether the
// view follows the newest bars.
const url = new URLSearchParams(location.search);
const view = {
  company: url.get("company"),
  interval: url.get("interval"),
  theme: url.get("theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"),
  hold: url.get("follow") === "0",
  tz: "exchange",
};
setZone(url.get("tz") || "exchange");
/**
 * The overlays of the price pane, one row each: its checkbox, the indicator
 * columns it draws (they widen the price axis too) and its traces, given the
 * page's `line` maker and the theme's colours.
 * @type {{id: string, columns: string[], traces: (line: Function, c: any) => any[]}[]}
 */
const OVERLAYS = [
  { id: "sma10", columns: ["sma10"], traces: (line, c) => [line("sma10", "SMA 10", c.sma10)] },
  { id: "sma30", columns: ["sma30"], traces: (line, c) => [line("sma30", "SMA 30", c.sma30)] },
  { id: "sma50", columns: ["sma50"], traces: (line, c) => [line("sma50", "SMA 50", c.sma50)] },
  {
    id: "bb",
    columns: ["bb_upper", "bb_lower"],
    traces: (line, c) => [
      line("bb_upper", "Bollinger upper", c.bb, { line: { color: c.bb, width: 1, dash: "dot" } }),
      line("bb_lower", "Bollinger lower", c.bb, { line: { color: c.bb, width: 1, dash: "dot" }, fill: "tonexty", fillcolor: c.band }),
    ],
  },
];
const overlays = OVERLAYS.map(o => o.id);
if (url.has("overlays")) { const on = url.get("overlays").split(","); for (const o of overlays) $(o).checked = on.includes(o); }
/** The overlays whose boxes are ticked. */
const shownOverlays = () => OVERLAYS.filter(o => $(o.id).checked);

/** What the page holds and where it stands, in one place. */
const state = {
  live: "1d",          // the interval the live stream carries
  streams: true,       // false when nothing streams (a store served as it is)
  /** @type {any[]} */
  bars: [],            // the chart's bars, oldest first: {date, open, high, low, close, volume, vwap, partial, ind}
  /** @type {any[]} */
  alerts: [],          // the chart company's alerts
  complete: false,     // no older page left
  /** @type {Promise<any> | null} */
  loading: null,       // the page request in flight
  /** @type {any} */
  xrange: null,        // the visible dates, as Plotly shows them
  /** @type {EventSource | null} */
  stream: null,        // the live events
  streamOpened: false,
  lastEvent: 0,        // when the last live event came (performance.now())
  generation: 0,       // a new company or interval makes older answers stale
  painted: false,      // the chart was drawn once
  dirty: false,        // the chart must be drawn again
  lastDraw: 0,         // when it was last drawn
  drawings: 0,         // how often
  received: 0,         // events received
  ticks: 0,            // ticks among them
  /** @type {any} */
  hovered: null,       // the bar under the crosshair
  drawCost: 0,         // how long the last drawing took (ms)
  textDirty: false,    // the legend and labels must be written again
  lastWatch: 0,        // when the watchlist was last written
};
const watch = new Map();    // company -> {tr, symbol, closes: [{date, close}], last}

const api = async path => {
  const r = await fetch(path);
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `${r.status} for ${path}`);
  return r.json();
};
const q = params => {
  const s = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null));
  return s.toString() ? "?" + s : "";
};
const shown = () => view.interval || state.live;
const isLive = () => state.streams && shown() === state.live;

function keepUrl() {
  const p = new URLSearchParams();
  if (view.company) p.set("company", view.company);
  p.set("interval", shown());
  p.set("theme", view.theme);
  p.set("overlays", overlays.filter(o => $(o).checked).join(","));
  p.set("tz", view.tz);
  p.set("follow", state.xrange ? "0" : "1");
  history.replaceState(null, "", "?" + p);
}

function colours() {
  const css = getComputedStyle(document.documentElement), v = n => css.getPropertyValue(n).trim();
  return { bg: v("--panel"), text: v("--text"), muted: v("--muted"), grid: v("--grid"), up: v("--up"), down: v("--down"), accent: v("--accent"), band: v("--band"),
    sma10: v("--sma10"), sma30: v("--sma30"), sma50: v("--sma50"), bb: v("--bb"), vwap: v("--vwap"), rsi: v("--rsi"), macd: v("--macd"), signal: v("--signal"), marker: v("--marker") };
}

// ---- history, in pages ----

const pageOf = (rows, ind) => {
  const byDate = new Map(ind.map(r => [r.date, r]));
  return rows.map(b => ({ date: b.Date, open: b.Open, high: b.High, low: b.Low, close: b.Close, volume: b.Volume, vwap: b.VWAP ?? null, partial: b.partial === true, ind: byDate.get(b.Date) || null }));
};

async function loadPage(older) {
  if (state.loading || (older && state.complete)) return state.loading;
  const g = state.generation, company = view.company;
  // No interval: the served bars, those the stream carries.
  const limit = older ? PAGE : FIRST_PAGE, params = { limit, interval: view.interval };
  if (older && state.bars.length) params.before = state.bars[0].date;
  const path = encodeURIComponent(company);
  state.loading = (async () => {
    try {
      const [rows, ind] = await Promise.all([api(`/api/bars/${path}${q(params)}`), api(`/api/indicators/${path}${q(params)}`)]);
      if (g !== state.generation) return;
      const page = pageOf(rows, ind);
      if (page.length < limit) state.complete = true;
      if (older) state.bars = page.concat(state.bars);
      else { const last = page.length ? page[page.length - 1].date : ""; state.bars = page.concat(state.bars.filter(b => b.date > last)); }
      if (state.bars.length > MAX_LOADED) { state.bars = state.bars.slice(state.bars.length - MAX_LOADED); state.complete = true; }
      state.dirty = state.textDirty = true;
    } catch (e) {
      if (g === state.generation) message(e.message);
    } finally {
      if (g === state.generation) state.loading = null;
    }
  })();
  return state.loading;
}

async function loadAlerts() {
  const g = state.generation;
  try {
    const got = await api(`/api/alerts${q({ company: view.company, limit: 1000, interval: view.interval })}`);
    if (g === state.generation) { state.alerts = got; state.dirty = true; }
  } catch (e) { /* a company with no alerts table yet has none */ }
}

// A new bar (or the forming one) of the chart's company.
function upsert(bar) {
  const n = state.bars.length, last = state.bars[n - 1];
  if (!last || bar.date > last.date) {
    const following = state.xrange && last && state.xrange[1] >= plotDate(last.date);
    state.bars.push(bar);
    if (state.bars.length > MAX_LOADED) { state.bars.shift(); state.complete = true; }
    if (following) state.xrange = null; // keep showing the newest bars
  } else {
    let i = n - 1;
    while (i > 0 && state.bars[i].date > bar.date) i--;
    if (state.bars[i].date < bar.date && !bar.partial) {
      // A filled gap: in its place among the loaded bars.
      state.bars.splice(i + 1, 0, bar);
      state.dirty = state.textDirty = true;
      return;
    }
    if (state.bars[i].date !== bar.date) return; // older than what is loaded
    if (!state.bars[i].partial && bar.partial) return; // a closed bar stays closed
    if (!bar.ind) bar.ind = state.bars[i].ind;
    state.bars[i] = bar;
  }
  state.dirty = state.textDirty = true;
}

// ---- the chart ----

// The length of a bar of an interval (`5m`), in ms.
function lengthOf(interval) {
  const m = /^(\d+)([smhd])$/.exec(interval);
  return m ? Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]] : 864e5;
}

// The length of a bar of the interval shown, in ms.
const step = () => lengthOf(shown());

// An intraday interval coarser than the stream's: its newest bucket moves
// with the live bars, folded in.
const folding = () => !isLive() && !shown().endsWith("d") && lengthOf(state.live) < step();

// Folds a live bar (closed, or the forming one) into the newest bucket: high,
// low, close and volume move as the bucket's own would. A bar past that
// bucket starts another, which the store's page gives (loaded again).
function fold(bar) {
  const last = state.bars[state.bars.length - 1];
  if (!last || state.loading) return;
  const t = ms(bar.date), start = at(last);
  if (t < start) return;
  if (t >= start + step()) {
    // A new bucket: formed here until the store's page has it (loaded again).
    const k = Math.floor((t - start) / step());
    last.partial = false;
    const date = new Date(start + k * step()).toISOString().replace(".000Z", "Z");
    state.bars.push({ date, open: bar.open, high: bar.high, low: bar.low, close: bar.close, volume: 0, vwap: null, partial: true, ind: null });
    reloadSoon();
    fold(bar);
    return;
  }
  // What the bucket holds of closed bars; the forming one is added on top.
  const base = last.base || (last.base = { high: last.high, low: last.low, volume: last.volume || 0, counted: new Set() });
  if (!bar.partial && !base.counted.has(bar.date)) {
    base.counted.add(bar.date);
    base.high = Math.max(base.high, bar.high); base.low = Math.min(base.low, bar.low); base.volume += bar.volume;
  }
  last.high = Math.max(base.high, bar.high); last.low = Math.min(base.low, bar.low); last.close = bar.close;
  last.volume = base.volume + (bar.partial ? bar.volume : 0);
  last.partial = true;
  state.dirty = state.textDirty = true;
}

let reloading = 0;
function reloadSoon() {
  if (reloading) return;
  reloading = setTimeout(() => { reloading = 0; loadPage(false); }, 1000);
}

// A date `steps` bars after the newest, as Plotly takes it.
function pastNewest(steps) {
  return plotDate(new Date(ms(state.bars[state.bars.length - 1].date) + step() * steps).toISOString());
}

// The newest bars: as many as fit well, the newest at the right even when
// there are few of them yet.
function defaultRange() {
  if (!state.bars.length) return null;
  const from = state.bars.length > VISIBLE ? ms(state.bars[state.bars.length - VISIBLE].date)
    : ms(state.bars[state.bars.length - 1].date) - step() * Math.max(40, state.bars.length);
  return [plotDate(new Date(from - step() / 2).toISOString()), pastNewest(0.5)];
}

// A view kept on the bars: its width kept when it runs past the newest bar
// (a few bars of room) or, once every page is loaded, before the oldest;
// all of them when it is wider than they are; the newest bars (null) when
// it is empty or flipped.
function clampRange(range) {
  if (!range || !state.bars.length) return range;
  let a = ms(range[0]), b = ms(range[1]);
  if (!(b > a)) return null;
  const hi = ms(pastNewest(20)), lo = state.complete ? ms(state.bars[0].date) - step() / 2 : -Infinity, width = b - a;
  if (hi - lo <= width) { a = lo; b = hi; }
  else if (b > hi) { a = hi - width; b = hi; }
  else if (a < lo) { a = lo; b = lo + width; }
  return [a, b].map(t => plotDate(new Date(t).toISOString()));
}

// Back to the newest bars, following them as they come.
function followNewest() {
  state.xrange = null;
  state.dirty = true;
  showFollow();
}

// Whether the view follows the newest bars (no range of the user's): on the
// button, and in the URL.
function showFollow() {
  const on = state.xrange === null, button = $("follow");
  if (button.getAttribute("aria-pressed") === String(on)) return;
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? "Following live" : "Follow live";
  keepUrl();
}

// A bar's time in ms, kept on it: drawing asks for it often.
const at = b => b.t === undefined ? (b.t = time(b)) : b.t;

// The bars to draw for a view: those in it and a view's width either side
// (a pan shows them at once); more than fit the pixels are merged `stride` at
// a time into candles of a longer period, so a drawing costs the same at any
// zoom. Returns the drawn bars and, per stored bar's date, the bar drawn for it.
const DRAWN = 450;
function drawable(range) {
  const a = ms(range[0]), b = ms(range[1]), width = b - a;
  const near = state.bars.filter(x => !x.partial && at(x) >= a - width && at(x) <= b + width);
  const stride = Math.ceil(near.length / DRAWN);
  const drawnFor = new Map();
  if (stride <= 1) { for (const x of near) drawnFor.set(x.date, x); return { drawn: near, drawnFor, stride: 1 }; }
  // Groups start at multiples of the stride in the whole history: a pan does
  // not regroup the candles.
  const drawn = [], first = state.bars.indexOf(near[0]);
  for (let i = 0; i < near.length;) {
    const end = i === 0 ? stride - (first % stride) : i + stride;
    const group = near.slice(i, end), last = group[group.length - 1];
    i = end;
    const merged = { date: group[0].date, open: group[0].open, close: last.close, high: -Infinity, low: Infinity, volume: 0, vwap: null, ind: last.ind };
    // VWAP weighted by volume, unknown if any part's is.
    let traded = 0, known = true;
    for (const g of group) {
      merged.high = Math.max(merged.high, g.high); merged.low = Math.min(merged.low, g.low); merged.volume += g.volume; drawnFor.set(g.date, merged);
      if (g.vwap == null) known = false; else traded += g.vwap * g.volume;
    }
    merged.vwap = known && merged.volume > 0 ? traded / merged.volume : null;
    drawn.push(merged);
  }
  return { drawn, drawnFor, stride };
}

function span(values, pad = 0.04) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (v != null && isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!isFinite(lo)) return undefined;
  const p = (hi - lo) * pad || Math.abs(hi) * 0.01 || 1;
  return [lo - p, hi + p];
}

// Draws the chart; false when the library is not there yet.
function draw() {
  if (!state.bars.length) {
    if (!state.loading) message(`no ${shown()} bars stored for ${view.company || "any company"} yet`);
    return true;
  }
  const forming = state.bars.filter(b => b.partial);
  if (!window.Plotly) { message("loading the chart…"); return false; }
  message(null);
  $("chart").dataset.loaded = String(state.bars.length);
  // The URL said not to follow: the newest bars' view, held where it is.
  if (view.hold && !state.xrange) state.xrange = defaultRange();
  view.hold = false;
  if (state.xrange) state.xrange = clampRange(state.xrange);
  showFollow();
  const c = colours(), range = state.xrange || defaultRange(), { drawn, drawnFor, stride } = drawable(range);
  const from = ms(range[0]), to = ms(range[1]), seen = drawn.concat(forming).filter(b => at(b) >= from && at(b) <= to);
  $("zoom-note").textContent = stride > 1 ? `zoomed out: a candle per ${stride} bars` : "";
  // The price axis holds the overlays shown as well as the candles.
  const columns = shownOverlays().flatMap(o => o.columns);
  const prices = span(seen.flatMap(b => [b.low, b.high, b.vwap].concat(b.ind ? columns.map(k => b.ind[k]) : [])));
  const x = drawn.map(b => plotDate(b.date)), ind = k => drawn.map(b => b.ind ? b.ind[k] : null);
  const line = (k, name, color, extra = {}) => ({ type: "scatter", mode: "lines", x, y: ind(k), name, line: { color, width: 1.3 }, hoverinfo: "none", ...extra });
  const candle = (list, name, hollow) => ({
    type: "candlestick", name, x: list.map(b => plotDate(b.date)), open: list.map(b => b.open), high: list.map(b => b.high),
    low: list.map(b => b.low), close: list.map(b => b.close), hoverinfo: "none", whiskerwidth: 0,
    increasing: { line: { color: c.up, width: 1 }, fillcolor: hollow ? "rgba(0,0,0,0)" : c.up },
    decreasing: { line: { color: c.down, width: 1 }, fillcolor: hollow ? "rgba(0,0,0,0)" : c.down },
  });
  // Plotly sizes candles by the spacing of all those drawn: a forming candle
  // alone would be a hairline (its volume bar too). An empty one a bar earlier
  // gives it a bar's width.
  const alone = drawn.length || !forming.length ? [] : [{ date: new Date(at(forming[0]) - step()).toISOString(), open: null, high: null, low: null, close: null, volume: null }];
  /** Plotly's traces, of several kinds. @type {any[]} */
  const data = [candle(drawn, "price", false), candle(alone.concat(forming), "forming", true)];
  for (const o of shownOverlays()) data.push(...o.traces(line, c));
  // Each bar's own VWAP of its trades, where bars made from trades carry one.
  const vwaps = drawn.concat(forming).filter(b => b.vwap != null);
  if (vwaps.length) {
    data.push({ type: "scatter", mode: "lines+markers", name: "VWAP", x: vwaps.map(b => plotDate(b.date)), y: vwaps.map(b => b.vwap),
      line: { color: c.vwap, width: 1.3, dash: "dot" }, marker: { size: 3, color: c.vwap }, hoverinfo: "none" });
  }

  // Alert markers above the bar that raised them (the merged one it is in).
  const marked = state.alerts.filter(a => drawnFor.has(a.date));
  data.push({
    type: "scatter", mode: "markers", name: "alerts", x: marked.map(a => plotDate(drawnFor.get(a.date).date)),
    y: marked.map(a => drawnFor.get(a.date).high + (prices ? (prices[1] - prices[0]) * 0.03 : 0)), text: marked.map(a => a.message), hoverinfo: "text",
    marker: { symbol: "triangle-down", size: seen.length > 300 ? 5 : 11, color: c.marker, line: { color: c.bg, width: 1 } }, yaxis: "y",
  });
  const all = drawn.concat(alone, forming);
  data.push({
    type: "bar", name: "volume", x: all.map(b => plotDate(b.date)), y: all.map(b => b.volume), yaxis: "y2", hoverinfo: "none",
    marker: { color: all.map(b => b.close >= b.open ? c.up : c.down), opacity: 0.6 },
  });
  data.push(line("rsi14", "RSI 14", c.rsi, { yaxis: "y3" }));
  data.push({ type: "bar", name: "MACD histogram", x, y: ind("macd_hist"), yaxis: "y4", hoverinfo: "none", marker: { color: ind("macd_hist").map(v => v >= 0 ? c.up : c.down), opacity: 0.5 } });
  data.push(line("macd", "MACD", c.macd, { yaxis: "y4" }));
  data.push(line("macd_signal", "signal", c.signal, { yaxis: "y4" }));

  const axis = (domain, title, yrange, extra = {}) => ({
    domain, title: { text: title, font: { size: 11, color: c.muted } }, range: yrange, autorange: yrange ? false : true, fixedrange: true,
    gridcolor: c.grid, zerolinecolor: c.grid, side: "right", tickfont: { size: 10 }, showspikes: true, spikemode: "across",
    spikethickness: 1, spikedash: "dot", spikecolor: c.muted, spikesnap: "cursor", ...extra,
  });
  const daily = shown() === "1d";
  const layout = {
    paper_bgcolor: c.bg, plot_bgcolor: c.bg, font: { color: c.text, size: 11 }, showlegend: false, dragmode: "pan",
    hovermode: "x", hoverdistance: -1, spikedistance: -1, margin: { l: 10, r: 60, t: 8, b: 44 }, bargap: 0.2,
    xaxis: {
      // The range is ours (the user's zoom, kept from relayout events, then
      // clamped or moved with the newest bar): applied on every drawing.
      type: "date", range, uirevision: ++state.drawings, anchor: "y4", rangeslider: { visible: false }, gridcolor: c.grid, showspikes: true, spikemode: "across",
      spikethickness: 1, spikedash: "dot", spikecolor: c.muted, spikesnap: "cursor",
      rangebreaks: daily ? [{ bounds: ["sat", "mon"] }] : [],
      title: { text: zoned() ? ZONE_TITLES[view.tz] : "", font: { size: 11, color: c.muted }, standoff: 4 },
    },
    yaxis: axis([0.42, 1], "price", prices),
    yaxis2: axis([0.29, 0.4], "volume", span(seen.map(b => b.volume).concat([0]), 0.02)),
    yaxis3: axis([0.15, 0.27], "RSI", [0, 100], { tickvals: [30, 70] }),
    yaxis4: axis([0, 0.13], "MACD", span(seen.flatMap(b => b.ind ? [b.ind.macd, b.ind.macd_signal, b.ind.macd_hist] : []))),
    shapes: [30, 70].map(v => ({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y3", y0: v, y1: v, line: { color: c.muted, width: 1, dash: "dash" } })),
    uirevision: `${view.company}|${shown()}`,
  };
  // Plotly's own reset goes back to the range of an earlier drawing: the
  // home button and a double-click go to the newest bars instead.
  const home = { name: "newest", title: "Newest bars, following them", icon: Plotly.Icons.home, click: followNewest };
  const config = { responsive: true, scrollZoom: true, displaylogo: false, doubleClick: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "resetScale2d"], modeBarButtonsToAdd: [home] };
  Plotly.react($("chart"), data, layout, config).then(() => {
    if (!state.painted) { state.painted = true; performance.mark("stockstream-first-chart"); onChart(); }
  });
  return true;
}

// A line in place of the chart (the chart hidden), or the chart again.
function message(text) {
  $("chart-message").hidden = text == null;
  $("chart-message").textContent = text || "";
  $("chart").style.display = text == null ? "" : "none";
}

// Every series drawn, with its colour and its value at the bar.
function legendSeries(b) {
  const i = b.ind || {}, c = colours(), sw = color => `<i class="sw" style="background:${color}"></i>`;
  const item = (name, color, v, d = 2) => `<span class="series">${sw(color)}${esc(name)} ${fixed(v, d)}</span>`;
  const items = [];
  if (b.vwap != null || state.bars.some(x => x.vwap != null)) items.push(item("VWAP", c.vwap, b.vwap));
  if ($("sma10").checked) items.push(item("SMA 10", c.sma10, i.sma10));
  if ($("sma30").checked) items.push(item("SMA 30", c.sma30, i.sma30));
  if ($("sma50").checked) items.push(item("SMA 50", c.sma50, i.sma50));
  if ($("bb").checked) items.push(item("Bollinger", c.bb, i.bb_upper) + ` / ${fixed(i.bb_lower)}`);
  items.push(item("RSI 14", c.rsi, i.rsi14, 1), item("MACD", c.macd, i.macd, 3), item("signal", c.signal, i.macd_signal, 3));
  return items.join(" ");
}

function legend(b) {
  if (!b) { $("legend").textContent = ""; return; }
  const up = b.close >= b.open;
  $("legend").innerHTML = `<b>${esc(view.company)}</b> <span>${esc(plotDate(b.date))}${b.partial ? " (forming)" : ""}</span> · ` +
    `O ${price(b.open)} H ${price(b.high)} L ${price(b.low)} <span class="${up ? "up" : "down"}">C ${price(b.close)}</span> V ${Math.round(b.volume).toLocaleString("en")}` +
    ` · ${legendSeries(b)}`;
}

// The legend, the forming bar's label and the status: every frame they
// changed in. The chart: at most every 100 ms, whatever the rate of ticks,
// and after a pause twice as long as its last drawing took, so drawing keeps
// at most a third of the page's time. The watchlist: at most every 250 ms.
const watchDirty = new Set();
function frame(now) {
  if (state.textDirty) { state.textDirty = false; texts(); }
  if (watchDirty.size && now - state.lastWatch > 250) {
    state.lastWatch = now;
    for (const company of watchDirty) showWatch(company);
    watchDirty.clear();
  }
  if (state.dirty && now - state.lastDraw > Math.max(100, 2 * state.drawCost)) {
    state.dirty = !draw();
    state.lastDraw = performance.now();
    state.drawCost = state.lastDraw - now;
  }
  requestAnimationFrame(frame);
}

function texts() {
  legend(state.hovered || state.bars[state.bars.length - 1]);
  const f = state.bars.length && state.bars[state.bars.length - 1].partial ? state.bars[state.bars.length - 1] : null;
  $("forming-label").textContent = f
    ? `forming ${plotDate(f.date).slice(11, 19)} · O ${price(f.open)} H ${price(f.high)} L ${price(f.low)} C ${price(f.close)} · V ${Math.round(f.volume)}`
    : "";
  showStatus();
}

// What the stream does, truthfully: "live" only while events arrive; a
// stream gone quiet or lost is said over the chart too.
const QUIET_MS = 15000;
function showStatus() {
  const open = state.stream && state.stream.readyState === EventSource.OPEN, quiet = performance.now() - state.lastEvent;
  let text, stale = false;
  if (!state.stream) text = "connecting…";
  else if (!open) { text = "reconnecting… the chart is not live"; stale = state.lastEvent > 0 || state.streamOpened; }
  else if (!state.lastEvent) text = "connected · nothing streaming";
  else if (quiet > QUIET_MS) { text = `stale · nothing new for ${Math.round(quiet / 1000)} s`; stale = true; }
  else text = state.ticks ? `live · ${state.received} bars, ${state.ticks} ticks received` : `live · ${state.received} bars received`;
  if ($("status").textContent !== text) $("status").textContent = text;
  document.body.classList.toggle("stale", stale);
  $("stale").textContent = stale ? text : "";
}

function onChart() {
  const gd = $("chart");
  // The crosshair's bar: the one nearest the cursor's date.
  gd.on("plotly_hover", e => {
    const x = e.xvals && e.xvals[0];
    if (x == null || !state.bars.length) return;
    const t = ms(x);
    let lo = 0, hi = state.bars.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (time(state.bars[mid]) < t) lo = mid + 1; else hi = mid; }
    if (lo > 0 && t - time(state.bars[lo - 1]) < time(state.bars[lo]) - t) lo--;
    state.hovered = state.bars[lo];
    legend(state.hovered);
  });
  gd.on("plotly_unhover", () => { state.hovered = null; legend(state.bars[state.bars.length - 1]); });
  gd.on("plotly_doubleclick", followNewest);
  gd.on("plotly_relayout", e => {
    if (e["xaxis.range[0]"] !== undefined) state.xrange = [String(e["xaxis.range[0]"]), String(e["xaxis.range[1]"])];
    else if (Array.isArray(e["xaxis.range"])) state.xrange = e["xaxis.range"].map(String);
    else if (e["xaxis.autorange"]) state.xrange = null;
    else return;
    state.xrange = clampRange(state.xrange);
    state.dirty = true;
    showFollow();
    // Near the oldest bar loaded: the page before it.
    const edge = state.bars[Math.min(state.bars.length - 1, 20)];
    if (state.xrange && edge && state.xrange[0] <= plotDate(edge.date)) loadPage(true);
  });
}

// ---- watchlist and alerts feed ----

function spark(closes) {
  if (closes.length < 2) return "";
  const v = closes.map(c => c.close), lo = Math.min(...v), hi = Math.max(...v), w = 80, h = 22;
  const pts = v.map((y, i) => `${(i / (v.length - 1) * w).toFixed(1)},${(h - 2 - (y - lo) / ((hi - lo) || 1) * (h - 4)).toFixed(1)}`).join(" ");
  const up = v[v.length - 1] >= v[0];
  return `<svg class="spark" viewBox="0 0 ${w} ${h}" aria-hidden="true"><polyline points="${pts}" fill="none" stroke="var(${up ? "--up" : "--down"})" stroke-width="1.3"/></svg>`;
}

function watchRow(company, symbol) {
  let w = watch.get(company);
  if (w) return w;
  const tr = document.createElement("tr");
  tr.innerHTML = `<td title="${esc(symbol || "")}">${esc(company)}</td><td></td><td></td><td></td>`;
  tr.onclick = () => select(company);
  const body = document.querySelector("#watchlist tbody");
  const after = [...body.children].find(r => r.firstChild.textContent > company);
  body.insertBefore(tr, after || null);
  w = { tr, symbol, closes: [] };
  watch.set(company, w);
  if (!view.company) select(company);
  else if (isLive() && ![...$("company").options].some(o => o.value === company)) addOption($("company"), company);
  return w;
}

function watchBar(company, symbol, bar) {
  const w = watchRow(company, symbol), list = w.closes, last = list[list.length - 1];
  if (last && last.date === bar.date) { if (!(last.closed && bar.partial)) list[list.length - 1] = { date: bar.date, close: bar.close, closed: !bar.partial }; }
  else if (!last || bar.date > last.date) { list.push({ date: bar.date, close: bar.close, closed: !bar.partial }); if (list.length > SPARK) list.shift(); }
  watchDirty.add(company);
}

function showWatch(company) {
  const w = watch.get(company), list = w.closes, c = w.tr.children;
  const last = list[list.length - 1], before = list[list.length - 2];
  c[1].textContent = last ? price(last.close) : "–";
  const change = last && before ? last.close / before.close - 1 : null;
  c[2].textContent = pct(change);
  c[2].className = change == null ? "" : change >= 0 ? "up" : "down";
  c[3].innerHTML = spark(list);
  w.tr.classList.toggle("selected", company === view.company);
  // A moment's highlight on a row that moved, at most every 2 s.
  const now = performance.now();
  if (!(now - w.flashed < 2000)) {
    w.flashed = now;
    w.tr.classList.add("flash");
    setTimeout(() => w.tr.classList.remove("flash"), 300);
  }
}

async function loadWatchlist(companies) {
  await Promise.all(companies.map(async company => {
    const rows = await api(`/api/bars/${encodeURIComponent(company)}${q({ limit: SPARK })}`).catch(() => []);
    const w = watchRow(company, rows.length ? rows[rows.length - 1].Symbol : "");
    const streamed = w.closes;
    w.closes = rows.map(b => ({ date: b.Date, close: b.Close, closed: true }));
    for (const s of streamed) if (!w.closes.length || s.date > w.closes[w.closes.length - 1].date) w.closes.push(s);
    w.closes = w.closes.slice(-SPARK);
    showWatch(company);
  }));
}

function feed(a) {
  const li = document.createElement("li");
  li.innerHTML = `<span class="rule">${esc(a.rule.replace(/_/g, " "))}</span>${esc(a.message)}`;
  li.onclick = () => select(a.company);
  const list = $("alerts");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > 200) list.removeChild(list.lastChild);
}

// ---- pickers, theme, toggles ----

function addOption(sel, value, label) {
  const o = document.createElement("option"); o.value = value; o.textContent = label || value; sel.appendChild(o);
}

function select(company) {
  if (company === view.company && state.bars.length) return;
  view.company = company;
  $("company").value = company;
  reset();
}

// A new company or interval: its companies, then its newest page and alerts.
async function reset(known) {
  const g = ++state.generation;
  state.bars = []; state.alerts = []; state.complete = false; state.loading = null; state.xrange = null; state.hovered = null;
  for (const name of watch.keys()) showWatch(name);
  keepUrl();
  const companies = known || await api(`/api/companies${q({ interval: view.interval })}`).catch(() => []);
  if (g !== state.generation) return;
  fillCompanies(companies);
  if (!view.company) return;
  // The list is one page of companies: one beyond it, or named by its
  // symbol, is looked up.
  const stored = companies.find(c => c.toLowerCase() === view.company.toLowerCase())
    || (await api(`/api/companies${q({ name: view.company, interval: view.interval })}`).catch(() => []))[0];
  if (g !== state.generation) return;
  if (stored) { view.company = stored; fillCompanies(companies); keepUrl(); }
  else if (!isLive()) {
    // Known in the interval the server streams, or not at all: said, with the
    // companies there are, and not offered in the picker. (A live stream's
    // company may come before its first bar is stored.)
    const anywhere = view.interval && (await api(`/api/companies${q({ name: view.company })}`).catch(() => []))[0];
    if (g !== state.generation) return;
    const some = companies.slice(0, 10).join(", ") + (companies.length > 10 ? ", …" : "");
    message(anywhere ? `no ${shown()} bars stored for ${view.company}`
      : `no company "${view.company}" is stored${companies.length ? `; there are ${some}` : ""}`);
    fillCompanies(companies, false);
    return;
  }
  // A company only streamed so far has no page to load yet.
  if (stored) { loadPage(false); loadAlerts(); }
  state.dirty = true;
}

function fillCompanies(companies, known = true) {
  const sel = $("company"), names = new Set(companies.concat(isLive() ? [...watch.keys()] : []));
  if (view.company && known) names.add(view.company);
  sel.innerHTML = "";
  for (const c of [...names].sort()) addOption(sel, c);
  if (view.company) sel.value = view.company;
}

function theme(name) {
  view.theme = name;
  document.documentElement.dataset.theme = name;
  $("theme").textContent = name === "dark" ? "Light" : "Dark";
  keepUrl(); state.dirty = true;
}

async function start() {
  theme(view.theme);
  const [info, watched] = await Promise.all([api("/api/live"), api("/api/companies")]);
  state.live = info.interval;
  state.streams = info.streaming !== false;
  if (view.interval === state.live) view.interval = null;
  // The intervals the store's bars can be read in, the live one among them.
  const offered = INTERVALS.filter(i => i === state.live || (info.intervals || INTERVALS).includes(i) || i === view.interval);
  for (const i of offered) addOption($("interval"), i, i === state.live && state.streams ? `${i} · live` : i);
  $("interval").value = shown();
  $("interval").onchange = () => { view.interval = $("interval").value === state.live ? null : $("interval").value; reset(); };
  $("company").onchange = () => select($("company").value);
  $("theme").onclick = () => theme(view.theme === "dark" ? "light" : "dark");
  $("follow").onclick = followNewest;
  $("tz").value = view.tz;
  $("tz").onchange = () => { setZone($("tz").value); state.xrange = null; keepUrl(); state.dirty = state.textDirty = true; };
  for (const o of overlays) $(o).onchange = () => { keepUrl(); state.dirty = state.textDirty = true; };
  if (!view.company) view.company = watched[0] || null;
  reset(view.interval ? null : watched);
  requestAnimationFrame(frame);
  loadWatchlist(watched);
  for (const a of (await api(`/api/alerts${q({ limit: 50 })}`).catch(() => [])).reverse()) feed(a);

  const source = new EventSource("/api/stream");
  state.stream = source;
  source.onopen = () => { state.streamOpened = true; showStatus(); };
  source.onerror = () => showStatus();
  setInterval(showStatus, 1000);
  // Any event of the stream: it is live.
  for (const kind of ["bar", "forming", "earlier", "alert"]) source.addEventListener(kind, () => { state.lastEvent = performance.now(); });
  source.addEventListener("bar", e => {
    const b = JSON.parse(e.data), ind = b.indicators;
    state.received++;
    state.textDirty = true;
    const bar = { date: ind.date, open: b.open, high: b.high, low: b.low, close: ind.close, volume: b.volume, vwap: b.vwap ?? null, partial: false, ind };
    watchBar(ind.company, b.symbol, bar);
    if (ind.company === view.company && isLive()) upsert(bar);
    else if (ind.company === view.company && folding()) fold(bar);
  });
  source.addEventListener("forming", e => {
    const b = JSON.parse(e.data);
    state.ticks++;
    state.textDirty = true;
    const bar = { date: b.date, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, vwap: b.vwap ?? null, partial: true, ind: null };
    watchBar(b.company, b.symbol, bar);
    if (b.company === view.company && isLive()) upsert(bar);
    else if (b.company === view.company && folding()) fold(bar);
  });
  // A closed bar older than the newest: a gap the chart API filled.
  source.addEventListener("earlier", e => {
    const b = JSON.parse(e.data);
    if (b.company !== view.company) return;
    if (isLive()) upsert({ date: b.date, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, vwap: b.vwap ?? null, partial: false, ind: null });
    else if (folding()) reloadSoon();
  });
  source.addEventListener("alert", e => {
    const a = JSON.parse(e.data);
    feed(a);
    if (a.company === view.company && isLive()) { state.alerts.unshift(a); state.dirty = true; }
  });
}

start().catch(e => { $("status").textContent = `cannot start: ${e.message}`; });
