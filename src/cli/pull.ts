// ajar pull REPO[@REVISION]: download a Hugging Face model repo into huggingface_hub's cache; and modelDirArg,
// which every command's --model (and train's --init-from) goes through: a local folder, else a hub id pulled here.
import { parseHubRef, pull, resolveModelDir, type PullOptions } from '../io/hub.js';
import { AjarError } from '../tensor/errors.js';
import { bool, parseFlags, str } from './args.js';
import { printJson } from './common.js';
import { Progress } from './progress.js';

const HELP = `usage: ajar pull ORG/NAME[@REVISION] [--include GLOB ...] [--cache-dir DIR] [--json]

Downloads every file of the model repo at REVISION (a branch, tag or commit; default main), or only those
matching an --include pattern (fnmatch: '*.json', 'tokenizer*', 'onnx/'), into the Hugging Face cache, four
files at a time; interrupted downloads resume, LFS files are checked against their sha256. Files already in
the cache are not downloaded again. Prints the snapshot folder, which any --model flag accepts; so does
ORG/NAME[@REVISION] itself (pulled on first use). See docs/hub.md.
--cache-dir: the hub cache (default HF_HUB_CACHE, else HF_HOME/hub, HF_HOME defaulting to ~/.cache/huggingface).
Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (gated or private repos),
HF_HUB_OFFLINE=1 (use the cache only).`;

function fmtMB(bytes: number): number {
  return Math.round(bytes / 1e4) / 100;
}

/** Progress and log callbacks for a pull started by `command`: one bar (MB) over all files, on stderr. */
export function pullReporting(command: string, quiet = false): Pick<PullOptions, 'onProgress' | 'log'> & { finish: () => void } {
  let bar: Progress | undefined;
  let shown = -1;
  return {
    log: quiet ? undefined : (line) => console.error(`ajar ${command}: ${line}`),
    onProgress: quiet ? undefined : (done, total) => {
      // NOTE: the bar counts MB with two decimals; redraw only when that number moves, or at the very end.
      if (total === 0 || (fmtMB(done) === shown && done !== total)) return;
      shown = fmtMB(done);
      bar ??= new Progress({ label: `ajar ${command}: download`, total: fmtMB(total), unit: 'MB' });
      bar.update(done === total ? fmtMB(total) : Math.min(shown, fmtMB(total) - 0.01), fmtMB(total));
    },
    finish: () => bar?.done(),
  };
}

/** The folder a --model / --init-from value names, pulling `org/name[@rev]` from the hub when it is not cached. */
export async function modelDirArg(arg: string, command: string): Promise<string> {
  const reporting = pullReporting(command);
  try {
    return await resolveModelDir(arg, reporting);
  } finally {
    reporting.finish();
  }
}

/** The hub repo id `arg` named when it resolved to a pulled snapshot `dir` rather than a local folder. */
export function hubIdOf(arg: string, dir: string): string | undefined {
  return dir !== arg ? parseHubRef(arg)?.repoId : undefined;
}

export async function pullCommand(argv: string[]): Promise<number> {
  const p = parseFlags('pull', argv, {
    include: { type: 'string', multiple: true }, 'cache-dir': { type: 'string' }, json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, true);
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  if (p.positionals.length !== 1) {
    throw new AjarError('bad_flag', `ajar pull: give one repo as ORG/NAME[@REVISION] (got ${p.positionals.length}); see 'ajar pull --help'`);
  }
  const arg = p.positionals[0];
  const ref = parseHubRef(arg);
  if (ref === null) throw new AjarError('bad_flag', `ajar pull: '${arg}' is not a hub repo id; expected ORG/NAME or ORG/NAME@REVISION`);
  const json = bool(p, 'json');
  const reporting = pullReporting('pull', json);
  let result;
  try {
    result = await pull(ref, {
      include: p.values.include as string[] | undefined,
      cacheDir: str(p, 'cache-dir'),
      ...reporting,
    });
  } finally {
    reporting.finish();
  }
  const downloaded = result.files.filter((f) => f.downloaded).length;
  if (json) {
    printJson({
      repo: result.repoId, revision: result.revision, commit: result.commit, snapshot: result.snapshotDir,
      files: result.files.map((f) => ({ name: f.name, size: f.size, etag: f.etag, downloaded: f.downloaded })),
      downloaded_files: downloaded, downloaded_bytes: result.downloadedBytes,
    });
  } else {
    console.error(`ajar pull: ${result.repoId}@${result.revision} is commit ${result.commit}: ${result.files.length} file(s), `
      + `${downloaded} downloaded (${fmtMB(result.downloadedBytes)} MB)`);
    console.log(result.snapshotDir);
  }
  return 0;
}
