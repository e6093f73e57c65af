// cosf / sinf as the C library rounds them, for RoPE tables that match llama.cpp's CPU backend
// (which fills its rope cache with them): taken from libm through Bun's FFI where that loads
// (glibc), else Math.cos / Math.sin of the same f32 angle rounded to f32 — correctly rounded, so
// they differ from glibc's by one ulp for ~1% of angles, which moves a logit now and then.

export interface Trig {
  cos(x: number): number;
  sin(x: number): number;
  /** Where the functions come from, for logs and tests. */
  source: "libm" | "Math";
}

export const MATH_TRIG: Trig = {
  cos: (x) => Math.fround(Math.cos(x)),
  sin: (x) => Math.fround(Math.sin(x)),
  source: "Math",
};

let libcTrig: Promise<Trig> | undefined;

export function cTrig(): Promise<Trig> {
  libcTrig ??= (async (): Promise<Trig> => {
    if (typeof (globalThis as { Bun?: unknown }).Bun === "undefined") return MATH_TRIG;
    try {
      const { dlopen, FFIType } = await import("bun:ffi");
      const f32 = { args: [FFIType.f32], returns: FFIType.f32 } as const;
      const lib = dlopen(process.platform === "darwin" ? "libSystem.B.dylib" : "libm.so.6", { cosf: f32, sinf: f32 });
      return { cos: (x) => lib.symbols.cosf(x) as number, sin: (x) => lib.symbols.sinf(x) as number, source: "libm" };
    } catch {
      return MATH_TRIG;
    }
  })();
  return libcTrig;
}
