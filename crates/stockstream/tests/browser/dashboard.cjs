// Opens the live dashboard in headless Chromium while bars stream, and reports
// what a person would see: console errors, requests to other hosts, and whether
// the table and chart changed. Usage: node dashboard.cjs URL SCREENSHOT
// PLAYWRIGHT_CORE names the installed playwright-core folder.
const open = require("./open.cjs");

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const { browser, page, errors, external } = await open(url, { width: 1400, height: 900 });
  await page.waitForFunction(() => document.querySelectorAll("#latest tbody tr").length > 0 && document.querySelector("#chart path"), null, { timeout: 30000 });
  const look = () => page.evaluate(() => ({
    table: document.querySelector("#latest tbody").innerText,
    chart: [...document.querySelectorAll("#chart path")].map(p => p.getAttribute("d")).join("|"),
    rows: document.querySelectorAll("#latest tbody tr").length,
    status: document.getElementById("status").textContent,
  }));
  const before = await look();
  await page.waitForTimeout(2500);
  const after = await look();
  await page.screenshot({ path: screenshot, fullPage: true });
  await browser.close();
  console.log(JSON.stringify({ errors, external, before, after }));
})().catch(e => { console.error(e); process.exit(1); });
