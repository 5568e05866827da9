// Opens the dashboard on one company (named in the URL) and reports what it
// shows once its bars are drawn, or after 20 s.
// Usage: node company.cjs URL SCREENSHOT
const open = require("./open.cjs"), { look } = open;

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const { browser, page, errors, external } = await open(url, { width: 1400, height: 900 });
  await page.waitForFunction(() => Number(document.getElementById("chart").dataset.loaded || 0) > 0, null, { timeout: 20000 })
    .catch(() => {});
  await page.waitForTimeout(300);
  const seen = await look(page);
  await page.screenshot({ path: screenshot });
  await browser.close();
  console.log(JSON.stringify({ ...seen, errors, external }));
})();
