// Engine replicas: several engine workers, each with its own device and its own copy of every
// model, behind the one Engine surface the scheduler uses. On a GPU one replica is right (it
// batches everything into each step). On an adapter that runs on the CPU (lavapipe) a device
// runs its dispatches on one core, so a replica per core runs batches side by side: measured
// on stories15M-q8_0 here, 16 sequences on 2 replicas of 8 made 401 tok/s against 247 on one
// replica of 16, and a lone stream is as fast as before (the driver's own thread pool would
// have slowed it by its per-dispatch wake-ups).
//
// A generation goes to the replica its prefix most likely sits on (its prompt_cache_key, else
// its prompt's first KV page), unless that replica is busier than the least busy one by more
// than one generation, or full while another has a free slot: shared prefixes keep meeting
// their cached pages, load stays even, and no slot idles while a sequence waits elsewhere.

import { cpus } from "node:os";
import { EngineClient } from "./client.ts";
import type { FinishReason, GeneratedToken, GenerationTimings } from "./types.ts";
import type { EngineStats, GenerateRequest, LoadSettings, ModelSummary } from "./protocol.ts";

/** How many replicas: a number, or `auto` (one per core, at most MAX_AUTO_REPLICAS, on a CPU adapter; else one). */
export type ReplicaCount = number | "auto";

const MAX_AUTO_REPLICAS = 4;
/** Tokens of a prompt that choose its replica when it names no prompt_cache_key (one KV page). */
const AFFINITY_TOKENS = 16;

/**
 * The replica a generation goes to: `preferred` (where its prefix likely sits) unless it is
 * busier than the least busy replica by more than one, or full (`slots` sequences at once)
 * while the least busy one has a free slot.
 */
export function pickReplica(preferred: number, busy: readonly number[], slots: number): number {
  const least = busy.indexOf(Math.min(...busy));
  const uneven = busy[preferred] > busy[least] + 1;
  const waitsBesideAFreeSlot = busy[preferred] >= slots && busy[least] < slots;
  return uneven || waitsBesideAFreeSlot ? least : preferred;
}

export class EnginePool {
  /** Generations in flight per model, per replica. */
  private readonly busy = new Map<string, number[]>();
  /** Sequences one replica runs at once, per model. */
  private readonly slots = new Map<string, number>();

  private constructor(private readonly replicas: EngineClient[]) {}

  static async start(count: ReplicaCount = 1): Promise<EnginePool> {
    const first = await EngineClient.start();
    let n = typeof count === "number" ? count : 1;
    if (count === "auto") {
      const device = await first.device().catch(() => null);
      if (device?.cpu) n = Math.min(MAX_AUTO_REPLICAS, Math.max(1, cpus().length));
    }
    if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`replicas must be a positive integer or "auto", got ${count}`);
    const rest = await Promise.all(Array.from({ length: n - 1 }, () => EngineClient.start())).catch(async (e) => {
      await first.close();
      throw e;
    });
    return new EnginePool([first, ...rest]);
  }

  get size(): number {
    return this.replicas.length;
  }

  /** Loads the model on every replica; its capacity is the sum of theirs. */
  /** Progress sums the replicas' uploads (each holds a copy). */
  async load(id: string, ref: string, settings: LoadSettings = {}, onProgress?: (done: number, total: number) => void): Promise<ModelSummary> {
    const done = this.replicas.map(() => 0);
    const each = (i: number) => onProgress && ((d: number, total: number) => {
      done[i] = d;
      onProgress(done.reduce((a, b) => a + b, 0), total * this.size);
    });
    const loaded = await Promise.allSettled(this.replicas.map((r, i) => r.load(id, ref, settings, each(i))));
    const failed = loaded.find((l): l is PromiseRejectedResult => l.status === "rejected");
    if (failed) {
      await Promise.all(loaded.map((l, i) => (l.status === "fulfilled" ? this.replicas[i].unload(id).catch(() => undefined) : undefined)));
      throw failed.reason;
    }
    const first = (loaded[0] as PromiseFulfilledResult<ModelSummary>).value;
    this.slots.set(id, first.maxRunning);
    this.busy.set(id, this.replicas.map(() => 0));
    return { ...first, maxRunning: first.maxRunning * this.size, kvPages: first.kvPages * this.size };
  }

  private pick(busy: number[], slots: number, promptIds: number[], cacheKey: string | null | undefined): number {
    if (this.size === 1) return 0;
    const key = cacheKey ?? promptIds.slice(0, AFFINITY_TOKENS).join(",");
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return pickReplica((h >>> 0) % this.size, busy, slots);
  }

  async generate(
    modelId: string, promptIds: number[], opts: GenerateRequest, onToken: (t: GeneratedToken) => void, signal?: AbortSignal,
  ): Promise<{ finishReason: FinishReason; timings: GenerationTimings }> {
    // a model never loaded has no counts: any replica answers that it is unknown
    const busy = this.busy.get(modelId) ?? this.replicas.map(() => 0);
    const r = this.pick(busy, this.slots.get(modelId) ?? 1, promptIds, opts.cacheKey);
    busy[r]++;
    try {
      return await this.replicas[r].generate(modelId, promptIds, opts, onToken, signal);
    } finally {
      busy[r]--;
    }
  }

  async unload(id: string): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.unload(id)));
    this.slots.delete(id);
    this.busy.delete(id);
  }

  /** Every replica's stats, a model's counts summed over its copies. */
  async stats(): Promise<EngineStats> {
    const all = await Promise.all(this.replicas.map((r) => r.stats()));
    const byId = new Map<string, EngineStats["models"][number]>();
    for (const s of all) {
      for (const m of s.models) {
        const seen = byId.get(m.id);
        byId.set(m.id, seen ? sumModel(seen, m) : m);
      }
    }
    const generations = { ...all[0].generations };
    for (const s of all.slice(1)) for (const k of Object.keys(generations) as (keyof typeof generations)[]) generations[k] += s.generations[k];
    return { device: all[0].device, models: [...byId.values()], generations };
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.close()));
  }
}

type ModelStats = EngineStats["models"][number];

/** Two replicas' stats of one model as one: capacities, pages and counts added. */
function sumModel(a: ModelStats, b: ModelStats): ModelStats {
  const stepSizes = { ...a.stepSizes };
  for (const [k, v] of Object.entries(b.stepSizes)) stepSizes[k] = (stepSizes[k] ?? 0) + v;
  const kv = { ...a.kv };
  for (const k of ["pages", "used", "cached", "free", "hitTokens", "evictions"] as const) kv[k] += b.kv[k];
  return {
    ...a,
    maxRunning: a.maxRunning + b.maxRunning,
    kvPages: a.kvPages + b.kvPages,
    running: a.running + b.running,
    waiting: a.waiting + b.waiting,
    kv,
    preemptions: a.preemptions + b.preemptions,
    steps: a.steps + b.steps,
    stepTokens: a.stepTokens + b.stepTokens,
    stepRows: a.stepRows + b.stepRows,
    stepSizes,
    weightBytes: a.weightBytes + b.weightBytes,
    deviceBytes: a.deviceBytes + b.deviceBytes,
  };
}
