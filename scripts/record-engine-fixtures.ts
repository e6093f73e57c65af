// Records llama.cpp's outputs as the fixtures of test/engine-parity.test.ts, so CI needs no llama.cpp.
//
//   bun scripts/record-engine-fixtures.ts            # all fixtures
//   bun scripts/record-engine-fixtures.ts qwen3-f32  # only the named ones ("tinystories" for the HF model)
//
// Deterministic: the random models are rebuilt from the seeds in test/support/random-gguf.ts and the
// candidate prompts come from seeded generators here, so rerunning reproduces the same files (up
// to llama.cpp version changes, which is what rerecording is for). Each fixture stores the model's
// sha256; the test rebuilds the model and refuses to compare against a fixture of other bytes.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { getModuleVersion } from "node-llama-cpp";
import { GGMLType } from "../src/engine/model/types.ts";
import { RANDOM_MODELS, Rng, tokenizerKind, vocabSize, writeRandomGGUF, type RandomModelSpec } from "../test/support/random-gguf.ts";
import { greedyWithLogits, openReference, REFERENCE_THREADS } from "./llama-cpp-reference.ts";

const ROOT = resolve(import.meta.dir, "..");
const FIXTURE_DIR = join(ROOT, "test/fixtures/engine");
const TINYSTORIES_DIR = resolve(ROOT, "../shared/models/tinystories-656k");
const REFERENCE = `llama.cpp via node-llama-cpp ${await getModuleVersion()} (CPU, ${REFERENCE_THREADS} threads)`;

const GREEDY_STEPS = 32;
const TOP_K = 16;
const PROMPT_LENGTH = 8;
/**
 * Candidate prompts tried per model. Random models easily fall into a loop repeating one token,
 * which would test little: among candidates whose continuation has at least MIN_DISTINCT
 * different ids, the one whose smallest top-1 margin is widest wins (fewest near-ties).
 */
const PROMPT_CANDIDATES = 12;
const MIN_DISTINCT = 16;

/** Token ids a random prompt may use: the normal tokens of each tokenizer kind. */
function promptRange(spec: RandomModelSpec): { bos?: number; lo: number; hi: number } {
  if (tokenizerKind(spec) === "llama") return { bos: 1, lo: 3, hi: vocabSize("llama") - 1 };
  return { lo: 0, hi: vocabSize("gpt2") - 4 }; // the last 3 are special tokens
}

function candidatePrompt(spec: RandomModelSpec, k: number): number[] {
  const rng = new Rng(spec.seed * 1000 + k);
  const { bos, lo, hi } = promptRange(spec);
  const ids = Array.from({ length: PROMPT_LENGTH }, () => rng.int(lo, hi));
  return bos === undefined ? ids : [bos, ...ids];
}

const round = (x: number) => Math.round(x * 1e5) / 1e5;

async function recordRandomModel(spec: RandomModelSpec, workDir: string) {
  const { path, sha256, bytes } = writeRandomGGUF(spec, workDir);
  const ref = await openReference(path, { contextSize: spec.nCtx });
  try {
    type Candidate = { prompt: number[]; ids: number[]; steps: Awaited<ReturnType<typeof greedyWithLogits>>["steps"]; minMargin: number; score: number };
    let best: Candidate | undefined;
    for (let k = 0; k < PROMPT_CANDIDATES; k++) {
      const prompt = candidatePrompt(spec, k);
      const run = await greedyWithLogits(ref.sequence, prompt, GREEDY_STEPS, TOP_K);
      const minMargin = Math.min(...run.steps.map((s) => s.margin));
      const distinct = new Set(run.ids).size;
      const score = distinct >= MIN_DISTINCT ? minMargin : distinct - 1000;
      if (!best || score > best.score) best = { prompt, ...run, minMargin, score };
    }
    const twin = spec.weightType === GGMLType.F32 ? undefined : await recordTwin(spec, workDir, best!.prompt, best!.ids);
    const fixture = {
      kind: "random-gguf",
      model: spec.name,
      sha256,
      bytes,
      arch: spec.arch,
      weights: GGMLType[spec.weightType],
      type_overrides: Object.fromEntries(Object.entries(spec.typeOverrides ?? {}).map(([k, t]) => [k, GGMLType[t]])),
      reference: REFERENCE,
      decoding: `greedy (argmax) for ${GREEDY_STEPS} steps; logits of the top ${TOP_K} tokens before each step`,
      prompt_ids: best!.prompt,
      greedy_ids: best!.ids,
      min_margin: round(best!.minMargin),
      steps: best!.steps.map((s) => ({ top_ids: s.topIds, top_logits: s.topLogits.map(round) })),
      f32_twin: twin,
    };
    writeFileSync(join(FIXTURE_DIR, `${spec.name}.json`), JSON.stringify(fixture) + "\n");
    console.log(`${spec.name.padEnd(16)} ${sha256.slice(0, 12)} min top-1 margin ${best!.minMargin.toFixed(3)}`);
  } finally {
    await ref.close();
  }
}

