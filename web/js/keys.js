// Keys: list, create (scopes, limits, quota, expiry; the secret shown once), rotate and revoke, through the same
// checks and audit trail as `ajar keys` and /admin/keys; the latest audit entries below.
import { api, badge, day, el, show, table } from './common.js';

let info;

function numberField(id, label, hint) {
  return el('div', {}, el('label', { for: id }, label), el('input', { id, name: id, type: 'number', min: 1, step: 1, inputmode: 'numeric', 'aria-describedby': `${id}-hint` }),
    el('small', { id: `${id}-hint`, class: 'hint' }, hint));
}

function secretBox(title, view) {
  return el('div', { class: 'card secret', role: 'status', id: 'secret' },
    el('h2', {}, title),
    el('p', {}, 'Copy it now: it is shown this once and stored nowhere (only its hash is kept).'),
    el('pre', { class: 'mono', id: 'secret-value', tabindex: 0 }, view.key),
    el('button', { type: 'button', onclick: () => navigator.clipboard?.writeText(view.key) }, 'Copy'));
}

async function act(id, action, name) {
  const verb = action === 'revoke' ? 'Revoke' : 'Rotate';
  if (!confirm(`${verb} key ${id} (${name})? ${action === 'revoke' ? 'Clients using it stop at once.' : 'The old secret stops working at once.'}`)) return;
  try {
    const view = await api(`keys/${encodeURIComponent(id)}/${action}`, { method: 'POST', body: {} });
    await render(action === 'rotate' ? secretBox(`New secret for ${view.name}`, view) : el('p', { class: 'notice', role: 'status' }, `Key ${id} revoked.`));
  } catch (e) {
    await render(el('p', { class: 'error', role: 'alert' }, e.message));
  }
}

function createForm() {
  const served = info.served.map((m) => m.id);
  const form = el('form', { class: 'card', id: 'create-key' },
    el('h2', {}, 'Create a key'),
    el('div', { class: 'form' },
      el('div', {}, el('label', { for: 'name' }, 'Name'), el('input', { id: 'name', name: 'name', required: true, maxlength: 200 })),
      numberField('rpm', 'Requests per minute', 'empty: the server default'),
      numberField('tpm', 'Tokens per minute', 'empty: the server default'),
      numberField('quota_tokens', 'Token quota', 'empty: no quota'),
      el('div', {}, el('label', { for: 'quota_period' }, 'Quota period'), el('select', { id: 'quota_period', name: 'quota_period' },
        el('option', { value: 'month' }, 'month'), el('option', { value: 'day' }, 'day'))),
      el('div', {}, el('label', { for: 'expires_at' }, 'Expires'), el('input', { id: 'expires_at', name: 'expires_at', type: 'date' })),
      el('div', {}, el('label', { for: 'models' }, 'Models (scope)'), el('input', { id: 'models', name: 'models', placeholder: served.join(', ') || 'model ids, comma-separated', 'aria-describedby': 'models-hint' }),
        el('small', { id: 'models-hint', class: 'hint' }, 'empty: every served model')),
      el('div', { class: 'check' }, el('input', { id: 'allow_unknown_models', name: 'allow_unknown_models', type: 'checkbox', checked: served.length === 0 }),
        el('label', { for: 'allow_unknown_models' }, 'Allow models not served here'))),
    el('p', {}, el('button', { type: 'submit', class: 'primary' }, 'Create key')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const num = (k) => (f.get(k) === '' ? null : Number(f.get(k)));
    const models = String(f.get('models') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    const body = {
      name: String(f.get('name')), rpm: num('rpm'), tpm: num('tpm'), quota_tokens: num('quota_tokens'),
      quota_period: num('quota_tokens') === null ? null : f.get('quota_period'),
      expires_at: f.get('expires_at') === '' ? null : f.get('expires_at'),
      models: models.length === 0 ? null : models, allow_unknown_models: f.get('allow_unknown_models') === 'on',
    };
    try {
      const view = await api('keys', { method: 'POST', body });
      await render(secretBox(`New key: ${view.name}`, view));
      document.getElementById('secret-value')?.focus();
    } catch (err) {
      await render(el('p', { class: 'error', role: 'alert' }, err.message));
    }
  });
  return form;
}

async function render(message) {
  const [keys, audit] = await Promise.all([api('keys'), api('audit?limit=20')]);
  const status = (k) => badge(k.status, k.status === 'active' ? 'ok' : 'bad');
  show(
    el('div', { id: 'message', 'aria-live': 'polite' }, message ?? null),
    el('h2', {}, `Keys (${keys.data.length})`),
    keys.data.length === 0 ? el('p', { class: 'muted' }, 'No keys yet.') : table([
      { label: 'Id', value: (k) => el('code', {}, k.id) },
      { label: 'Name', value: (k) => k.name },
      { label: 'Status', value: status },
      { label: 'Created', value: (k) => day(k.created_at) },
      { label: 'Expires', value: (k) => day(k.expires_at) },
      { label: 'RPM', value: (k) => k.rpm ?? 'default', num: true },
      { label: 'TPM', value: (k) => k.tpm ?? 'default', num: true },
      { label: 'Quota', value: (k) => (k.quota_tokens === null ? 'none' : `${k.quota_tokens.toLocaleString('en-US')} / ${k.quota_period}`) },
      { label: 'Models', value: (k) => (k.models === null ? 'all' : k.models.join(', ')) },
      { label: 'Actions', value: (k) => (k.status === 'revoked' ? el('span', { class: 'muted' }, '—') : el('span', { class: 'row' },
        el('button', { type: 'button', 'aria-label': `Rotate key ${k.id}`, onclick: () => act(k.id, 'rotate', k.name) }, 'Rotate'),
        el('button', { type: 'button', class: 'danger', 'aria-label': `Revoke key ${k.id}`, onclick: () => act(k.id, 'revoke', k.name) }, 'Revoke'))) },
    ], keys.data),
    createForm(),
    el('h2', {}, 'Recent audit entries'),
    table([
      { label: 'Time (UTC)', value: (a) => new Date(a.ts).toISOString().replace('T', ' ').slice(0, 19) },
      { label: 'Actor', value: (a) => a.actor },
      { label: 'Action', value: (a) => a.action },
      { label: 'Key', value: (a) => a.keyId ?? '' },
      { label: 'From', value: (a) => a.remote ?? '' },
      { label: 'Detail', value: (a) => el('code', {}, a.detail === null ? '' : JSON.stringify(a.detail)) },
    ], audit.data));
}

async function main() {
  info = await api('info');
  await render();
}

main().catch((e) => show(el('p', { class: 'error', role: 'alert' }, e.message)));
