// Plain SVG charts, each with a table beside it (the same figures).
// Suppressed figures are hatched and zero is drawn as zero, never as a
// colour of the ramp.

import { scaleLinear, scaleThreshold } from 'd3-scale';
import { interpolateViridis } from 'd3-scale-chromatic';
import { h, s, put } from './dom.js';
import { figure, monthName, num, WEEKDAYS } from './format.js';

const INK = '#1a1a1a';
const CURRENT = '#3b0f70';
const EARLIER = '#b5560b';
const BAR = '#31688e';

function value(row) {
  return row && !row.suppressed && typeof row.count === 'number' ? row.count : 0;
}

function suppressed(row) {
  return !!row && (row.suppressed || row.count === null);
}

function hatch(id) {
  return s('defs', {},
    s('pattern', { id, width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
      s('rect', { width: 6, height: 6, fill: '#ffffff' }),
      s('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#3a3a3a', 'stroke-width': 2 })));
}

/** A table: a caption, column headers and rows of cells (text). */
export function table(caption, headers, rows) {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', { class: c === 'suppressed' ? 'suppressed' : null }, c)))))));
}

/**
 * Monthly trend: the months shown and the same months a year earlier.
 * `current` and `earlier` map "YYYY-MM" to published rows.
 */
export function trendChart(el, months, current, earlier, yearBefore) {
  const W = 560, H = 240, L = 48, R = 12, T = 16, B = 40;
  const vals = months.flatMap((m) => [value(current.get(m)), value(earlier.get(yearBefore(m)))]);
  const y = scaleLinear().domain([0, Math.max(1, ...vals)]).nice().range([H - B, T]);
  const x = (i) => L + (months.length <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (months.length - 1));
  const line = (get) => months.map((m, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(value(get(m))).toFixed(1)}`).join('');
  const every = Math.ceil(months.length / 8);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Monthly assaults, ${monthName(months[0])} to ${monthName(months[months.length - 1])}, with the same months a year earlier. The table below has the figures.` },
    y.ticks(5).map((t) => s('g', {},
      s('line', { x1: L, x2: W - R, y1: y(t), y2: y(t), class: 'grid' }),
      s('text', { x: L - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, num(t)))),
    months.map((m, i) => (i % every === 0 ? s('text', { x: x(i), y: H - B + 18, 'text-anchor': 'middle', class: 'tick' }, monthName(m)) : null)),
    s('path', { d: line((m) => earlier.get(yearBefore(m))), fill: 'none', stroke: EARLIER, 'stroke-width': 2, 'stroke-dasharray': '6 4' }),
    s('path', { d: line((m) => current.get(m)), fill: 'none', stroke: CURRENT, 'stroke-width': 2.5 }),
    months.map((m, i) => s('circle', { cx: x(i), cy: y(value(current.get(m))), r: 3.5, fill: suppressed(current.get(m)) ? '#ffffff' : CURRENT, stroke: CURRENT })),
    months.map((m, i) => s('rect', { x: x(i) - 3, y: y(value(earlier.get(yearBefore(m)))) - 3, width: 6, height: 6, fill: EARLIER })),
  );
  const key = h('p', { class: 'chart-key' },
    h('span', { class: 'key-current' }, 'selected months'), ' ',
    h('span', { class: 'key-earlier' }, 'a year earlier'));
  put(el, svg, key);
}

/** Hour of day x day of week; `cells` maps "hour|weekday" to rows. */
export function heatmap(el, cells) {
  const W = 640, H = 210, L = 44, T = 20, cw = (W - L - 8) / 24, ch = 24;
  const vals = [...cells.values()].map(value).filter((v) => v > 0).sort((a, b) => a - b);
  // A cut at the smallest figure would leave the first bin empty, and its
  // key would repeat the next bin's first figure.
  const cuts = [0.25, 0.5, 0.75].map((q) => vals[Math.floor(q * vals.length)] || 0).filter((v, i, a) => v > vals[0] && a.indexOf(v) === i);
  const colours = Array.from({ length: cuts.length + 1 }, (_, i) => interpolateViridis(0.92 - (i * 0.84) / Math.max(1, cuts.length)));
  const colour = scaleThreshold().domain(cuts).range(colours);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'Assaults by hour of day and day of week. The table below has the figures.' },
    hatch('hatch-heat'),
    WEEKDAYS.map(([code, name], r) => s('g', {},
      s('text', { x: L - 6, y: T + r * ch + 16, 'text-anchor': 'end', class: 'tick' }, name),
      Array.from({ length: 24 }, (_, hr) => {
        const row = cells.get(`${hr}|${code}`);
        const fill = suppressed(row) ? 'url(#hatch-heat)' : value(row) === 0 ? '#ffffff' : colour(value(row));
        return s('rect', { x: L + hr * cw, y: T + r * ch, width: cw - 1, height: ch - 1, fill, stroke: '#8a8a8a', 'stroke-width': 0.5 },
          s('title', {}, `${name} ${String(hr).padStart(2, '0')}:00: ${figure(row)}`));
      }))),
    [0, 3, 6, 9, 12, 15, 18, 21].map((hr) => s('text', { x: L + hr * cw + cw / 2, y: T + 7 * ch + 16, 'text-anchor': 'middle', class: 'tick' }, `${String(hr).padStart(2, '0')}:00`)),
  );
  // No figure above 0: the key is the 0 alone.
  const legend = h('p', { class: 'chart-key' }, (vals.length ? colours : []).map((c, i) => {
    const lo = i === 0 ? vals[0] || 0 : cuts[i - 1];
    const hi = i === cuts.length ? vals[vals.length - 1] || 0 : cuts[i] - 1;
    return h('span', { class: 'heat-key' }, s('svg', { width: 14, height: 14, 'aria-hidden': 'true' }, s('rect', { width: 14, height: 14, fill: c, stroke: '#555' })), ` ${num(lo)}${hi > lo ? `-${num(hi)}` : ''} `);
  }), h('span', { class: 'heat-key' }, s('svg', { width: 14, height: 14, 'aria-hidden': 'true' }, s('rect', { width: 14, height: 14, fill: '#fff', stroke: '#555' })), ' 0'));
  put(el, svg, legend);
}

/** Horizontal bars: items [{label, row}]. */
export function bars(el, items, title, id) {
  const extra = items.some((i) => i.extra);
  const W = 520, rowH = 26, L = 190, R = extra ? 150 : 70, H = items.length * rowH + 8;
  const x = scaleLinear().domain([0, Math.max(1, ...items.map((i) => value(i.row)))]).range([0, W - L - R]);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `${title}. The table below has the figures.` },
    hatch(`hatch-${id}`),
    items.map((it, i) => {
      const y = 4 + i * rowH;
      const sup = suppressed(it.row);
      return s('g', {},
        s('text', { x: L - 8, y: y + 16, 'text-anchor': 'end', class: 'tick' }, it.label),
        s('rect', { x: L, y: y + 3, width: sup ? 24 : Math.max(value(it.row) > 0 ? 1 : 0, x(value(it.row))), height: rowH - 8, fill: sup ? `url(#hatch-${id})` : BAR, stroke: sup ? '#3a3a3a' : 'none' }),
        s('text', { x: L + (sup ? 24 : x(value(it.row))) + 6, y: y + 16, class: 'value' }, it.extra ? `${figure(it.row)} (${it.extra})` : figure(it.row)));
    }));
  put(el, svg);
}

export { INK };