/**
 * llama.cpp on the F32 dequantization of a quantized model, teacher-forced along the quantized
 * model's own greedy sequence: the same weight values without llama.cpp's quantization of
 * activations, so our quantized kernels can be held to F32 precision.
 */
async function recordTwin(spec: RandomModelSpec, workDir: string, prompt: number[], greedyIds: number[]) {
  const { path, sha256 } = writeRandomGGUF(spec, workDir, { f32Twin: true });
  const ref = await openReference(path, { contextSize: spec.nCtx });
  try {
    const run = await greedyWithLogits(ref.sequence, prompt, GREEDY_STEPS, TOP_K, greedyIds);
    return {
      sha256,
      decoding: "teacher-forced along prompt_ids + greedy_ids; logits of the top tokens before each step",
      steps: run.steps.map((s) => ({ top_ids: s.topIds, top_logits: s.topLogits.map(round) })),
    };
  } finally {
    await ref.close();
  }
}

const TINYSTORIES_PROMPTS = ["Once upon a time", "The little dog was"];
const TINYSTORIES_STEPS = 64;

async function recordTinyStories(workDir: string) {
  // The product's converter: llama.cpp cannot read a safetensors directory, so the reference runs
  // on our conversion of it. The test checks the conversion separately (the HF directory loaded
  // directly must give the same ids).
  const { openModel } = await import("../src/engine/model/open.ts");
  const { convertToGGUF } = await import("../src/engine/model/convert.ts");
  const ggufPath = join(workDir, "tinystories-656k.gguf");
  const hf = openModel(TINYSTORIES_DIR);
  try {
    await convertToGGUF(hf, ggufPath);
  } finally {
    hf.close();
  }
  const ref = await openReference(ggufPath, { contextSize: 512 });
  try {
    const cases = [];
    for (const prompt of TINYSTORIES_PROMPTS) {
      const promptIds = [...ref.model.tokenize(prompt, false)];
      const bos = ref.model.tokens.bos;
      if (bos !== null) promptIds.unshift(bos);
      const run = await greedyWithLogits(ref.sequence, promptIds, TINYSTORIES_STEPS, 2);
      const text = ref.model.detokenize(run.ids as never);
      cases.push({
        prompt,
        prompt_ids: promptIds,
        greedy_ids: run.ids,
        greedy_text: text,
        margins: run.steps.map((s) => round(s.margin)),
      });
      console.log(`tinystories      ${JSON.stringify(prompt)} -> ${JSON.stringify(text.slice(0, 80))}...`);
    }
    const fixture = {
      kind: "hf-directory",
      model: "tinystories-656k",
      source: "../shared/models/tinystories-656k (converted to GGUF with convertToGGUF for llama.cpp)",
      reference: REFERENCE,
      decoding: `greedy (argmax), BOS prepended, ${TINYSTORIES_STEPS} steps; margins = top-1 minus top-2 logit per step`,
      cases,
    };
    writeFileSync(join(FIXTURE_DIR, "tinystories-656k.json"), JSON.stringify(fixture, null, 1) + "\n");
  } finally {
    await ref.close();
  }
}

const only = new Set(process.argv.slice(2));
const wanted = (name: string) => only.size === 0 || only.has(name);
mkdirSync(FIXTURE_DIR, { recursive: true });
const workDir = mkdtempSync(join(tmpdir(), "valar-fixtures-"));
try {
  for (const spec of RANDOM_MODELS) if (wanted(spec.name)) await recordRandomModel(spec, workDir);
  if (wanted("tinystories")) await recordTinyStories(workDir);
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
process.exit(0);
