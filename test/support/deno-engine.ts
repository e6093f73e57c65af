// The engine under Deno (run by test/deno.test.ts): WebGPU from Deno's own navigator.gpu (wgpu),
// the model opened from disk, greedy generation for each case of a llama.cpp reference file.
// Prints one JSON line: the adapter, the features the engine found, and the ids per case.
import { acquireDevice, featuresOf, loadModel } from "../../src/engine/index.ts";
import { openModel } from "../../src/engine/model/open.ts";

// Deno's globals, as much of them as this script uses (the project type-checks against Bun's).
declare const Deno: { args: string[]; readTextFileSync(path: string): string };

const [modelPath, referencePath] = Deno.args;
const reference = JSON.parse(Deno.readTextFileSync(referencePath)) as { cases: { prompt_ids: number[]; greedy_ids: number[] }[] };
const device = await acquireDevice();
const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
const model = await loadModel(device, openModel(modelPath), { maxContext: 256 });
const outputs: number[][] = [];
for (const c of reference.cases) {
  const ids: number[] = [];
  for await (const t of model.generate(c.prompt_ids, { maxTokens: c.greedy_ids.length, sampling: { temperature: 0, topP: 1 } })) ids.push(t.id);
  outputs.push(ids);
}
model.dispose();
console.log(JSON.stringify({ adapter: info ? `${info.vendor} ${info.architecture} ${info.description}`.trim() : null, features: featuresOf(device), outputs }));
