// Getting a GPUDevice: on Bun through Dawn (bun-webgpu), on Deno and in browsers from the
// built-in navigator.gpu. The engine itself only ever receives the device.

import { hasFusedFma, probeFusedFma } from "./exact.ts";
import { pollDawnGently, runSoftwareDispatchesInline } from "./bun-host.ts";

export interface GpuFeatures {
  shaderF16: boolean;
  subgroups: boolean;
  /**
   * Subgroups of at least 8 invocations (the adapter's subgroupMinSize): a SIMD group can load
   * eight values once, one per lane, and share them by shuffles (shaders/lanes_subgroup.wgsl).
   */
  wideSubgroups: boolean;
  /**
   * The adapter runs on the CPU (lavapipe, SwiftShader): a subgroup is one SIMD register and a
   * workgroup's subgroups run one after another, so kernels of one subgroup without barriers
   * are the fast form there (attention_lanes.wgsl).
   */
  cpuLanes: boolean;
  /** fma() rounds once (probed; otherwise shaders/exact.wgsl rebuilds it from exact products). */
  fusedFma: boolean;
}

const NO_ADAPTER_HELP =
  "no WebGPU adapter found. Install a Vulkan driver: on Debian run `sudo scripts/setup-system.sh` " +
  "(mesa-vulkan-drivers from bookworm-backports, the software lavapipe driver), or install your GPU's driver.";

async function gpuEntry(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" && !nav?.gpu) {
    await runSoftwareDispatchesInline();
    const { setupGlobals } = await import("bun-webgpu");
    setupGlobals();
    pollDawnGently((globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu);
  }
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new Error(`WebGPU is not available in this runtime: ${NO_ADAPTER_HELP}`);
  return gpu;
}

/** Requests a device with all of the adapter's limits and the optional features we can use. */
type DeviceOptions = { disableFeatures?: (keyof GpuFeatures)[]; extraFeatures?: GPUFeatureName[] };

export async function acquireDevice(opts: DeviceOptions = {}): Promise<GPUDevice> {
  const device = await requestDevice(opts);
  await probeFusedFma(device);
  return device;
}

async function requestDevice(opts: DeviceOptions): Promise<GPUDevice> {
  const gpu = await gpuEntry();
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  // Dawn rejects a partial requiredLimits object: pass every numeric limit the adapter has.
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === "number" && !key.startsWith("__")) requiredLimits[key] = v;
  }
  const wanted: [GPUFeatureName, "shaderF16" | "subgroups"][] = [["shader-f16", "shaderF16"], ["subgroups" as GPUFeatureName, "subgroups"]];
  const requiredFeatures = wanted
    .filter(([f, k]) => adapter.features.has(f) && !opts.disableFeatures?.includes(k))
    .map(([f]) => f)
    .concat((opts.extraFeatures ?? []).filter((f) => adapter.features.has(f)));
  return adapter.requestDevice({ requiredLimits, requiredFeatures });
}

/** What GPUAdapterInfo says across hosts (Dawn adds `adapterType`; browsers `isFallbackAdapter`). */
interface AdapterInfo {
  subgroupMinSize?: number;
  adapterType?: number;
  isFallbackAdapter?: boolean;
  architecture?: string;
}
const DAWN_ADAPTER_TYPE_CPU = 3;

export function featuresOf(device: GPUDevice): GpuFeatures {
  const subgroups = device.features.has("subgroups");
  const info = (device as { adapterInfo?: AdapterInfo }).adapterInfo ?? {};
  return {
    shaderF16: device.features.has("shader-f16"),
    subgroups,
    wideSubgroups: subgroups && (info.subgroupMinSize ?? 0) >= 8,
    cpuLanes: info.adapterType === DAWN_ADAPTER_TYPE_CPU || info.isFallbackAdapter === true || info.architecture === "software",
    fusedFma: hasFusedFma(device),
  };
}
