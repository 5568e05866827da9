// Opens the live dashboard while synthetic ticks stream and watches the
// forming candle between ticks: its label, the chart's forming candle and the
// watchlist's last prices, sampled every 100 ms for 3 s; and how smoothly the
// page runs meanwhile (the gaps between animation frames).
// Usage: node forming.cjs URL SCREENSHOT (PLAYWRIGHT_CORE names the installed
// playwright-core folder).
const open = require("./open.cjs"), { look } = open;

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const { browser, page, errors, external } = await open(url, { width: 1400, height: 900 });
  await page.waitForFunction(() => {
    const t = (document.getElementById("chart").data || []).find(t => t.name === "forming");
    return t && t.x.length > 0;
  }, null, { timeout: 30000 });
  // Frame gaps, recorded in the page while it is sampled.
  await page.evaluate(() => {
    window.frameGaps = [];
    let last = performance.now();
    const tick = now => { window.frameGaps.push(now - last); last = now; if (window.frameGaps.length < 100000) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });
  const samples = [];
  for (let i = 0; i < 30; i++) {
    const seen = await look(page);
    samples.push({
      label: await page.evaluate(() => document.getElementById("forming-label").textContent),
      forming: seen.forming,
      // Every company's last price in the watchlist.
      close: await page.evaluate(() => [...document.querySelectorAll("#watchlist tbody tr td:nth-child(2)")].map(td => td.textContent).join(" ")),
      status: seen.status,
      // The widest candle drawn, in pixels (a lone forming candle too).
      candleWidth: await page.evaluate(() => Math.max(0, ...[...document.querySelectorAll("#chart g.trace.boxes path.box")].map(p => p.getBBox().width))),
    });
    await page.waitForTimeout(100);
  }
  const gaps = await page.evaluate(() => window.frameGaps.slice().sort((a, b) => a - b));
  const frames = { count: gaps.length, p50: gaps[Math.floor(gaps.length / 2)], p95: gaps[Math.floor(gaps.length * 0.95)], max: gaps[gaps.length - 1] };
  await page.screenshot({ path: screenshot });
  await browser.close();
  console.log(JSON.stringify({ errors, external, samples, frames }));
})().catch(e => { console.error(e); process.exit(1); });
