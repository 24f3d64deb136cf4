// A real `ajar serve` under load it must shrug off: 10,000 idle connections (from one address, and from one
// address with no per-address cap) while /health still answers, and a flood of bad keys at 300 requests a second
// while a stream keeps at least 80% of its unloaded token rate. No secret reaches the server's log.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeKey, openStream, sleep, slowModelFolder, startServe, until, type Live, type LiveStream } from './live.js';

let dir: string;
let modelDir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ajar-flood-'));
  modelDir = slowModelFolder(join(dir, 'slow'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Open n connections to port from localAddress, 500 at a time; each stays open until the peer closes it. */
async function idleConnections(port: number, n: number, localAddress: string): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = await Promise.all(Array.from({ length: Math.min(500, n - i) }, () => new Promise<Socket>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', localAddress });
      s.on('error', () => {});
      s.resume();
      s.once('connect', () => resolve(s));
      s.once('close', () => resolve(s));
    })));
    out.push(...batch);
  }
  return out;
}

/** GET path on a fresh connection from localAddress: its status, body and milliseconds. */
function get(port: number, path: string, localAddress: string): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => {
        body += b.toString();
      });
      res.once('end', () => resolve({ status: res.statusCode!, body, ms: performance.now() - t0 }));
    });
    req.once('timeout', () => req.destroy(new Error(`${path} did not answer in 5 s`)));
    req.once('error', reject);
    req.end();
  });
}

describe('serve: floods', () => {
  it('10,000 idle connections leave /health answering', async (t) => {
    const db = join(dir, 'idle.db');
    for (const [args, from, healthFrom] of [
      [[], '127.0.0.1', '127.0.0.2'], // the per-address cap (64) refuses the rest
      [['--max-connections-per-ip', '0'], '127.0.0.1', '127.0.0.1'], // the server's cap (1000) sheds the oldest idle
    ] as const) {
      const live = await startServe(modelDir, db, [...args]);
      const sockets = await idleConnections(live.port, 10_000, from);
      const h = await get(live.port, '/health', healthFrom);
      assert.equal(h.status, 200);
      assert.ok(h.ms < 2_000, `/health took ${h.ms.toFixed(0)} ms beside 10,000 idle connections (${args.join(' ') || 'defaults'})`);
      const metrics = (await get(live.port, '/metrics', healthFrom)).body;
      const open = Number(/^ajar_connections_open (\d+)$/m.exec(metrics)?.[1]);
      for (const s of sockets) s.destroy();
      live.proc.kill('SIGTERM');
      assert.equal(await live.exited, 0);
      assert.ok(open <= 1_001, `the server holds ${open} of the 10,000 connections`);
      t.diagnostic(`${args.join(' ') || 'defaults'}: /health in ${h.ms.toFixed(0)} ms beside 10,000 idle connections; the server held ${open}`);
    }
  });

  it('a bad-key flood at 300 requests a second keeps a stream above 80% of its unloaded token rate', async (t) => {
    const db = join(dir, 'flood.db');
    const { key } = await makeKey(db);
    let live: Live | undefined;
    const fakes = Array.from({ length: 50 }, (_, i) => `ajar_sk_${i.toString(16).padStart(16, '0')}_${'z'.repeat(43)}`);
    try {
      live = await startServe(modelDir, db, ['--log-level', 'info']);
      // NOTE: windows alternate, quiet then flooded, on one stream each pair, and the pairs' median ratio counts, so
      // that other work on the machine moves both sides of a pair alike.
      const window = async (s: LiveStream, flood: boolean): Promise<number> => {
        const n0 = s.tokens();
        const t0 = performance.now();
        let sent = 0;
        let answered = 0;
        const agent = new Agent({ keepAlive: true, maxSockets: 16, localAddress: '127.0.0.3' });
        // Paced by the clock, not by the timer's ticks, so a loaded machine still sends 300 a second.
        const timer = flood ? setInterval(() => {
          const due = Math.floor(((performance.now() - t0) / 1000) * 300);
          while (sent < due) {
            sent++;
            const req = request({
              host: '127.0.0.1', port: live!.port, path: '/v1/models', agent,
              headers: { authorization: `Bearer ${fakes[sent % fakes.length]}` },
            }, (res) => {
              res.resume();
              res.once('end', () => answered++);
            });
            req.on('error', () => {});
            req.end();
          }
        }, 5) : undefined;
        await sleep(1_200);
        const seconds = (performance.now() - t0) / 1000;
        const r = (s.tokens() - n0) / seconds;
        clearInterval(timer);
        agent.destroy();
        if (flood) {
          assert.ok(sent / seconds >= 280 && answered >= 0.8 * sent, `the flood was sent and answered (${answered} of ${sent} in ${seconds.toFixed(2)} s)`);
          floods.push(sent / seconds);
        }
        return r;
      };
      const floods: number[] = [];
      const pairs: Array<[number, number]> = [];
      for (let i = 0; i < 3; i++) {
        const s = await openStream(live.url, key, 'Flood', 1000);
        await until(() => s.tokens() >= 20, 20_000, 'twenty tokens');
        pairs.push([await window(s, false), await window(s, true)]);
        await s.done.catch(() => '');
      }
      const ratios = pairs.map(([q, f]) => f / q).sort((x, y) => x - y);
      const median = ratios[1];
      assert.ok(median >= 0.8, `token rate under the flood / without, per pair: ${ratios.map((x) => x.toFixed(2)).join(', ')} `
        + `(${pairs.map(([q, f]) => `${q.toFixed(0)}->${f.toFixed(0)}`).join(', ')} tokens/s)`);
      t.diagnostic(`flood: ${floods.map((f) => f.toFixed(0)).join(', ')} bad-key requests/s; stream tokens/s quiet->flooded `
        + `${pairs.map(([q, f]) => `${q.toFixed(0)}->${f.toFixed(0)}`).join(', ')}; median ratio ${(100 * median).toFixed(0)}%`);
      const log = live.stderr();
      for (const secret of [key, ...fakes]) assert.ok(!log.includes(secret), 'no key in the log');
    } finally {
      live?.proc.kill('SIGTERM');
      await live?.exited;
    }
  });
});
