// Tokenizer speed (`bun bench/tokenizer.ts`): ours beside llama.cpp's (node-llama-cpp
// `model.tokenize`, the same GGUF file) on the same 10 MB texts, with whether the ids agree.
//
//   bun bench/tokenizer.ts
//   BENCH_MB=1 bun bench/tokenizer.ts
//
// Texts: story text (one paragraph repeated: every word is a cache hit after the first), and
// random vocabulary words (pieces drawn from the vocabulary, seeded: few repeats). Ours is timed
// twice on each, cold (a fresh tokenizer) and warm (the same one again, its word cache full).
// Then the story text through a byte-level BPE tokenizer (`gpt2`, Qwen2's pre-tokenizer), on the
// random qwen2 test model's small vocabulary (no real BPE vocabulary is on this machine): what
// it shows is the pre-tokenizer's and the word table's speed, as every word repeats.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openModel } from "../src/engine/model/open.ts";
import { findRandomModel, writeRandomGGUF } from "../test/support/random-gguf.ts";
import { createTokenizer } from "../src/engine/tokenizer/index.ts";
import { referenceLlama } from "../scripts/llama-cpp-reference.ts";

const MODEL = new URL("../../shared/models/stories15M/stories15M-q8_0.gguf", import.meta.url).pathname;
const MB = Number(process.env.BENCH_MB ?? 10);

const ourTokenizer = (model = MODEL) => {
  const file = openModel(model);
  try {
    return createTokenizer(file);
  } finally {
    file.close();
  }
};

function texts(): { name: string; text: string }[] {
  const story = "Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog, Max. One day, they found a big red ball! ";
  const tok = ourTokenizer();
  let seed = 20261207;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  const words: string[] = [];
  let length = 0;
  while (length < MB * 1e6) {
    const piece = tok.tokenText(3 + Math.floor(next() * (tok.vocabSize - 3)));
    if (piece.startsWith("<")) continue;
    const word = piece.replaceAll("\u2581", " ");
    words.push(word);
    length += word.length;
  }
  return [
    { name: "story text", text: story.repeat(Math.ceil((MB * 1e6) / story.length)) },
    { name: "random vocabulary words", text: words.join("") },
  ];
}

const mbps = (text: string, ms: number) => text.length / 1e6 / (ms / 1000);

const llama = await referenceLlama();

const bpeDir = mkdtempSync(join(tmpdir(), "valar-bench-bpe-"));
const BPE_MODEL = writeRandomGGUF(findRandomModel("qwen2-f32"), bpeDir).path;
const [story, random] = texts();
const rows = [
  { name: story.name, text: story.text, model: MODEL },
  { name: random.name, text: random.text, model: MODEL },
  { name: "story text, byte-level BPE (random qwen2 vocabulary)", text: story.text, model: BPE_MODEL },
];

console.log(`\n### Tokenizing ${MB} MB of text, stories15M-q8_0.gguf (SentencePiece) and a byte-level BPE file\n`);
console.log("| text | ours cold MB/s | ours warm MB/s | llama.cpp MB/s | ours / llama.cpp (cold) | tokens | ids equal |");
console.log("|---|---:|---:|---:|---:|---:|---|");
for (const { name, text, model } of rows) {
  const reference = await llama.loadModel({ modelPath: model, gpuLayers: 0 });
  const tok = ourTokenizer(model);
  let t0 = performance.now();
  const ours = tok.encode(text, { addBos: false });
  const cold = performance.now() - t0;
  t0 = performance.now();
  tok.encode(text, { addBos: false });
  const warm = performance.now() - t0;
  t0 = performance.now();
  const theirs = reference.tokenize(text) as number[];
  const ref = performance.now() - t0;
  const equal = ours.length === theirs.length && ours.every((id, i) => id === Number(theirs[i]));
  console.log(`| ${name} | ${mbps(text, cold).toFixed(1)} | ${mbps(text, warm).toFixed(1)} | ${mbps(text, ref).toFixed(1)} | ${(ref / cold).toFixed(2)} | ${ours.length} | ${equal ? "yes" : `no (${theirs.length} ids)`} |`);
  await reference.dispose();
}
rmSync(bpeDir, { recursive: true, force: true });
