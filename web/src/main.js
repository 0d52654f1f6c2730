// The portal: sign-in, then the map, filters, charts, downloads, saved
// queries, data quality and caveats, each following the caller's role,
// scope and profile (GET /api/v1/me). The URL holds the whole state.

import './style.css';
import { api, ApiError, forgetSession, hadSession, signIn, signOut } from './api.js';
import { byId, h, put } from './dom.js';
import {
  addMonths, AGES, change, figure, label, METHODS, monthName, monthsBetween, num, PLACES, SEXES, WEEKDAYS,
} from './format.js';
import { apiParams, cellResolution, FILTERS, LAYERS, queryString, readState, writeState } from './state.js';
import { bbox, createMap, legendEntries, ramp, swatch } from './map.js';
import { bars, heatmap, table, trendChart } from './charts.js';
import { csv, geojson, saveCanvas, saveText } from './downloads.js';
import { renderQuality } from './quality.js';
import { renderSaved, saveQuery } from './saved.js';

const AREA_RANK = { borough: 1, ward: 2, lsoa: 3 };

let me = null;
let state = readState();
let outlines = []; // borough boundary features (names in properties)
let boroughNames = new Map();
let sites = [];
let map = null;
let seq = 0;
let mapSeq = 0;
const shown = {}; // per panel: what is drawn, for its downloads

// ---- who may see what -------------------------------------------------

function canQuery() {
  return me && me.kind === 'user' && me.role !== 'uploader';
}

function allowed(dim) {
  if (!canQuery()) return false;
  const dims = me.profile && me.profile.dimensions;
  if (dims && !dims.includes(dim)) return false;
  if (AREA_RANK[dim] && AREA_RANK[dim] > AREA_RANK[me.profile.finest_area]) return false;
  return true;
}

function maxResolution() {
  return me.profile ? me.profile.max_resolution : 10;
}

function scopeLimited() {
  return Array.isArray(me.scope);
}

function layers() {
  return LAYERS.filter(([k]) => (k === 'hex' ? allowed('cell') : allowed(k)));
}

function layer() {
  const ok = layers().map(([k]) => k);
  return ok.includes(state.layer) ? state.layer : ok[0];
}

/** The hexagon resolution: a cell filter's, a chosen one, or by zoom. */
function resolution() {
  if (state.cell) return cellResolution(state.cell);
  const max = maxResolution();
  const chosen = Number(state.res);
  if (chosen >= 7 && chosen <= 10) return Math.min(chosen, max);
  const k = map ? map.transform.k : 1;
  const byZoom = k < 2 ? 7 : k < 4 ? 8 : k < 8 ? 9 : 10;
  return Math.min(byZoom, max);
}

// ---- small helpers ------------------------------------------------------

function announce(text) {
  byId('announce').textContent = text;
}

function explain(e) {
  if (e instanceof ApiError && e.status === 401) {
    forgetSession();
    showSignIn('Your session has ended: sign in again.');
    return 'signed out';
  }
  if (e instanceof ApiError && e.status === 429) return `too many queries a minute: wait a moment and try again (${e.message})`;
  return e.message || String(e);
}

function rowsBy(rows, key) {
  return new Map(rows.map((r) => [key(r), r]));
}

function aggregates(params) {
  return api(`/api/v1/aggregates?${params}`);
}

function show(view) {
  for (const v of ['signin', 'explore', 'quality', 'about']) byId(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
    a.href = `?${queryString({ ...state, view: a.dataset.view })}`;
  }
}

// ---- sign-in ------------------------------------------------------------

function showSignIn(message = '') {
  me = null;
  byId('nav').hidden = true;
  byId('who').hidden = true;
  show('signin');
  byId('signin-error').textContent = message;
  byId('signin-user').focus();
}

async function onSignIn(e) {
  e.preventDefault();
  const user = byId('signin-user').value.trim();
  const password = byId('signin-password').value;
  if (!user || !password) {
    byId('signin-error').textContent = 'Enter your user name and password.';
    return;
  }
  byId('signin-submit').disabled = true;
  byId('signin-error').textContent = '';
  try {
    me = await signIn(user, password);
    byId('signin-password').value = '';
    await enter();
  } catch (err) {
    byId('signin-error').textContent = err instanceof ApiError && err.status === 401
      ? 'Wrong user name or password.'
      : `Cannot sign in: ${err.message}`;
  } finally {
    byId('signin-submit').disabled = false;
  }
}

