// Opens the dashboard over a long stored history and reports: the first paint
// and the chart's first drawing (ms from navigation) on a first visit and on
// three visits with the library cached; what the URL kept; how many bars the chart
// has loaded at first and after zooming out with the wheel (older pages loaded as
// they come into view); which intervals the picker offers, and what an
// interval none can be made for shows.
// Usage: node history.cjs URL SCREENSHOT (URL with its query, e.g. ?company=tesla).
const open = require("./open.cjs"), { look } = open;

const timings = page => page.waitForFunction(() => performance.getEntriesByName("stockstream-first-chart").length > 0, null, { timeout: 30000 })
  .then(() => page.evaluate(() => ({
    paint: (performance.getEntriesByName("first-contentful-paint")[0] || {}).startTime,
    chart: performance.getEntriesByName("stockstream-first-chart")[0].startTime,
  })));

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const { browser, page, errors, external, transferred } = await open(url, { width: 1400, height: 900 });
  const first = await timings(page);
  // A cold visit's weight: everything the page took until its chart was drawn.
  await page.waitForTimeout(300);
  first.bytes = await transferred();
  const cached = [];
  for (let i = 0; i < 3; i++) {
    await page.reload();
    cached.push(await timings(page));
  }
  await page.waitForTimeout(500);
  const opened = await look(page);
  const pane = await page.locator("#chart .nsewdrag").first().boundingBox();
  await page.mouse.move(pane.x + pane.width / 2, pane.y + pane.height / 2);
  const zoomed = [];
  // Zoomed out until, after more bars came, 40 turns of the wheel bring
  // none (each widens the view by a tenth, the newest bar held in place).
  for (let i = 0; i < 250; i++) {
    await page.mouse.wheel(0, 400);
    await page.waitForTimeout(80);
    zoomed.push((await look(page)).loaded);
    const last = zoomed[zoomed.length - 1];
    if (last > zoomed[0] && zoomed.length > 40 && zoomed.slice(-40).every(n => n === last)) break;
  }
  await page.waitForTimeout(800);
  const paged = await look(page);
  await page.screenshot({ path: screenshot });
  // The picker offers the intervals the store can give; one named in the
  // URL that it cannot give says so.
  const offered = await page.evaluate(() => [...document.querySelectorAll("#interval option")].map(o => o.value));
  await page.goto(url + "&interval=1h");
  await page.waitForTimeout(1500);
  const picked = await look(page);
  picked.offered = offered;
  picked.message = await page.evaluate(() => document.getElementById("chart-message").hidden ? null : document.getElementById("chart-message").textContent);
  await browser.close();
  console.log(JSON.stringify({ errors, external, first, cached, opened, zoomed, paged, picked }));
})().catch(e => { console.error(e); process.exit(1); });
