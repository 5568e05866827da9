// Opens the live dashboard while synthetic ticks stream and watches the
// forming candle between ticks: its label and its shape, sampled every
// 100 ms for 3 s. Usage: node forming.cjs URL SCREENSHOT (PLAYWRIGHT_CORE
// names the installed playwright-core folder).
const open = require("./open.cjs");

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const { browser, page, errors, external } = await open(url, { width: 1400, height: 1100 });
  await page.waitForFunction(() => document.querySelector("#candles rect.forming"), null, { timeout: 30000 });
  const samples = [];
  for (let i = 0; i < 30; i++) {
    samples.push(await page.evaluate(() => {
      const r = document.querySelector("#candles rect.forming");
      return {
        label: document.getElementById("forming-label").textContent,
        shape: r ? `${r.getAttribute("y")}/${r.getAttribute("height")}` : null,
        close: document.querySelector("#latest tbody tr td:nth-child(4)").textContent,
        status: document.getElementById("status").textContent,
      };
    }));
    await page.waitForTimeout(100);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  await browser.close();
  console.log(JSON.stringify({ errors, external, samples }));
})().catch(e => { console.error(e); process.exit(1); });
