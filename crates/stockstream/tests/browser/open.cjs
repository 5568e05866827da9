// Opens URL in headless Chromium (PLAYWRIGHT_CORE names the installed
// playwright-core folder) and records what a person would not want: console
// errors and requests to other hosts.
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

module.exports = async function open(url, viewport) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport });
  const errors = [], external = [];
  page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", e => errors.push(String(e)));
  page.on("request", r => { if (!r.url().startsWith(url) && !r.url().startsWith("data:")) external.push(r.url()); });
  await page.goto(url);
  return { browser, page, errors, external };
};
