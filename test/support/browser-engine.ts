// The engine as a browser page runs it (bundled by test/browser.test.ts): WebGPU from the page's
// navigator.gpu, the model fetched over HTTP and parsed from memory, greedy generation; the
// results are POSTed back to the test's server.
import { acquireDevice, featuresOf, loadModel } from "../../src/engine/index.ts";
import { memorySource } from "../../src/engine/model/byte-source.ts";
import { parseGGUF } from "../../src/engine/model/gguf-parse.ts";

interface Case { prompt_ids: number[]; greedy_ids: number[] }

async function run(): Promise<unknown> {
  const device = await acquireDevice();
  const adapter = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const bytes = new Uint8Array(await (await fetch("/model.gguf")).arrayBuffer());
  const cases = ((await (await fetch("/reference.json")).json()) as { cases: Case[] }).cases;
  const model = await loadModel(device, parseGGUF(memorySource("model.gguf", bytes)), { maxContext: 256 });
  const outputs: number[][] = [];
  const decodeTokPerS: number[] = [];
  for (const c of cases) {
    const ids: number[] = [];
    const gen = model.generate(c.prompt_ids, { maxTokens: c.greedy_ids.length, sampling: { temperature: 0, topP: 1 } });
    let r = await gen.next();
    for (; !r.done; r = await gen.next()) ids.push(r.value.id);
    outputs.push(ids);
    decodeTokPerS.push(((r.value.timings.outputTokens - 1) * 1000) / r.value.timings.decodeMs);
  }
  model.dispose();
  return { adapter: adapter ? `${adapter.vendor} ${adapter.architecture} ${adapter.description}`.trim() : null, features: featuresOf(device), outputs, decodeTokPerS };
}

run()
  .then((r) => fetch("/result", { method: "POST", body: JSON.stringify(r) }))
  .catch((e: unknown) => fetch("/result", { method: "POST", body: JSON.stringify({ error: String((e as Error)?.stack ?? e) }) }));
