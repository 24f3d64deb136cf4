// What a training mode decides for the loop in trainer.ts: which parameters train (the rest are frozen: no
// gradient, no optimizer state), what a checkpoint keeps, and what the run folder holds. Full fine-tuning is here;
// LoRA is train/lora.ts.
import type { Tokenizer } from '../io/tokenizer/index.js';
import { saveModelFolder, type AnyModel } from '../models/index.js';
import type { Rng, Tensor } from '../tensor/index.js';
import type { TrainConfig } from './config.js';
import { LoraTraining } from './lora.js';

export type NamedTensors = Map<string, { shape: readonly number[]; data: Float32Array }>;

/** The latest saved evaluation, for files a mode writes beside the weights (a model card). */
export interface SavedEval {
  step: number;
  val_loss: number | null;
  metrics?: Record<string, number>;
  /** The privacy guarantee of the saved weights (DP-SGD's record), for the card's `privacy:` front matter. */
  privacy?: object;
}

export interface TrainMode {
  /** The parameters the optimizer updates. */
  parameters(): Tensor[];
  /**
   * True when a checkpoint holds the whole model (resume rebuilds it from the checkpoint); false when it holds
   * only the trained tensors over a frozen base (resume loads the base from init_from again).
   */
  readonly checkpointHoldsModel: boolean;
  /** The tensors a checkpoint saves. */
  checkpointTensors(): NamedTensors;
  /** Restore checkpointTensors() from a checkpoint. */
  restore(tensors: NamedTensors, label: string): void;
  /** Write the run's result (the model, or an adapter) into dir. */
  save(dir: string, tokenizer: Tokenizer, evaluation: SavedEval): void;
  /** One line for the start-of-run log: what trains. */
  describe(): string;
}

/** Every parameter trains; the run folder is a full Hugging Face model folder. */
export class FullTraining implements TrainMode {
  readonly checkpointHoldsModel = true;
  private readonly params: Tensor[];

  /** With bias=false (nanoGPT's bias=False) every bias is held at zero and left out of training. */
  constructor(private readonly model: AnyModel, bias: boolean) {
    if (bias) {
      this.params = model.module.parameters();
      return;
    }
    const kept: Tensor[] = [];
    for (const [name, t] of model.module.namedParameters()) {
      if (name.endsWith('.bias')) {
        t.data.fill(0);
        t.requiresGrad = false;
      } else if (!kept.includes(t)) {
        kept.push(t);
      }
    }
    this.params = kept;
  }

  parameters(): Tensor[] {
    return this.params;
  }

  checkpointTensors(): NamedTensors {
    return this.model.stateDict();
  }

  restore(tensors: NamedTensors, label: string): void {
    this.model.loadWeights(tensors, label);
  }

  save(dir: string, tokenizer: Tokenizer): void {
    saveModelFolder(dir, this.model, tokenizer);
  }

  describe(): string {
    return `${(this.model.module.numParameters() / 1e6).toFixed(2)}M parameters`;
  }
}

/**
 * The mode a config asks for; a LoRA mode attaches its adapters to `model` (A drawn from rng) and names its base
 * `baseName` (the hub id or folder of init_from).
 */
export function createTrainMode(cfg: TrainConfig, model: AnyModel, rng: Rng, baseName: string): TrainMode {
  return cfg.lora ? new LoraTraining(model, cfg, rng, baseName) : new FullTraining(model, cfg.bias);
}

/** Whether this config's checkpoints hold the whole model (see TrainMode.checkpointHoldsModel). */
export function checkpointHoldsModel(cfg: TrainConfig): boolean {
  return !cfg.lora;
}
