// Open pages in Debian's Chromium (never a downloaded browser) and report what each one shows.
//   node tests/e2e/browser/drive.mjs JOBS.json
// JOBS.json: {"profile": DIR, "pages": [{"url": URL, "screenshot": PNG}]}. Each page is loaded
// until its <body> gets a data-state (the example page sets "ok" or "error"); prints one JSON
// result per page: the state, the text of each element with an id, and the console errors.
import { readFileSync } from "node:fs";

import { chromium } from "playwright-core";

// Flags this machine needs: no sandbox as root, no GPU, and none of Chromium's own outbound
// traffic (it would be refused here and only slows the test down).
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const WAIT_MS = 180_000; // a shared 2-core machine under test load is slow

const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));
// A fresh --user-data-dir: Playwright passes the profile directory as that flag.
const context = await chromium.launchPersistentContext(jobs.profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ARGS,
});
const results = [];
try {
  for (const job of jobs.pages) {
    const page = await context.newPage();
    const console = [];
    page.on("console", (message) => {
      if (message.type() === "error") console.push(message.text());
    });
    page.on("pageerror", (error) => console.push(String(error)));
    await page.goto(job.url);
    await page.waitForSelector("body[data-state]", { timeout: WAIT_MS });
    const shown = await page.evaluate(() =>
      Object.fromEntries([...document.querySelectorAll("[id]")].map((e) => [e.id, e.textContent])),
    );
    const state = await page.getAttribute("body", "data-state");
    await page.screenshot({ path: job.screenshot, fullPage: true });
    results.push({ url: job.url, state, shown, console });
    await page.close();
  }
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(results));
