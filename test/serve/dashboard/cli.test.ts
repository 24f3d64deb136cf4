// `ajar dashboard` and `ajar serve --dashboard` flags: usage mistakes are one line and exit 2; the real dashboard
// process answers /ui with the sign-in redirect and serves no API.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot, runCli } from '../../helpers/cli.js';
import { ADMIN_TOKEN } from '../helpers.js';

describe('ajar dashboard: flags', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-dash-cli-'));
  const tokenFile = join(tmp, 'admin.token');
  writeFileSync(tokenFile, ADMIN_TOKEN, { mode: 0o600 });
  const env = { AJAR_HOME: join(tmp, 'home'), AJAR_ADMIN_TOKEN: '' };
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('says what is wrong in one line, exit 2', () => {
    const cases: Array<[string[], RegExp]> = [
      [['dashboard'], /^ajar dashboard: an admin token is required to sign in: give --admin-token-file F/],
      [['dashboard', '--admin-token-file', tokenFile, '--runs', join(tmp, 'nope')], /^ajar dashboard: --runs .*nope is not a folder$/],
      [['dashboard', '--admin-token-file', tokenFile, '--port', 'x'], /^ajar dashboard: --port/],
      [['serve', '--model', 'x', '--runs', tmp], /^ajar serve: --runs and --models are the dashboard's folders; add --dashboard$/],
    ];
    for (const [args, want] of cases) {
      const r = runCli(args, { env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trim(), want);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  });

  it('serves /ui (sign-in first) and no API', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ajar.js'), 'dashboard', '--admin-token-file', tokenFile, '--port', '0',
      '--runs', tmp], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const base = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /http:\/\/(127\.0\.0\.1:\d+)\/ui/.exec(err);
          if (m) resolve(`http://${m[1]}`);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
      });
      const page = await fetch(`${base}/ui/runs`, { redirect: 'manual' });
      assert.equal(page.status, 303);
      assert.equal(page.headers.get('location'), '/ui/login');
      assert.equal((await fetch(`${base}/v1/models`)).status, 404);
      assert.equal((await fetch(`${base}/ui/login`)).status, 200);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
