// The map: hexagons or area choropleths on a planar projection of London
// (ring orientation does not matter there, unlike d3-geo's spherical one,
// which reads the API's counter-clockwise rings as the sphere minus the
// cell), zoom and pan, a legend, hover and keyboard tooltips, and a canvas
// copy with legend and query for the PNG download.

import { geoPath, geoTransform } from 'd3-geo';
import { zoom as d3zoom, zoomIdentity } from 'd3-zoom';
import { select } from 'd3-selection';
import { scaleThreshold } from 'd3-scale';
import { interpolateViridis } from 'd3-scale-chromatic';
import { h, s, put } from './dom.js';
import { figure, num } from './format.js';

export const WIDTH = 800;
export const HEIGHT = 640;
const PAD = 12;

/** Fills outside the colour ramp. */
export const ZERO_FILL = '#ffffff';
export const NO_DATA_FILL = '#c8c8c8';
const HATCH_LINE = '#3a3a3a';
const OUTLINE = '#4d4d4d';

/** Greater London's box, until the boundaries say otherwise. */
const LONDON = [-0.51, 51.28, 0.34, 51.69];

function eachPoint(geometry, f) {
  const walk = (c) => (typeof c[0] === 'number' ? f(c) : c.forEach(walk));
  if (geometry) walk(geometry.coordinates);
}

/** [minLon, minLat, maxLon, maxLat] of features. */
export function bbox(features) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const f of features) {
    eachPoint(f.geometry, ([x, y]) => {
      if (x < b[0]) b[0] = x;
      if (y < b[1]) b[1] = y;
      if (x > b[2]) b[2] = x;
      if (y > b[3]) b[3] = y;
    });
  }
  return b[0] <= b[2] ? b : LONDON;
}

/** An equirectangular projection at London's latitude fitted to `box`. */
export function projection(box, width = WIDTH, height = HEIGHT) {
  const [x0, y0, x1, y1] = box;
  const kx = Math.cos((((y0 + y1) / 2) * Math.PI) / 180);
  const k = Math.min((width - 2 * PAD) / ((x1 - x0) * kx), (height - 2 * PAD) / (y1 - y0));
  const ox = (width - (x1 - x0) * kx * k) / 2;
  const oy = (height - (y1 - y0) * k) / 2;
  return geoTransform({
    point(x, y) {
      this.stream.point(ox + (x - x0) * kx * k, oy + (y1 - y) * k);
    },
  });
}

/** Colour classes for the positive published values: thresholds and colours. */
export function ramp(values) {
  const pos = values.filter((v) => v > 0).sort((a, b) => a - b);
  const colours = (n) => Array.from({ length: n }, (_, i) => interpolateViridis(0.92 - (i * 0.84) / Math.max(1, n - 1)));
  if (pos.length === 0) return { thresholds: [], colours: [], scale: () => ZERO_FILL };
  const cuts = [];
  for (const q of [0.2, 0.4, 0.6, 0.8]) {
    const v = pos[Math.min(pos.length - 1, Math.floor(q * pos.length))];
    const nice = v < 20 ? v : Math.round(v / 5) * 5;
    if (nice > pos[0] && (cuts.length === 0 || nice > cuts[cuts.length - 1])) cuts.push(nice);
  }
  // Light (few) to dark (many).
  const cs = colours(cuts.length + 1);
  const scale = scaleThreshold().domain(cuts).range(cs);
  return { thresholds: cuts, colours: cs, min: pos[0], max: pos[pos.length - 1], scale };
}

/** The legend's entries: [kind, label, fill] with kind ramp|zero|suppressed|nodata. */
export function legendEntries(r, layer, limited) {
  const out = [];
  const t = r.thresholds;
  r.colours.forEach((c, i) => {
    const lo = i === 0 ? r.min : t[i - 1];
    const hi = i === t.length ? r.max : t[i] - 1;
    out.push(['ramp', lo >= hi ? num(lo) : `${num(lo)} to ${num(hi)}`, c]);
  });
  out.push(['zero', layer === 'hex' ? 'no hexagon: 0 published' : '0 published', ZERO_FILL]);
  out.push(['suppressed', 'suppressed (withheld)', 'hatch']);
  if (limited) out.push(['nodata', 'not listed: no records of your scope', NO_DATA_FILL]);
  return out;
}

/** The fill of one feature's published figure. */
export function fillOf(p, r) {
  if (p.nodata) return NO_DATA_FILL;
  if (p.suppressed || p.count === null || p.count === undefined) return 'url(#hatch)';
  if (p.count === 0) return ZERO_FILL;
  return r.scale(p.count);
}

