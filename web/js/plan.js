// Plan: open a scenario file, see the cash curves, the tornado, the recommendation and its reasons; edit an input
// and the server recomputes the whole plan (src/plan) with it.
import { api, el, fmt, money, show, table } from './common.js';

const state = { text: null, name: 'scenario.yaml', overrides: {} };

function svgImage(svg, alt) {
  return el('img', { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`, alt });
}

function picker() {
  const input = el('input', { id: 'scenario-file', type: 'file', accept: '.yaml,.yml,text/yaml' });
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    if (!file) return;
    state.text = await file.text();
    state.name = file.name;
    state.overrides = {};
    await compute();
  });
  return el('div', { class: 'card row' }, el('label', { for: 'scenario-file' }, 'Scenario file'), input,
    state.text === null ? el('span', { class: 'muted' }, 'A YAML scenario as ', el('code', {}, 'ajar plan'), ' reads it (see examples/plan/scenario.yaml).')
      : el('span', { id: 'scenario-name' }, `Showing ${state.name}${Object.keys(state.overrides).length > 0 ? `, ${Object.keys(state.overrides).length} input(s) edited` : ''}.`));
}

function render(view) {
  const { plan } = view;
  const r = plan.recommendation;
  const strategies = ['open', 'closed', 'hybrid'];
  const inputs = el('form', { class: 'card', id: 'inputs' }, el('h2', {}, 'Inputs'),
    el('p', { class: 'muted' }, 'Change a number and press Enter (or Recompute): the plan is computed again with it.'),
    el('div', { class: 'form' }, view.inputs.map((i) => el('div', {},
      el('label', { for: `in-${i.path}` }, i.path),
      el('input', { id: `in-${i.path}`, name: i.path, type: 'number', step: 'any', value: i.value, 'aria-describedby': `doc-${i.path}` }),
      el('small', { id: `doc-${i.path}`, class: 'hint' }, `${i.unit}${i.source === 'given' ? '' : ` · ${i.source}`}`)))),
    el('p', {}, el('button', { type: 'submit', class: 'primary' }, 'Recompute')));
  inputs.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const i of view.inputs) {
      const v = Number(inputs.elements[i.path].value);
      if (Number.isFinite(v) && v !== i.value) state.overrides[i.path] = v;
    }
    await compute();
  });
  show(picker(),
    el('section', { class: 'card', id: 'recommendation', 'aria-live': 'polite' }, el('h2', {}, `Recommendation: ${r.strategy}`),
      el('p', {}, r.text),
      el('h3', {}, 'Why'), el('ul', {}, r.contributions.slice(0, 6).map((c) => el('li', {},
        `${c.component}: ${c.value >= 0 ? '+' : ''}${fmt(c.value, 3)} points for ${r.strategy} over ${r.runner_up}`)))),
    el('div', { class: 'grid plan-charts' },
      el('section', { class: 'card' }, el('h2', {}, 'Cash'), svgImage(view.cash_svg, 'Cumulative cash of each strategy by month')),
      el('section', { class: 'card' }, el('h2', {}, 'Sensitivity (tornado)'), svgImage(view.tornado_svg, 'NPV swing of the recommended strategy per input'))),
    table([
      { label: 'Strategy', value: (s) => s },
      { label: 'NPV', value: (s) => money(plan.metrics[s].npv_usd), num: true },
      { label: 'Break-even month', value: (s) => plan.metrics[s].break_even_month ?? 'never', num: true },
      { label: 'Lowest cash', value: (s) => money(plan.metrics[s].min_cash_usd), num: true },
      { label: 'Revenue', value: (s) => money(plan.metrics[s].total_revenue_usd), num: true },
      { label: 'Cost', value: (s) => money(plan.metrics[s].total_cost_usd), num: true },
      { label: 'Combined score', value: (s) => fmt(r.combined[s], 3), num: true },
    ], strategies, `${plan.scenario.name}: ${plan.scenario.horizon_months} months`),
    inputs);
}

async function compute() {
  try {
    render(await api('plan', { method: 'POST', body: { scenario: state.text, file_name: state.name, overrides: state.overrides } }));
  } catch (e) {
    show(picker(), el('p', { class: 'error', role: 'alert' }, e.message));
  }
}

show(picker(), el('p', { class: 'muted' }, 'Open a scenario file to see its plan.'));