async function onSignOut() {
  try {
    await signOut();
  } catch {
    // the session may have ended already
  }
  state = {};
  history.pushState(null, '', '/');
  showSignIn('Signed out.');
}

// ---- entering the portal ------------------------------------------------

async function enter() {
  byId('nav').hidden = false;
  byId('who').hidden = false;
  const scope = me.kind === 'user' ? (me.scope === 'all' ? 'all of London' : `${me.scope.length} borough(s)`) : '';
  byId('who-name').textContent = me.kind === 'user' ? `${me.user} (${me.role.replace('_', ' ')}, ${scope})` : `site ${me.site}`;
  byId('nav-explore').hidden = !canQuery();
  if (canQuery()) {
    if (!map) {
      map = createMap(byId('map-root'), { onPick: pick, onZoomEnd: zoomed, announce });
    }
    await loadReference();
    await defaultMonths();
    buildFilters();
    if (state.zoom) {
      const [k, x, y] = state.zoom.split(',').map(Number);
      if (k >= 1 && Number.isFinite(x) && Number.isFinite(y)) map.setTransform(k, x, y);
    }
  }
  await route({ first: true });
}

async function loadReference() {
  const jobs = [];
  if (allowed('borough')) {
    jobs.push(api('/api/v1/areas?level=borough').then((fc) => {
      outlines = fc.features.map((f) => ({ type: 'Feature', geometry: f.geometry, properties: { code: f.properties.code, name: f.properties.name } }));
      boroughNames = new Map(outlines.map((f) => [f.properties.code, f.properties.name]));
      if (outlines.length) map.fit(bbox(outlines));
    }).catch(() => {}));
  }
  jobs.push(api('/api/v1/quality').then((q) => {
    sites = (q.sites || []).map((x) => [x.site, `${x.name} (${x.site})`]);
  }).catch(() => {
    sites = [];
  }));
  await Promise.all(jobs);
}

/** Without months in the URL: the twelve months up to the latest with data. */
async function defaultMonths() {
  if (state.from && state.to) {
    if (state.from > state.to) [state.from, state.to] = [state.to, state.from];
    return;
  }
  const now = new Date();
  let latest = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
  if (allowed('month')) {
    try {
      const { rows } = await aggregates('group_by=month');
      const months = rows.filter((r) => r.month !== 'unknown' && r.count).map((r) => r.month).sort();
      if (months.length) latest = months[months.length - 1];
    } catch {
      // keep the current month
    }
  }
  state.to = state.to || latest;
  state.from = state.from || addMonths(state.to, -11);
  writeState(state, { push: false });
}

async function route({ first = false } = {}) {
  let view = ['explore', 'quality', 'about'].includes(state.view) ? state.view : 'explore';
  if (view === 'explore' && !canQuery()) view = 'quality';
  show(view);
  if (!first) byId('main').focus({ preventScroll: true });
  if (view === 'explore') await renderExplore();
  else if (view === 'quality') await renderQuality(byId('quality'), me);
}

function go(view) {
  state.view = view;
  writeState(state);
  route();
}

// ---- filters ------------------------------------------------------------

const SELECTS = [
  ['assault_method', 'Assault method', () => METHODS],
  ['location_type', 'Place', () => PLACES],
  ['age_band', 'Age band', () => AGES],
  ['sex', 'Sex', () => SEXES],
  ['site', 'ED site', () => sites],
  ['borough', 'Borough', () => {
    const list = [...boroughNames].sort((a, b) => a[1].localeCompare(b[1]));
    return list;
  }],
];

