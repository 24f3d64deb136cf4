// Usage: requests and tokens per key per UTC day (charts and a table), filtered by key and dates, with CSV export.
import { api, el, lineChart, show, table } from './common.js';

const filter = { key: '', from: '', to: '' };

function query() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v !== '') q.set(k, v);
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

function chart(holder, rows, title, value) {
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const keys = [...new Set(rows.map((r) => r.key_id))].sort();
  const x = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  const series = keys.map((k) => ({
    label: k, values: days.map((d) => { const r = rows.find((row) => row.day === d && row.key_id === k); return r ? value(r) : 0; }),
  }));
  lineChart(holder, { xLabel: 'day (UTC)', yLabel: title, x, series, time: true, points: true });
}

async function render(keys) {
  const usage = await api(`usage${query()}`);
  const rows = usage.data;
  const total = (f) => rows.reduce((s, r) => s + f(r), 0);
  const form = el('form', { class: 'card form', id: 'usage-filter' },
    el('div', {}, el('label', { for: 'key' }, 'Key'), el('select', { id: 'key', name: 'key' }, el('option', { value: '' }, 'every key'),
      keys.map((k) => el('option', { value: k.id, selected: filter.key === k.id }, `${k.name} (${k.id})`)))),
    el('div', {}, el('label', { for: 'from' }, 'From'), el('input', { id: 'from', name: 'from', type: 'date', value: filter.from })),
    el('div', {}, el('label', { for: 'to' }, 'To'), el('input', { id: 'to', name: 'to', type: 'date', value: filter.to })),
    el('div', {}, el('button', { type: 'submit', class: 'primary' }, 'Apply')),
    el('div', {}, el('a', { class: 'button', href: `/ui/api/usage.csv${query()}`, download: 'ajar-usage.csv', id: 'csv' }, 'Export CSV')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    for (const k of Object.keys(filter)) filter[k] = String(f.get(k) ?? '');
    await render(keys);
  });
  const tokensHolder = el('div');
  const requestsHolder = el('div');
  show(form,
    el('p', { role: 'status' }, `${rows.length} key-days: ${total((r) => r.requests).toLocaleString('en-US')} requests, `
      + `${total((r) => r.prompt_tokens + r.completion_tokens).toLocaleString('en-US')} tokens.`),
    rows.length === 0 ? el('p', { class: 'muted' }, 'No usage in this range.') : el('div', { class: 'grid' },
      el('section', { class: 'card chart', 'aria-label': 'Tokens per day' }, el('h3', {}, 'Tokens per day'), tokensHolder),
      el('section', { class: 'card chart', 'aria-label': 'Requests per day' }, el('h3', {}, 'Requests per day'), requestsHolder)),
    table([
      { label: 'Key', value: (r) => el('code', {}, r.key_id) },
      { label: 'Day (UTC)', value: (r) => r.day },
      { label: 'Requests', value: (r) => r.requests, num: true },
      { label: 'Prompt tokens', value: (r) => r.prompt_tokens, num: true },
      { label: 'Completion tokens', value: (r) => r.completion_tokens, num: true },
      { label: 'Total tokens', value: (r) => r.prompt_tokens + r.completion_tokens, num: true },
    ], rows));
  if (rows.length > 0) {
    chart(tokensHolder, rows, 'tokens', (r) => r.prompt_tokens + r.completion_tokens);
    chart(requestsHolder, rows, 'requests', (r) => r.requests);
  }
}

async function main() {
  const keys = await api('keys');
  await render(keys.data);
}

main().catch((e) => show(el('p', { class: 'error', role: 'alert' }, e.message)));
