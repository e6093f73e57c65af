// Tokenizing in a thread of its own (TokenizerThread's worker): a long prompt's encoding does
// not hold the HTTP thread. Tokenizers are built from the model file on first use, per file.

import { openModel } from "../model/open.ts";
import { createTokenizer } from "./index.ts";
import type { Tokenizer } from "./types.ts";
import type { EncodeReply, EncodeRequest } from "./thread.ts";

declare const self: Worker;

const tokenizers = new Map<string, Tokenizer>();

function tokenizerFor(ref: string): Tokenizer {
  let t = tokenizers.get(ref);
  if (!t) {
    const file = openModel(ref);
    try {
      t = createTokenizer(file);
    } finally {
      file.close();
    }
    tokenizers.set(ref, t);
  }
  return t;
}

self.onmessage = (ev: MessageEvent<EncodeRequest>) => {
  const { id, ref, text, addBos, parseSpecial } = ev.data;
  try {
    const ids = Int32Array.from(tokenizerFor(ref).encode(text, { addBos, parseSpecial }));
    self.postMessage({ id, ids } satisfies EncodeReply, [ids.buffer] as never);
  } catch (err) {
    self.postMessage({ id, error: err instanceof Error ? err.message : String(err) } satisfies EncodeReply);
  }
};

self.postMessage({ type: "ready" });
