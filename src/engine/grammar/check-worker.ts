// The request-time schema check in a thread of its own, so that a schema whose compilation
// never ends stalls only this thread, which GrammarChecker then replaces. Without a vocabulary
// the check is validateConstraint; with one, the compile the engine will run (cached per schema).

import { createGrammarFactory, GrammarCompileError, validateConstraint, type GrammarFactory } from "./index.ts";
import { vocabKey, type CheckReply, type CheckRequest, type CheckVocab } from "./checker.ts";
import { openModel } from "../model/open.ts";
import { createTokenizer } from "../tokenizer/index.ts";

declare const self: Worker;

const factories = new Map<string, Promise<GrammarFactory>>();

function factoryFor(v: CheckVocab): Promise<GrammarFactory> {
  let f = factories.get(vocabKey(v));
  if (!f) {
    const file = openModel(v.ref);
    let tokenizer;
    try {
      tokenizer = createTokenizer(file);
    } finally {
      file.close();
    }
    f = createGrammarFactory(tokenizer, v.nVocab);
    f.catch(() => factories.delete(vocabKey(v)));
    factories.set(vocabKey(v), f);
  }
  return f;
}

const reply = (id: number, error: string | null) => self.postMessage({ type: "checked", id, error } satisfies CheckReply);

// Load xgrammar before saying ready, so the first check's time limit is not spent loading it.
await validateConstraint({ type: "json_schema", schema: { type: "object" } });
self.postMessage({ type: "ready" } satisfies CheckReply);

self.onmessage = async (ev: MessageEvent<CheckRequest>) => {
  const m = ev.data;
  try {
    if (m.type === "vocab") await factoryFor(m.vocab);
    else if (m.vocab) await (await factoryFor(m.vocab)).compile(m.constraint);
    else await validateConstraint(m.constraint);
    reply(m.id, null);
  } catch (err) {
    if (m.type === "vocab") return reply(m.id, (err as Error)?.message ?? String(err));
    reply(m.id, err instanceof GrammarCompileError ? err.message : `the grammar compiler failed: ${(err as Error)?.message ?? String(err)}`);
  }
};
