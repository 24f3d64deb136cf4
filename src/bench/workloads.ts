// The benchmark workloads `ajar bench` runs and bench/run.ts compares with PyTorch (bench/torch_ref.py
// runs the same shapes): a training step of the shakespeare-char model, a GPT-2 124M training step, GPT-2
// 124M greedy decoding with a KV cache, the GPT-2 step training only LoRA adapters (r 8) over the frozen model,
// and the same training step and decoding for a Llama of SmolLM2-135M's shape (grouped-query attention, RoPE,
// RMSNorm, SwiGLU); and the shakespeare-char step under DP-SGD (per-example clipping and noise), to set
// against the plain one; and GPT-2 decoding with int8 weights, which bench/run.ts sets against PyTorch's float32 decoding.
import { generate, generateStream } from '../generate/index.js';
import { attachLora, buildModel, defaultLoraTargets, quantizeModel, type CausalLM } from '../models/index.js';
import { crossEntropy, mul, reshape, Rng, transientGraph, type Tensor } from '../tensor/index.js';
import { dpGradient } from '../train/dp.js';
import { AdamW, clipGradNorm, decayGroups } from '../train/optim.js';

export interface BenchResult {
  workload: string;
  step_ms_median: number; // training: one optimizer step; decoding: one generated token
  tokens_per_s: number; // training: tokens per second of batch; decoding: generated tokens per second
  peak_rss_mib: number; // peak resident memory of the process
  steps: number;
  backend: string;
}

export interface WorkloadSpec {
  name: string;
  about: string;
  run(opts: { steps?: number; onStep?: (i: number, ms: number) => void }): Omit<BenchResult, 'peak_rss_mib' | 'backend'> | Promise<Omit<BenchResult, 'peak_rss_mib' | 'backend'>>;
}

function gpt2Config(over: Record<string, unknown>): Record<string, unknown> {
  return {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768,
    n_layer: 12, n_head: 12, activation_function: 'gelu_new', resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
    layer_norm_epsilon: 1e-5, eos_token_id: 50256, ...over,
  };
}

/** HuggingFaceTB/SmolLM2-135M's config.json (the values its published config holds). */
function smolLM2Config(): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536,
    num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, head_dim: 64, max_position_embeddings: 8192,
    rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Which parameters a training step updates, chosen once the weights are initialised: all of them by default. */
type Trainable = (model: CausalLM, rng: Rng) => Tensor[];

const fullTraining: Trainable = (model) => model.module.parameters();

/**
 * LoRA as `ajar train --lora` sets it up: adapters of rank r (lora_alpha 2r) on the default targets (GPT-2: c_attn,
 * c_proj, c_fc), every base parameter frozen so backward skips their gradients and AdamW holds no state for them.
 */
function loraTraining(r: number): Trainable {
  return (model, rng) => {
    const set = attachLora(model, {
      r, lora_alpha: 2 * r, lora_dropout: 0, target_modules: defaultLoraTargets(model), use_rslora: false, modules_to_save: null,
    }, rng, 'bench');
    const trainable = set.trainableParameters();
    const keep = new Set(trainable);
    for (const t of model.module.parameters()) if (!keep.has(t)) t.requiresGrad = false;
    return trainable;
  };
}

/** How a step's gradient is formed: the batch mean with global clipping, or DP-SGD's. */
type Form = (model: CausalLM, params: Tensor[], x: Int32Array, y: Int32Array, batch: number, block: number, rng: Rng) => void;

const plainStep: Form = (model, params, x, y, batch, block) => {
  // NOTE: only the loss leaves the graph (as in bench/torch_ref.py), so backward gives each activation back once used.
  const loss = transientGraph(() => {
    const logits = model.forward(x, batch); // (B, T, V)
    return crossEntropy(reshape(logits, [batch * block, model.vocabSize]), y);
  });
  loss.backward();
  clipGradNorm(params, 1.0);
};

/** DP-SGD on a batch of the expected size: per-example gradients clipped to 1, noise multiplier 1. */
const dpStep: Form = (model, params, x, y, batch, block, rng) => {
  const names = new Map(model.module.namedParameters().map(([n, t]) => [t, n]));
  dpGradient({
    params, names, batch, maxGradNorm: 1, noiseMultiplier: 1, expectedBatch: batch, rng,
    // Each row's mean loss, summed over the rows.
    loss: () => mul(crossEntropy(reshape(model.forward(x, batch), [batch * block, model.vocabSize]), y, { reduction: 'sum' }), 1 / block),
  });
};

