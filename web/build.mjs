// Builds the portal into dist/: one minified script and style sheet with
// content hashes in their names, the icon, and index.html naming them.
// Deterministic, so CI can rebuild and compare with the committed bundle.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const dist = path.join(here, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(path.join(dist, 'assets'), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: path.join(here, 'src/main.js') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: path.join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => path.relative(dist, path.resolve(p)));
const js = outputs.find((p) => p.endsWith('.js'));
const css = outputs.find((p) => p.endsWith('.css'));
if (!js || !css) throw new Error(`expected a script and a style sheet, got ${outputs.join(', ')}`);

const icon = fs.readFileSync(path.join(here, 'src/icon.svg'));
const iconName = `assets/icon-${createHash('sha256').update(icon).digest('hex').slice(0, 8)}.svg`;
fs.writeFileSync(path.join(dist, iconName), icon);

const page = fs.readFileSync(path.join(here, 'src/index.html'), 'utf8')
  .replace('%JS%', `/${js}`)
  .replace('%CSS%', `/${css}`)
  .replace('%ICON%', `/${iconName}`);
fs.writeFileSync(path.join(dist, 'index.html'), page);

// Licences of the bundled libraries (d3 modules, ISC), beside the bundle.
const licences = ['d3-geo', 'd3-zoom', 'd3-selection', 'd3-scale', 'd3-scale-chromatic', 'd3-array', 'd3-color',
  'd3-dispatch', 'd3-drag', 'd3-ease', 'd3-format', 'd3-interpolate', 'd3-time', 'd3-time-format', 'd3-timer',
  'd3-transition', 'internmap']
  .filter((m) => fs.existsSync(path.join(here, 'node_modules', m, 'LICENSE')))
  .map((m) => `${m}\n\n${fs.readFileSync(path.join(here, 'node_modules', m, 'LICENSE'), 'utf8').trim()}\n`);
fs.writeFileSync(path.join(dist, 'assets', 'LICENSES.txt'), licences.join('\n----\n\n'));

for (const f of [js, css, iconName, 'index.html']) {
  console.log(`${f} ${fs.statSync(path.join(dist, f)).size} bytes`);
}
