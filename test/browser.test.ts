// The engine in a browser: the same src/engine code, bundled for the browser, running on a
// headless Chromium's own WebGPU (SwiftShader's software Vulkan here: no shader-f16, so the f32
// KV-cache fallback), the model fetched over HTTP and parsed from memory. Its greedy ids must
// equal llama.cpp's recorded ones, as on Bun. Skipped where no Chromium is installed
// (scripts/setup-system.sh installs it).
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MODELS = new URL("../../shared/models/stories15M/", import.meta.url).pathname;
const CHROMIUM = Bun.which("chromium") ?? Bun.which("chromium-browser");
/** stories15M-q8_0, its three prompts: 64 greedy tokens each. */
const reference = JSON.parse(readFileSync(`${MODELS}llama.cpp-greedy-q8_0.json`, "utf8")) as { cases: { prompt: string; prompt_ids: number[]; greedy_ids: number[] }[] };
const cases = reference.cases;

const profile = mkdtempSync(join(tmpdir(), "valar-chromium-"));
afterAll(() => rmSync(profile, { recursive: true, force: true }));

interface PageResult { adapter?: string | null; features?: Record<string, boolean>; outputs?: number[][]; decodeTokPerS?: number[]; error?: string }

test.skipIf(!CHROMIUM)("stories15M-q8_0 in headless Chromium: greedy ids equal llama.cpp's", async () => {
  const build = await Bun.build({
    entrypoints: [new URL("./support/browser-engine.ts", import.meta.url).pathname],
    target: "browser",
    // Bun-only imports behind run-time checks (Dawn, libc through FFI): never reached in a page
    external: ["bun-webgpu", "bun:ffi"],
  });
  expect(build.success).toBe(true);
  const bundle = await build.outputs[0].text();
  let resolve!: (r: PageResult) => void;
  const result = new Promise<PageResult>((r) => { resolve = r; });
  const server = Bun.serve({
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/") return new Response(`<!doctype html><script type="module" src="/engine.js"></script>`, { headers: { "content-type": "text/html" } });
      if (path === "/engine.js") return new Response(bundle, { headers: { "content-type": "text/javascript" } });
      if (path === "/model.gguf") return new Response(Bun.file(`${MODELS}stories15M-q8_0.gguf`));
      if (path === "/reference.json") return Response.json({ cases });
      if (path === "/result" && req.method === "POST") { resolve(await req.json()); return new Response("ok"); }
      return new Response("not found", { status: 404 });
    },
  });
  const browser = Bun.spawn(
    [CHROMIUM!, "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", `--user-data-dir=${profile}`, "--no-first-run", `http://127.0.0.1:${server.port}/`],
    { stdout: "ignore", stderr: "pipe" },
  );
  try {
    const timeout = new Promise<PageResult>((r) => setTimeout(() => r({ error: "no result from the page within 100 s" }), 100_000));
    const r = await Promise.race([result, timeout]);
    if (r.error) {
      const log = await Promise.race([new Response(browser.stderr).text(), new Promise<string>((ok) => setTimeout(() => ok(""), 1000))]);
      throw new Error(`${r.error}\n${log.slice(-2000)}`);
    }
    console.log(`browser adapter: ${r.adapter}; features ${JSON.stringify(r.features)}; decode tok/s ${r.decodeTokPerS?.map((x) => x.toFixed(1)).join(", ")}`);
    expect(r.outputs).toEqual(cases.map((c) => c.greedy_ids));
  } finally {
    browser.kill();
    await browser.exited;
    server.stop(true);
  }
}, 120_000);