function buildFilters() {
  const host = byId('filter-selects');
  put(host, SELECTS.map(([param, name, options]) => {
    const ok = allowed(param);
    const opts = options();
    const current = state[param];
    const list = current && !opts.some(([c]) => c === current) ? [...opts, [current, current]] : opts;
    return h('div', { class: 'field' },
      h('label', { for: `f-${param}` }, name),
      h('select', { id: `f-${param}`, disabled: !ok, 'data-param': param, onchange: (e) => setFilter(param, e.target.value) },
        h('option', { value: '' }, ok ? 'All' : 'Not in your profile'),
        list.map(([code, text]) => h('option', { value: code }, text))));
  }));
  const lay = byId('f-layer');
  put(lay, layers().map(([k, text]) => h('option', { value: k }, text)));
  lay.onchange = () => {
    state.layer = lay.value;
    writeState(state);
    renderExplore();
  };
  const res = byId('f-res');
  const sizes = [['auto', 'By zoom'], ['7', 'Resolution 7 (5 km²)'], ['8', 'Resolution 8 (0.7 km²)'], ['9', 'Resolution 9 (0.1 km²)'], ['10', 'Resolution 10 (0.015 km²)']];
  put(res, sizes.filter(([k]) => k === 'auto' || Number(k) <= maxResolution()).map(([k, text]) => h('option', { value: k }, text)));
  res.onchange = () => {
    state.res = res.value === 'auto' ? undefined : res.value;
    writeState(state);
    drawMapOnly();
  };
  byId('f-from').onchange = (e) => setMonth('from', e.target.value);
  byId('f-to').onchange = (e) => setMonth('to', e.target.value);
  const limits = [];
  if (me.profile.dimensions) limits.push(`figures by ${me.profile.dimensions.join(', ')} only`);
  if (me.profile.max_resolution < 10) limits.push(`hexagons up to resolution ${me.profile.max_resolution}`);
  if (me.profile.finest_area !== 'lsoa') limits.push(`areas down to ${me.profile.finest_area}s`);
  if (scopeLimited()) limits.push(`boroughs ${me.scope.map((c) => boroughNames.get(c) || c).join(', ')}`);
  byId('profile-note').textContent = limits.length ? `Your profile: ${limits.join('; ')}.` : 'Your profile: all of London at full detail.';
}

function syncControls() {
  byId('f-from').value = state.from || '';
  byId('f-to').value = state.to || '';
  for (const [param] of SELECTS) {
    const el = byId(`f-${param}`);
    if (el) el.value = state[param] || '';
  }
  byId('f-layer').value = layer();
  byId('f-res').value = state.res || 'auto';
  byId('f-res').disabled = layer() !== 'hex' || !!state.cell;
  const chips = [];
  for (const [param, name] of [['ward', 'Ward'], ['lsoa', 'LSOA'], ['cell', 'Hexagon']]) {
    if (!state[param]) continue;
    chips.push(h('span', { class: 'chip' }, `${name} ${state[param]} `,
      h('button', { type: 'button', class: 'link-button', id: `clear-${param}`, 'aria-label': `Clear the ${name.toLowerCase()} filter`, onclick: () => setFilter(param, '') }, 'clear')));
  }
  put(byId('area-chips'), chips);
}

function setFilter(param, value) {
  state[param] = value || undefined;
  if (param === 'borough' && value) {
    state.ward = undefined;
    state.lsoa = undefined;
    state.cell = undefined;
  }
  writeState(state);
  renderExplore();
}

function setMonth(which, value) {
  if (!/^\d{4}-\d{2}$/.test(value)) return;
  state[which] = value;
  if (state.from > state.to) {
    if (which === 'from') state.to = value;
    else state.from = value;
  }
  writeState(state);
  renderExplore();
}

function clearFilters() {
  for (const k of FILTERS) state[k] = undefined;
  writeState(state);
  renderExplore();
}

/** A click (or Enter) on the map: filter the page to that area or hexagon. */
function pick(f) {
  const p = f.properties;
  const l = layer();
  if (l === 'hex') state.cell = p.cell;
  else state[l] = p.code;
  writeState(state);
  announce(`Filtered to ${p.name || p.code || p.cell}`);
  renderExplore();
}

function zoomed(t) {
  const z = `${t.k.toFixed(3)},${t.x.toFixed(1)},${t.y.toFixed(1)}`;
  const zoom = z === '1.000,0.0,0.0' ? undefined : z;
  if (zoom === state.zoom) return;
  state.zoom = zoom;
  writeState(state, { push: false });
  if (layer() === 'hex' && resolution() !== shown.map?.resolution) drawMapOnly();
}

// ---- the explore view --------------------------------------------------

