// LoRA adapters served beside one shared base: each targeted layer of the base carries a router in its `lora`
// slot, and the router applies the adapter of the request now running (an AsyncLocalStorage context), or none.
import { AsyncLocalStorage } from 'node:async_hooks';
import { loadAdapter, readAdapterConfig, type LoraSet } from '../models/adapter.js';
import type { CausalLM } from '../models/types.js';
import { Conv1D, Linear, type LoraAdapter, type LoraDelta } from '../nn/index.js';
import { AjarError, type Tensor } from '../tensor/index.js';
import type { ServedModel, ServerContext } from './context.js';

/** One loaded adapter: its own A and B per layer path; the base's weights are shared, never copied. */
export interface ServedAdapter {
  name: string;
  dir: string;
  /** Layer path (transformer.h.0.attn.c_attn) -> that layer's adapter. */
  byPath: Map<string, LoraAdapter>;
  /** Bytes of the adapter's own tensors (A and B, float32). */
  bytes: number;
}

/** The adapter of the request whose code is running; undefined or null: the base alone. */
const active = new AsyncLocalStorage<ServedAdapter | null>();

/** Run fn (and every await it makes) with `adapter` applied to the base's forward passes. */
export function withAdapter<T>(adapter: ServedAdapter | null, fn: () => T): T {
  return active.run(adapter, fn);
}

/** A layer's lora slot in serving: the running request's adapter for this layer, if it has one. */
class AdapterRouter implements LoraDelta {
  constructor(readonly path: string) {}

  delta(x: Tensor, training: boolean): Tensor | null {
    const a = active.getStore()?.byPath.get(this.path);
    return a ? a.delta(x, training) : null;
  }
}

/** The adapters loaded over one base model. Loading and unloading are synchronous, so no forward pass sees half. */
export class AdapterHost {
  private readonly routers = new Map<string, Linear | Conv1D>();

  constructor(readonly model: CausalLM) {}

  /**
   * Read a PEFT adapter folder against the base (or run `attach`, which loads one another way, e.g. from an
   * encrypted bundle); a bad or mismatched adapter is AjarError('bad_adapter').
   */
  load(name: string, dir: string, attach?: (model: CausalLM) => LoraSet): ServedAdapter {
    const saved = attach ? [] : readAdapterConfig(dir).modules_to_save ?? [];
    if (saved.length > 0) {
      // NOTE: checked before loading: loadAdapter writes saved modules into the base's own parameters.
      throw new AjarError('bad_adapter', `${dir}: modules_to_save (${saved.join(', ')}) would replace base weights `
        + 'for every request; serve it merged (ajar merge) instead');
    }
    // NOTE: loadAdapter attaches to free lora slots, so the routers step aside while it runs and take its
    // adapters over after; nothing awaits in between, so no request runs meanwhile. Every other layer's slot is
    // put back as it was, also when loading fails halfway (attachLora may have filled some slots by then).
    const layers = this.model.module.namedModules()
      .filter((e): e is [string, Linear | Conv1D] => e[1] instanceof Linear || e[1] instanceof Conv1D);
    const slots = new Map(layers.map(([, l]) => [l, l.lora]));
    for (const layer of this.routers.values()) layer.lora = null;
    try {
      const set = attach ? attach(this.model) : loadAdapter(this.model, dir);
      if (attach && (set.spec.modules_to_save ?? []).length > 0) {
        // NOTE: only at start-up (the CLI's --adapter-bundle); the admin route loads folders, checked above.
        throw new AjarError('bad_adapter', `${dir}: modules_to_save would replace base weights for every request; serve it merged instead`);
      }
      const byPath = new Map<string, LoraAdapter>();
      let bytes = 0;
      for (const e of set.entries) {
        byPath.set(e.path, e.adapter);
        bytes += e.adapter.A.data.byteLength + e.adapter.B.data.byteLength;
        if (!this.routers.has(e.path)) this.routers.set(e.path, e.layer);
      }
      return { name, dir, byPath, bytes };
    } finally {
      for (const [, layer] of layers) layer.lora = slots.get(layer) ?? null;
      for (const [path, layer] of this.routers) layer.lora = new AdapterRouter(path);
    }
  }
}

/** Ids: what clients send as `model` (the same rule as a base's). */
export const MODEL_ID_SHAPE = /^[A-Za-z0-9._:/-]{1,128}$/;

/**
 * Load the adapter in `dir` as the served model `name` over the base `base` (default: the only base). It shares the
 * base's model, tokenizer, chat format and queue. Errors: AjarError bad_flag (name or base) or bad_adapter.
 */
export function addAdapter(ctx: Pick<ServerContext, 'models' | 'adapterHosts'>, name: string, dir: string,
  base: string | undefined, now: number, attach?: (model: CausalLM) => LoraSet): ServedModel {
  if (!MODEL_ID_SHAPE.test(name)) throw new AjarError('bad_flag', `adapter name '${name}' must be 1-128 letters, digits or . _ : / -`);
  if (ctx.models.has(name)) throw new AjarError('bad_flag', `a model or adapter named '${name}' is already served`);
  const bases = [...ctx.models.values()].filter((m) => m.parent === null);
  let parent: ServedModel | undefined;
  if (base === undefined) {
    if (bases.length !== 1) {
      throw new AjarError('bad_flag', `adapter '${name}': ${bases.length} base models are served; say which one it adapts `
        + '(--adapter NAME=BASE_ID:DIR, or "base" in POST /admin/adapters)');
    }
    parent = bases[0];
  } else {
    parent = ctx.models.get(base);
    if (!parent || parent.parent !== null) throw new AjarError('bad_flag', `adapter '${name}': no base model '${base}' is served`);
  }
  let host = ctx.adapterHosts.get(parent.id);
  if (!host) {
    host = new AdapterHost(parent.model);
    ctx.adapterHosts.set(parent.id, host);
  }
  const adapter = host.load(name, dir, attach);
  const served: ServedModel = {
    ...parent, id: name, parent: parent.id, adapter, created: Math.floor(now / 1000),
  };
  ctx.models.set(name, served);
  return served;
}

/**
 * Stop serving an adapter: new requests for it get model_not_found; requests already admitted hold their own
 * reference to it and finish. Errors: AjarError model_not_found, or bad_flag for a base.
 */
export function removeAdapter(ctx: Pick<ServerContext, 'models'>, name: string): ServedModel {
  const served = ctx.models.get(name);
  if (!served) throw new AjarError('model_not_found', `no adapter '${name}' is served`);
  if (served.parent === null) throw new AjarError('bad_flag', `'${name}' is a base model, not an adapter`);
  ctx.models.delete(name);
  return served;
}
