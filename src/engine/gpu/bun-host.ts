// What the engine needs from Bun's WebGPU host (Dawn through bun-webgpu) beyond the WebGPU API:
// two settings that decide how fast the software Vulkan driver (lavapipe) runs our dispatch
// pattern, a forward pass of ~65 small dispatches per token.

/** Tells lavapipe how many worker threads to run compute dispatches on, unless the user did. */
const LAVAPIPE_THREADS_ENV = "LP_NUM_THREADS";

/**
 * lavapipe hands each dispatch to a pool of worker threads and waits for them: two thread
 * wake-ups per dispatch, 25-45 us each on a 2-core machine, where most of our decode dispatches
 * have less work than that. With no pool (LP_NUM_THREADS=0) it runs them on its queue thread:
 * ~0.5 us per dispatch, and a stories15M q8_0 decode step ran faster on that one core than on
 * the pool's two (measured 59-62 vs 45 tok/s; later, with cheaper kernels, 85-95 vs 74-84). Prompt
 * chunks, whose dispatches have workgroups to share, run faster on the pool (334-379 vs 183-228
 * tok/s): decode speed is what this default is for.
 * Set through the C library, as the driver reads it with getenv() when Dawn loads it (Bun's
 * process.env does not reach the C environment); an existing value is left as it is.
 */
export async function runSoftwareDispatchesInline(): Promise<void> {
  if (process.env[LAVAPIPE_THREADS_ENV] !== undefined || process.platform !== "linux") return;
  try {
    const { dlopen, FFIType } = await import("bun:ffi");
    const libc = dlopen("libc.so.6", { setenv: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 } });
    // NUL-terminated bytes, passed as arrays so that they stay alive for the call
    const name = new TextEncoder().encode(`${LAVAPIPE_THREADS_ENV}\0`);
    const value = new TextEncoder().encode("0\0");
    if (libc.symbols.setenv(name, value, 0) === 0) inlineSet = true;
  } catch {
    // not glibc: lavapipe keeps its default pool
  }
}

let inlineSet = false;

/** lavapipe's LP_NUM_THREADS as this process runs it: the user's value, "0" (ours), or unset. */
export function lavapipeThreads(): string | undefined {
  return process.env[LAVAPIPE_THREADS_ENV] ?? (inlineSet ? "0" : undefined);
}

/** How often Dawn's events are processed while a map or a work-done callback is pending. */
const POLL_MS = 1;

/**
 * bun-webgpu resolves pending maps by calling Dawn's ProcessEvents from a setImmediate loop,
 * which keeps one CPU core busy for as long as the GPU works. On the software Vulkan driver that
 * core is one the driver's own threads need: a decode step ran 20-25% slower beside the loop
 * (stories15M q8_0: 36 -> 44 tok/s without it, prefill 119 -> 188). Polling on a 1 ms timer
 * instead costs at most 1 ms of latency per wait, which the runner hides by keeping the next
 * step queued. Patches the library's ticker (a private object; left alone if its shape changes).
 */
export function pollDawnGently(gpu: unknown): void {
  type Ticker = {
    _ticking: boolean;
    hasWaiting(): boolean;
    processEvents(): void;
    scheduleTick(): void;
  };
  const ticker = (gpu as { _ticker?: Partial<Ticker> } | undefined)?._ticker;
  if (!ticker || typeof ticker.scheduleTick !== "function" || typeof ticker.processEvents !== "function" || typeof ticker.hasWaiting !== "function") return;
  const t = ticker as Ticker;
  t.scheduleTick = () => {
    if (t._ticking) return;
    t._ticking = true;
    setTimeout(() => {
      t.processEvents();
      t._ticking = false;
      if (t.hasWaiting()) t.scheduleTick();
    }, POLL_MS);
  };
}