/** Median time of a full training step (forward, backward, clip, AdamW) on random tokens. */
async function trainSteps(model: CausalLM, batch: number, block: number, steps: number, warmup: number,
  onStep?: (i: number, ms: number) => void, trainable: Trainable = fullTraining, form: Form = plainStep): Promise<number[]> {
  const rng = new Rng(1);
  model.initWeights(rng);
  model.module.train(true);
  const params = trainable(model, rng);
  const opt = new AdamW(decayGroups(params, 0.1), { lr: 1e-3, beta2: 0.99 });
  const times: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const x = new Int32Array(batch * block);
    const y = new Int32Array(batch * block);
    for (let j = 0; j < x.length; j++) {
      x[j] = rng.int(model.vocabSize);
      y[j] = rng.int(model.vocabSize);
    }
    const t0 = performance.now();
    opt.zeroGrad();
    form(model, params, x, y, batch, block, rng);
    opt.step();
    const ms = performance.now() - t0;
    // NOTE: yield between steps as the trainer does: the wasm heap reclaims a step's buffers in the next turn.
    await new Promise<void>((r) => setImmediate(r));
    if (i >= warmup) {
      times.push(ms);
      onStep?.(i - warmup, ms);
    }
  }
  return times;
}

/** A training-step workload: `steps` timed steps after `warmup` of a model built from `config`. */
function trainWorkload(name: string, about: string, config: Record<string, unknown>, batch: number, block: number,
  defaultSteps: number, warmup: number, trainable: Trainable = fullTraining, form: Form = plainStep): WorkloadSpec {
  return {
    name,
    about,
    async run({ steps = defaultSteps, onStep }) {
      const model = buildModel(config) as CausalLM;
      const times = await trainSteps(model, batch, block, steps, warmup, onStep, trainable, form);
      const ms = median(times);
      return { workload: name, step_ms_median: ms, tokens_per_s: (batch * block * 1000) / ms, steps };
    },
  };
}

/**
 * Greedy decoding with a KV cache after a 16-token prompt: the median time of one generated token. With `int8` the
 * initialised weights are quantised first (ajar quantize's int8 format).
 */
function decodeWorkload(name: string, about: string, config: Record<string, unknown>, defaultSteps: number, int8 = false): WorkloadSpec {
  return {
    name,
    about,
    async run({ steps = defaultSteps, onStep }) {
      const model = buildModel(config) as CausalLM;
      model.initWeights(new Rng(1));
      if (int8) quantizeModel(model);
      model.module.eval();
      const prompt = Array.from({ length: 16 }, (_, i) => (i * 977) % Math.min(50000, model.vocabSize));
      const noBytes = { encode: () => [], tokenBytes: () => new Uint8Array(0) };
      // Warm up once, then time each token of a full run.
      await generate(model, noBytes, prompt, { maxNewTokens: 4, temperature: 0, stopAtEos: false });
      const times: number[] = [];
      let last = performance.now();
      const it = generateStream(model, noBytes, prompt, { maxNewTokens: steps, temperature: 0, stopAtEos: false });
      let i = 0;
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        const now = performance.now();
        if (r.value.id !== null) {
          times.push(now - last);
          onStep?.(i++, now - last);
        }
        last = now;
      }
      // NOTE: the first token's time includes the 16-token prompt (prefill); the median is the decode step.
      const ms = median(times);
      return { workload: name, step_ms_median: ms, tokens_per_s: 1000 / ms, steps: times.length };
    },
  };
}

export const WORKLOADS: Record<string, WorkloadSpec> = {
  'train-baby': trainWorkload('train-baby', 'shakespeare-char model training step (4 layers, 4 heads, width 128, vocab 65, batch 12 x 64)',
    gpt2Config({ vocab_size: 65, n_positions: 64, n_embd: 128, n_layer: 4, n_head: 4 }), 12, 64, 30, 3),
  'train-gpt2': trainWorkload('train-gpt2', 'GPT-2 124M from random initialisation, training step at batch 4 x 64', gpt2Config({}), 4, 64, 5, 1),
  'train-gpt2-lora': trainWorkload('train-gpt2-lora', 'GPT-2 124M frozen, LoRA r 8 on c_attn, c_proj and c_fc, training step at batch 4 x 64',
    gpt2Config({}), 4, 64, 5, 1, loraTraining(8)),
  'decode-gpt2': decodeWorkload('decode-gpt2', 'GPT-2 124M greedy decoding with a KV cache after a 16-token prompt', gpt2Config({}), 64),
  'decode-gpt2-int8': decodeWorkload('decode-gpt2-int8', 'decode-gpt2 with int8 weights (ajar quantize: 32 values per float32 scale)',
    gpt2Config({}), 64, true),
  'train-llama': trainWorkload('train-llama', 'Llama of SmolLM2-135M\'s shape from random initialisation, training step at batch 4 x 64',
    smolLM2Config(), 4, 64, 3, 1),
  'decode-llama': decodeWorkload('decode-llama', 'Llama of SmolLM2-135M\'s shape, greedy decoding with a KV cache after a 16-token prompt',
    smolLM2Config(), 32),
  'train-baby-dp': trainWorkload('train-baby-dp', 'the train-baby step under DP-SGD: per-example gradients clipped to norm 1, noise multiplier 1',
    gpt2Config({ vocab_size: 65, n_positions: 64, n_embd: 128, n_layer: 4, n_head: 4 }), 12, 64, 30, 3, fullTraining, dpStep),
};

export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
}
