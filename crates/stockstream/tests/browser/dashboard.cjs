// Opens the live dashboard in headless Chromium while bars stream, and reports
// what a person would see: console errors, requests to other hosts, and whether
// the table and chart changed. Usage: node dashboard.cjs URL SCREENSHOT
// PLAYWRIGHT_CORE names the installed playwright-core folder.
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [], external = [];
  page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", e => errors.push(String(e)));
  page.on("request", r => { if (!r.url().startsWith(url) && !r.url().startsWith("data:")) external.push(r.url()); });
  await page.goto(url);
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
