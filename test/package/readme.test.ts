// The README's shell blocks (```sh and ```bash) run, in order, in a fresh copy of the checkout, and each exits 0.
// A block is skipped only when the line before it says `<!-- readme-test: skip (reason) -->`. What the test changes,
// so that the tour takes seconds: `npx ajar train` commands get `--max-iters 3 --eval-interval 3 --eval-iters 2`
// appended (the last value of a flag wins), `npx ajar serve` gets a free port in place of 8080, and AJAR_HOME points
// into the temporary folder. `npm ci` is replaced by what it leaves behind: the checkout's node_modules linked into the
// copy and its built dist/src copied. `npx ajar` runs the copy's bin/ajar.js directly: inside a checkout of ajar itself,
// npx would first link the checkout into its own cache and rebuild it (a minute, once per folder).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/cli.js';

export interface ShellBlock {
  line: number;
  script: string;
  skip?: string;
}

/** The ```sh / ```bash blocks of a Markdown text, with the skip reason of a marked block. */
export function shellBlocks(markdown: string): ShellBlock[] {
  const lines = markdown.split('\n');
  const blocks: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash)\s*$/.test(lines[i])) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    const marker = lines.slice(0, start).reverse().find((l) => l.trim() !== '')?.match(/^<!-- readme-test: skip \((.+)\) -->$/);
    blocks.push({ line: start + 1, script: body.join('\n'), ...(marker ? { skip: marker[1] } : {}) });
  }
  return blocks;
}

/** A command line without its trailing comment (a `#` after whitespace, outside quotes). */
function withoutComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== '') {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i).trimEnd();
    }
  }
  return line;
}

/** The block as the test runs it: continuation lines joined, comments dropped, training capped, the port moved. */
export function testScript(script: string, port: number): string {
  return script.replace(/\\\n\s*/g, ' ').split('\n').map(withoutComment).map((l) => {
    let out = l.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`);
    const background = /\s&$/.test(out);
    if (background) out = out.replace(/\s&$/, '');
    if (/^npx ajar train\b/.test(out)) out += ' --max-iters 3 --eval-interval 3 --eval-iters 2';
    if (/^npx ajar serve\b/.test(out)) out += ` --port ${port}`;
    return background ? `${out} &` : out;
  }).join('\n');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** What `npm ci` leaves in a checkout, for a copy of it: the installed packages (linked) and the build (dist/src). */
function installInto(copy: string): void {
  symlinkSync(join(repoRoot, 'node_modules'), join(copy, 'node_modules'), 'dir');
  cpSync(join(repoRoot, 'dist', 'src'), join(copy, 'dist', 'src'), { recursive: true });
}

/** A folder holding an `npx` that runs `npx ajar ...` as `node COPY/bin/ajar.js ...` and anything else with npm's npx. */
function npxShim(dir: string, copy: string): string {
  const real = spawnSync('sh', ['-c', 'command -v npx'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(real !== '', 'npx is on PATH');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'npx'), `#!/bin/sh\nif [ "$1" = ajar ]; then shift; exec "${process.execPath}" "${join(copy, 'bin', 'ajar.js')}" "$@"; fi\n`
    + `exec "${real}" "$@"\n`, { mode: 0o755 });
  return dir;
}

describe('README: every shell block runs in order on a fresh copy of the checkout', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-readme-'));
  const copy = join(tmp, 'ajar');
  const blocks = shellBlocks(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
  let port = 0;
  after(() => rmSync(tmp, { recursive: true, force: true }));

  before(async () => {
    // The files a fresh clone has: tracked, plus new ones not yet committed (none that .gitignore ignores).
    const ls = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(ls.status, 0, `git ls-files: ${ls.stderr}`);
    for (const f of ls.stdout.split('\0').filter((p) => p !== '')) {
      mkdirSync(dirname(join(copy, f)), { recursive: true });
      cpSync(join(repoRoot, f), join(copy, f));
    }
    installInto(copy);
    port = await freePort();
  });

  it('has shell blocks, and every skip gives a reason', () => {
    assert.ok(blocks.length >= 8, `${blocks.length} blocks`);
    const skipped = blocks.filter((b) => b.skip !== undefined);
    assert.ok(skipped.length <= 4, `${skipped.length} skipped: keep skips few`);
    for (const b of skipped) assert.ok(b.skip!.length > 20, `README.md:${b.line}: say why the block is skipped`);
  });

  it('the blocks exit 0, in order', () => {
    const PATH = `${npxShim(join(tmp, 'bin'), copy)}${delimiter}${process.env.PATH ?? ''}`;
    const env = { ...process.env, PATH, AJAR_HOME: join(tmp, 'home'), HF_HUB_OFFLINE: '1', npm_config_update_notifier: 'false' };
    for (const b of blocks.filter((x) => x.skip === undefined)) {
      const script = testScript(b.script, port);
      const t0 = Date.now();
      const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: copy, env, encoding: 'utf8', timeout: 120_000 });
      console.log(`# README.md:${b.line}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.equal(r.status, 0, `README.md:${b.line} exited ${r.status ?? r.signal}:\n${script}\n--- stderr:\n${r.stderr.slice(-3000)}`);
    }
  });
});