function hatchDefs() {
  return s('defs', {},
    s('pattern', { id: 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
      s('rect', { width: 6, height: 6, fill: '#ffffff' }),
      s('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: HATCH_LINE, 'stroke-width': 2 })));
}

/** A legend swatch as a small SVG. */
export function swatch(fill) {
  return s('svg', { width: 22, height: 14, viewBox: '0 0 22 14', 'aria-hidden': 'true', class: 'swatch' },
    fill === 'hatch' ? hatchDefs() : null,
    s('rect', { x: 0.5, y: 0.5, width: 21, height: 13, fill: fill === 'hatch' ? 'url(#hatch)' : fill, stroke: OUTLINE }));
}

/** The map widget inside `root`. */
export function createMap(root, { onPick, onZoomEnd, announce }) {
  const svg = s('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'map', tabindex: 0, role: 'application',
    'aria-label': 'Map. Arrow keys move between areas, Enter or Space filters to one, plus and minus zoom, Escape hides the figure.',
    id: 'map-svg',
  });
  const defs = hatchDefs();
  const layer = s('g', { class: 'zoom-layer' });
  const background = s('g', { class: 'background' });
  const fills = s('g', { class: 'fills' });
  const outlines = s('g', { class: 'outlines' });
  const focusRing = s('path', { class: 'focus-ring', d: '' });
  layer.append(background, fills, outlines, focusRing);
  svg.append(defs, layer);
  const tip = h('div', { class: 'tooltip', role: 'status', hidden: true });
  root.append(svg, tip);

  let path = geoPath(projection(LONDON));
  let features = [];
  let order = [];
  let current = -1;
  let labelOf = (f) => f.properties.code || f.properties.cell;
  let transform = zoomIdentity;

  const behaviour = d3zoom()
    .scaleExtent([1, 64])
    .translateExtent([[-WIDTH, -HEIGHT], [2 * WIDTH, 2 * HEIGHT]])
    .on('zoom', (e) => {
      transform = e.transform;
      layer.setAttribute('transform', e.transform.toString());
      svg.style.setProperty('--k', String(e.transform.k));
    })
    .on('end', () => onZoomEnd(transform));
  select(svg).call(behaviour).on('dblclick.zoom', null);

  function tipText(f) {
    return `${labelOf(f)}: ${f.properties.nodata ? 'no data' : figure(f.properties)}`;
  }

  function showTip(f, x, y) {
    tip.textContent = tipText(f);
    tip.hidden = false;
    const box = root.getBoundingClientRect();
    const left = Math.min(Math.max(4, x - box.left + 14), box.width - 220);
    tip.style.setProperty('left', `${left}px`);
    tip.style.setProperty('top', `${Math.max(4, y - box.top + 14)}px`);
  }

  function hideTip() {
    tip.hidden = true;
  }

  function focusFeature(i) {
    if (order.length === 0) return;
    current = (i + order.length) % order.length;
    const f = order[current];
    focusRing.setAttribute('d', path(f) || '');
    const el = fills.querySelector(`[data-i="${features.indexOf(f)}"]`);
    const r = el ? el.getBoundingClientRect() : svg.getBoundingClientRect();
    showTip(f, r.left + r.width / 2, r.top + r.height / 2);
    announce(tipText(f));
  }

  svg.addEventListener('keydown', (e) => {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
    if (step !== undefined) {
      e.preventDefault();
      focusFeature(current < 0 ? 0 : current + step);
    } else if (e.key === 'Home') {
      e.preventDefault();
      focusFeature(0);
    } else if (e.key === 'End') {
      e.preventDefault();
      focusFeature(order.length - 1);
    } else if ((e.key === 'Enter' || e.key === ' ') && current >= 0) {
      e.preventDefault();
      onPick(order[current]);
    } else if (e.key === 'Escape') {
      hideTip();
      focusRing.setAttribute('d', '');
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault();
      zoomBy(2);
    } else if (e.key === '-') {
      e.preventDefault();
      zoomBy(0.5);
    }
  });
  const under = (e) => {
    const el = e.target.closest && e.target.closest('path[data-i]');
    return el ? features[Number(el.dataset.i)] : null;
  };
  fills.addEventListener('click', (e) => {
    const f = under(e);
    if (f) onPick(f);
  });
  fills.addEventListener('mousemove', (e) => {
    const f = under(e);
    if (f) showTip(f, e.clientX, e.clientY);
    else hideTip();
  });
  fills.addEventListener('mouseleave', hideTip);
  svg.addEventListener('blur', () => {
    hideTip();
    focusRing.setAttribute('d', '');
  });
  root.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') hideTip();
  });

  function zoomBy(factor) {
    select(svg).call(behaviour.scaleBy, factor);
  }

  return {
    svg,
    /** The current zoom transform. */
    get transform() {
      return transform;
    },
    /** Sets the zoom without an end event. */
    setTransform(k, x, y) {
      transform = zoomIdentity.translate(x, y).scale(k);
      behaviour.on('end', null);
      select(svg).call(behaviour.transform, transform);
      behaviour.on('end', () => onZoomEnd(transform));
    },
    zoomBy,
    reset() {
      select(svg).call(behaviour.transform, zoomIdentity);
    },
    /** Fits the projection to the boundaries (once, so zoom stays put). */
    fit(box) {
      path = geoPath(projection(box));
    },
    /**
     * Draws `data` (features with published figures) over `back` (outline
     * features, drawn beneath as no data or the map's ground).
     */
    draw({ data, outlineFeatures, groundFeatures, r, label }) {
      labelOf = label;
      features = data;
      // Keyboard order: west to east, then north to south, by centroid.
      order = data
        .map((f) => ({ f, c: path.centroid(f) }))
        .sort((a, b) => Math.round(a.c[1] / 40) - Math.round(b.c[1] / 40) || a.c[0] - b.c[0])
        .map((o) => o.f);
      current = -1;
      focusRing.setAttribute('d', '');
      hideTip();
      put(background, groundFeatures.map((f) => s('path', {
        d: path(f), fill: f.properties.nodata ? NO_DATA_FILL : ZERO_FILL, class: 'ground',
      })));
      put(fills, data.map((f, i) => s('path', {
        d: path(f),
        fill: fillOf(f.properties, r),
        class: f.properties.cell ? 'cell' : 'area',
        'data-i': i,
        'data-code': f.properties.cell || f.properties.code,
        'data-count': f.properties.count ?? '',
      })));
      put(outlines, outlineFeatures.map((f) => s('path', { d: path(f), class: 'outline' })));
    },
    /** The features drawn, with the legend and title, on a canvas. */
    toCanvas({ title, lines, entries, groundFeatures, outlineFeatures, r }) {
      const scale = 2;
      const legendW = 250;
      const canvas = document.createElement('canvas');
      const textTop = 56;
      canvas.width = (WIDTH + legendW) * scale;
      canvas.height = (HEIGHT + textTop + 18 * lines.length + 16) * scale;
      const ctx = canvas.getContext('2d');
      ctx.scale(scale, scale);
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, WIDTH + legendW, canvas.height);
      ctx.fillStyle = '#111111';
      ctx.font = 'bold 18px "DejaVu Sans", sans-serif';
      ctx.fillText(title, 12, 28);
      ctx.save();
      ctx.translate(0, textTop - 16);
      ctx.beginPath();
      ctx.rect(0, 0, WIDTH, HEIGHT);
      ctx.clip();
      ctx.translate(transform.x, transform.y);
      ctx.scale(transform.k, transform.k);
      const draw = geoPath(projection_(path), ctx);
      const hatch = hatchPattern(ctx);
      const paint = (f, fill) => {
        ctx.beginPath();
        draw(f);
        ctx.fillStyle = fill;
        ctx.fill('evenodd');
      };
      for (const f of groundFeatures) paint(f, f.properties.nodata ? NO_DATA_FILL : ZERO_FILL);
      ctx.lineWidth = 0.6 / transform.k;
      ctx.strokeStyle = '#9a9a9a';
      for (const f of features) {
        const p = f.properties;
        const fill = fillOf(p, r);
        paint(f, fill === 'url(#hatch)' ? hatch : fill);
        ctx.stroke();
      }
      ctx.lineWidth = 1.2 / transform.k;
      ctx.strokeStyle = OUTLINE;
      for (const f of outlineFeatures) {
        ctx.beginPath();
        draw(f);
        ctx.stroke();
      }
      ctx.restore();
      // Legend.
      let y = textTop + 4;
      ctx.font = 'bold 14px "DejaVu Sans", sans-serif';
      ctx.fillStyle = '#111111';
      ctx.fillText('Assaults (published)', WIDTH + 8, y);
      ctx.font = '13px "DejaVu Sans", sans-serif';
      for (const [, text, fill] of entries) {
        y += 24;
        ctx.fillStyle = fill === 'hatch' ? hatch : fill;
        ctx.fillRect(WIDTH + 8, y - 12, 22, 14);
        ctx.strokeStyle = OUTLINE;
        ctx.lineWidth = 1;
        ctx.strokeRect(WIDTH + 8, y - 12, 22, 14);
        ctx.fillStyle = '#111111';
        ctx.fillText(text, WIDTH + 38, y);
      }
      ctx.font = '12px "DejaVu Sans", sans-serif';
      let ty = textTop + HEIGHT - 4;
      for (const line of lines) {
        ty += 18;
        ctx.fillText(line, 12, ty);
      }
      return canvas;
    },
  };
}

// The SVG path's projection, reused for the canvas.
function projection_(path) {
  return path.projection();
}

function hatchPattern(ctx) {
  const tile = document.createElement('canvas');
  tile.width = 8;
  tile.height = 8;
  const t = tile.getContext('2d');
  t.fillStyle = '#ffffff';
  t.fillRect(0, 0, 8, 8);
  t.strokeStyle = HATCH_LINE;
  t.lineWidth = 2;
  t.beginPath();
  t.moveTo(0, 8);
  t.lineTo(8, 0);
  t.moveTo(-2, 2);
  t.lineTo(2, -2);
  t.moveTo(6, 10);
  t.lineTo(10, 6);
  t.stroke();
  return ctx.createPattern(tile, 'repeat');
}
