// Downloads of exactly what a panel shows: CSV (with the query and the
// disclosure note as leading '#' lines), GeoJSON (with both as members of
// the collection) and PNG (the map, its legend and the query).

/** The disclosure note carried by every download. */
export const DISCLOSURE_NOTE =
  'Counts are published under disclosure control (the cell key method): each is the true count plus a small ' +
  'perturbation (at most 3) fixed by the records it covers; no count from 1 to 4 is ever shown; a group not ' +
  'listed, or shown as 0, was published as 0. Sums of published figures differ from published totals. ' +
  'Emergency department data, not police data.';

function csvField(v) {
  const t = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/**
 * CSV text: '# query: ...' and '# disclosure: ...' lines, then the header
 * and the rows (arrays of values).
 */
export function csv(query, header, rows) {
  const lines = [
    `# query: ${query}`,
    `# disclosure: ${DISCLOSURE_NOTE}`,
    header.map(csvField).join(','),
    ...rows.map((r) => r.map(csvField).join(',')),
  ];
  return `${lines.join('\n')}\n`;
}

/** A GeoJSON collection with the query and the disclosure note. */
export function geojson(query, collection) {
  return `${JSON.stringify({ ...collection, query, disclosure: DISCLOSURE_NOTE })}\n`;
}

/** Offers `blob` as a download named `name`. */
export function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Offers text as a download. */
export function saveText(text, type, name) {
  save(new Blob([text], { type }), name);
}

/** Offers a canvas as a PNG download. */
export function saveCanvas(canvas, name) {
  canvas.toBlob((blob) => save(blob, name), 'image/png');
}