function describe() {
  const parts = [`${monthName(state.from)} to ${monthName(state.to)}`];
  const named = {
    assault_method: (v) => label(METHODS, v), location_type: (v) => label(PLACES, v), age_band: (v) => `age ${v}`,
    sex: (v) => label(SEXES, v), site: (v) => `site ${v}`, borough: (v) => boroughNames.get(v) || v,
    ward: (v) => `ward ${v}`, lsoa: (v) => `LSOA ${v}`, cell: (v) => `hexagon ${v}`,
  };
  for (const k of FILTERS) if (state[k]) parts.push(named[k](state[k]));
  return parts.join(', ');
}

async function renderExplore() {
  if (!canQuery()) return;
  syncControls();
  ensureChartPanels();
  const my = ++seq;
  const started = performance.now();
  await Promise.all([
    drawMap(my),
    allowed('month') ? drawTrend(my) : notAllowed('trend', 'month'),
    allowed('hour') && allowed('weekday') ? drawHeat(my) : notAllowed('heat', 'hour and weekday'),
    allowed('assault_method') ? drawBars(my, 'assault_method', METHODS) : notAllowed('assault_method', 'assault_method'),
    allowed('location_type') ? drawBars(my, 'location_type', PLACES) : notAllowed('location_type', 'location_type'),
    drawTop(my),
    refreshSaved(),
  ]);
  if (my === seq) {
    document.body.dataset.drawn = String(my);
    performance.mark('istv:drawn', { detail: { seq: my, ms: performance.now() - started } });
  }
}

async function drawMapOnly() {
  const my = ++mapSeq;
  await drawMap(seq, my);
  if (my === mapSeq) {
    document.body.dataset.mapDrawn = String(my);
    performance.mark('istv:map-drawn', { detail: { seq: my } });
  }
}

async function drawMap(my, myMap = ++mapSeq) {
  const l = layer();
  const unknown = byId('map-unknown');
  if (!l) {
    put(byId('map-root').querySelector('.fills'));
    unknown.textContent = 'The map is not in your profile.';
    return;
  }
  const params = apiParams(state);
  const res = resolution();
  let path;
  if (l === 'hex') {
    params.set('resolution', String(res));
    path = `/api/v1/cells?${params}`;
  } else {
    params.set('level', l);
    path = `/api/v1/areas?${params}`;
  }
  let fc;
  try {
    fc = await api(path);
  } catch (e) {
    if (my === seq && myMap === mapSeq) unknown.textContent = `The map could not be drawn: ${explain(e)}`;
    return;
  }
  if (my !== seq || myMap !== mapSeq) return;
  const data = fc.features;
  const r = ramp(data.map((f) => f.properties.count ?? 0));
  // Within a borough scope, /areas lists only the wards and LSOAs that
  // hold records of the scope: the rest of the scope shows as not listed.
  const unlisted = scopeLimited() && (l === 'ward' || l === 'lsoa');
  const ground = outlines.map((f) => ({ ...f, properties: { ...f.properties, nodata: unlisted } }));
  const label_ = l === 'hex'
    ? (f) => `Hexagon ${f.properties.cell} (resolution ${f.properties.resolution})`
    : (f) => `${f.properties.name} (${f.properties.code})`;
  map.draw({ data, outlineFeatures: outlines, groundFeatures: ground, r, label: label_ });
  const entries = legendEntries(r, l, unlisted);
  put(byId('legend'), h('p', { class: 'legend-title' }, l === 'hex' ? `Assaults per hexagon (resolution ${res})` : `Assaults per ${l === 'lsoa' ? 'LSOA' : l}`),
    h('ul', {}, entries.map(([, text, fill]) => h('li', {}, swatch(fill), ` ${text}`))));
  const lu = fc.location_unknown || { count: 0 };
  unknown.textContent = `Location unknown: ${figure(lu)} records (not on the map${l === 'hex' ? ` at resolution ${res}` : ''}).`;
  unknown.dataset.count = lu.count ?? '';
  byId('map-title').textContent = l === 'hex' ? 'Map: H3 hexagons' : `Map: ${LAYERS.find(([k]) => k === l)[1]}`;
  byId('map-query').textContent = describe();
  const apiQuery = path;
  const header = l === 'hex' ? ['cell', 'resolution', 'count', 'suppressed'] : ['code', 'name', 'count', 'suppressed'];
  const rows = data.map((f) => {
    const p = f.properties;
    return l === 'hex'
      ? [p.cell, p.resolution, p.count ?? '', !!p.suppressed]
      : [p.code, p.name, p.count ?? '', !!p.suppressed];
  });
  rows.push(l === 'hex' ? ['unknown', '', lu.count ?? '', !!lu.suppressed] : ['unknown', 'location unknown', lu.count ?? '', !!lu.suppressed]);
  shown.map = { query: apiQuery, header, rows, fc, r, entries, ground, resolution: l === 'hex' ? res : null, layer: l };
  const sorted = data.slice().sort((a, b) => (b.properties.count ?? -1) - (a.properties.count ?? -1));
  put(byId('map-table'), table(`${l === 'hex' ? 'Hexagons' : 'Areas'}: ${describe()}`, [l === 'hex' ? 'Hexagon' : 'Area', 'Assaults', 'Filter'],
    []));
  const tbody = byId('map-table').querySelector('tbody');
  for (const f of sorted.slice(0, 500)) {
    const p = f.properties;
    tbody.append(h('tr', {},
      h('th', { scope: 'row' }, l === 'hex' ? p.cell : `${p.name} (${p.code})`),
      h('td', { class: p.suppressed ? 'suppressed' : null }, figure(p)),
      h('td', {}, h('button', { type: 'button', class: 'link-button', onclick: () => pick(f) }, 'Filter to it'))));
  }
  byId('map-table-summary').textContent = `The map as a table (${num(data.length)} ${l === 'hex' ? 'hexagons' : 'areas'}${data.length > 500 ? ', the 500 largest listed' : ''})`;
}

