// The engine under Deno: the same src/engine code on Deno's own WebGPU (wgpu over Vulkan: here
// lavapipe, without subgroups, so the shared-memory reduction fallback), its greedy ids equal to
// llama.cpp's recorded ones as on Bun. Deno comes from npm (the `deno` dev dependency); skipped
// where its binary is missing.
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";

const MODELS = new URL("../../shared/models/stories15M/", import.meta.url).pathname;
const DENO = new URL("../node_modules/.bin/deno", import.meta.url).pathname;
const SCRIPT = new URL("./support/deno-engine.ts", import.meta.url).pathname;

test.skipIf(!existsSync(DENO))("stories15M-q8_0 under Deno: greedy ids equal llama.cpp's", async () => {
  const referencePath = `${MODELS}llama.cpp-greedy-q8_0.json`;
  const proc = Bun.spawn(
    [DENO, "run", "--unstable-webgpu", "--unstable-raw-imports", "--allow-read", "--allow-env", "--no-prompt", SCRIPT, `${MODELS}stories15M-q8_0.gguf`, referencePath],
    { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } },
  );
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`deno exited with ${code}:\n${err.slice(-3000)}`);
  const r = JSON.parse(out.trim().split("\n").at(-1)!) as { adapter: string; features: Record<string, boolean>; outputs: number[][] };
  console.log(`deno adapter: ${r.adapter}; features ${JSON.stringify(r.features)}`);
  const reference = JSON.parse(readFileSync(referencePath, "utf8")) as { cases: { greedy_ids: number[] }[] };
  expect(r.outputs).toEqual(reference.cases.map((c) => c.greedy_ids));
}, 120_000);
