// The report: Markdown and two SVG charts that render (well-formed, finite coordinates, everything labelled),
// written atomically; plus the checks that keep docs/plan.md and the shipped example in step with the code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildPlan, cashSvg, getNumber, leafFields, loadScenario, niceTicks, renderReport, tornadoSvg, variableParams,
  withNumber, writeReport,
} from '../../src/plan/index.js';
import { fieldLabel } from '../../src/plan/report.js';
import { isAjarError } from '../../src/tensor/errors.js';
import { balancedScenario, tempDir } from './fixtures.js';

// dist/test/plan/report.test.js -> the repository root.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function plan() {
  return buildPlan({ scenario: balancedScenario(), provenance: {} });
}

/** A light well-formedness check: every opened element is closed, in order, and no number is NaN/Infinity. */
function assertWellFormedSvg(svg: string): void {
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
  assert.doesNotMatch(svg, /NaN|Infinity|undefined/);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else stack.push(name);
  }
  assert.deepEqual(stack, []);
  // Text content is escaped: no raw '&' that is not an entity.
  assert.doesNotMatch(svg, /&(?!amp;|lt;|gt;|quot;)/);
}

test('niceTicks covers the range with 1/2/5 x 10^k steps', () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(-35, 427, 6), [-100, 0, 100, 200, 300, 400, 500]);
  const t = niceTicks(5, 5);
  assert.ok(t[0] <= 5 && t[t.length - 1] >= 5 && t.length >= 2);
});

test('cash.svg: one line per strategy, a legend with NPV and break-even, axes labelled', () => {
  const p = plan();
  const svg = cashSvg(p);
  assertWellFormedSvg(svg);
  assert.equal(svg.match(/<polyline /g)?.length, 3);
  for (const k of ['open', 'closed', 'hybrid']) assert.match(svg, new RegExp(`>${k}( \\(recommended\\))?: NPV `));
  assert.match(svg, />month</);
  assert.match(svg, />cumulative cash \(USD\)</);
  // Each polyline has horizon + 1 points (month 0 .. 24).
  const pts = svg.match(/points="([^"]+)"/)![1].split(' ');
  assert.equal(pts.length, 25);
});

test('tornado.svg: two bars per input that moves the NPV, names escaped', () => {
  const p = plan();
  p.scenario.name = 'R&D <beta>';
  const svg = tornadoSvg(p);
  assertWellFormedSvg(svg);
  assert.match(svg, /R&amp;D &lt;beta&gt;/);
  const moved = p.sensitivity.rows.filter((r) => r.swing > 0).slice(0, 12);
  assert.equal(svg.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="12"/g)?.length, 2 * moved.length);
  assert.ok(svg.includes(`>${fieldLabel(moved[0].field)}`));
});

test('tornado.svg: inputs in words from the field docs, and no two texts overlap', () => {
  assert.equal(fieldLabel('hardware.usd_per_hour'), 'Rental price of one serving machine');
  assert.equal(fieldLabel('demand.growth_per_month'), 'Compound growth of demand');
  assert.equal(fieldLabel('fixed_costs.open.engineering_usd_per_month'), 'Engineering salaries and contractors (open)');
  // The example scenario's chart (the one in examples/plan/report) and the balanced test scenario's.
  for (const p of [buildPlan(loadScenario(join(ROOT, 'examples/plan/scenario.yaml'))), plan()]) assertTornadoReadable(p);
});

function assertTornadoReadable(p: ReturnType<typeof plan>): void {
  const svg = tornadoSvg(p);
  const moved = p.sensitivity.rows.filter((r) => r.swing > 0).slice(0, 12);
  for (const r of moved) {
    assert.ok(!svg.includes(`>${r.field}`), `raw key ${r.field} shown`);
    assert.ok(svg.includes(`>${fieldLabel(r.field)}`), `label of ${r.field} missing`);
  }
  // Boxes of every text at the widths the chart assumes (~0.58 em a character of sans-serif), then pairwise overlap.
  const boxes = [...svg.matchAll(/<text x="([\d.-]+)" y="([\d.-]+)" font-size="(\d+)"(?: font-weight="bold")?(?: text-anchor="(start|middle|end)")?[^>]*>([^<]*)<\/text>/g)]
    .map((m) => {
      const [x, y, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
      const text = m[5].replace(/&[a-z]+;/g, '&');
      const w = text.length * size * 0.58;
      const left = m[4] === 'end' ? x - w : m[4] === 'middle' ? x - w / 2 : x;
      return { text, left, right: left + w, top: y - size * 0.8, bottom: y + size * 0.2 };
    });
  assert.ok(boxes.length > 3 * moved.length, 'every label and value text parsed');
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      const overlap = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
      assert.ok(!overlap, `"${a.text}" overlaps "${b.text}"`);
    }
  }
}

