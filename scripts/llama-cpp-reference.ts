// llama.cpp (through node-llama-cpp, CPU backend) as the independent reference for our engine:
// raw logits per greedy step for the fixture recorder, and timed prefill/decode for the bench.
// Only scripts and benches import this; tests read the recorded fixtures instead.

import { getLlama, LlamaLogLevel, type Llama, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";

export const REFERENCE_THREADS = 2;

export interface ReferenceSession {
  llama: Llama;
  model: LlamaModel;
  sequence: LlamaContextSequence;
  close(): Promise<void>;
}

let llamaInstance: Promise<Llama> | undefined;

/** One CPU llama.cpp instance per process (loading the native binding is slow). */
export function referenceLlama(): Promise<Llama> {
  llamaInstance ??= getLlama({ gpu: false, logLevel: LlamaLogLevel.error });
  return llamaInstance;
}

export interface ReferenceOptions {
  contextSize?: number;
  threads?: number;
  /**
   * llama.cpp's default ("auto") runs flash attention on the CPU: the attention our engine
   * reproduces (f16 accumulator over an f16 V cache), and what ../shared/models' greedy outputs
   * were recorded with. Off is its classic path (f32 softmax, f16 V·softmax products).
   */
  flashAttention?: boolean | "auto";
}

export async function openReference(modelPath: string, opts: ReferenceOptions = {}): Promise<ReferenceSession> {
  const { contextSize = 256, threads = REFERENCE_THREADS, flashAttention = true } = opts;
  const llama = await referenceLlama();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize, threads, batchSize: contextSize, sequences: 1, flashAttention });
  const sequence = context.getSequence();
  return {
    llama, model, sequence,
    async close() {
      await context.dispose();
      await model.dispose();
    },
  };
}

export interface GreedyStep {
  /** Token ids by descending logit (the first is the greedy choice). */
  topIds: number[];
  topLogits: number[];
  /** Logit of the best token minus the second best. */
  margin: number;
}

/**
 * Feeds `promptIds` then `steps` greedy tokens, returning the raw logits (top `topK`) that chose
 * each one. With `forcedIds`, those ids are fed instead of the argmax (teacher forcing), so the
 * logits of another model can be taken along the same sequence. The sequence is cleared first.
 */
export async function greedyWithLogits(sequence: LlamaContextSequence, promptIds: number[], steps: number, topK: number, forcedIds?: number[]): Promise<{ ids: number[]; steps: GreedyStep[] }> {
  await sequence.clearHistory();
  const ids: number[] = [];
  const out: GreedyStep[] = [];
  let input = promptIds;
  for (let s = 0; s < steps; s++) {
    const last = input.length - 1;
    const results = await sequence.controlledEvaluate(
      input.map((t, i) => (i === last ? [t as Token, { generateNext: { logits: true } }] : (t as Token))),
    );
    const logits = results[last]?.next.logits;
    if (!logits) throw new Error("llama.cpp returned no logits");
    // The map is sorted by descending logit.
    const top = [...logits.entries()].slice(0, topK);
    const step: GreedyStep = {
      topIds: top.map(([id]) => id),
      topLogits: top.map(([, v]) => v),
      margin: top[0][1] - top[1][1],
    };
    out.push(step);
    ids.push(step.topIds[0]);
    input = [forcedIds ? forcedIds[s] : step.topIds[0]];
  }
  return { ids, steps: out };
}

export interface ReferenceTimings {
  prefillMs: number;
  decodeMs: number;
  /** Tokens produced by the decode phase (each one forward pass of a single token). */
  decodeTokens: number;
}

/**
 * Times one prefill of `promptIds` (one batch) and `decodeTokens` single-token forward passes,
 * each feeding back the argmax of the previous step, as a server's greedy decode does.
 */
export async function timePrefillDecode(sequence: LlamaContextSequence, promptIds: number[], decodeTokens: number): Promise<ReferenceTimings> {
  await sequence.clearHistory();
  const last = promptIds.length - 1;
  const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
  const t0 = performance.now();
  const results = await sequence.controlledEvaluate(promptIds.map((t, i) => (i === last ? [t as Token, greedy] : (t as Token))));
  const t1 = performance.now();
  let next = results[last]?.next.token;
  for (let i = 0; i < decodeTokens; i++) {
    if (next == null) throw new Error("llama.cpp produced no token");
    const r = await sequence.controlledEvaluate([[next, greedy]]);
    next = r[0]?.next.token;
  }
  const t2 = performance.now();
  return { prefillMs: t1 - t0, decodeMs: t2 - t1, decodeTokens };
}
