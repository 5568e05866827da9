// Opens the live dashboard while bars stream (from `run --serve` or from a
// `serve` following the bus) and reports what a person would see: the chart's
// last candle, the watchlist and the alerts, before and after; the legend
// under the crosshair; an overlay turned on; the dark theme. Screenshots:
// SCREENSHOT (light) and SCREENSHOT with -dark before .png.
// Usage: node dashboard.cjs URL SCREENSHOT (PLAYWRIGHT_CORE names the
// installed playwright-core folder).
const open = require("./open.cjs"), { look } = open;

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const { browser, page, errors, external } = await open(url, { width: 1400, height: 900 });
  await page.waitForFunction(() => { const gd = document.getElementById("chart"); return gd.data && gd.data[0].x.length > 1; }, null, { timeout: 60000 });
  const before = await look(page);
  // Streams until the last candle and the watchlist moved, and an alert of
  // the chart's company is on it and in the feed: at most 60 s.
  let after;
  for (let i = 0; i < 240; i++) {
    await page.waitForTimeout(250);
    after = await look(page);
    if (after.lastCandle !== before.lastCandle && after.watchlist !== before.watchlist && after.markers > 0 && after.feed > 0) break;
  }
  // The crosshair over the middle of the price pane: its bar in the legend.
  const pane = await page.locator("#chart .nsewdrag").first().boundingBox();
  await page.mouse.move(pane.x + pane.width / 2, pane.y + pane.height / 2);
  await page.waitForTimeout(400);
  const hover = await look(page);
  await page.mouse.move(1, 1);
  await page.click("#bb");
  await page.waitForTimeout(400);
  const bands = await look(page);
  await page.screenshot({ path: screenshot });
  await page.click("#theme");
  await page.waitForTimeout(600);
  const dark = await look(page);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-dark.png") });
  await browser.close();
  console.log(JSON.stringify({ errors, external, before, after, hover, bands, dark }));
})().catch(e => { console.error(e); process.exit(1); });
