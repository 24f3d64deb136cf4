// `ajar pull` and `--model org/name` through a mock hub on 127.0.0.1: the CLI runs in a child process (spawned
// asynchronously, so this process's mock hub can answer it) with HF_ENDPOINT and HF_HOME set to the mock and a
// temp folder. The evaluation loss is the PyTorch value in test/golden/gpt2-tiny/expected.json.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { repoRoot, type CliResult } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';
import { gpt2TinyRepo, startMockHub, type MockHub } from '../helpers/mock-hub.js';

const bin = fileURLToPath(new URL('../../../bin/ajar.js', import.meta.url));
const REPO = 'ajar-test/gpt2-tiny';

/** Run the CLI without blocking this process (runCli's spawnSync would starve the mock hub). */
function runCliAsync(args: string[], env: Record<string, string | undefined>, cwd = repoRoot): Promise<CliResult> {
  return new Promise((ok, fail) => {
    const fullEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['HF_HOME', 'HF_HUB_CACHE', 'HF_ENDPOINT', 'HF_TOKEN', 'HF_TOKEN_PATH', 'HF_HUB_OFFLINE']) delete fullEnv[k];
    for (const [k, v] of Object.entries(env)) if (v !== undefined) fullEnv[k] = v;
    const child = spawn(process.execPath, [bin, ...args], { env: fullEnv, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      ok({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe('ajar pull and --model org/name through a mock hub', () => {
  let hub: MockHub;
  let home: string;
  const env = (): Record<string, string> => ({ HF_ENDPOINT: hub.url, HF_HOME: home });

  before(async () => {
    hub = await startMockHub([gpt2TinyRepo(REPO)]);
    home = mkdtempSync(join(tmpdir(), 'ajar-hf-home-'));
  });
  after(async () => {
    await hub.close();
  });

  it('ajar eval --model org/name pulls into HF_HOME/hub and reports the PyTorch loss', async () => {
    const expected = readGoldenJson<{ eval: Record<string, { loss: number; tokens: number }> }>('gpt2-tiny/expected.json').eval['128'];
    const r = await runCliAsync(['eval', '--model', REPO, '--data', goldenPath('gpt2-tiny/eval.txt'), '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { loss: number; tokens: number };
    assert.equal(out.tokens, expected.tokens);
    assert.ok(Math.abs(out.loss - expected.loss) / expected.loss < 1e-4, `loss ${out.loss} vs ${expected.loss}`);
    assert.match(r.stderr, /ajar-test\/gpt2-tiny is not a local folder: pulling it from http:\/\/127\.0\.0\.1:\d+/);
    assert.ok(existsSync(join(home, 'hub', 'models--ajar-test--gpt2-tiny', 'refs', 'main')));
    assert.ok(!existsSync(join(home, 'hub', 'models--ajar-test--gpt2-tiny', 'snapshots', gpt2TinyRepo().revisions[1].commit, 'flax_model.msgpack')));
  });

  it('ajar pull --json: the whole repo, then nothing new the second time', async () => {
    const first = await runCliAsync(['pull', REPO, '--json'], env());
    assert.equal(first.code, 0, first.stderr);
    const a = JSON.parse(first.stdout) as { snapshot: string; files: { name: string }[]; downloaded_files: number };
    assert.equal(a.downloaded_files, 1, 'only the file the --model pull left out');
    assert.ok(existsSync(join(a.snapshot, 'flax_model.msgpack')));
    const second = await runCliAsync(['pull', `${REPO}@main`, '--json'], env());
    assert.equal(second.code, 0, second.stderr);
    const b = JSON.parse(second.stdout) as { snapshot: string; files: unknown[]; downloaded_files: number; downloaded_bytes: number };
    assert.equal(b.snapshot, a.snapshot);
    assert.equal(b.files.length, a.files.length);
    assert.equal(b.downloaded_files, 0);
    assert.equal(b.downloaded_bytes, 0);
  });

  it('ajar pull --cache-dir --include prints the snapshot folder', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'ajar-hub-cache-'));
    const r = await runCliAsync(['pull', `${REPO}@v1`, '--include', 'config.json', '--include', '*.txt', '--cache-dir', cacheDir], env());
    assert.equal(r.code, 0, r.stderr);
    const snapshot = r.stdout.trim();
    assert.ok(snapshot.startsWith(join(cacheDir, 'models--ajar-test--gpt2-tiny', 'snapshots')), snapshot);
    assert.ok(existsSync(join(snapshot, 'config.json')) && existsSync(join(snapshot, 'merges.txt')));
    assert.ok(!existsSync(join(snapshot, 'model.safetensors')));
    assert.match(r.stderr, /2 file\(s\), 2 downloaded/);
  });

  it('a local folder named like a hub id wins, with no request', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ajar-local-'));
    mkdirSync(join(cwd, 'ajar-test'));
    symlinkSync(goldenPath('gpt2-tiny'), join(cwd, REPO));
    const before = hub.requests.length;
    const r = await runCliAsync(['tokenize', '--model', REPO, '--file', goldenPath('gpt2-tiny/eval.txt'), '--json'], env(), cwd);
    assert.equal(r.code, 0, r.stderr);
    // The ids of OpenAI's reference encoder, recorded by make_gpt2_tiny.py.
    assert.deepEqual(JSON.parse(r.stdout), { ids: readGoldenJson<{ eval_ids: number[] }>('gpt2-tiny/expected.json').eval_ids });
    assert.equal(hub.requests.length, before);
  });

  it('errors are one line and exit 2: not an id, offline without a cache, unknown repo', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['pull', './some/dir'], env(), /^ajar pull: '\.\/some\/dir' is not a hub repo id; expected ORG\/NAME/],
      [['generate', '--model', 'ajar-test/other', '--prompt', 'x'], { ...env(), HF_HUB_OFFLINE: '1' },
        /^ajar generate: ajar-test\/other is neither a local folder nor in the cache at .*HF_HUB_OFFLINE is set/],
      [['pull', 'ajar-test/missing'], env(), /^ajar pull: repository ajar-test\/missing not found on http:\/\/127\.0\.0\.1:\d+/],
    ];
    for (const [args, e, pattern] of cases) {
      const r = await runCliAsync(args, e);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  it('ajar train --lora --init-from org/name records the hub id as the adapter\'s base_model_name_or_path', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'ajar-lora-hub-')), 'adapter');
    const r = await runCliAsync(['train', '--lora', '--init-from', REPO, '--data', goldenPath('release/train.txt'),
      '--max-iters', '1', '--block-size', '16', '--batch-size', '2', '--eval-iters', '1', '--sample-tokens', '0', '--out', out], env());
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { base_model_name_or_path: string };
    assert.equal(cfg.base_model_name_or_path, REPO);
    assert.match(readFileSync(join(out, 'README.md'), 'utf8'), new RegExp(`base_model: "${REPO}"`));
  });
});
