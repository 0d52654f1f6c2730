// Timing of the portal in Chromium (playwright-core, as tests/portal.mjs
// drives it) against a running `istv serve`: sign-in to the map and every
// chart drawn, and a change of each filter redrawn, each from the action
// to the page's `istv:drawn` mark, and a second filter added to a first.
// Run by scripts/bench-portal.
//
//   ISTV_BASE                  http://127.0.0.1:PORT
//   ISTV_USER, ISTV_PASSWORD   an analyst (all of London)
//   ISTV_SITE                  the feed's ED site code
//   RUNS                       repetitions of each measurement (default 5)
//   CHROMIUM                   the browser (default /usr/bin/chromium)
//
// Prints one JSON object: per measurement the times in ms and, per run, the
// slowest API request's time (request start to response end), so that the
// server's share and the page's own share can be told apart.

import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`set ${k}`);
  return v;
};
const BASE = env('ISTV_BASE');
const USER = env('ISTV_USER');
const PASSWORD = env('ISTV_PASSWORD');
const SITE = env('ISTV_SITE');
const RUNS = Number(env('RUNS', '5'));

const FILTERS = [
  ['assault_method', 'body_part'],
  ['assault_method', 'sharp_object'],
  ['location_type', 'street'],
  ['age_band', '18-24'],
  ['sex', 'male'],
  ['site', SITE],
];

// Two filters at once: the first is set unmeasured, the second's change is
// measured (the views no single-filter roll-up covers).
const COMBOS = [
  [['assault_method', 'sharp_object'], ['sex', 'male']],
  [['location_type', 'street'], ['age_band', '18-24']],
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-default-apps'],
});

/** Runs `action` and waits for the next drawing: (ms to the mark, slowest API request in ms). */
async function drawnAfter(page, action) {
  const before = Number(await page.evaluate(() => document.body.dataset.drawn || 0));
  const t0 = await page.evaluate(() => performance.now());
  await action();
  await page.waitForFunction((b) => Number(document.body.dataset.drawn || 0) > b, before, { timeout: 60000 });
  return page.evaluate((start) => {
    const marks = performance.getEntriesByName('istv:drawn');
    const api = performance.getEntriesByType('resource')
      .filter((e) => e.startTime >= start && e.name.includes('/api/v1/'));
    const slowest = api.reduce((m, e) => Math.max(m, e.responseEnd - e.startTime), 0);
    const last = api.reduce((m, e) => Math.max(m, e.responseEnd - start), 0);
    // A panel whose query failed (503 after the time limit) is drawn as not
    // available: counted, so that a fast redraw of failures is not taken
    // for a fast answer.
    const failedApi = api.filter((e) => e.responseStatus && e.responseStatus !== 200);
    return {
      ms: marks[marks.length - 1].startTime - start,
      slowestApiMs: slowest,
      lastApiEndMs: last,
      requests: api.length,
      failed: failedApi.length,
      failedRequests: failedApi.map((e) => {
        const url = new URL(e.name);
        return `${e.responseStatus} ${url.pathname}${url.search}`;
      }),
    };
  }, t0);
}

async function signIn() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, locale: 'en-GB' });
  const page = await context.newPage();
  // No resource timing buffer overflow over many redraws.
  await page.goto(`${BASE}/`);
  await page.waitForSelector('#view-signin:not([hidden])');
  await page.evaluate(() => performance.setResourceTimingBufferSize(100000));
  await page.fill('#signin-user', USER);
  await page.fill('#signin-password', PASSWORD);
  const t = await drawnAfter(page, () => page.click('#signin-submit'));
  return { context, page, t };
}

const out = { sign_in: [], filters: {}, cleared: [], combos: {} };
for (let i = 0; i < RUNS; i += 1) {
  const { context, t } = await signIn();
  out.sign_in.push(t);
  await context.close();
}
const { page } = await signIn();
out.hexagons = await page.$$eval('#map-svg path.cell', (ps) => ps.length);
out.url = page.url();
for (let i = 0; i < RUNS; i += 1) {
  for (const [param, value] of FILTERS) {
    const key = `${param}=${value}`;
    out.filters[key] ??= [];
    out.filters[key].push(await drawnAfter(page, () => page.selectOption(`#f-${param}`, value)));
    out.cleared.push(await drawnAfter(page, () => page.selectOption(`#f-${param}`, '')));
  }
}
for (let i = 0; i < RUNS; i += 1) {
  for (const [[p1, v1], [p2, v2]] of COMBOS) {
    const key = `${p1}=${v1} & ${p2}=${v2}`;
    out.combos[key] ??= [];
    await drawnAfter(page, () => page.selectOption(`#f-${p1}`, v1));
    out.combos[key].push(await drawnAfter(page, () => page.selectOption(`#f-${p2}`, v2)));
    await drawnAfter(page, () => page.selectOption(`#f-${p2}`, ''));
    await drawnAfter(page, () => page.selectOption(`#f-${p1}`, ''));
  }
}
await browser.close();
console.log(JSON.stringify(out));
