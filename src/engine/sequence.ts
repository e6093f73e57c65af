// A sequence: one generation's state in the engine. Its tokens (the prompt, then each token it
// has emitted), how many of their positions have KV written or submitted (`scheduled`), its
// page table into the model's KV pool, its slot while it runs, its sampler's seeded stream and
// grammar matcher, and the sampled rows still on their way back from the GPU.
//
// The invariant the batcher relies on: with `pending` rows in flight, the next position to
// schedule holds token `scheduled`, which is known (tokens[scheduled]) while scheduled <
// tokens.length, else the one the last in-flight row is sampling (fed on the GPU, FED[slot]).

import type { FinishReason, GeneratedToken, GenerationTimings, SamplingParams } from "./types.ts";
import type { GrammarMatcher } from "./grammar/index.ts";
import { mulberry32 } from "./quant.ts";

/** Scheduling precedence: `asap` work runs before `standard` work. */
export type Priority = "asap" | "standard";
export const PRIORITY_RANK: Record<Priority, number> = { asap: 0, standard: 1 };

export interface SequenceRequest {
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  stopIds?: number[];
  logprobs?: boolean;
  /** Most likely tokens to report with each sampled one (0 to MAX_TOP_LOGPROBS). */
  topLogprobs?: number;
  matcher?: GrammarMatcher;
  priority?: Priority;
  /** Requests sharing a prompt_cache_key keep their cached pages longer. */
  cacheKey?: string | null;
  signal?: AbortSignal;
}

export interface SequenceOutcome {
  finishReason: FinishReason;
  timings: GenerationTimings & { cachedTokens: number };
}

export interface SequenceListener {
  token(t: GeneratedToken): void;
  done(outcome: SequenceOutcome): void;
  failed(err: Error): void;
}

/** What a sequence does with the logits at the end of its known tokens. */
export type SequenceMode =
  /** Sample a token, emit it, continue. */
  | { kind: "generate" }
  /** Hand the logits back (LoadedModel.evalLogits), then wait for more tokens. */
  | { kind: "logits"; deliver: (logits: Float32Array) => void };

export class Sequence {
  readonly tokens: number[];
  readonly promptLength: number;
  readonly priority: Priority;
  readonly stopIds: Set<number>;
  /** Most likely tokens to report beside each sampled one (0 unless logprobs are asked too). */
  readonly topK: number;
  /** KV positions written or submitted (borrowed prefix pages included). */
  scheduled = 0;
  /**
   * The run of tokens llama.cpp would evaluate as one batch: the prompt past its cached pages
   * at admission, or what evalLogits appended. Its batch takes rows in fours through its 4-row
   * kernels (then one by one), and some K-quant products round those differently (step.ts).
   */
  batchRun = { from: 0, to: 0 };
  /** Page ids, in position order. */
  pages: number[] = [];
  /** Pages already indexed in the prefix cache (or borrowed from it), and the chain hash after them. */
  published = 0;
  chainHash = "";
  slot: number | null = null;
  /** Sampled rows submitted and not yet read back. */
  pending = 0;
  generated = 0;
  cachedTokens = 0;
  finished = false;
  /** When it first got a slot, and when its first token came back. */
  startedAt: number | null = null;
  firstTokenAt: number | null = null;
  private readonly rand: () => number;

  constructor(
    readonly id: number,
    readonly request: SequenceRequest,
    readonly listener: SequenceListener,
    readonly mode: SequenceMode = { kind: "generate" },
    /** Arrival order, for precedence among equals. */
    readonly arrival = id,
  ) {
    this.tokens = [...request.promptIds];
    this.promptLength = request.promptIds.length;
    this.priority = request.priority ?? "asap";
    this.stopIds = new Set(request.stopIds ?? []);
    this.topK = request.logprobs ? request.topLogprobs ?? 0 : 0;
    this.rand = mulberry32(request.sampling.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  get rank(): number {
    return PRIORITY_RANK[this.priority];
  }

  get matcher(): GrammarMatcher | undefined {
    return this.request.matcher;
  }

  get cancelled(): boolean {
    return this.request.signal?.aborted ?? false;
  }

  /** Whether `a` goes before `b`: the more urgent window, then the earlier arrival. */
  static before(a: Sequence, b: Sequence): boolean {
    return a.rank !== b.rank ? a.rank < b.rank : a.arrival < b.arrival;
  }

  /** Tokens it still wants sampled, counting the rows in flight. */
  get wantsMore(): boolean {
    if (this.mode.kind === "logits") return false;
    return this.generated + this.pending < this.request.maxTokens;
  }

  /** Whether the token at `pos` is one of its batch's rows that llama.cpp takes in fours. */
  inFour(pos: number): boolean {
    const { from, to } = this.batchRun;
    return pos >= from && pos < to - ((to - from) % 4);
  }

  /**
   * What the next step can run for it, given the rows in flight: a chunk of known tokens
   * (`literal`), the token its last in-flight row is sampling (`fed`), or nothing yet.
   */
  nextInput(nCtx: number): { kind: "literal"; count: number } | { kind: "fed" } | null {
    if (this.finished) return null;
    if (this.scheduled < this.tokens.length) return { kind: "literal", count: this.tokens.length - this.scheduled };
    // Decoding ahead: feed the token still on the GPU, unless a grammar must see it first.
    if (this.pending > 0 && !this.matcher && this.wantsMore && this.scheduled < nCtx) return { kind: "fed" };
    return null;
  }

  /** The next uniform draw of its sampler (one per sampled token, in order). */
  draw(): number {
    return this.rand();
  }

  /** Timings so far. */
  timings(now: number): SequenceOutcome["timings"] {
    const start = this.startedAt ?? now;
    const first = this.firstTokenAt ?? now;
    return {
      promptTokens: this.promptLength,
      outputTokens: this.generated,
      prefillMs: first - start,
      decodeMs: this.firstTokenAt === null ? 0 : now - first,
      cachedTokens: this.cachedTokens,
    };
  }
}
