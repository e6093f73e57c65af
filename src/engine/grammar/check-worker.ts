// The request-time schema check (validateConstraint) in a thread of its own, so that a schema
// whose compilation never ends stalls only this thread, which GrammarChecker then replaces.

import { GrammarCompileError, validateConstraint } from "./index.ts";
import type { CheckReply, CheckRequest } from "./checker.ts";

declare const self: Worker;

// Load xgrammar before saying ready, so the first check's time limit is not spent loading it.
await validateConstraint({ type: "json_schema", schema: { type: "object" } });
self.postMessage({ type: "ready" } satisfies CheckReply);

self.onmessage = async (ev: MessageEvent<CheckRequest>) => {
  const { id, constraint } = ev.data;
  try {
    await validateConstraint(constraint);
    self.postMessage({ type: "checked", id, error: null } satisfies CheckReply);
  } catch (err) {
    const message = err instanceof GrammarCompileError ? err.message : `the grammar compiler failed: ${(err as Error)?.message ?? String(err)}`;
    self.postMessage({ type: "checked", id, error: message } satisfies CheckReply);
  }
};