// ---- chart panels -------------------------------------------------------

const PANELS = [
  ['trend', 'Monthly trend, with the same months a year earlier'],
  ['heat', 'Hour of day and day of week'],
  ['assault_method', 'By assault method'],
  ['location_type', 'By place'],
  ['top', 'Top areas, with the change from the previous period'],
];

function ensureChartPanels() {
  const host = byId('charts');
  if (host.childElementCount) return;
  for (const [id, title] of PANELS) {
    host.append(h('section', { class: 'panel chart-panel', id: `panel-${id}`, 'aria-labelledby': `title-${id}` },
      h('h2', { id: `title-${id}` }, title),
      h('div', { class: 'chart-body', id: `chart-${id}` }),
      h('details', {}, h('summary', { id: `summary-${id}` }, 'Table'), h('div', { id: `table-${id}` })),
      h('button', { type: 'button', class: 'dl', id: `dl-${id}-csv`, onclick: () => downloadCsv(id) }, 'Download CSV')));
  }
}

function notAllowed(id, dims) {
  put(byId(`chart-${id}`), h('p', { class: 'note' }, `Not in your profile (needs ${dims}).`));
  put(byId(`table-${id}`));
  shown[id] = null;
  return Promise.resolve();
}

function failed(id, e) {
  put(byId(`chart-${id}`), h('p', { class: 'error' }, `Not available: ${explain(e)}`));
  shown[id] = null;
}

async function drawTrend(my) {
  const from12 = addMonths(state.from, -12);
  const params = apiParams(state, { from: from12 });
  params.set('group_by', 'month');
  let rows;
  try {
    ({ rows } = await aggregates(params));
  } catch (e) {
    if (my === seq) failed('trend', e);
    return;
  }
  if (my !== seq) return;
  const byMonth = rowsBy(rows, (r) => r.month);
  const months = monthsBetween(state.from, state.to);
  const before = (m) => addMonths(m, -12);
  trendChart(byId('chart-trend'), months, byMonth, byMonth, before);
  put(byId('table-trend'), table('Assaults per month', ['Month', 'Assaults', 'A year earlier', 'Change'],
    months.map((m) => {
      const a = byMonth.get(m);
      const b = byMonth.get(before(m));
      const va = a ? (a.suppressed ? null : a.count) : 0;
      const vb = b ? (b.suppressed ? null : b.count) : 0;
      return [monthName(m), figure(a), figure(b), change(va, vb)];
    })));
  const all = monthsBetween(from12, state.to);
  shown.trend = {
    query: `/api/v1/aggregates?${params}`,
    header: ['month', 'count', 'suppressed'],
    rows: all.map((m) => { const r = byMonth.get(m); return [m, r ? r.count ?? '' : 0, !!(r && r.suppressed)]; }),
  };
}

