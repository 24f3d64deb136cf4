// The load generator of npm run bench:serve, in its own process: an open-loop schedule (request i is sent at
// i / rate seconds whatever the answers do) of POST /v1/completions, round robin over the ports; each latency runs
// from the request's send to its response's end. Prints one JSON line: {latencies_ms, errors, late_ms}.
// Usage: node dist/bench/overhead/load.js --ports P1,P2 --key KEY --rate 200 --seconds 5
import { Agent, request } from 'node:http';

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return process.argv[i + 1];
}
const ports = arg('ports').split(',').map(Number);
const key = arg('key');
const rate = Number(arg('rate'));
const seconds = Number(arg('seconds'));

const agent = new Agent({ keepAlive: true, maxSockets: 128 });
const body = JSON.stringify({ model: 'stub', prompt: 'Hello', max_tokens: 1, temperature: 0 });
const latencies: number[] = [];
let errors = 0;
let lateMs = 0; // the most the generator fell behind its schedule (its own noise, reported)

function one(port: number): Promise<void> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request({
      host: '127.0.0.1', port, agent, method: 'POST', path: '/v1/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.once('end', () => {
        if (res.statusCode === 200) latencies.push(performance.now() - t0);
        else errors++;
        resolve();
      });
    });
    req.once('error', () => {
      errors++;
      resolve();
    });
    req.end(body);
  });
}

const pending: Array<Promise<void>> = [];
const total = Math.round(rate * seconds);
const start = performance.now();
let sent = 0;
while (sent < total) {
  const now = performance.now();
  const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
  if (due > sent + 1) lateMs = Math.max(lateMs, now - (start + (sent * 1000) / rate));
  while (sent < due) pending.push(one(ports[sent++ % ports.length]));
  // NOTE: sleep to the next send time (timers are ~1 ms coarse); a busy loop would take a core from the servers.
  const next = start + (sent * 1000) / rate;
  await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now() - 0.5)));
}
await Promise.all(pending);
agent.destroy();
process.stdout.write(`${JSON.stringify({ latencies_ms: latencies, errors, late_ms: lateMs })}\n`);
