// The page's whole state lives in the URL's query string, so a view can be
// bookmarked, shared and saved, and reloading it restores it.

import { lastDay } from './format.js';

/** Filter parameters, exactly as the query API names them. */
export const FILTERS = [
  'assault_method', 'location_type', 'age_band', 'sex', 'site', 'borough', 'ward', 'lsoa', 'cell',
];

/** Every key of the state, in the order the URL lists them. */
const KEYS = ['view', 'from', 'to', ...FILTERS, 'layer', 'res', 'zoom'];

/** The layers of the map. */
export const LAYERS = [
  ['hex', 'H3 hexagons'],
  ['borough', 'Boroughs'],
  ['ward', 'Wards'],
  ['lsoa', 'LSOAs'],
];

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

/** The state from the current URL (unknown keys and bad months dropped). */
export function readState() {
  const p = new URLSearchParams(location.search);
  const state = {};
  for (const k of KEYS) {
    const v = p.get(k);
    if (v !== null && v !== '') state[k] = v;
  }
  for (const k of ['from', 'to']) {
    if (state[k] && !MONTH.test(state[k])) delete state[k];
  }
  return state;
}

/** The state as a query string (no '?'), keys in a fixed order. */
export function queryString(state) {
  const p = new URLSearchParams();
  for (const k of KEYS) {
    if (state[k] !== undefined && state[k] !== null && state[k] !== '') p.set(k, state[k]);
  }
  return p.toString();
}

/** Writes the state to the URL: a new history entry, or in place. */
export function writeState(state, { push = true } = {}) {
  const url = `${location.pathname}?${queryString(state)}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

/** The H3 resolution of a cell index (its second hex digit). */
export function cellResolution(cell) {
  return parseInt(cell[1], 16);
}

/**
 * The API parameters of the state's filters over a range of months
 * (whole months, so ward, LSOA and fine hexagon figures are allowed).
 */
export function apiParams(state, { from = state.from, to = state.to, skip = [] } = {}) {
  const p = new URLSearchParams();
  if (from) p.set('from', `${from}-01`);
  if (to) p.set('to', lastDay(to));
  for (const k of FILTERS) {
    if (state[k] && !skip.includes(k)) p.set(k, state[k]);
  }
  if (state.cell && !skip.includes('cell')) p.set('resolution', String(cellResolution(state.cell)));
  return p;
}
