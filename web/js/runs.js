// Runs: every training run under --runs, its loss (train and validation), learning rate, tokens/s and privacy
// epsilon against step or time; several runs overlaid; smoothing and log scale; new lines appear while a run trains.
import { api, badge, el, fmt, kvTable, lineChart, show } from './common.js';

const POLL_MS = 1500;
const runs = new Map(); // id -> { summary, rows, offset }
const state = { selected: new Set(), x: 'step', smooth: 0, log: false };
let timer;

/** Exponential moving average, debiased as TensorBoard does (the first points are not pulled toward zero). */
function smooth(values, weight) {
  if (weight <= 0) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || v === undefined || !Number.isFinite(v)) return v ?? null;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - weight ** n);
  });
}

/** The x values of every selected run together, and each series' y on them (null where a run has none). */
function align(lines) {
  const xs = [...new Set(lines.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  return {
    x: xs,
    series: lines.map((l) => {
      const ys = new Array(xs.length).fill(null);
      for (const [x, y] of l.points) ys[index.get(x)] = y;
      return { label: l.label, values: ys };
    }),
  };
}

function points(rows, field, doSmooth) {
  const pts = rows.filter((r) => typeof r[field] === 'number' && typeof r[state.x === 'step' ? 'step' : 'elapsed_s'] === 'number')
    .map((r) => [state.x === 'step' ? r.step : r.elapsed_s, r[field]]);
  if (!doSmooth) return pts;
  const ys = smooth(pts.map((p) => p[1]), state.smooth);
  return pts.map((p, i) => [p[0], ys[i]]);
}

const CHARTS = [
  { id: 'loss', title: 'Loss', fields: [['train_loss', 'train', true], ['val_loss', 'validation', false]], log: true },
  { id: 'lr', title: 'Learning rate', fields: [['lr', 'lr', false]] },
  { id: 'tps', title: 'Tokens per second', fields: [['tokens_per_s', 'tokens/s', true]] },
  { id: 'eps', title: 'Privacy ε (DP-SGD)', fields: [['epsilon', 'ε', false]], optional: true },
];

function drawCharts() {
  const box = document.getElementById('charts');
  box.replaceChildren();
  const chosen = [...state.selected].map((id) => runs.get(id)).filter(Boolean);
  for (const c of CHARTS) {
    const lines = [];
    for (const r of chosen) {
      for (const [field, label, canSmooth] of c.fields) {
        const pts = points(r.rows, field, canSmooth);
        if (pts.length > 0) lines.push({ label: chosen.length > 1 || c.fields.length > 1 ? `${r.summary.id} ${label}` : label, points: pts });
      }
    }
    if (lines.length === 0) {
      if (!c.optional && chosen.length > 0) box.append(el('section', { class: 'card chart', 'aria-label': c.title }, el('h3', {}, c.title), el('p', { class: 'muted' }, 'No values yet.')));
      continue;
    }
    const holder = el('div');
    const section = el('section', { class: 'card chart', 'aria-label': c.title, dataset: { chart: c.id } }, el('h3', {}, c.title), holder);
    box.append(section);
    const { x, series } = align(lines);
    lineChart(holder, {
      xLabel: state.x === 'step' ? 'step' : 'seconds', yLabel: c.title, x, series,
      log: state.log && c.log === true, points: x.length < 40,
    });
  }
}

function status() {
  const box = document.getElementById('run-status');
  box.replaceChildren(...[...state.selected].map((id) => {
    const r = runs.get(id);
    const steps = r.rows.filter((row) => typeof row.step === 'number');
    const last = steps.length > 0 ? steps[steps.length - 1].step : null;
    const val = r.rows.filter((row) => typeof row.val_loss === 'number').at(-1);
    return el('li', { dataset: { run: id } }, el('strong', {}, id), ` — ${r.rows.length} lines, last step `,
      el('span', { class: 'last-step' }, last === null ? '—' : String(last)),
      val ? `, validation loss ${fmt(val.val_loss)}` : '');
  }));
}

async function poll(id) {
  const r = runs.get(id);
  const chunk = await api(`runs/metrics?run=${encodeURIComponent(id)}&offset=${r.offset}`);
  if (chunk.reset) r.rows = [];
  r.rows.push(...chunk.rows);
  const changed = chunk.rows.length > 0 || chunk.reset;
  r.offset = chunk.offset;
  return changed;
}

async function refresh() {
  let changed = false;
  for (const id of state.selected) changed = (await poll(id).catch(() => false)) || changed;
  if (changed) {
    drawCharts();
    status();
  }
}

function details(summary) {
  return el('details', {}, el('summary', {}, `${summary.id}: ${summary.kind}`),
    summary.training_args ? [el('h4', {}, 'Training arguments'), kvTable(summary.training_args)] : null,
    summary.config ? [el('h4', {}, 'Model config'), kvTable(summary.config)] : null,
    summary.privacy ? [el('h4', {}, 'Privacy (DP-SGD)'), kvTable(summary.privacy)] : null);
}

async function main() {
  const [info, list] = await Promise.all([api('info'), api('runs')]);
  if (info.runs === null) {
    show(el('p', {}, 'No runs folder: start the dashboard with ', el('code', {}, '--runs DIR'), ' (a folder of ', el('code', {}, 'ajar train --out'), ' folders).'));
    return;
  }
  if (list.data.length === 0) {
    show(el('p', {}, `No run under ${info.runs} yet (a run is a folder holding metrics.jsonl). This page checks again every few seconds.`));
    setTimeout(main, 3000);
    return;
  }
  for (const s of list.data) runs.set(s.id, { summary: s, rows: [], offset: 0 });
  for (const s of list.data.slice(0, 3)) state.selected.add(s.id);
  const picker = el('fieldset', { class: 'card' }, el('legend', {}, 'Runs to show'),
    list.data.map((s) => el('div', { class: 'row' },
      el('input', { type: 'checkbox', id: `run-${s.id}`, checked: state.selected.has(s.id), onchange: async (e) => {
        if (e.target.checked) state.selected.add(s.id); else state.selected.delete(s.id);
        await refresh();
        drawCharts();
        status();
      } }),
      el('label', { for: `run-${s.id}` }, s.id), badge(s.kind.startsWith('a LoRA') ? 'LoRA' : s.kind.startsWith('a full') ? 'full' : 'run'),
      s.privacy ? badge('DP-SGD', 'warn') : null, el('span', { class: 'muted' }, `updated ${s.updated.replace('T', ' ').slice(0, 19)}`))));
  const controls = el('div', { class: 'card form' },
    el('div', {}, el('label', { for: 'xaxis' }, 'X axis'), el('select', { id: 'xaxis', onchange: (e) => { state.x = e.target.value; drawCharts(); } },
      el('option', { value: 'step' }, 'step'), el('option', { value: 'time' }, 'time (s)'))),
    el('div', {}, el('label', { for: 'smooth' }, 'Smoothing'), el('input', { id: 'smooth', type: 'range', min: 0, max: 0.99, step: 0.01, value: 0,
      oninput: (e) => { state.smooth = Number(e.target.value); drawCharts(); } })),
    el('div', { class: 'check' }, el('input', { id: 'logy', type: 'checkbox', onchange: (e) => { state.log = e.target.checked; drawCharts(); } }),
      el('label', { for: 'logy' }, 'Log scale (loss)')));
  show(picker, controls, el('ul', { id: 'run-status', 'aria-live': 'polite' }), el('div', { id: 'charts', class: 'grid' }),
    el('h2', {}, 'Run details'), list.data.map(details));
  await refresh();
  drawCharts();
  status();
  clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
}

main().catch((e) => show(el('p', { class: 'error', role: 'alert' }, e.message)));
