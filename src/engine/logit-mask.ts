// GPU side of constrained decoding for one model: the grammar's allowed-token bitmask goes up
// each step, a small kernel masks the logits in place, and the sampler (sampler.ts, two
// dispatches) runs after it. The unconstrained path (ForwardPass's own sampler) is untouched; a
// constrained step records the forward pass without its sampler and then these dispatches.

import maskSrc from "../../shaders/mask_logits.wgsl" with { type: "text" };
import type { ForwardBuffers } from "./forward.ts";
import { KernelHost } from "./gpu/kernels.ts";
import { samplerDispatches, type SamplerDispatch } from "./sampler.ts";
import { storageBuffer, uniformBuffer } from "./gpu/buffers.ts";

const WG = 256;

export class LogitMask {
  readonly words: number;
  private maskBuf: GPUBuffer;
  private params: GPUBuffer;
  private maskPipeline: GPUComputePipeline;
  private maskBind: GPUBindGroup;
  private sampler: SamplerDispatch[];

  constructor(private device: GPUDevice, buffers: ForwardBuffers, private nVocab: number) {
    this.words = Math.ceil(nVocab / 32);
    this.maskBuf = storageBuffer(device, 4 * Math.max(4, this.words), "token mask");
    this.params = uniformBuffer(device, [nVocab, 0, 0, 0], "mask params");
    const module = device.createShaderModule({ code: maskSrc, label: "mask_logits" });
    this.maskPipeline = device.createComputePipeline({ label: "mask_logits", layout: "auto", compute: { module, entryPoint: "main" } });
    this.maskBind = device.createBindGroup({
      layout: this.maskPipeline.getBindGroupLayout(0),
      entries: [buffers.logits, this.maskBuf, this.params].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    // The same sampler kernels the forward pass uses, bound to the same buffers.
    const host = new KernelHost(device);
    this.sampler = samplerDispatches(host, buffers);
  }

  upload(mask: Uint32Array) {
    this.device.queue.writeBuffer(this.maskBuf, 0, mask.buffer, mask.byteOffset, this.words * 4);
  }

  /** Records mask + sample after a forward pass that computed the logits. */
  encode(enc: GPUCommandEncoder) {
    let pass = enc.beginComputePass();
    pass.setPipeline(this.maskPipeline);
    pass.setBindGroup(0, this.maskBind);
    pass.dispatchWorkgroups(Math.ceil(this.nVocab / WG));
    pass.end();
    for (const d of this.sampler) {
      pass = enc.beginComputePass();
      pass.setPipeline(d.kernel.pipeline);
      pass.setBindGroup(0, d.bind);
      pass.dispatchWorkgroups(...d.grid);
      pass.end();
    }
  }

  dispose() {
    this.maskBuf.destroy();
    this.params.destroy();
  }
}
