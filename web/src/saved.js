// Saved queries: the page's query string under a name, private or shared
// with the caller's organisation.

import { api } from './api.js';
import { h, put } from './dom.js';

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().slice(0, 10);
}

/** Saves `query` (a query string) as `name`. */
export async function saveQuery(name, query, shared) {
  return api('/api/v1/saved-queries', { method: 'POST', body: { name, query, shared } });
}

/** Lists the saved queries into `el`; `me` decides who may delete. */
export async function renderSaved(el, me, onChange) {
  let answer;
  try {
    answer = await api('/api/v1/saved-queries');
  } catch (e) {
    put(el, h('p', { class: 'error' }, `Saved queries are not available: ${e.message}`));
    return;
  }
  const queries = answer.queries || [];
  if (queries.length === 0) {
    put(el, h('p', {}, 'No saved queries yet.'));
    return;
  }
  put(el, h('ul', { class: 'saved-list' }, queries.map((q) => h('li', {},
    h('a', { href: `/?${q.query}`, class: 'saved-open' }, q.name),
    h('span', { class: 'meta' }, ` ${q.owner === me.user ? 'yours' : `by ${q.owner}`}, ${q.shared ? 'shared with your organisation' : 'private'}, ${when(q.created_at)} `),
    q.owner === me.user ? h('button', {
      type: 'button', class: 'link-button', 'aria-label': `Delete saved query ${q.name}`,
      onclick: async () => {
        try {
          await api(`/api/v1/saved-queries/${encodeURIComponent(q.id)}`, { method: 'DELETE' });
        } catch (e) {
          alert(`Not deleted: ${e.message}`);
        }
        onChange();
      },
    }, 'Delete') : null))));
}
