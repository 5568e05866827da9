// Navigation as a trader uses a chart, over a long daily history: six drags
// towards the oldest bar and back, the wheel out to the whole history and
// beyond, a double-click and the modebar's home button. Reports the visible
// range after each step (as Plotly shows it) and the first and newest bar
// dates. Usage: node navigation.cjs URL SCREENSHOT (PLAYWRIGHT_CORE names the
// installed playwright-core folder).
const open = require("./open.cjs"), { look } = open;

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const { browser, page, errors, external } = await open(url, { width: 1400, height: 900 });
  await page.waitForFunction(() => performance.getEntriesByName("stockstream-first-chart").length > 0, null, { timeout: 30000 });
  const range = () => page.evaluate(() => (document.getElementById("chart").layout.xaxis.range || []).map(String));
  const pane = await page.locator("#chart .nsewdrag").first().boundingBox();
  const cx = pane.x + pane.width / 2, cy = pane.y + pane.height / 2;
  const drag = async dx => {
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) await page.mouse.move(cx + dx * i / 10, cy);
    await page.mouse.up();
    await page.waitForTimeout(400);
  };
  const opened = await range();
  // Towards the oldest bar: every page loads as it comes into view.
  const older = [];
  for (let i = 0; i < 40; i++) {
    await drag(pane.width * 0.8);
    older.push(await range());
    const [a, b] = older.slice(-2);
    if (i > 6 && a && b && a[0] === b[0] && a[1] === b[1]) break;
  }
  const back = [];
  for (let i = 0; i < 3; i++) { await drag(-pane.width * 0.8); back.push(await range()); }
  // The wheel out: the whole history, never beyond it.
  await page.mouse.move(cx, cy);
  for (let i = 0; i < 60; i++) { await page.mouse.wheel(0, 600); await page.waitForTimeout(60); }
  await page.waitForTimeout(800);
  const wheeled = await range();
  const loaded = (await look(page)).loaded;
  // A double-click, then the home button: the newest bars again. (Back to
  // them first: the whole history is in view, no drag leaves the newest.)
  const homeButton = page.locator('.modebar-btn[data-title="Newest bars, following them"]');
  await homeButton.click();
  await page.waitForTimeout(600);
  await drag(pane.width * 0.8);
  const beforeDouble = await range();
  await page.mouse.dblclick(cx, cy);
  await page.waitForTimeout(800);
  const doubled = await range();
  await drag(pane.width * 0.8);
  const beforeHome = await range();
  await homeButton.click();
  await page.waitForTimeout(800);
  const homed = await range();
  const following = () => page.evaluate(() => ({ pressed: document.getElementById("follow").getAttribute("aria-pressed"), url: location.search }));
  const afterHome = await following();
  // The follow button: off once the view is dragged, on again when clicked.
  await drag(pane.width * 0.8);
  const dragged = await following();
  const beforeFollow = await range();
  await page.click("#follow");
  await page.waitForTimeout(800);
  const followed = await range();
  const afterFollow = await following();
  const seen = await look(page);
  await page.screenshot({ path: screenshot });
  // The server gone (the test stops it when OUTAGE_FILE says "ready", and
  // starts it again once it says "seen"): said over the chart, then gone.
  const fs = require("fs"), signal = process.env.OUTAGE_FILE;
  const status = () => page.evaluate(() => ({ status: document.getElementById("status").textContent,
    stale: document.body.classList.contains("stale"), banner: document.getElementById("stale").textContent }));
  const quietBefore = errors.length;
  fs.writeFileSync(signal, "ready");
  await page.waitForFunction(() => document.body.classList.contains("stale"), null, { timeout: 20000 }).catch(() => {});
  const offline = await status();
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-offline.png") });
  fs.writeFileSync(signal, "seen");
  await page.waitForFunction(() => !document.body.classList.contains("stale"), null, { timeout: 40000 }).catch(() => {});
  const online = await status();
  // What the browser logs of the requests that failed meanwhile is expected.
  online.networkErrors = errors.splice(quietBefore).filter(e => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING|Failed to load resource/.test(e));
  // A company named by its symbol in lower case, and one the store does not hold.
  // Opened once the chart is drawn, or the page says the company is not there.
  const opened_as = async company => {
    await page.goto(url.replace(/company=[^&]*/, `company=${company}`));
    await page.waitForFunction(() => / is stored/.test(document.getElementById("chart-message").textContent) || performance.getEntriesByName("stockstream-first-chart").length > 0, null, { timeout: 30000 }).catch(() => {});
    await page.waitForTimeout(300);
    return page.evaluate(() => ({ company: document.getElementById("company").value, message: document.getElementById("chart-message").textContent,
      picker: [...document.querySelectorAll("#company option")].map(o => o.value), url: location.search,
      interval: [...document.querySelectorAll("#interval option")].map(o => o.textContent) }));
  };
  const bySymbol = await opened_as("nvda");
  const unknown = await opened_as("nosuch");
  await browser.close();
  console.log(JSON.stringify({ errors, external, opened, older, back, wheeled, loaded, beforeDouble, doubled, beforeHome, homed, afterHome, dragged, beforeFollow, followed, afterFollow, seen, offline, online, bySymbol, unknown }));
})().catch(e => { console.error(e); process.exit(1); });
