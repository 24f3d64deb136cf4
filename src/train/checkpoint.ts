// Training checkpoints: everything needed to continue a run exactly (model, optimizer state, RNG states, step,
// data position, best validation loss), written into a fresh folder that replaces the previous one by rename,
// so a kill at any moment leaves one complete checkpoint (`checkpoint/` or, mid-swap, `checkpoint.old/`).
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularJson } from '../io/safe-read.js';
import { readSafetensors, writeSafetensors, type WeightTensor } from '../io/safetensors.js';
import { replaceDir, writeFileAtomic } from '../io/atomic.js';
import { AjarError } from '../tensor/errors.js';
import type { OptimizerState } from './optim.js';

export interface TrainerState {
  step: number; // optimizer steps done
  rng: number[]; // training RNG (batches, dropout)
  data: { epoch: number; cursor: number } | null; // example batcher position
  best_val_loss: number | null;
  tokens_seen: number;
  elapsed_s: number; // training wall time before this checkpoint
  config: Record<string, unknown>; // the run's configuration, to check a resume is compatible
}

export interface Checkpoint {
  state: TrainerState;
  model: Map<string, WeightTensor>;
  optimizer: OptimizerState;
}

const CURRENT = 'checkpoint';
const OLD = 'checkpoint.old';

/** `extra(dir)` writes further files (tokenizer, config.json) into the new checkpoint before it goes live. */
export function saveCheckpoint(outDir: string, ck: {
  state: TrainerState; model: Map<string, { shape: readonly number[]; data: Float32Array }>; optimizer: OptimizerState;
}, extra?: (dir: string) => void): void {
  mkdirSync(outDir, { recursive: true });
  const tmp = join(outDir, `checkpoint.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeSafetensors(join(tmp, 'model.safetensors'), ck.model);
  const opt = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  ck.optimizer.buffers.forEach((bufs, i) => bufs.forEach((b, j) => opt.set(`${i}.${j}`, { shape: [b.length], data: b })));
  writeSafetensors(join(tmp, 'optimizer.safetensors'), opt, {
    kind: ck.optimizer.kind, step: String(ck.optimizer.step), params: String(ck.optimizer.buffers.length),
  });
  extra?.(tmp);
  writeFileAtomic(join(tmp, 'state.json'), `${JSON.stringify(ck.state, null, 1)}\n`);
  // loadCheckpoint falls back to checkpoint.old when a crash came between the two renames.
  replaceDir(tmp, join(outDir, CURRENT), join(outDir, OLD));
}

/** The newest complete checkpoint under outDir, or null when there is none. */
export function loadCheckpoint(outDir: string): Checkpoint | null {
  for (const name of [CURRENT, OLD]) {
    const dir = join(outDir, name);
    if (!existsSync(join(dir, 'state.json'))) continue;
    try {
      const state = readRegularJson(join(dir, 'state.json'), { code: 'bad_checkpoint', kind: 'config', root: dir }) as TrainerState;
      const model = readSafetensors(join(dir, 'model.safetensors'), dir).tensors;
      const optFile = readSafetensors(join(dir, 'optimizer.safetensors'), dir);
      const nParams = Number(optFile.metadata.params);
      const buffers: Float32Array[][] = [];
      for (let i = 0; i < nParams; i++) {
        const bufs: Float32Array[] = [];
        for (let j = 0; optFile.tensors.has(`${i}.${j}`); j++) bufs.push(optFile.tensors.get(`${i}.${j}`)!.data);
        buffers.push(bufs);
      }
      return { state, model, optimizer: { kind: optFile.metadata.kind, step: Number(optFile.metadata.step), buffers } };
    } catch (e) {
      if (name === OLD) {
        throw new AjarError('bad_checkpoint', `${dir} cannot be read: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  return null;
}
