// Is there a WebGPU adapter? Asked before loading models so that a machine without a Vulkan
// driver gets one clear message about what to install instead of a failure deep in the engine.

export const NO_ADAPTER_MESSAGE =
  "No WebGPU adapter found, so Valar cannot run models here.\n" +
  "Install a Vulkan driver: on Debian/Ubuntu without a GPU run `sudo scripts/setup-system.sh`, which installs\n" +
  "Mesa's software driver (mesa-vulkan-drivers from bookworm-backports; bookworm's own is too old for Dawn);\n" +
  "on a machine with a GPU, install its Vulkan driver.";

/** The adapter's description ("vendor architecture (device)"), or null when there is none. */
export async function findWebGPUAdapter(): Promise<string | null> {
  const nav = globalThis.navigator as (Navigator & { gpu?: GPU }) | undefined;
  if (!nav?.gpu) {
    const { setupGlobals } = await import("bun-webgpu");
    setupGlobals();
  }
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) return null;
  const info = adapter.info;
  // With no Vulkan driver, Dawn still hands out its "null" backend, which cannot run anything.
  if (isNullBackend(info)) return null;
  return [info?.vendor, info?.architecture, info?.device ? `(${info.device})` : "", info?.description]
    .filter((s) => s)
    .join(" ") || "WebGPU adapter";
}

/** Dawn's placeholder adapter (backend type 1, "Null" in WGPUBackendType). */
export function isNullBackend(info: GPUAdapterInfo | undefined): boolean {
  const backendType = (info as { backendType?: unknown } | undefined)?.backendType;
  return backendType === 1 || info?.device === "null-backend";
}
