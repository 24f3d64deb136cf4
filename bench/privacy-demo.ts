// npm run privacy-demo: what DP-SGD buys, measured. A small character-level language model is trained twice on the
// synthetic reviews of examples/data/sentiment (each review one example, the unit of privacy) with the same planted
// canaries ("my PIN is {digits:6}", each 8 times): without DP, and with `ajar train --dp --dp-target-epsilon 8`.
// `ajar audit` then measures both: canary exposure, loss-threshold membership inference on the training reviews
// against held-out ones, and verbatim extraction. Prints the table the README shows.
// Usage: node dist/bench/privacy-demo.js [--json] [--keep DIR]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const MEMBERS = 600; // training reviews
const NON_MEMBERS = 300; // held-out reviews (the validation data, never trained on)
const TRAIN = [
  '--task', 'instruct', '--n-layer', '2', '--n-head', '4', '--n-embd', '64', '--block-size', '64', '--batch-size', '16',
  '--max-iters', '600', '--eval-interval', '200', '--eval-iters', '5', '--warmup-iters', '20', '--lr', '3e-3', '--keep-best', 'false',
  '--sample-tokens', '0', '--canaries', '10', '--canary-repeats', '8', '--seed', '1337',
];
const RUNS: Array<{ name: string; flags: string[] }> = [
  { name: 'no DP', flags: [] },
  { name: 'DP-SGD', flags: ['--dp', '--dp-target-epsilon', '8', '--dp-max-grad-norm', '1'] },
];

interface Row {
  run: string;
  epsilon: number | null;
  delta: number | null;
  val_loss: number;
  exposure_mean: number;
  exposure_max: number;
  exposure_max_possible: number;
  canaries_extracted: number;
  canaries: number;
  /** How the exposures were measured: search, sample, search+sample (see `ajar audit --help`). */
  exposure_method: string;
  membership_auc: number;
  membership_advantage: number;
  extraction_rate: number;
  train_seconds: number;
}

function ajar(args: string[]): string {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ajar.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 1_800_000 });
  if (r.status !== 0) throw new Error(`ajar ${args[0]} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  return r.stdout;
}

/** The reviews as prompt/completion records with an empty prompt: one example each, the loss on the whole text. */
function writeReviews(dir: string): { members: string; nonMembers: string } {
  const texts = readFileSync(join(root, 'examples', 'data', 'sentiment', 'train.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const write = (name: string, list: string[]): string => {
    const path = join(dir, name);
    writeFileSync(path, list.map((t) => `${JSON.stringify({ prompt: '', completion: t })}\n`).join(''));
    return path;
  };
  return { members: write('members.jsonl', texts.slice(0, MEMBERS)), nonMembers: write('non_members.jsonl', texts.slice(MEMBERS, MEMBERS + NON_MEMBERS)) };
}

function runOne(dir: string, data: { members: string; nonMembers: string }, run: { name: string; flags: string[] }, i: number): Row {
  const out = join(dir, `run${i}`);
  process.stderr.write(`privacy-demo: training ${run.name} (${out})...\n`);
  const t = JSON.parse(ajar(['train', '--data', data.members, '--val-data', data.nonMembers, ...TRAIN, ...run.flags, '--out', out, '--json'])) as {
    val_loss: number; seconds: number; canaries_file: string;
  };
  process.stderr.write(`privacy-demo: auditing ${run.name}...\n`);
  const a = JSON.parse(ajar(['audit', '--model', out, '--members', data.members, '--non-members', data.nonMembers, '--canaries', t.canaries_file, '--json'])) as {
    membership: { auc: number; advantage: number };
    canaries: { exposure_mean: number; exposure_max: number; exposure_max_possible: number; extracted: number; count: number; method: string };
    extraction: { rate: number };
  };
  let privacy: { epsilon: number; delta: number } | null = null;
  try {
    privacy = JSON.parse(readFileSync(join(out, 'privacy.json'), 'utf8')) as { epsilon: number; delta: number };
  } catch {
    privacy = null;
  }
  return {
    run: run.name, epsilon: privacy?.epsilon ?? null, delta: privacy?.delta ?? null, val_loss: t.val_loss,
    exposure_mean: a.canaries.exposure_mean, exposure_max: a.canaries.exposure_max, exposure_max_possible: a.canaries.exposure_max_possible,
    canaries_extracted: a.canaries.extracted, canaries: a.canaries.count, exposure_method: a.canaries.method, membership_auc: a.membership.auc,
    membership_advantage: a.membership.advantage, extraction_rate: a.extraction.rate, train_seconds: t.seconds,
  };
}

function table(rows: Row[]): string {
  const lines = [
    '| run | epsilon (delta) | val loss | canary exposure mean / max (bits, of ' + rows[0].exposure_max_possible.toFixed(2) + ') | canaries extracted | membership AUC (advantage) | verbatim extraction |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.run} | ${r.epsilon === null ? '∞ (no guarantee)' : `${r.epsilon.toFixed(2)} (${r.delta})`} | ${r.val_loss.toFixed(3)} | `
      + `${r.exposure_mean.toFixed(2)} / ${r.exposure_max.toFixed(2)} (${r.exposure_method}) | ${r.canaries_extracted} of ${r.canaries} | `
      + `${r.membership_auc.toFixed(3)} (${r.membership_advantage.toFixed(3)}) | ${(100 * r.extraction_rate).toFixed(1)}% |`);
  }
  return lines.join('\n');
}

function main(): void {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const keepAt = argv.indexOf('--keep');
  const dir = keepAt >= 0 && argv[keepAt + 1] !== undefined ? argv[keepAt + 1] : mkdtempSync(join(tmpdir(), 'ajar-privacy-demo-'));
  mkdirSync(dir, { recursive: true });
  try {
    const data = writeReviews(dir);
    const rows = RUNS.map((run, i) => runOne(dir, data, run, i));
    if (json) {
      console.log(JSON.stringify(rows, null, 2));
    } else {
      console.log(table(rows));
      console.log(`\n${MEMBERS} training reviews, ${NON_MEMBERS} held out; 10 canaries "my PIN is {digits:6}" x 8; exposure methods as 'ajar audit --help' describes them.`);
      console.log(`training took ${rows.map((r) => `${r.train_seconds.toFixed(0)} s (${r.run})`).join(', ')}`);
    }
  } finally {
    if (keepAt < 0) rmSync(dir, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  console.error(`privacy-demo: ${(e as Error).message}`);
  process.exitCode = 1;
}