async function drawHeat(my) {
  const params = apiParams(state);
  params.set('group_by', 'hour,weekday');
  let rows;
  try {
    ({ rows } = await aggregates(params));
  } catch (e) {
    if (my === seq) failed('heat', e);
    return;
  }
  if (my !== seq) return;
  const cells = rowsBy(rows, (r) => `${r.hour}|${r.weekday}`);
  heatmap(byId('chart-heat'), cells);
  const hours = Array.from({ length: 24 }, (_, i) => String(i));
  put(byId('table-heat'), table('Assaults by hour (columns) and day of week (rows)', ['Day', ...hours.map((x) => `${x.padStart(2, '0')}:00`), 'hour unknown'],
    WEEKDAYS.map(([code, name]) => [name, ...hours.map((x) => figure(cells.get(`${x}|${code}`))), figure(cells.get(`unknown|${code}`))])));
  const out = [];
  for (const x of [...hours, 'unknown']) {
    for (const [code] of WEEKDAYS) {
      const r = cells.get(`${x}|${code}`);
      out.push([x, code, r ? r.count ?? '' : 0, !!(r && r.suppressed)]);
    }
  }
  shown.heat = { query: `/api/v1/aggregates?${params}`, header: ['hour', 'weekday', 'count', 'suppressed'], rows: out };
}

async function drawBars(my, dim, list) {
  const params = apiParams(state);
  params.set('group_by', dim);
  let rows;
  try {
    ({ rows } = await aggregates(params));
  } catch (e) {
    if (my === seq) failed(dim, e);
    return;
  }
  if (my !== seq) return;
  const by = rowsBy(rows, (r) => r[dim]);
  const items = list.map(([code, text]) => ({ code, label: text, row: by.get(code) }));
  bars(byId(`chart-${dim}`), items, PANELS.find(([k]) => k === dim)[1], dim);
  put(byId(`table-${dim}`), table(`Assaults ${dim === 'assault_method' ? 'by method' : 'by place'}`, [dim === 'assault_method' ? 'Method' : 'Place', 'Assaults'],
    items.map((i) => [i.label, figure(i.row)])));
  shown[dim] = {
    query: `/api/v1/aggregates?${params}`,
    header: [dim, 'count', 'suppressed'],
    rows: items.map((i) => [i.code, i.row ? i.row.count ?? '' : 0, !!(i.row && i.row.suppressed)]),
  };
}

async function drawTop(my) {
  const l = layer();
  const level = l === 'hex' || !l ? 'borough' : l;
  if (!allowed(level)) {
    notAllowed('top', level);
    return;
  }
  const n = monthsBetween(state.from, state.to).length;
  const prevFrom = addMonths(state.from, -n);
  const prevTo = addMonths(state.from, -1);
  const cur = apiParams(state);
  cur.set('group_by', level);
  const prev = apiParams(state, { from: prevFrom, to: prevTo });
  prev.set('group_by', level);
  let a;
  let b;
  try {
    [a, b] = await Promise.all([aggregates(cur), aggregates(prev)]);
  } catch (e) {
    if (my === seq) failed('top', e);
    return;
  }
  if (my !== seq) return;
  const names = level === 'borough' ? boroughNames : new Map((shown.map?.fc?.features || []).map((f) => [f.properties.code, f.properties.name]));
  const before = rowsBy(b.rows, (r) => r[level]);
  const top = a.rows.filter((r) => r[level] !== 'unknown')
    .sort((x, y) => (y.count ?? -1) - (x.count ?? -1)).slice(0, 10);
  const items = top.map((r) => {
    const p = before.get(r[level]);
    const va = r.suppressed ? null : r.count;
    const vb = p ? (p.suppressed ? null : p.count) : 0;
    return { code: r[level], label: names.get(r[level]) || r[level], row: r, prev: p, change: change(va, vb) };
  });
  bars(byId('chart-top'), items.map((i) => ({ label: i.label, row: i.row, extra: i.change })), `Top ${level}s`, 'top');
  const body = byId('chart-top');
  body.append(h('p', { class: 'note' }, `Change against ${monthName(prevFrom)} to ${monthName(prevTo)} (the ${n} months before).`));
  put(byId('table-top'), table(`Top ${level}s, ${describe()}`, [level === 'lsoa' ? 'LSOA' : level[0].toUpperCase() + level.slice(1), 'Assaults', 'Previous period', 'Change'],
    items.map((i) => [i.label, figure(i.row), figure(i.prev), i.change])));
  shown.top = {
    query: `/api/v1/aggregates?${cur} and /api/v1/aggregates?${prev}`,
    header: [level, 'name', 'count', 'suppressed', 'previous_count', 'previous_suppressed'],
    rows: items.map((i) => [i.code, i.label, i.row.count ?? '', !!i.row.suppressed, i.prev ? i.prev.count ?? '' : 0, !!(i.prev && i.prev.suppressed)]),
  };
}