test('the recommendation\'s heading states how many inputs are assumptions', () => {
  const base = plan();
  const provenance = Object.fromEntries(['demand.growth_per_month', 'pricing.input_per_1m_usd', 'hardware.usd_per_hour']
    .map((k) => [k, { source: 'assumption' as const }]));
  const md = renderReport({ ...base, provenance }, {})['report.md'];
  assert.match(md, /^\*\*Recommendation \(resting on 3 inputs marked ASSUMPTION: check them before acting on it\):\*\* /m);
  assert.match(renderReport(base, {})['report.md'], /^\*\*Recommendation:\*\* /m, 'no caveat without assumptions');
});

test('report.md links both charts and holds the recommendation, scorecard, flips and inputs', () => {
  const files = renderReport(plan(), { scenarioPath: 'x.yaml' });
  assert.deepEqual(Object.keys(files).sort(), ['cash.svg', 'report.md', 'tornado.svg']);
  const md = files['report.md'];
  for (const part of ['**Recommendation:**', '![Cumulative cash by strategy](cash.svg)', '](tornado.svg)',
    '## Scorecard', '## What flips the recommendation', '## Inputs', '## Monthly projection', 'ajar plan x.yaml']) {
    assert.ok(md.includes(part), `report.md lacks ${part}`);
  }
});

test('writeReport is atomic: refuses a non-empty dir, replaces it with force, leaves no temp files', () => {
  const parent = tempDir();
  const dir = join(parent, 'report');
  writeReport(dir, { 'a.txt': 'one' });
  assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'one');
  assert.throws(() => writeReport(dir, { 'a.txt': 'two' }), (e: unknown) =>
    isAjarError(e) && /exists and is not empty; choose a new directory, or pass --force/.test(e.message));
  assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'one');
  writeReport(dir, { 'b.txt': 'two' }, true);
  assert.deepEqual(readdirSync(dir), ['b.txt']);
  assert.deepEqual(readdirSync(parent), ['report']);
  // An existing empty directory is fine; a file in the way is not.
  mkdirSync(join(parent, 'empty'));
  writeReport(join(parent, 'empty'), { 'c.txt': 'x' });
  writeFileSync(join(parent, 'file'), 'x');
  assert.throws(() => writeReport(join(parent, 'file'), { 'c.txt': 'x' }), /is not a directory/);
});

test('docs/plan.md and the example scenario mention every field', () => {
  const docs = readFileSync(join(ROOT, 'docs', 'plan.md'), 'utf8');
  const example = readFileSync(join(ROOT, 'examples', 'plan', 'scenario.yaml'), 'utf8');
  for (const { path } of leafFields()) {
    assert.ok(docs.includes(`\`${path}\``), `docs/plan.md does not document \`${path}\``);
    const key = path.split('.').at(-1)!;
    assert.ok(new RegExp(`\\b${key}:`).test(example), `examples/plan/scenario.yaml does not mention ${key}`);
  }
});

test('the shipped example report is what the code produces from the example scenario', () => {
  const scenarioPath = 'examples/plan/scenario.yaml';
  const p = buildPlan(loadScenario(join(ROOT, scenarioPath)));
  const files = renderReport(p, { scenarioPath });
  for (const [name, text] of Object.entries(files)) {
    const shipped = join(ROOT, 'examples', 'plan', 'report', name);
    assert.ok(existsSync(shipped), `${shipped} is missing: regenerate with ` +
      '`ajar plan examples/plan/scenario.yaml --report examples/plan/report --force`');
    assert.equal(readFileSync(shipped, 'utf8'), text, `examples/plan/report/${name} is stale: regenerate with ` +
      '`ajar plan examples/plan/scenario.yaml --report examples/plan/report --force`');
  }
  // The README shows cash.svg rendered to PNG (rsvg-convert -o examples/plan/cash.png examples/plan/report/cash.svg).
  const png = readFileSync(join(ROOT, 'examples', 'plan', 'cash.png'));
  assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
});

/** mulberry32: a small seeded PRNG so the random scenarios are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every number reachable in a value is finite (JSON.stringify would hide NaN as null). */
function assertFinite(v: unknown, path = ''): void {
  if (typeof v === 'number') assert.ok(Number.isFinite(v), `${path} is ${v}`);
  else if (Array.isArray(v)) v.forEach((x, i) => assertFinite(x, `${path}[${i}]`));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) assertFinite(x, `${path}.${k}`);
}

test('random valid scenarios (zeros included) give finite numbers and well-formed charts', () => {
  const rand = prng(7);
  for (let n = 0; n < 15; n++) {
    let s = balancedScenario();
    s.horizon_months = 1 + Math.floor(rand() * 36);
    for (const { path, field } of variableParams(s)) {
      const v = getNumber(s, path)!;
      const r = rand();
      let x: number;
      if (r < 0.15) x = 0;
      else if (field.vary === 'fraction') x = rand();
      else if (field.vary === 'rate') x = rand() * 1.5 - 0.5;
      else x = v * Math.pow(10, rand() * 4 - 2);
      if (field.gt !== undefined && x <= field.gt) x = field.gt + 0.01;
      s = withNumber(s, path, x);
    }
    const p = buildPlan({ scenario: s, provenance: {} });
    assertFinite(p, `scenario ${n}`);
    assertWellFormedSvg(cashSvg(p));
    assertWellFormedSvg(tornadoSvg(p));
  }
});
