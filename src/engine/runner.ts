// A model resident on a device: the LoadedModel contract over a ForwardPass. Prefill runs in
// chunks of MAX_BATCH tokens; each decode step is one command buffer (forward + sampler) and
// one 8-byte readback (token id and log-probability). Unconstrained decoding keeps one step in
// flight ahead of the token being read: the sampler leaves its token and the advanced state on
// the GPU for the next step, so step k + 1 is submitted before step k's token comes back, and
// discarded if that token ends the generation.

import type { FinishReason, GeneratedToken, GenerateOptions, GenerationTimings, LoadedModel } from "./types.ts";
import type { HParams } from "./model/hparams.ts";
import { ForwardPass, MAX_BATCH, RNG_LEN } from "./forward.ts";
import { encodeFields, readF32 } from "./gpu/buffers.ts";
import { sampleParamsFields } from "./sampler.ts";
import { mulberry32 } from "./quant.ts";
import { LogitMask } from "./logit-mask.ts";
import type { GrammarMatcher } from "./grammar/index.ts";

const MAP_READ = 0x1;
const COPY_DST = 0x8;

/** A submitted step whose token is on its way back. */
interface InFlight {
  staging: GPUBuffer;
  mapped: Promise<void>;
}

export class ModelRunner implements LoadedModel {
  readonly arch: string;
  readonly nVocab: number;
  readonly nCtx: number;
  private pos = 0;
  private busy = false;
  /** Two readback buffers: one step's can be pending a map while the next step copies into the other. */
  private staging: [GPUBuffer, GPUBuffer];
  private nextStaging = 0;
  /** Built on the first constrained generation. */
  private logitMask: LogitMask | null = null;

  constructor(
    private device: GPUDevice,
    readonly hparams: HParams,
    private fwd: ForwardPass,
    nCtx: number,
    private onDispose: () => void,
    /** Bytes of weights on the device. */
    readonly weightBytes = 0,
  ) {
    this.arch = hparams.arch;
    this.nVocab = hparams.nVocab;
    this.nCtx = nCtx;
    const readback = (i: number) => device.createBuffer({ size: 8, usage: MAP_READ | COPY_DST, label: `token readback ${i}` });
    this.staging = [readback(0), readback(1)];
  }

  get dispatchesPerToken(): number {
    return this.fwd.dispatchesPerToken;
  }

  get position(): number {
    return this.pos;
  }

  reset(): void {
    this.pos = 0;
  }

