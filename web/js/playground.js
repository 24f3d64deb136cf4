// Playground: chat with a served model or adapter through the OpenAI-compatible chat handler, streamed, with
// temperature, top-p, max tokens and stop; each reply shows the tokens it cost.
import { api, csrf, el, show } from './common.js';

const messages = [];

/** Reads an SSE body: calls onData with each parsed `data:` payload until [DONE]. */
async function readEvents(res, onData) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
      if (data === '[DONE]') return;
      if (data !== '') onData(JSON.parse(data));
    }
  }
}

function field(id, label, attrs) {
  return el('div', {}, el('label', { for: id }, label), el('input', { id, name: id, ...attrs }));
}

async function main() {
  const info = await api('info');
  if (info.served.length === 0) {
    show(el('p', { role: 'status' }, 'This dashboard serves no model, so there is nothing to chat with. Start it with ',
      el('code', {}, 'ajar serve --model DIR --dashboard --admin-token-file F'), ' to use the playground.'));
    return;
  }
  const transcript = el('div', { class: 'transcript', 'aria-live': 'polite', id: 'transcript' });
  const form = el('form', { class: 'card', id: 'chat' },
    el('div', { class: 'form' },
      el('div', {}, el('label', { for: 'model' }, 'Model'), el('select', { id: 'model', name: 'model' },
        info.served.map((m) => el('option', { value: m.id }, m.parent === null ? m.id : `${m.id} (adapter on ${m.parent})`)))),
      field('temperature', 'Temperature', { type: 'number', min: 0, max: 2, step: 0.1, value: 0.8 }),
      field('top_p', 'Top-p', { type: 'number', min: 0, max: 1, step: 0.05, value: 1 }),
      field('max_tokens', 'Max tokens', { type: 'number', min: 1, step: 1, value: 32 }),
      field('stop', 'Stop (comma-separated)', { type: 'text' })),
    el('p', {}, el('label', { for: 'prompt' }, 'Message')),
    el('textarea', { id: 'prompt', name: 'prompt', rows: 3, required: true }),
    el('p', { class: 'row' }, el('button', { type: 'submit', class: 'primary', id: 'send' }, 'Send'),
      el('button', { type: 'button', id: 'clear', onclick: () => { messages.length = 0; transcript.replaceChildren(); } }, 'Clear')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const text = String(f.get('prompt')).trim();
    if (text === '') return;
    messages.push({ role: 'user', content: text });
    transcript.append(el('div', { class: 'msg user' }, text));
    const reply = el('div', { class: 'msg assistant' });
    const body = el('span', { class: 'text' });
    reply.append(body);
    transcript.append(reply);
    form.elements.prompt.value = '';
    const send = document.getElementById('send');
    send.disabled = true;
    const stop = String(f.get('stop') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    try {
      const res = await fetch('/ui/api/chat', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'text/event-stream' },
        body: JSON.stringify({
          model: f.get('model'), messages, stream: true, stream_options: { include_usage: true },
          temperature: Number(f.get('temperature')), top_p: Number(f.get('top_p')), max_tokens: Number(f.get('max_tokens')),
          ...(stop.length > 0 ? { stop } : {}),
        }),
      });
      if (!res.ok) {
        const err = await res.json().catch(() => ({}));
        throw new Error(err?.error?.message ?? `HTTP ${res.status}`);
      }
      let content = '';
      let finish = null;
      await readEvents(res, (chunk) => {
        if (chunk.error) throw new Error(chunk.error.message);
        const choice = chunk.choices?.[0];
        if (choice?.delta?.content) {
          content += choice.delta.content;
          body.textContent = content;
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) {
          const u = chunk.usage;
          reply.append(el('small', { class: 'usage' }, `${u.prompt_tokens} prompt + ${u.completion_tokens} completion = ${u.total_tokens} tokens`
            + `${finish ? ` · finish: ${finish}` : ''}`));
        }
      });
      messages.push({ role: 'assistant', content });
      reply.dataset.done = 'true';
    } catch (err) {
      reply.append(el('p', { class: 'error', role: 'alert' }, err.message));
      messages.pop();
    } finally {
      send.disabled = false;
    }
  });
  show(form, transcript);
}

main().catch((e) => show(el('p', { class: 'error', role: 'alert' }, e.message)));
