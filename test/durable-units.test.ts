// Unit tests of the durable pieces that need no engine: record transitions (conditional, a
// terminal record never changes, hooks commit with the transition), waiting for a record,
// webhook targets, the deliveries table's lease, and the windows setting.

import { describe, expect, test } from "bun:test";
import { openDb } from "../src/store/db.ts";
import { DEFAULT_ORG } from "../src/store/keys.ts";
import { ResponseStore } from "../src/store/responses.ts";
import { DeliveryStore } from "../src/store/deliveries.ts";
import { webhookTarget } from "../src/webhooks/target.ts";
import { parseWindows } from "../src/server.ts";
import type { Generation, GenerationResult } from "../src/generation.ts";

const principal = { organizationId: DEFAULT_ORG.id, apiKeyId: null };
const gen = (metadata: Record<string, string> = {}): Generation => ({
  model: "m", input: { kind: "text", text: "x" }, maxOutputTokens: 1, temperature: 0, topP: 1, logprobs: false,
  tools: [], metadata, window: "asap", user: null,
});
const result: GenerationResult = {
  status: "completed", text: "hi", tokens: [{ id: 1, text: "hi" }], finishReason: "stop",
  usage: { inputTokens: 1, cachedTokens: 0, outputTokens: 1 }, timeToFirstTokenMs: 1, decodeMs: 1,
};

function fresh() {
  const db = openDb(":memory:");
  return { db, store: new ResponseStore(db), deliveries: new DeliveryStore(db) };
}

describe("record transitions", () => {
  test("claim succeeds once; a terminal record never changes; window stored", () => {
    const { store } = fresh();
    const rec = store.create({ id: "resp_1", surface: "responses", principal, request: {}, generation: gen(), background: true });
    expect(rec).toMatchObject({ status: "queued", window: "asap", background: true });
    expect(store.claim("resp_1")).toBe(true);
    expect(store.claim("resp_1")).toBe(false);
    expect(store.finish("resp_1", result).status).toBe("completed");
    expect(store.fail("resp_1", { code: "x", message: "late" })!.status).toBe("completed");
    expect(store.cancelQueued("resp_1")).toBe(false);
    expect(store.get("resp_1")!.error).toBeNull();
  });

  test("cancelQueued only while queued; requeue only from in_progress; unfinished lists both, oldest first", () => {
    const { store } = fresh();
    for (const id of ["resp_a", "resp_b", "resp_c"]) store.create({ id, surface: "chat", principal, request: {}, generation: gen() });
    store.claim("resp_b");
    expect(store.cancelQueued("resp_b")).toBe(false);
    expect(store.cancelQueued("resp_c")).toBe(true);
    expect(store.unfinished().map((r) => [r.id, r.status])).toEqual([["resp_a", "queued"], ["resp_b", "in_progress"]]);
    store.requeue("resp_b");
    store.requeue("resp_c");
    expect(store.get("resp_b")!.status).toBe("queued");
    expect(store.get("resp_c")!.status).toBe("cancelled");
  });

  test("hooks run inside the terminal transaction (a throwing hook rolls the transition back) and after it", () => {
    const { store } = fresh();
    const seen: string[] = [];
    let explode = true;
    store.addHooks({
      inTransaction: (_tx, rec) => {
        if (explode) throw new Error("hook failed");
        seen.push(`in:${rec.status}`);
      },
      afterCommit: (rec) => seen.push(`after:${rec.status}`),
    });
    store.create({ id: "resp_h", surface: "responses", principal, request: {}, generation: gen() });
    expect(() => store.finish("resp_h", result)).toThrow("hook failed");
    expect(store.get("resp_h")!.status).toBe("queued");
    explode = false;
    store.finish("resp_h", result);
    store.finish("resp_h", result);
    expect(seen).toEqual(["in:completed", "after:completed"]);
  });

  test("settled resolves when the record turns terminal, and rejects when its signal aborts", async () => {
    const { store } = fresh();
    store.create({ id: "resp_w", surface: "responses", principal, request: {}, generation: gen() });
    const waiting = store.settled("resp_w");
    const abandoned = store.settled("resp_w", AbortSignal.timeout(10));
    await expect(abandoned).rejects.toBeDefined();
    store.finish("resp_w", result);
    expect((await waiting).status).toBe("completed");
    expect((await store.settled("resp_w")).status).toBe("completed");
  });
});

describe("webhook targets and deliveries", () => {
  test("only absolute http(s) URLs are used; the token comes along", () => {
    expect(webhookTarget({ completion_webhook: "https://example.com/h?x=1", webhook_token: "t" })).toEqual({ url: "https://example.com/h?x=1", token: "t" });
    expect(webhookTarget({ completion_webhook: "http://127.0.0.1:8080/h" })).toEqual({ url: "http://127.0.0.1:8080/h", token: null });
    for (const bad of ["", "ftp://x/y", "mailto:a@b", "/path", "not a url", "http://", "data:text/plain,x"]) {
      expect(webhookTarget({ completion_webhook: bad })).toBeNull();
    }
    expect(webhookTarget({ webhook_token: "t" })).toBeNull();
  });

  test("a delivery is claimed once per due time (the lease), then closed", () => {
    const { db, deliveries } = fresh();
    deliveries.enqueue(db, { responseId: "resp_1", url: "http://x/", token: null });
    const [d] = deliveries.due(Date.now());
    expect(d).toMatchObject({ status: "pending", attempts: 0 });
    expect(deliveries.claim(d, Date.now() + 1000)).toBe(true);
    expect(deliveries.claim(d, Date.now() + 1000)).toBe(false);
    expect(deliveries.due(Date.now())).toEqual([]);
    deliveries.attemptFailed(d.id, 1, 503, "HTTP 503", Date.now() - 1);
    const [again] = deliveries.due(Date.now());
    expect(again).toMatchObject({ attempts: 1, lastStatus: 503 });
    deliveries.attemptFailed(d.id, 4, null, "timeout", null);
    expect(deliveries.forResponse("resp_1")[0]).toMatchObject({ status: "failed", attempts: 4 });
    expect(deliveries.nextDueAt()).toBeNull();
  });
});

describe("settings", () => {
  test("VALAR_MODEL_WINDOWS", () => {
    expect(parseWindows(undefined)).toBeUndefined();
    expect(parseWindows("a=asap; b=asap,standard")).toEqual({ a: ["asap"], b: ["asap", "standard"] });
    expect(() => parseWindows("a=flex")).toThrow("VALAR_MODEL_WINDOWS");
    expect(() => parseWindows("asap")).toThrow("VALAR_MODEL_WINDOWS");
  });
});