// ---- downloads ----------------------------------------------------------

function stamp() {
  return `${state.from}_${state.to}`;
}

function downloadCsv(id) {
  const what = shown[id];
  if (!what) return;
  saveText(csv(what.query, what.header, what.rows), 'text/csv', `istv-${id}-${stamp()}.csv`);
}

function downloadGeojson() {
  const m = shown.map;
  if (!m) return;
  saveText(geojson(m.query, m.fc), 'application/geo+json', `istv-map-${stamp()}.geojson`);
}

function downloadPng() {
  const m = shown.map;
  if (!m) return;
  const lu = m.fc.location_unknown || { count: 0 };
  const canvas = map.toCanvas({
    title: `Assaults seen in London EDs: ${describe()}`,
    lines: [
      `Query: ${m.query}`,
      `Location unknown: ${figure(lu)} records (not on the map).`,
      'Counts under disclosure control: perturbed by at most 3, none from 1 to 4 shown. ED data, not police data.',
    ],
    entries: m.entries,
    groundFeatures: m.ground,
    outlineFeatures: outlines,
    r: m.r,
  });
  saveCanvas(canvas, `istv-map-${stamp()}.png`);
}

// ---- saved queries ------------------------------------------------------

async function refreshSaved() {
  await renderSaved(byId('saved-list'), me, refreshSaved);
}

async function onSave(e) {
  e.preventDefault();
  const name = byId('save-name').value.trim();
  const status = byId('save-status');
  if (!name) {
    status.textContent = 'Give the view a name.';
    return;
  }
  const query = queryString({ ...state, view: 'explore' });
  try {
    await saveQuery(name, query, byId('save-shared').checked);
    status.textContent = `Saved "${name}".`;
    byId('save-name').value = '';
    await refreshSaved();
  } catch (err) {
    status.textContent = `Not saved: ${explain(err)}`;
  }
}

// ---- start --------------------------------------------------------------

function bind() {
  byId('signin-form').addEventListener('submit', onSignIn);
  byId('sign-out').addEventListener('click', onSignOut);
  byId('f-reset').addEventListener('click', clearFilters);
  byId('zoom-in').addEventListener('click', () => map.zoomBy(2));
  byId('zoom-out').addEventListener('click', () => map.zoomBy(0.5));
  byId('zoom-reset').addEventListener('click', () => map.reset());
  byId('dl-map-csv').addEventListener('click', () => downloadCsv('map'));
  byId('dl-map-geojson').addEventListener('click', downloadGeojson);
  byId('dl-map-png').addEventListener('click', downloadPng);
  byId('save-form').addEventListener('submit', onSave);
  for (const a of document.querySelectorAll('#nav a')) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      go(a.dataset.view);
    });
  }
  window.addEventListener('popstate', () => {
    state = readState();
    if (!me) return;
    if (map && state.zoom) {
      const [k, x, y] = state.zoom.split(',').map(Number);
      if (k >= 1) map.setTransform(k, x, y);
    }
    route();
  });
}

async function boot() {
  bind();
  if (!hadSession()) {
    showSignIn();
    return;
  }
  try {
    me = await api('/api/v1/me');
  } catch (e) {
    forgetSession();
    showSignIn(e instanceof ApiError && e.status === 401 ? 'Your session has ended: sign in again.' : `Cannot reach the service: ${e.message}`);
    return;
  }
  await enter();
}

boot();
