// LoRA as a training mode: the base (--init-from) is frozen, adapters on the target layers (and a classifier's
// score head, PEFT's modules_to_save) train, and the run folder is a PEFT adapter with a small model card.
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { writeFileAtomic } from '../io/atomic.js';
import { attachLora, defaultLoraTargets, saveAdapter, type AnyModel, type LoraSet, type LoraSpec } from '../models/index.js';
import type { Rng, Tensor } from '../tensor/index.js';
import type { TrainConfig } from './config.js';
import type { NamedTensors, SavedEval, TrainMode } from './mode.js';

/** The adapter a train config asks for, on this model. */
export function loraSpecOf(cfg: TrainConfig, model: AnyModel): LoraSpec {
  const targets = cfg.lora_targets !== null ? cfg.lora_targets.split(',').map((t) => t.trim()) : defaultLoraTargets(model);
  return {
    r: cfg.lora_r,
    lora_alpha: cfg.lora_alpha ?? 2 * cfg.lora_r,
    lora_dropout: cfg.lora_dropout,
    target_modules: targets,
    use_rslora: cfg.use_rslora,
    modules_to_save: model.task === 'sequence-classification' ? ['score'] : null,
  };
}

export class LoraTraining implements TrainMode {
  readonly checkpointHoldsModel = false;
  readonly set: LoraSet;

  /** Attach fresh adapters (A from `rng`, B zeros) and freeze every base parameter. */
  constructor(private readonly model: AnyModel, private readonly cfg: TrainConfig, rng: Rng,
    private readonly baseName: string = cfg.init_from) {
    this.set = attachLora(model, loraSpecOf(cfg, model), rng, 'ajar train --lora');
    const trainable = new Set(this.set.trainableParameters());
    // NOTE: a frozen parameter gets no .grad buffer, and backward skips every product only it needs
    // (a linear layer's dW, the embedding's scatter), since the autograd rules test requiresGrad.
    for (const t of model.module.parameters()) if (!trainable.has(t)) t.requiresGrad = false;
    // Adapter dropout draws from the training generator, only while the model is in training mode.
    this.set.setRng(rng);
  }

  parameters(): Tensor[] {
    return this.set.trainableParameters();
  }

  checkpointTensors(): NamedTensors {
    return this.set.stateDict();
  }

  restore(tensors: NamedTensors, label: string): void {
    this.set.loadStateDict(tensors, label);
  }

  save(dir: string, _tokenizer: unknown, evaluation: SavedEval): void {
    saveAdapter(dir, this.set, this.baseName);
    writeFileAtomic(join(dir, 'README.md'), this.card(evaluation));
  }

  describe(): string {
    const n = this.parameters().reduce((s, t) => s + t.size, 0);
    const total = this.model.module.numParameters();
    return `LoRA r ${this.set.spec.r} on ${this.set.entries.length} layers: ${n} trainable of ${(total / 1e6).toFixed(2)}M parameters`;
  }

  /** A small model card in the Hub's format (YAML front matter, then the adapter, base, data and results). */
  private card(e: SavedEval): string {
    const s = this.set.spec;
    const c = this.cfg;
    const data = c.val_data ? `${c.data} (validation: ${c.val_data})` : `${c.data} (validation: held-out ${c.val_fraction})`;
    const results = [`| validation loss | ${e.val_loss === null ? 'n/a' : e.val_loss.toFixed(4)} |`];
    for (const [k, v] of Object.entries(e.metrics ?? {})) results.push(`| ${k.replace(/_/g, ' ')} | ${v.toFixed(4)} |`);
    return [
      '---',
      `base_model: ${JSON.stringify(this.baseName)}`,
      'library_name: peft',
      'tags:',
      '- ajar',
      '- lora',
      ...(e.privacy ? [stringifyYaml({ privacy: e.privacy }).trimEnd()] : []),
      '---',
      '',
      `# LoRA adapter for ${this.baseName}`,
      '',
      `A PEFT LoRA adapter trained by \`ajar train --lora\`: r ${s.r}, lora_alpha ${s.lora_alpha}` +
        `${s.use_rslora ? ' (rsLoRA)' : ''}, dropout ${s.lora_dropout}, on ${(s.target_modules as string[]).join(', ')}` +
        `${s.modules_to_save ? `; trained in full: ${s.modules_to_save.join(', ')}` : ''}.`,
      '',
      `- Base model: ${this.baseName}`,
      `- Training data: ${data}`,
      `- Steps: ${e.step} of ${c.max_iters}, batch ${c.batch_size} x ${c.block_size}, lr ${c.lr}`,
      '',
      '## Evaluation',
      '',
      '| metric | value |',
      '| --- | --- |',
      ...results,
      '',
      '## Use',
      '',
      '```',
      `ajar generate --model ${this.baseName} --adapter DIR --prompt "..."`,
      `ajar merge --model ${this.baseName} --adapter DIR --out MERGED`,
      '```',
      '',
    ].join('\n');
  }
}
