// The GPU sampler as two dispatches over the last token's logits: sample_partial.wgsl reduces
// strided shares of the logits to (max, lowest id of the max, exp-sum) in SAMPLE_GROUPS x 256
// threads, then sample.wgsl combines the partials in one workgroup and picks the token (greedy,
// or temperature + top-p over the full logits). Shared by the forward pass and the
// constrained-decoding mask.

import { SAMPLE_GROUPS, type KernelHost, type Kernel } from "./gpu/kernels.ts";
import type { Field } from "./gpu/buffers.ts";

/** The buffers the sampler reads and writes (a subset of ForwardBuffers). */
export interface SamplerBuffers {
  logits: GPUBuffer;
  out: GPUBuffer;
  ids: GPUBuffer;
  state: GPUBuffer;
  rng: GPUBuffer;
  sampleParams: GPUBuffer;
  /** One vec4<u32> per thread of the first pass: SAMPLE_PARTIALS_BYTES. */
  samplePartials: GPUBuffer;
}

export interface SamplerDispatch {
  label: string;
  kernel: Kernel;
  bind: GPUBindGroup;
  grid: [number, number, number];
}

export const SAMPLE_PARTIALS_BYTES = 16 * 256 * SAMPLE_GROUPS;

/** The sampler's uniform block (both kernels bind the same one). */
export function sampleParamsFields(nVocab: number, temperature: number, topP: number, rngLen: number, wantLogprob: boolean): Field[] {
  return [nVocab, { f: temperature }, { f: topP }, rngLen, wantLogprob ? 1 : 0];
}

export function samplerDispatches(host: KernelHost, b: SamplerBuffers): SamplerDispatch[] {
  const partial = host.get("sample_partial");
  const pick = host.get("sample");
  return [
    {
      label: "sample partials",
      kernel: partial,
      bind: host.bind(partial, [b.logits, b.samplePartials, b.sampleParams]),
      grid: [SAMPLE_GROUPS, 1, 1],
    },
    {
      label: "sample",
      kernel: pick,
      bind: host.bind(pick, [b.logits, b.out, b.ids, b.state, b.rng, b.sampleParams, b.samplePartials]),
      grid: [1, 1, 1],
    },
  ];
}
