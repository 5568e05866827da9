// A live feed's session as a trader opens it: the history is on the chart at
// the first paint, with the bars' VWAP line; then the 5m interval is picked:
// 5m candles, and a forming 5m candle that moves with the live ticks, sampled
// every 250 ms for 8 s. Screenshots: SCREENSHOT (1m) and SCREENSHOT with
// `-5m` before `.png`.
// Usage: node session.cjs URL SCREENSHOT (PLAYWRIGHT_CORE names the installed
// playwright-core folder).
const open = require("./open.cjs"), { look } = open;

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const { browser, page, errors, external } = await open(url, { width: 1400, height: 900 });
  // The first drawing with any candle: what the first paint shows.
  await page.waitForFunction(() => ((document.getElementById("chart").data || []).find(t => t.name === "price") || { x: [] }).x.length > 0,
    null, { timeout: 30000, polling: 20 });
  const first = await look(page);
  // The bars' VWAP: the live bars carry it (the chart API's history does not).
  await page.waitForFunction(() => ((document.getElementById("chart").data || []).find(t => t.name === "VWAP") || { y: [] }).y.some(v => v != null),
    null, { timeout: 15000 }).catch(() => {});
  const vwap = await page.evaluate(() => {
    const t = (document.getElementById("chart").data || []).find(t => t.name === "VWAP");
    return t ? t.y.filter(v => v != null).length : 0;
  });
  // The time axis in exchange time, named.
  // The newest closed bar as loaded (UTC, as the API gave it) and as drawn.
  // @ts-ignore: the page's own state, a global of its script
  const zone = () => page.waitForFunction(() => !state.dirty).then(() => page.evaluate(() => {
    const gd = document.getElementById("chart"), price = gd.data.find(t => t.name === "price");
    // @ts-ignore: the page's own state, a global of its script
    const newest = state.bars.filter(b => !b.partial).pop().date;
    return { title: gd.layout.xaxis.title.text, last: String(price.x[price.x.length - 1]), newest, url: location.search };
  }));
  const exchange = await zone();
  await page.screenshot({ path: screenshot });
  await page.selectOption("#tz", "utc");
  await page.waitForFunction(() => document.getElementById("chart").layout.xaxis.title.text === "UTC", null, { timeout: 10000 });
  const utc = await zone();
  await page.selectOption("#tz", "exchange");
  await page.selectOption("#interval", "5m");
  // Drawn again from the 5m page: candles five minutes apart, and a forming one.
  await page.waitForFunction(() => {
    const data = document.getElementById("chart").data || [], price = data.find(t => t.name === "price"), forming = data.find(t => t.name === "forming");
    const at = x => Date.parse(String(x).replace(" ", "T") + "Z");
    return price && price.x.length > 1 && at(price.x[1]) - at(price.x[0]) >= 300000 && forming && forming.x.length > 0;
  }, null, { timeout: 30000 }).catch(async e => {
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-5m.png") });
    throw new Error(`no 5m chart: ${e.message}\n${JSON.stringify(await look(page))}`);
  });
  const fiveMinutes = await look(page);
  // Candle times of the 5m chart, as drawn.
  const times = await page.evaluate(() => (document.getElementById("chart").data || []).find(t => t.name === "price").x.map(String));
  const samples = [];
  for (let i = 0; i < 32; i++) {
    samples.push((await look(page)).forming);
    await page.waitForTimeout(250);
  }
  const after = await look(page);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-5m.png") });
  await browser.close();
  console.log(JSON.stringify({ errors, external, first, exchange, utc, vwap, fiveMinutes, times, samples, after }));
})().catch(e => { console.error(e); process.exit(1); });
