// Helpers every dashboard page uses: the CSRF token, JSON calls to /ui/api, DOM building without innerHTML, number
// and date formatting, tables, a small Markdown renderer (text nodes only) and uPlot charts that follow the theme.
import uPlot from '/ui/static/vendor/uPlot.esm.js';

export { uPlot };

export const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

/** Calls /ui/api; throws an Error with the server's message on a non-2xx answer. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/ui/api/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (res.status === 401) {
    location.assign('/ui/login');
    throw new Error('signed out');
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data?.error?.message ?? `HTTP ${res.status}`);
  return data;
}

/** el('p', {class: 'x'}, 'text', child): attributes set one by one, text as text nodes. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const app = () => document.getElementById('app');

export function show(...nodes) {
  app().replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

export function fmt(x, digits = 4) {
  if (x === null || x === undefined) return '—';
  if (typeof x !== 'number') return String(x);
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? x.toExponential(digits - 1).replace(/\.?0+e/, 'e') : Number(x.toPrecision(digits)).toString();
}

export function money(x) {
  if (x === null || x === undefined) return '—';
  const s = Math.abs(x) >= 1e6 ? `${(Math.abs(x) / 1e6).toFixed(2)}M` : Math.abs(x) >= 1e3 ? `${(Math.abs(x) / 1e3).toFixed(1)}k` : Math.abs(x).toFixed(0);
  return `${x < 0 ? '-' : ''}$${s}`;
}

export function day(iso) {
  return iso === null || iso === undefined ? '—' : String(iso).slice(0, 10);
}

export function badge(text, kind = '') {
  return el('span', { class: `badge ${kind}` }, text);
}

/** A table: columns [{label, value(row), num}] over rows. */
export function table(columns, rows, caption) {
  return el('div', { class: 'table-wrap' }, el('table', {},
    caption ? el('caption', { class: 'muted' }, caption) : null,
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: c.num ? 'num' : '' }, c.label)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, columns.map((c) => {
      const v = c.value(r);
      return el('td', { class: c.num ? 'num' : '' }, v instanceof Node ? v : fmt(v));
    }))))));
}

/** key: value rows of a flat object (nested values as JSON). */
export function kvTable(obj) {
  return table([{ label: 'Field', value: (r) => r[0] }, { label: 'Value', value: (r) => el('code', {}, typeof r[1] === 'object' ? JSON.stringify(r[1]) : String(r[1])) }],
    Object.entries(obj ?? {}));
}

function inline(text) {
  // `code`, **bold**, [label](url) -> nodes; everything else stays text.
  const out = [];
  const re = /(`[^`]+`|\*\*[^*]+\*\*|\[[^\]]+\]\([^)\s]+\))/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const t = m[0];
    if (t.startsWith('`')) out.push(el('code', {}, t.slice(1, -1)));
    else if (t.startsWith('**')) out.push(el('strong', {}, t.slice(2, -2)));
    else {
      const [, label, url] = /^\[([^\]]+)\]\(([^)\s]+)\)$/.exec(t);
      out.push(/^https?:\/\//.test(url) ? el('a', { href: url, rel: 'noopener noreferrer' }, label) : `${label} (${url})`);
    }
    last = m.index + t.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** A model card's Markdown body as DOM: headings, paragraphs, lists, code blocks, tables as preformatted text. */
export function markdown(text) {
  const root = el('div', { class: 'markdown' });
  const lines = String(text).split('\n');
  let para = [];
  let list = null;
  const flush = () => {
    if (para.length > 0) root.append(el('p', {}, inline(para.join(' '))));
    para = [];
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('```')) {
      flush();
      const code = [];
      for (i++; i < lines.length && !lines[i].startsWith('```'); i++) code.push(lines[i]);
      root.append(el('pre', {}, el('code', {}, code.join('\n'))));
      continue;
    }
    const h = /^(#{1,4})\s+(.*)$/.exec(line);
    if (h) {
      flush();
      root.append(el(`h${Math.min(6, h[1].length + 2)}`, {}, inline(h[2])));
      continue;
    }
    const li = /^\s*[-*]\s+(.*)$/.exec(line);
    if (li) {
      if (para.length > 0) flush();
      if (list === null) {
        list = el('ul');
        root.append(list);
      }
      list.append(el('li', {}, inline(li[1])));
      continue;
    }
    if (line.startsWith('|')) {
      flush();
      const rows = [];
      for (; i < lines.length && lines[i].startsWith('|'); i++) rows.push(lines[i]);
      i--;
      root.append(el('pre', {}, rows.join('\n')));
      continue;
    }
    if (line.trim() === '') flush();
    else if (list !== null && /^\s+/.test(line)) list.lastChild.append(` ${line.trim()}`);
    else {
      list = null;
      para.push(line.trim());
    }
  }
  flush();
  return root;
}

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export const SERIES_VARS = ['--s1', '--s2', '--s3', '--s4', '--s5', '--s6'];

/**
 * A uPlot line chart in `container`: x values and one series per label, sized to the container; `log` for a log
 * y scale; `time` for an x axis of dates.
 */
export function lineChart(container, { title, xLabel, yLabel, x, series, log = false, time = false, height = 240, points = false }) {
  const fg = cssVar('--fg');
  const grid = cssVar('--line');
  const axis = (label) => ({ label, stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } });
  const yAxis = { ...axis(yLabel), size: 64, values: (_u, splits) => splits.map((v) => fmt(v, 3)) };
  const opts = {
    title, width: Math.max(280, container.clientWidth - 8), height,
    // Dates on a time axis in UTC, as the usage records' days are.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    // NOTE: one x value alone would make uPlot span years (time) or nothing; give it a day (or one unit) each side.
    scales: { x: x.length === 1 ? { time, range: [x[0] - (time ? 86_400 : 1), x[0] + (time ? 86_400 : 1)] } : { time }, y: log ? { distr: 3 } : {} },
    axes: [axis(xLabel), yAxis],
    series: [{ label: xLabel }, ...series.map((s, i) => ({
      label: s.label, stroke: cssVar(SERIES_VARS[i % SERIES_VARS.length]), width: 2, spanGaps: true,
      points: { show: s.points ?? points },
    }))],
  };
  const data = [x, ...series.map((s) => s.values)];
  const plot = new uPlot(opts, data, container);
  const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(280, container.clientWidth - 8), height }));
  ro.observe(container);
  return plot;
}