  private checkIds(ids: number[]) {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.nVocab) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.nVocab})`);
    }
    if (this.pos + ids.length > this.nCtx) {
      throw new RangeError(`sequence of ${this.pos + ids.length} tokens exceeds the context of ${this.nCtx}`);
    }
  }

  /** Writes ids and state for a chunk starting at the current position. */
  private stage(ids: number[], step: number) {
    const q = this.device.queue;
    q.writeBuffer(this.fwd.buffers.ids, 0, new Uint32Array(ids));
    q.writeBuffer(this.fwd.buffers.state, 0, new Uint32Array([this.pos, ids.length, step, 0]));
  }

  /** Runs all but the last chunk of `ids` (no output head); returns the last chunk. */
  private prefillHead(ids: number[]): number[] {
    let i = 0;
    for (; ids.length - i > MAX_BATCH; i += MAX_BATCH) {
      const chunk = ids.slice(i, i + MAX_BATCH);
      this.stage(chunk, 0);
      const enc = this.device.createCommandEncoder();
      this.fwd.encode(enc, chunk.length, { logits: false, sample: false });
      this.device.queue.submit([enc.finish()]);
      this.pos += chunk.length;
    }
    return ids.slice(i);
  }

  async evalLogits(ids: number[]): Promise<Float32Array> {
    if (ids.length === 0) throw new RangeError("evalLogits needs at least one token");
    this.checkIds(ids);
    this.enter();
    try {
      const last = this.prefillHead(ids);
      this.stage(last, 0);
      const enc = this.device.createCommandEncoder();
      this.fwd.encode(enc, last.length, { logits: true, sample: false });
      this.device.queue.submit([enc.finish()]);
      this.pos += last.length;
      return await readF32(this.device, this.fwd.buffers.logits, this.nVocab);
    } finally {
      this.busy = false;
    }
  }

  private enter() {
    if (this.busy) throw new Error("this model is already running a generation (one at a time per loaded model)");
    this.busy = true;
  }

  /**
   * Submits one step (forward over `ids` from the current position + sampling) and starts
   * reading its token back. `ids` null: a decode step whose input token and state the previous
   * step's sampler wrote on the GPU (nothing to upload).
   */
  private submit(ids: number[] | null, step: number, masked = false): InFlight {
    if (ids) this.stage(ids, step);
    const enc = this.device.createCommandEncoder();
    const m = ids?.length ?? 1;
    if (masked) {
      this.fwd.encode(enc, m, { logits: true, sample: false });
      this.logitMask!.encode(enc);
    } else {
      this.fwd.encode(enc, m, { logits: true, sample: true });
    }
    const staging = this.staging[this.nextStaging];
    this.nextStaging ^= 1;
    enc.copyBufferToBuffer(this.fwd.buffers.out, 0, staging, 0, 8);
    this.device.queue.submit([enc.finish()]);
    this.pos += m;
    return { staging, mapped: staging.mapAsync(MAP_READ) };
  }

  private async read(f: InFlight): Promise<GeneratedToken> {
    await f.mapped;
    const raw = f.staging.getMappedRange(0, 8).slice(0);
    f.staging.unmap();
    return { id: new Uint32Array(raw)[0], logprob: new Float32Array(raw)[1] };
  }

  /** Drops a step submitted ahead that turned out not to be needed (its KV write is past the end). */
  private async discard(f: InFlight): Promise<void> {
    this.pos -= 1;
    try {
      await f.mapped;
      f.staging.unmap();
    } catch {
      // device lost or destroyed: nothing left to unmap
    }
  }

  /**
   * Uploads the matcher's mask for the next token; false when the grammar allows no token at all
   * (the structure cannot continue), so the caller ends the generation instead of sampling.
   */
  private prepareMask(m: GrammarMatcher, mask: Uint32Array): boolean {
    m.fillNextTokenBitmask(mask);
    if (!mask.some((w) => w !== 0)) return false;
    this.logitMask!.upload(mask);
    return true;
  }

  /** `matcher` (constrained decoding) restricts every sampled token, the first one included. */
  async *generate(promptIds: number[], opts: GenerateOptions, matcher?: GrammarMatcher): AsyncGenerator<GeneratedToken, { finishReason: FinishReason; timings: GenerationTimings }> {
    if (promptIds.length === 0) throw new RangeError("the prompt must contain at least one token");
    if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new RangeError(`maxTokens must be a non-negative integer, got ${opts.maxTokens}`);
    const { temperature, topP } = opts.sampling;
    if (!(temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${temperature}`);
    if (!(topP > 0 && topP <= 1)) throw new RangeError(`top_p must be in (0, 1], got ${topP}`);
    this.reset();
    this.checkIds(promptIds);
    this.enter();
    const stop = new Set(opts.stopIds ?? []);
    const rand = mulberry32(opts.sampling.seed ?? Math.floor(Math.random() * 2 ** 32));
    const q = this.device.queue;
    q.writeBuffer(this.fwd.buffers.sampleParams, 0, encodeFields(sampleParamsFields(this.nVocab, temperature, topP, RNG_LEN, !!opts.logprobs)));
    const timings: GenerationTimings = { promptTokens: promptIds.length, outputTokens: 0, prefillMs: 0, decodeMs: 0 };
    const t0 = performance.now();
    let finishReason: FinishReason = "length";
    let ahead: InFlight | null = null;
    try {
      if (opts.maxTokens === 0) return { finishReason, timings };
      const draw = (step: number) => q.writeBuffer(this.fwd.buffers.rng, 4 * (step % RNG_LEN), new Float32Array([rand()]));
      draw(0);
      const masked = matcher !== undefined;
      const mask = masked ? new Uint32Array((this.logitMask ??= new LogitMask(this.device, this.fwd.buffers, this.nVocab)).words) : null;
      const accept = (id: number) => {
        if (matcher && !matcher.acceptToken(id)) throw new Error(`constrained decoding sampled token ${id}, which the grammar rejects (a masking bug)`);
      };
      if (matcher && !this.prepareMask(matcher, mask!)) return { finishReason: "stop", timings };
      let cur = this.submit(this.prefillHead(promptIds), 0, masked);
      // Submits step `step` before the previous step's token is read, where it will be needed
      // unless that token is a stop token or the caller cancels (constrained steps need the
      // token's grammar mask first).
      const submitAhead = (step: number): InFlight | null => {
        if (masked || step >= opts.maxTokens || this.pos >= this.nCtx || opts.signal?.aborted) return null;
        draw(step);
        return this.submit(null, step);
      };
      ahead = submitAhead(1);
      let tok = await this.read(cur);
      accept(tok.id);
      const t1 = performance.now();
      timings.prefillMs = t1 - t0;
      for (let step = 1; ; step++) {
        if (opts.signal?.aborted) { finishReason = "cancelled"; break; }
        if (stop.has(tok.id)) { finishReason = "stop"; break; }
        timings.outputTokens++;
        yield opts.logprobs ? tok : { id: tok.id };
        if (timings.outputTokens >= opts.maxTokens || this.pos - (ahead ? 1 : 0) >= this.nCtx) break;
        if (opts.signal?.aborted) { finishReason = "cancelled"; break; }
        if (ahead) {
          cur = ahead;
          ahead = submitAhead(step + 1);
        } else {
          draw(step);
          if (matcher && !this.prepareMask(matcher, mask!)) { finishReason = "stop"; break; }
          cur = this.submit([tok.id], step, masked);
        }
        tok = await this.read(cur);
        accept(tok.id);
      }
      timings.decodeMs = performance.now() - t1;
      return { finishReason, timings };
    } finally {
      if (ahead) await this.discard(ahead);
      this.busy = false;
    }
  }

  dispose(): void {
    this.fwd.dispose();
    this.logitMask?.dispose();
    for (const b of this.staging) b.destroy();
    this.onDispose();
  }
}
