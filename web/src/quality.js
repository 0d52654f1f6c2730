// Data quality per ED site (GET /api/v1/quality) and, for uploaders and
// admins, the site's recent receipts (GET /api/v1/uploads?site=).

import { api } from './api.js';
import { h, put } from './dom.js';
import { monthName, num } from './format.js';
import { table } from './charts.js';

function pct(share) {
  return `${(share * 100).toFixed(1)}%`;
}

function when(iso) {
  if (!iso) return 'never';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

const METHOD_NAMES = {
  latlon: 'latitude and longitude',
  bng: 'British National Grid',
  postcode: 'postcode',
  gazetteer: 'named place in the description',
  unknown: 'not resolved',
};

function site(q, receipts) {
  const months = q.months || [];
  const maxRows = Math.max(1, ...months.map((m) => m.rows_received));
  return h('article', { class: 'site', 'aria-labelledby': `site-${q.site}` },
    h('h3', { id: `site-${q.site}` }, `${q.name} (${q.site})`),
    h('p', { class: q.late ? 'late' : 'on-time' },
      q.late ? '⚠ Late: ' : 'On time: ',
      `last upload ${when(q.last_upload_at)}; expected every ${q.expected_interval_days} days.`),
    h('div', { class: 'quality-grid' },
      h('div', {},
        h('h4', {}, 'Rows received per month'),
        h('ul', { class: 'month-bars', 'aria-hidden': 'true' }, months.map((m) => h('li', {},
          h('span', { class: 'm' }, monthName(m.month)),
          h('meter', { min: 0, max: maxRows, value: m.rows_received }),
          h('span', {}, num(m.rows_received))))),
        table('Rows per month', ['Month', 'Received', 'Accepted', 'Rejected'],
          months.map((m) => [monthName(m.month), num(m.rows_received), num(m.rows_accepted), num(m.rows_rejected)]))),
      h('div', {},
        h('h4', {}, 'Location resolved, by geocoding method'),
        table('Records by geocoding method', ['Method', 'Records', 'Share'],
          (q.geocoding || []).map((g) => [METHOD_NAMES[g.method] || g.method, num(g.records), pct(g.share)])),
        h('h4', {}, 'Completeness of optional fields'),
        table('Records with a value, per optional field', ['Field', 'Records with a value', 'Share'],
          (q.completeness || []).map((c) => [c.field, num(c.records_with_value), pct(c.share)])),
        h('h4', {}, 'Rejection reasons'),
        (q.rejections || []).length === 0
          ? h('p', {}, 'No rows rejected.')
          : table('Rejected rows by reason', ['Reason', 'Rows'], q.rejections.map((r) => [r.reason, num(r.count)])))),
    receipts);
}

async function receiptsOf(code) {
  try {
    const answer = await api(`/api/v1/uploads?site=${encodeURIComponent(code)}&limit=20`);
    const rows = answer.uploads || [];
    return h('div', {},
      h('h4', {}, 'Recent uploads (receipts)'),
      rows.length === 0 ? h('p', {}, 'No uploads yet.') : table(`Receipts of ${code}, newest first`,
        ['Upload', 'Rows', 'Accepted', 'Rejected', 'Duplicates', 'Corrections'],
        rows.map((r) => [r.upload_id, num(r.rows ?? 0), num(r.accepted ?? 0),
          num(r.rejected ?? 0), num(r.duplicates ?? 0), num(r.corrections ?? 0)])));
  } catch (e) {
    return h('p', { class: 'error' }, `Receipts: ${e.message}`);
  }
}

/** Draws the data quality view into `el` for the caller `me`. */
export async function renderQuality(el, me) {
  put(el, h('p', { class: 'loading' }, 'Loading data quality…'));
  let answer;
  try {
    answer = await api('/api/v1/quality');
  } catch (e) {
    put(el, h('p', { class: 'error', role: 'alert' }, `Data quality is not available: ${e.message}`));
    return;
  }
  const sites = answer.sites || [];
  const withReceipts = me.role === 'uploader' || me.role === 'admin';
  const parts = await Promise.all(sites.map(async (q) => site(q, withReceipts ? await receiptsOf(q.site) : null)));
  put(el,
    h('p', {}, sites.length === 0 ? 'No ED site is registered yet.' :
      'Per ED site: rows received, how records were placed, how complete the optional fields are, why rows were rejected, and whether the last upload is late. Counts per site only; no record is shown.'),
    parts);
}
