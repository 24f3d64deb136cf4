// Models and releases: each model folder, adapter, open release, closed bundle and hybrid release under --models,
// with its card, evaluation results, licence, checksum verification, adapters, privacy record and release history.
import { api, badge, day, el, fmt, kvTable, markdown, show, table } from './common.js';

const KIND_LABEL = {
  model: 'model folder', adapter: 'LoRA adapter', 'open-release': 'open release', 'closed-bundle': 'closed bundle',
  'hybrid-release': 'hybrid release',
};

function verification(v) {
  if (v === null) return null;
  return el('div', {}, el('h3', {}, 'Checksums'), Object.entries(v).map(([part, r]) => el('p', { dataset: { verify: part } },
    badge(r.ok ? 'verified' : 'failed', r.ok ? 'ok' : 'bad'), ` ${part}: ${r.checked} file(s) checked against `
      + `${r.kind === 'open' ? 'SHA256SUMS' : 'the manifest (integrity only: no key here)'}`,
    r.problems.length > 0 ? el('ul', {}, r.problems.map((p) => el('li', { class: 'error' }, p))) : null)));
}

function results(rows) {
  if (rows.length === 0) return null;
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))];
  return el('div', {}, el('h3', {}, 'Evaluation results'), table([
    { label: 'Task', value: (r) => r.task }, { label: 'Data', value: (r) => r.dataset },
    ...names.map((n) => ({ label: n, value: (r) => r.metrics[n] ?? null, num: true })),
    { label: 'Source', value: (r) => r.source }, { label: 'Date', value: (r) => day(r.date) },
  ], rows));
}

function releases(rows) {
  if (rows.length === 0) return null;
  return el('div', {}, el('h3', {}, 'Releases'), table([
    { label: 'Kind', value: (r) => r.kind }, { label: 'Name', value: (r) => r.name }, { label: 'Date', value: (r) => day(r.date) },
    { label: 'Where', value: (r) => el('code', {}, r.out) },
    { label: 'Licence / key', value: (r) => r.license ?? (r.key_id ? `key ${r.key_id}` : '—') },
    { label: 'Present', value: (r) => badge(r.present ? 'yes' : 'missing', r.present ? 'ok' : 'bad') },
    { label: 'Model unchanged', value: (r) => (r.same_model === null ? '—' : badge(r.same_model ? 'yes' : 'changed since', r.same_model ? 'ok' : 'warn')) },
  ], rows));
}

function entry(m) {
  const ok = m.verification === null ? null : Object.values(m.verification).every((v) => v.ok);
  return el('details', { class: 'card', open: true, dataset: { entry: m.name } },
    el('summary', {}, el('strong', {}, m.name), ' ', badge(KIND_LABEL[m.kind] ?? m.kind),
      m.architecture ? ` ${m.architecture}` : '', ok === null ? '' : [' ', badge(ok ? 'checksums ok' : 'checksums failed', ok ? 'ok' : 'bad')],
      m.license ? [' ', badge(`licence: ${m.license}`)] : '', m.privacy ? [' ', badge('DP-SGD', 'warn')] : ''),
    m.errors.length > 0 ? el('ul', {}, m.errors.map((e) => el('li', { class: 'error' }, e))) : null,
    m.bundle ? el('p', {}, `Bundle '${m.bundle.name}' (${m.bundle.content}), key id `, el('code', {}, m.bundle.key_id), `, sealed ${day(m.bundle.created)}.`) : null,
    verification(m.verification),
    results(m.results),
    m.privacy ? el('div', {}, el('h3', {}, 'Privacy (DP-SGD)'), kvTable(m.privacy)) : null,
    m.adapters.length > 0 ? el('div', {}, el('h3', {}, 'Adapters'), el('ul', {}, m.adapters.map((a) => el('li', {}, el('code', {}, a))))) : null,
    releases(m.releases),
    m.training_args ? el('details', {}, el('summary', {}, 'Training arguments'), kvTable(m.training_args)) : null,
    m.card ? el('details', {}, el('summary', {}, 'Model card'),
      Object.keys(m.card.meta).length > 0 ? el('details', {}, el('summary', {}, 'Card metadata'), kvTable(m.card.meta)) : null,
      markdown(m.card.body)) : null);
}

async function main() {
  const [info, list] = await Promise.all([api('info'), api('models')]);
  if (info.models === null) {
    show(el('p', {}, 'No models folder: start the dashboard with ', el('code', {}, '--models DIR'), '.'));
    return;
  }
  if (list.data.length === 0) {
    show(el('p', {}, `No model folder, adapter or release under ${info.models}.`));
    return;
  }
  show(el('p', { class: 'muted' }, `${list.data.length} folder(s) under ${info.models}. Checksums are verified each time this page loads (${fmt(list.data.length)} entries).`),
    list.data.map(entry));
}

main().catch((e) => show(el('p', { class: 'error', role: 'alert' }, e.message)));
