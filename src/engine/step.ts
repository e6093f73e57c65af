// One forward step as the host describes it to the GPU: the layout of shaders/step.wgsl's `Step`
// (its tokens, each with position and slot, and its sampled rows with their sampling settings),
// packed into one buffer write per part.

import type { StepShape } from "./gpu/kernels.ts";

/** Bytes of a `Step`: a 16-byte header, 16 bytes a token, 32 bytes a sampled row. */
export const STEP_BYTES = (shape: StepShape): number => 16 + 16 * shape.maxTokens + 32 * shape.maxRows;

export interface StepToken {
  /** The token id (ignored when `fed`). */
  id: number;
  /** Its position in its sequence. */
  pos: number;
  slot: number;
  /** The id is the one this slot's sampler picked in the previous step (not read back yet). */
  fed: boolean;
  /**
   * One of the rows llama.cpp's batch of this sequence's tokens takes in fours through its 4-row
   * kernels (Sequence.inFour; the rest go one by one), whose sums some K-quant products round
   * differently (matvec_q8k.wgsl). A property of the sequence, not of what else is in the step.
   */
  inFour?: boolean;
}

export interface SampleRow {
  /** Index in the step's tokens of the token whose logits are sampled. */
  token: number;
  slot: number;
  temperature: number;
  topP: number;
  /** Uniform draw in [0, 1) for temperature sampling. */
  draw: number;
  wantLogprob: boolean;
  /** A grammar mask for this row is in the mask buffer. */
  masked: boolean;
  /** Most likely tokens to report with their logprobs (top_logprobs.wgsl; 0: none). */
  topK: number;
}

/** Packs steps into the `Step` layout and writes them into the step buffer. */
export class StepWriter {
  private readonly bytes: ArrayBuffer;
  private readonly u32: Uint32Array;
  private readonly f32: Float32Array;
  private readonly rowsAt: number;

  constructor(private readonly shape: StepShape) {
    this.bytes = new ArrayBuffer(STEP_BYTES(shape));
    this.u32 = new Uint32Array(this.bytes);
    this.f32 = new Float32Array(this.bytes);
    this.rowsAt = 4 + 4 * shape.maxTokens; // in words
  }

  write(queue: GPUQueue, buffer: GPUBuffer, tokens: readonly StepToken[], rows: readonly SampleRow[]): void {
    if (tokens.length === 0 || tokens.length > this.shape.maxTokens) throw new RangeError(`a step holds 1 to ${this.shape.maxTokens} tokens, got ${tokens.length}`);
    if (rows.length > this.shape.maxRows) throw new RangeError(`a step samples at most ${this.shape.maxRows} rows, got ${rows.length}`);
    const u = this.u32;
    const f = this.f32;
    u[0] = tokens.length;
    u[1] = rows.length;
    tokens.forEach((t, i) => {
      const o = 4 + 4 * i;
      u[o] = t.fed ? 0 : t.id;
      u[o + 1] = t.pos;
      u[o + 2] = t.slot;
      u[o + 3] = (t.fed ? 1 : 0) | (t.inFour ? 2 : 0);
    });
    rows.forEach((r, i) => {
      const o = this.rowsAt + 8 * i;
      u[o] = r.token;
      u[o + 1] = r.slot;
      f[o + 2] = r.temperature;
      f[o + 3] = r.topP;
      f[o + 4] = r.draw;
      u[o + 5] = r.wantLogprob ? 1 : 0;
      u[o + 6] = r.masked ? 1 : 0;
      u[o + 7] = r.topK;
    });
    queue.writeBuffer(buffer, 0, this.bytes, 0, 16 + 16 * tokens.length);
    if (rows.length > 0) queue.writeBuffer(buffer, 4 * this.rowsAt, this.bytes, 4 * this.rowsAt, 32 * rows.length);
  }
}
