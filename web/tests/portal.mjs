// Browser test of the portal: Debian's Chromium driven by playwright-core
// against a running `istv serve` (started by tests/portal.rs with a
// generated feed, or any server given in the environment).
//
//   ISTV_BASE      http://127.0.0.1:PORT
//   ISTV_USER, ISTV_PASSWORD   an analyst (all of London) to sign in as
//   ISTV_TOKEN     the same analyst's API token, for the test's own queries
//   ISTV_FROM, ISTV_TO         the feed's first and last month (YYYY-MM)
//   ISTV_SITE      the feed's ED site code
//   ISTV_SHOTS     directory for the screenshots (else none)
//   ISTV_TIMINGS   file for the timings measured (JSON; else printed only)
//   CHROMIUM       the browser (default /usr/bin/chromium)
//
// Exits 0 when every check passed; prints "ok N - what" per check.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`set ${k}`);
  return v;
};
const BASE = env('ISTV_BASE');
const USER = env('ISTV_USER');
const PASSWORD = env('ISTV_PASSWORD');
const TOKEN = env('ISTV_TOKEN');
const FROM = env('ISTV_FROM');
const TO = env('ISTV_TO');
const SITE = env('ISTV_SITE');
const SHOTS = process.env.ISTV_SHOTS;
const TIMINGS = process.env.ISTV_TIMINGS;

let n = 0;
function ok(what) {
  n += 1;
  console.log(`ok ${n} - ${what}`);
}

// ---- the test's own view of the API (independent of the page) ----------

function addMonths(month, k) {
  const [y, m] = month.split('-').map(Number);
  const i = y * 12 + m - 1 + k;
  return `${Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}`;
}

function lastDay(month) {
  const [y, m] = month.split('-').map(Number);
  return `${month}-${String(new Date(Date.UTC(y, m, 0)).getUTCDate()).padStart(2, '0')}`;
}

