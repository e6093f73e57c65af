// Loading @mlc-ai/web-xgrammar (xgrammar compiled to WASM with emscripten) and containing its
// failures.
//
// The WASM build has no C++ exceptions: a failed check (an unsupported schema keyword, a bad
// regex `pattern`, a dangling `$ref`) calls emscripten's abort(), which prints the reason to
// stderr and throws a bare "Aborted()" RuntimeError through the WASM frames. The throw skips
// every destructor and leaves the WASM stack pointer where it was, so an instance that aborted
// leaks memory and stack on each failure, and its compiler cache keeps a never-finished entry
// that makes a retry of the same grammar spin forever. Hence:
//  - every instance is a fresh evaluation of the package (its WASM state lives in the module's
//    closure), so an instance that aborted can be dropped and replaced;
//  - each instance's abort reports are routed to the instance, so the reason for an abort
//    becomes the error message instead of noise on the server's stderr.
//
// Browser note: the WASM binary is embedded in the JS as base64 and single-threaded, so a page
// needs no extra files or cross-origin isolation. Only fresh copies (through `require.cache`)
// are specific to Bun/Node; a page has the one copy its bundle holds, so there an aborted
// instance is reused (it leaks, as the note above says, but keeps working).

export type XGrammar = typeof import("@mlc-ai/web-xgrammar");

/** A fresh evaluation of the package where the host has CommonJS (Bun, Node, Deno); else the bundle's copy. */
async function freshModule(): Promise<XGrammar> {
  const proc = (globalThis as { process?: { versions?: Record<string, string> } }).process;
  if (proc?.versions?.bun || proc?.versions?.node) {
    const { createRequire } = await import("node:module");
    const require = createRequire(import.meta.url);
    const path = require.resolve("@mlc-ai/web-xgrammar");
    delete require.cache[path];
    return require(path) as XGrammar;
  }
  return (await import("@mlc-ai/web-xgrammar")) as XGrammar;
}

/** xgrammar aborted: `reason` is what it printed before aborting (check location stripped). */
export class XGrammarAbort extends Error {
  constructor(readonly reason: string) {
    super(`xgrammar failed: ${reason}`);
    this.name = "XGrammarAbort";
  }
}

let loading: Promise<unknown> = Promise.resolve();

/** One isolated copy of the WASM module. */
export class XGrammarInstance {
  /** Set once the instance has aborted: it still works, but leaks; build new work on a fresh one. */
  poisoned = false;
  // What the instance printed on its way to an abort (reset at the start of each call).
  private fatal: string[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly xg: XGrammar) {}

  /**
   * A fresh instance. Loads run one at a time: emscripten picks up console.error only after an
   * await inside its start-up, so two overlapping loads could capture each other's router.
   */
  static load(): Promise<XGrammarInstance> {
    const next = loading.then(() => XGrammarInstance.loadNow());
    loading = next.catch(() => undefined);
    return next;
  }

  private static async loadNow(): Promise<XGrammarInstance> {
    const instance = new XGrammarInstance(await freshModule());
    // Emscripten binds console.error once, when the module is instantiated (the first API call):
    // instantiate it while console.error is this instance's router. Abort reports are kept for
    // the error message; anything else xgrammar prints (warnings) still reaches stderr.
    const original = console.error;
    const route = (...args: unknown[]) => {
      const line = args.map(String).join(" ");
      if (line.startsWith("[FATAL]") || line.startsWith("Aborted(")) {
        instance.fatal.push(line);
        if (instance.fatal.length > 8) instance.fatal.shift();
      } else {
        original(...args);
      }
    };
    console.error = route;
    try {
      (await instance.xg.Grammar.builtinJSONGrammar()).dispose();
    } finally {
      if (console.error === route) console.error = original;
    }
    return instance;
  }

  /**
   * Runs `fn` against this instance, turning an abort into an XGrammarAbort with its reason.
   * Async calls are queued: the package's wrappers await before calling into WASM, so with calls
   * overlapping, one call's abort report could be read as another's.
   */
  call<T>(fn: (xg: XGrammar) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      this.fatal = [];
      try {
        return await fn(this.xg);
      } catch (e) {
        throw this.translate(e);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  // Not queued and not resetting the report: a synchronous abort prints and throws in one stretch,
  // so the last [FATAL] line is its own, even with a queued async call in flight.
  callSync<T>(fn: (xg: XGrammar) => T): T {
    try {
      return fn(this.xg);
    } catch (e) {
      throw this.translate(e);
    }
  }

  private translate(e: unknown): unknown {
    if (!(e instanceof WebAssembly.RuntimeError) || !e.message.startsWith("Aborted(")) return e;
    this.poisoned = true;
    const reason = abortReason(this.fatal);
    this.fatal = [];
    return new XGrammarAbort(reason);
  }
}

// "[FATAL] /path/json_schema_converter.cc:902: Check failed: (x) is false: Cannot find ..."
const FATAL_PREFIX = /^\[FATAL\]\s+\S+:\d+:\s*/;
const CHECK_PREFIX = /^Check failed: \(.*?\) is false:\s*/;

function abortReason(lines: string[]): string {
  const fatal = lines.findLast((l) => l.startsWith("[FATAL]"));
  if (!fatal) return lines.filter((l) => !l.startsWith("Aborted(")).join(" ").trim() || "unknown error";
  return fatal.replace(FATAL_PREFIX, "").replace(CHECK_PREFIX, "").trim();
}