async function apiGet(pathAndQuery, { text = false } = {}) {
  const r = await fetch(`${BASE}${pathAndQuery}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200, `${pathAndQuery}: ${r.status} ${await r.clone().text()}`);
  return text ? r.text() : r.json();
}

/** CSV text to {header, rows}, '#' lines (the query and the note) apart. */
function parseCsv(text) {
  const lines = text.split('\n').filter((l) => l !== '');
  const comments = lines.filter((l) => l.startsWith('#'));
  const data = lines.filter((l) => !l.startsWith('#'));
  const split = (l) => {
    const out = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < l.length; i += 1) {
      const c = l[i];
      if (quoted) {
        if (c === '"' && l[i + 1] === '"') { cur += '"'; i += 1; } else if (c === '"') quoted = false; else cur += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
    }
    out.push(cur);
    return out;
  };
  return { comments, header: split(data[0]), rows: data.slice(1).map(split) };
}

// ---- the browser --------------------------------------------------------

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-default-apps'],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true, locale: 'en-GB' });
const requested = [];
const outside = [];
await context.route('**/*', (route) => {
  const url = new URL(route.request().url());
  requested.push(url.href);
  if (url.hostname !== '127.0.0.1') {
    outside.push(url.href);
    return route.abort();
  }
  return route.continue();
});
const page = await context.newPage();
const problems = [];
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('requestfailed', (r) => {
  // Downloads from blob: URLs are not network requests, and a request the
  // browser cancels as the test navigates away (ERR_ABORTED) did not fail.
  if (!r.url().startsWith('blob:') && r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
});

const timings = {};

async function drawnAfter(action) {
  const before = Number(await page.evaluate(() => document.body.dataset.drawn || 0));
  const t0 = await page.evaluate(() => performance.now());
  await action();
  await page.waitForFunction((b) => Number(document.body.dataset.drawn || 0) > b, before, { timeout: 30000 });
  return page.evaluate((start) => {
    const marks = performance.getEntriesByName('istv:drawn');
    return marks[marks.length - 1].startTime - start;
  }, t0);
}

/** Waits for the page's drawing after a navigation (a load or reload). */
async function drawnOnLoad(action) {
  await action();
  await page.waitForFunction(() => Number(document.body.dataset.drawn || 0) > 0, null, { timeout: 30000 });
}

async function mapCells() {
  return page.$$eval('#map-svg path.cell', (ps) => ps.map((p) => ({ cell: p.dataset.code, count: p.dataset.count })));
}

function urlState() {
  return Object.fromEntries(new URL(page.url()).searchParams);
}

async function download(selector) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const file = await dl.path();
  return { name: dl.suggestedFilename(), bytes: fs.readFileSync(file) };
}

try {
  // ---- sign in ----------------------------------------------------------
  await page.goto(`${BASE}/`);
  await page.waitForSelector('#view-signin:not([hidden])');
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'portal-signin.png') });
  await page.fill('#signin-user', USER);
  await page.fill('#signin-password', PASSWORD);
  timings.sign_in_to_drawn_ms = await drawnAfter(() => page.click('#signin-submit'));
  assert.equal(await page.isVisible('#view-explore'), true);
  assert.match(await page.textContent('#who-name'), new RegExp(`^${USER} \\(analyst, all of London\\)`));
  // Without months in the URL: the twelve months up to the feed's last.
  let s = urlState();
  assert.equal(s.to, TO);
  assert.equal(s.from, addMonths(TO, -11));
  ok(`signed in; map and charts drawn in ${timings.sign_in_to_drawn_ms.toFixed(0)} ms; default months ${s.from} to ${s.to}`);

  // ---- the map draws exactly the API's hexagons --------------------------
  await drawnOnLoad(() => page.goto(`${BASE}/?view=explore&from=${FROM}&to=${TO}&layer=hex&res=8`));
  const api8 = await apiGet(`/api/v1/cells?resolution=8&from=${FROM}-01&to=${lastDay(TO)}`);
  let drawn = await mapCells();
  assert.ok(api8.features.length > 20, `a real map: ${api8.features.length} hexagons`);
  assert.equal(drawn.length, api8.features.length);
  assert.deepEqual(
    drawn.map((d) => `${d.cell}=${d.count}`).sort(),
    api8.features.map((f) => `${f.properties.cell}=${f.properties.count ?? ''}`).sort(),
  );
  const unknownText = await page.textContent('#map-unknown');
  assert.equal(await page.getAttribute('#map-unknown', 'data-count'), String(api8.location_unknown.count));
  assert.match(unknownText, /^Location unknown: [\d,]+ records/);
  ok(`the map draws the ${drawn.length} hexagons /cells returns, with their counts; location unknown ${api8.location_unknown.count}`);
  if (SHOTS) await (await page.$('.map-panel')).screenshot({ path: path.join(SHOTS, 'portal-map.png') });

  // Boroughs: 33 areas, as /areas answers.
  await drawnAfter(() => page.selectOption('#f-layer', 'borough'));
  const areas = await apiGet(`/api/v1/areas?level=borough&from=${FROM}-01&to=${lastDay(TO)}`);
  const drawnAreas = await page.$$eval('#map-svg path.area', (ps) => ps.map((p) => `${p.dataset.code}=${p.dataset.count}`));
  assert.equal(drawnAreas.length, 33);
  assert.deepEqual(drawnAreas.sort(), areas.features.map((f) => `${f.properties.code}=${f.properties.count ?? ''}`).sort());
  assert.equal(urlState().layer, 'borough');
  ok('the borough choropleth draws the 33 boroughs /areas returns');

  // A click on a borough filters the page to it.
  const westminster = 'E09000033';
  await drawnAfter(() => page.click(`#map-svg path.area[data-code="${westminster}"]`, { force: true }));
  assert.equal(urlState().borough, westminster);
  assert.equal(await page.inputValue('#f-borough'), westminster);
  const wm = await apiGet(`/api/v1/aggregates?group_by=assault_method&borough=${westminster}&from=${FROM}-01&to=${lastDay(TO)}`);
  const wmShown = await page.$$eval('#table-assault_method tbody tr', (rows) => rows.map((r) => r.lastElementChild.textContent));
  const wmApi = new Map(wm.rows.map((r) => [r.assault_method, r.count]));
  const order = ['body_part', 'blunt_object', 'sharp_object', 'firearm', 'other', 'not_known'];
  assert.deepEqual(wmShown, order.map((m) => (wmApi.get(m) ?? 0).toLocaleString('en-GB')));
  ok('a click on a borough filters the page to it (URL, filter, the method table equals the API)');
  await drawnAfter(() => page.selectOption('#f-borough', ''));
  await drawnAfter(() => page.selectOption('#f-layer', 'hex'));

  // ---- a filter changes the figures and the URL; reload restores ---------
  const beforeSum = (await mapCells()).reduce((a, c) => a + Number(c.count || 0), 0);
  timings.filter_redraw_ms = await drawnAfter(() => page.selectOption('#f-assault_method', 'sharp_object'));
  s = urlState();
  assert.equal(s.assault_method, 'sharp_object');
  const sharp = await apiGet(`/api/v1/cells?resolution=8&from=${FROM}-01&to=${lastDay(TO)}&assault_method=sharp_object`);
  drawn = await mapCells();
  const afterSum = drawn.reduce((a, c) => a + Number(c.count || 0), 0);
  assert.notEqual(afterSum, beforeSum);
  assert.deepEqual(drawn.map((d) => `${d.cell}=${d.count}`).sort(), sharp.features.map((f) => `${f.properties.cell}=${f.properties.count ?? ''}`).sort());
  ok(`a filter (sharp objects) redraws in ${timings.filter_redraw_ms.toFixed(0)} ms with the API's figures and is in the URL`);
  const urlBefore = page.url();
  await drawnOnLoad(() => page.reload());
  assert.equal(page.url(), urlBefore);
  assert.equal(await page.inputValue('#f-assault_method'), 'sharp_object');
  assert.equal(await page.inputValue('#f-from'), FROM);
  assert.equal(await page.inputValue('#f-res'), '8');
  drawn = await mapCells();
  assert.deepEqual(drawn.map((d) => `${d.cell}=${d.count}`).sort(), sharp.features.map((f) => `${f.properties.cell}=${f.properties.count ?? ''}`).sort());
  ok('reloading the URL restores the filters and the same map');

  // ---- downloads equal the API's answers ---------------------------------
  const q = `from=${FROM}-01&to=${lastDay(TO)}&assault_method=sharp_object`;
  const placeCsv = parseCsv((await download('#dl-location_type-csv')).bytes.toString('utf8'));
  const placeApi = parseCsv(await apiGet(`/api/v1/aggregates?group_by=location_type&${q}&format=csv`, { text: true }));
  assert.deepEqual(placeCsv.header, placeApi.header);
  assert.ok(placeCsv.comments.some((c) => c.startsWith('# query: /api/v1/aggregates?')));
  assert.ok(placeCsv.comments.some((c) => c.startsWith('# disclosure: ') && c.includes('cell key method')));
  const listed = new Map(placeApi.rows.map((r) => [r[0], r]));
  for (const row of placeCsv.rows) {
    // A group the API does not list was published as 0 (shown as 0).
    assert.deepEqual(row, listed.get(row[0]) ?? [row[0], '0', 'false'], row[0]);
  }
  for (const row of placeApi.rows) assert.ok(placeCsv.rows.some((r) => r[0] === row[0]), `${row[0]} in the download`);
  ok(`the place CSV equals /aggregates?group_by=location_type&format=csv (${placeApi.rows.length} rows)`);

  const mapCsv = parseCsv((await download('#dl-map-csv')).bytes.toString('utf8'));
  assert.deepEqual(mapCsv.header, ['cell', 'resolution', 'count', 'suppressed']);
  assert.deepEqual(
    mapCsv.rows.map((r) => r.join(',')).sort(),
    [...sharp.features.map((f) => `${f.properties.cell},${f.properties.resolution},${f.properties.count ?? ''},${!!f.properties.suppressed}`),
      `unknown,,${sharp.location_unknown.count ?? ''},${!!sharp.location_unknown.suppressed}`].sort(),
  );
  ok(`the map CSV equals /cells (${sharp.features.length} hexagons and location unknown)`);

  const gj = JSON.parse((await download('#dl-map-geojson')).bytes.toString('utf8'));
  assert.equal(gj.type, 'FeatureCollection');
  assert.equal(gj.features.length, sharp.features.length);
  assert.deepEqual(gj.location_unknown, sharp.location_unknown);
  assert.match(gj.query, /^\/api\/v1\/cells\?/);
  assert.match(gj.disclosure, /cell key method/);
  ok('the GeoJSON download is the map with its query and the disclosure note');

  const png = (await download('#dl-map-png')).bytes;
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  assert.ok(width >= 1600 && height >= 1300, `${width}x${height}`);
  ok(`the PNG download is a ${width}x${height} image`);
  if (SHOTS) fs.writeFileSync(path.join(SHOTS, 'portal-map-download.png'), png);

  // ---- charts against the API -------------------------------------------
  const trendCsv = parseCsv((await download('#dl-trend-csv')).bytes.toString('utf8'));
  const prevFrom = addMonths(FROM, -12);
  const trendApi = await apiGet(`/api/v1/aggregates?group_by=month&from=${prevFrom}-01&to=${lastDay(TO)}&assault_method=sharp_object`);
  const trendListed = new Map(trendApi.rows.map((r) => [r.month, String(r.count ?? '')]));
  assert.equal(trendCsv.rows.length, 24);
  for (const [m, c] of trendCsv.rows) assert.equal(c, trendListed.get(m) ?? '0', m);
  ok('the monthly trend covers the months and the year before, as the API answers');
  const heatCells = await page.$$eval('#chart-heat rect[width]', (rs) => rs.filter((r) => r.querySelector('title')).length);
  assert.equal(heatCells, 7 * 24);
  ok('the heatmap has 7 x 24 cells');
  // Its key: bins that do not overlap or repeat, the colour of every figure
  // drawn that of the one bin holding it.
  const key = await page.$$eval('#chart-heat .heat-key', (ks) => ks.map((k) => [k.querySelector('rect').getAttribute('fill'), k.textContent.trim()]));
  const bins = key.slice(0, -1).map(([fill, text]) => {
    const [lo, hi = lo] = text.split('-').map((x) => Number(x.replace(/,/g, '')));
    return { fill, lo, hi };
  });
  assert.deepEqual(key[key.length - 1], ['#fff', '0']);
  assert.ok(bins.length >= 1);
  for (let i = 0; i < bins.length; i += 1) {
    assert.ok(bins[i].lo <= bins[i].hi, `bin ${i} of ${JSON.stringify(key)}`);
    if (i > 0) assert.equal(bins[i].lo, bins[i - 1].hi + 1, `bins ${JSON.stringify(key)}`);
  }
  assert.equal(new Set(key.map(([, t]) => t)).size, key.length);
  const heatFills = await page.$$eval('#chart-heat rect[width]', (rs) => rs.filter((r) => r.querySelector('title'))
    .map((r) => [r.getAttribute('fill'), r.querySelector('title').textContent.split(': ').pop()]));
  let coloured = 0;
  for (const [fill, text] of heatFills) {
    if (fill.startsWith('url(') || fill === '#ffffff') continue;
    const v = Number(text.replace(/,/g, ''));
    const holding = bins.filter((b) => b.lo <= v && v <= b.hi);
    assert.equal(holding.length, 1, `${v} in ${JSON.stringify(key)}`);
    assert.equal(fill, holding[0].fill, `${v}`);
    coloured += 1;
  }
  assert.ok(coloured > 100, `${coloured} coloured cells`);
  ok(`the heatmap's key has ${bins.length} distinct bins, each cell coloured as the bin holding its figure`);
  if (SHOTS) await (await page.$('#charts')).screenshot({ path: path.join(SHOTS, 'portal-charts.png') });

  // ---- keyboard alone -----------------------------------------------------
  await drawnOnLoad(() => page.goto(`${BASE}/?view=explore&from=${FROM}&to=${TO}&layer=hex&res=8`));
  const expected = ['nav-explore', 'nav-quality', 'nav-about', 'sign-out', 'f-from', 'f-to', 'f-assault_method', 'f-location_type',
    'f-age_band', 'f-sex', 'f-site', 'f-borough', 'f-layer', 'f-res', 'f-reset', 'map-svg', 'zoom-in', 'zoom-out', 'zoom-reset',
    'dl-map-csv', 'dl-map-geojson', 'dl-map-png', 'map-table-summary', 'summary-trend', 'dl-trend-csv', 'summary-heat',
    'dl-heat-csv', 'summary-assault_method', 'dl-assault_method-csv', 'summary-location_type', 'dl-location_type-csv',
    'summary-top', 'dl-top-csv', 'save-name', 'save-shared', 'save-submit'];
  // Every visible, enabled control on the page, found independently.
  const controls = await page.$$eval('a[href], button, input, select, summary, [tabindex]', (els) => els
    .filter((e) => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0 && !e.closest('details:not([open]) > :not(summary)'))
    .map((e) => e.id || `${e.tagName.toLowerCase()}:${e.textContent.trim().slice(0, 30)}`));
  await page.focus('body');
  const reached = new Set();
  for (let i = 0; i < 200; i += 1) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => {
      const e = document.activeElement;
      return e && e !== document.body ? e.id || `${e.tagName.toLowerCase()}:${e.textContent.trim().slice(0, 30)}` : null;
    });
    if (id) reached.add(id);
  }
  for (const id of expected) assert.ok(reached.has(id), `Tab reaches #${id}`);
  for (const id of controls) assert.ok(reached.has(id), `Tab reaches ${id}`);
  ok(`Tab reaches all ${controls.length} controls (${expected.length} named)`);
  // Focus is visible: the focused control has an outline.
  await page.focus('#f-layer');
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.equal(outline, 'solid');
  ok('the focused control has a visible outline');

  // The map by keyboard: arrows move between hexagons, Enter filters.
  await page.focus('#map-svg');
  await page.keyboard.press('ArrowRight');
  const tip = await page.textContent('.tooltip');
  assert.match(tip, /^Hexagon [0-9a-f]{15} \(resolution \d+\): /);
  await page.keyboard.press('Escape');
  assert.equal(await page.isHidden('.tooltip'), true);
  await page.keyboard.press('ArrowRight');
  const chosen = (await page.textContent('.tooltip')).match(/^Hexagon ([0-9a-f]{15}) \(resolution (\d+)\)/);
  await drawnAfter(() => page.keyboard.press('Enter'));
  assert.equal(urlState().cell, chosen[1]);
  const one = await apiGet(`/api/v1/cells?cell=${chosen[1]}&resolution=${chosen[2]}&from=${FROM}-01&to=${lastDay(TO)}`);
  drawn = await mapCells();
  assert.deepEqual(drawn.map((d) => d.cell), one.features.map((f) => f.properties.cell));
  ok(`arrow keys move between hexagons, Escape hides the figure, Enter filters to ${chosen[1]}`);
  await drawnAfter(() => page.click('#clear-cell'));

  // Space toggles, Enter opens a table.
  await page.focus('#save-shared');
  await page.keyboard.press('Space');
  assert.equal(await page.isChecked('#save-shared'), true);
  await page.keyboard.press('Space');
  await page.focus('#summary-trend');
  await page.keyboard.press('Enter');
  assert.equal(await page.getAttribute('#panel-trend details', 'open'), '');
  ok('Space toggles a checkbox and Enter opens a chart\'s table');

  // ---- saved queries -----------------------------------------------------
  await page.focus('#save-name');
  await page.keyboard.type('Sharp objects, test');
  await page.selectOption('#f-assault_method', 'sharp_object');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('assault_method') === 'sharp_object');
  await page.waitForTimeout(50);
  const savedUrl = new URL(page.url());
  await page.fill('#save-name', 'Sharp objects, test');
  await page.click('#save-shared');
  await page.click('#save-submit');
  await page.waitForSelector('.saved-list a.saved-open');
  const saved = await apiGet('/api/v1/saved-queries');
  const mine = saved.queries.find((x) => x.name === 'Sharp objects, test');
  assert.ok(mine, 'saved');
  assert.equal(mine.shared, true);
  const savedParams = new URLSearchParams(mine.query);
  assert.equal(savedParams.get('assault_method'), 'sharp_object');
  assert.equal(savedParams.get('from'), savedUrl.searchParams.get('from'));
  await drawnOnLoad(() => page.goto(`${BASE}/?view=explore&from=${FROM}&to=${TO}`));
  assert.equal(await page.inputValue('#f-assault_method'), '');
  await drawnOnLoad(() => page.click('.saved-list a.saved-open'));
  assert.equal(await page.inputValue('#f-assault_method'), 'sharp_object');
  ok('a view saved (shared) is listed and opens with its filters');

  // ---- data quality ------------------------------------------------------
  await page.click('#nav-quality');
  await page.waitForSelector(`#site-${SITE}`);
  const quality = await apiGet('/api/v1/quality');
  const site = quality.sites.find((x) => x.site === SITE);
  const monthsShown = await page.$$eval(`article[aria-labelledby="site-${SITE}"] table`, (ts) => {
    const t = ts.find((x) => x.caption && x.caption.textContent === 'Rows per month');
    return [...t.querySelectorAll('tbody tr')].map((r) => [...r.children].slice(1).map((c) => Number(c.textContent.replace(/,/g, ''))));
  });
  assert.deepEqual(monthsShown, site.months.map((m) => [m.rows_received, m.rows_accepted, m.rows_rejected]));
  assert.ok(site.months.some((m) => m.rows_received === 6000), 'the upload counted');
  assert.equal(urlState().view, 'quality');
  ok(`data quality shows ${SITE} with its ${site.months.length} months`);
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'portal-quality.png'), fullPage: false });

  await page.click('#nav-about');
  assert.match(await page.textContent('#view-about'), /not police records/);
  ok('the caveats are on the page');

  // ---- sign out ----------------------------------------------------------
  await page.click('#sign-out');
  await page.waitForSelector('#view-signin:not([hidden])');
  const me = await page.evaluate(() => fetch('/api/v1/me').then((r) => r.status));
  assert.equal(me, 401);
  // That 401 is this check's own request; it is the one console error allowed.
  const expected401 = problems.filter((p) => p.includes('401'));
  assert.ok(expected401.length <= 1);
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('401')));
  ok('signing out ends the session');

  // ---- a limited profile: the page asks only for what it allows ------------
  if (process.env.ISTV_LIMITED_USER) {
    await drawnOnLoad(async () => {
      await page.goto(`${BASE}/?from=${FROM}&to=${TO}`);
      await page.fill('#signin-user', process.env.ISTV_LIMITED_USER);
      await page.fill('#signin-password', process.env.ISTV_LIMITED_PASSWORD);
      await page.click('#signin-submit');
    });
    assert.match(await page.textContent('#who-name'), /\(analyst, 2 borough\(s\)\)/);
    assert.equal(await page.isDisabled('#f-age_band'), true);
    assert.equal(await page.isDisabled('#f-assault_method'), false);
    assert.deepEqual(await page.$$eval('#f-layer option', (os) => os.map((o) => o.value)), ['hex', 'borough']);
    assert.deepEqual(await page.$$eval('#f-res option', (os) => os.map((o) => o.value)), ['auto', '7', '8']);
    assert.deepEqual(await page.$$eval('#f-borough option', (os) => os.map((o) => o.value).filter(Boolean).sort()), ['E09000022', 'E09000033']);
    assert.match(await page.textContent('#chart-heat'), /Not in your profile/);
    await drawnAfter(() => page.selectOption('#f-layer', 'borough'));
    const limited = await page.$$eval('#map-svg path.area', (ps) => ps.map((p) => p.dataset.code).sort());
    assert.deepEqual(limited, ['E09000022', 'E09000033']);
    assert.equal(await page.$$eval('#map-svg path.ground', (ps) => ps.length), 2);
    ok('a limited profile: the filters, sizes, layers and charts it forbids are disabled or left out; the map shows its 2 boroughs');
  }

  // ---- an uploader: data quality and its own receipts only ------------------
  if (process.env.ISTV_UPLOADER) {
    if (await page.isVisible('#sign-out')) await page.click('#sign-out');
    await page.waitForSelector('#view-signin:not([hidden])');
    await page.fill('#signin-user', process.env.ISTV_UPLOADER);
    await page.fill('#signin-password', process.env.ISTV_UPLOADER_PASSWORD);
    await page.click('#signin-submit');
    await page.waitForSelector(`#site-${SITE}`);
    assert.equal(await page.isHidden('#nav-explore'), true);
    assert.equal(await page.isHidden('#view-explore'), true);
    const receipts = await page.$$eval(`article[aria-labelledby="site-${SITE}"] table`, (ts) => {
      const t = ts.find((x) => x.caption && x.caption.textContent.startsWith('Receipts'));
      return t ? [...t.querySelectorAll('tbody tr')].map((r) => [...r.children].map((c) => c.textContent)) : null;
    });
    assert.deepEqual(receipts, [[process.env.ISTV_UPLOAD_ID, '6,000', '6,000', '0', '0', '0']]);
    ok('an uploader sees data quality and its receipt, and no map or charts');
  }

  // ---- nothing left 127.0.0.1, nothing went wrong --------------------------
  assert.deepEqual(outside, []);
  assert.ok(requested.length > 20 && requested.every((u) => u.startsWith(BASE)), 'every request to the server');
  ok(`all ${requested.length} requests went to ${BASE}`);
  assert.deepEqual(problems, []);
  ok('no console errors or warnings, no failed requests');
} catch (e) {
  console.log(`not ok ${n + 1} - ${e.message}`);
  console.log(`page ${page.url()}; sign-in message: ${await page.textContent('#signin-error').catch(() => '')}`);
  console.log(`problems: ${JSON.stringify(problems, null, 1)}`);
  const shot = path.join(os.tmpdir(), 'istv-portal-failure.png');
  await page.screenshot({ path: shot }).catch(() => {});
  console.log(`the page at the failure: ${shot}`);
  process.exitCode = 1;
  throw e;
} finally {
  if (TIMINGS) fs.writeFileSync(TIMINGS, `${JSON.stringify(timings, null, 2)}\n`);
  console.log(`timings ${JSON.stringify(timings)}`);
  await browser.close();
}
console.log(`${n} passed, 0 failed`);
