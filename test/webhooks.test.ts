// Completion webhooks against a local receiver (Bun.serve on port 0): a receiver that fails twice
// then accepts gets exactly 3 attempts with the GET body byte for byte and the token; one that
// never answers gets 4 attempts and the record does not change; every surface and a cancel
// trigger one; unusable URLs are skipped; a restart resumes a pending retry from the table.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MODEL_ID, MODEL_PATH, post, startTestServer, type TestServer } from "./e2e-harness.ts";
import { startServer } from "../src/server.ts";
import { DeliveryStore } from "../src/store/deliveries.ts";
import { openDb } from "../src/store/db.ts";
import type { Server } from "bun";

setDefaultTimeout(60_000);

interface Hit {
  path: string;
  body: string;
  authorization: string | null;
  contentType: string | null;
  at: number;
}

/** The local endpoint: `/fail-N/...` answers 500 to its first N calls, `/hang/...` never answers. */
class Receiver {
  readonly hits: Hit[] = [];
  private readonly calls = new Map<string, number>();
  private readonly server: Server<undefined>;

  constructor() {
    this.server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      idleTimeout: 60,
      fetch: async (req) => {
        const path = new URL(req.url).pathname;
        this.hits.push({ path, body: await req.text(), authorization: req.headers.get("authorization"), contentType: req.headers.get("content-type"), at: Date.now() });
        const n = (this.calls.get(path) ?? 0) + 1;
        this.calls.set(path, n);
        if (path.startsWith("/hang/")) return new Promise<Response>(() => {});
        const fails = /^\/fail-(\d+)\//.exec(path);
        if (fails && n <= Number(fails[1])) return new Response("not yet", { status: 500 });
        return new Response("ok");
      },
    });
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.server.port}${path}`;
  }

  to(path: string): Hit[] {
    return this.hits.filter((h) => h.path === path);
  }

  async waitFor(path: string, n: number, timeoutMs = 15_000): Promise<Hit[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.to(path).length < n && Date.now() < deadline) await Bun.sleep(20);
    return this.to(path);
  }

  stop() {
    this.server.stop(true);
  }
}

const WEBHOOKS = { timeoutMs: 400, backoffMs: [60, 120, 180], pollMs: 200 };

let server: TestServer;
let receiver: Receiver;
let deliveries: DeliveryStore;

beforeAll(async () => {
  receiver = new Receiver();
  server = await startTestServer({ webhooks: WEBHOOKS });
  deliveries = new DeliveryStore(server.ctx.auth.db);
});
afterAll(async () => {
  await server?.close();
  receiver?.stop();
});

const getText = async (id: string) => (await fetch(`${server.url}/v1/responses/${id}`)).text();

async function settled(id: string): Promise<string> {
  for (;;) {
    const text = await getText(id);
    if (!["queued", "in_progress"].includes(JSON.parse(text).status)) return text;
    await Bun.sleep(25);
  }
}

async function deliveryDone(id: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = deliveries.forResponse(id);
    if ((rows.length > 0 && rows.every((r) => r.status !== "pending")) || Date.now() > deadline) return rows;
    await Bun.sleep(25);
  }
}

const background = (metadata: Record<string, string>, fields: Record<string, unknown> = {}) =>
  post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", temperature: 0, max_output_tokens: 2, background: true, metadata, ...fields });

describe("delivery", () => {
  test("fails twice then accepts: exactly 3 attempts, each the GET body byte for byte, with the token", async () => {
    const path = "/fail-2/a";
    const res = await background({ completion_webhook: receiver.url(path), webhook_token: "whk_secret" });
    expect(res.status).toBe(202);
    const got = await settled(res.json.id);
    const rows = await deliveryDone(res.json.id);
    await Bun.sleep(400); // room for a wrong 4th attempt to show up
    const hits = receiver.to(path);
    expect(hits.length).toBe(3);
    for (const h of hits) {
      expect(h.body).toBe(got);
      expect(h.authorization).toBe("Bearer whk_secret");
      expect(h.contentType).toBe("application/json");
    }
    // Backoff between attempts, as configured.
    expect(hits[1].at - hits[0].at).toBeGreaterThanOrEqual(WEBHOOKS.backoffMs[0] - 5);
    expect(hits[2].at - hits[1].at).toBeGreaterThanOrEqual(WEBHOOKS.backoffMs[1] - 5);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: "delivered", attempts: 3, lastStatus: 200, lastError: null });
    expect(JSON.parse(got).status).toBe("incomplete");
    expect(await getText(res.json.id)).toBe(got);
  });

  test("never answers: 4 attempts each cut at the timeout, then given up; the record is unchanged", async () => {
    const path = "/hang/b";
    const res = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", max_output_tokens: 2, metadata: { completion_webhook: receiver.url(path) } });
    expect(res.status).toBe(200);
    const before = await getText(res.json.id);
    expect(before).toBe(res.text);
    const rows = await deliveryDone(res.json.id);
    expect(rows[0]).toMatchObject({ status: "failed", attempts: 4, lastStatus: null });
    expect(rows[0].lastError).toContain(`${WEBHOOKS.timeoutMs} ms`);
    const hits = receiver.to(path);
    expect(hits).toHaveLength(4);
    for (const h of hits) {
      expect(h.body).toBe(before);
      expect(h.authorization).toBeNull();
    }
    expect(hits[1].at - hits[0].at).toBeGreaterThanOrEqual(WEBHOOKS.timeoutMs + WEBHOOKS.backoffMs[0] - 5);
    expect(await getText(res.json.id)).toBe(before);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/valar_webhook_attempts_total\{outcome="failed"\} [1-9]/);
    expect(metrics).toMatch(/valar_webhook_attempts_total\{outcome="retry"\} [1-9]/);
    expect(metrics).toMatch(/valar_webhook_attempts_total\{outcome="delivered"\} [1-9]/);
  });

  test("a network error (nothing listening) counts as a failed attempt: 4 of them", async () => {
    const res = await background({ completion_webhook: "http://127.0.0.1:9/nothing-here" });
    await settled(res.json.id);
    const rows = await deliveryDone(res.json.id);
    expect(rows[0]).toMatchObject({ status: "failed", attempts: 4, lastStatus: null });
    expect(rows[0].lastError).toContain("network error");
  });

  test("a non-2xx answer is retried: 4 attempts at most", async () => {
    const path = "/fail-9/c";
    const res = await background({ completion_webhook: receiver.url(path) });
    await settled(res.json.id);
    const rows = await deliveryDone(res.json.id);
    expect(rows[0]).toMatchObject({ status: "failed", attempts: 4, lastStatus: 500 });
    await Bun.sleep(300);
    expect(receiver.to(path)).toHaveLength(4);
  });
});

describe("every surface, and cancel", () => {
  test("chat completions and messages records are delivered as their GET /v1/responses body", async () => {
    const chat = await post(`${server.url}/v1/chat/completions`, {
      model: MODEL_ID, messages: [{ role: "user", content: "Hi" }], max_completion_tokens: 2,
      metadata: { completion_webhook: receiver.url("/ok/chat"), webhook_token: "t-chat" },
    });
    const msg = await post(`${server.url}/v1/messages`, {
      model: MODEL_ID, max_tokens: 2, messages: [{ role: "user", content: "Hi" }],
      metadata: { completion_webhook: receiver.url("/ok/messages") },
    });
    expect(chat.status).toBe(200);
    expect(msg.status).toBe(200);
    const [c] = await receiver.waitFor("/ok/chat", 1);
    const [m] = await receiver.waitFor("/ok/messages", 1);
    expect(c.body).toBe(await getText(chat.json.id));
    expect(c.authorization).toBe("Bearer t-chat");
    expect(JSON.parse(c.body).id).toBe(chat.json.id);
    expect(m.body).toBe(await getText(msg.json.id));
    expect(m.authorization).toBeNull();
  });

  test("a cancelled background response is delivered once, with status cancelled", async () => {
    const res = await background({ completion_webhook: receiver.url("/ok/cancelled") }, { max_output_tokens: 200 });
    const cancelled = await post(`${server.url}/v1/responses/${res.json.id}/cancel`, {});
    expect(cancelled.json.status).toBe("cancelled");
    const [hit] = await receiver.waitFor("/ok/cancelled", 1);
    expect(JSON.parse(hit.body).status).toBe("cancelled");
    expect(hit.body).toBe(await getText(res.json.id));
    await Bun.sleep(200);
    expect(receiver.to("/ok/cancelled")).toHaveLength(1);
  });

  test("unusable URLs do not fail the request and send nothing (API.md: skipped, not refused)", async () => {
    for (const url of ["ftp://127.0.0.1/x", "not a url", "/relative/path", "javascript:alert(1)", "file:///etc/passwd", ""]) {
      const res = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Hi", max_output_tokens: 1, metadata: { completion_webhook: url, webhook_token: "t" } });
      expect({ url, status: res.status }).toEqual({ url, status: 200 });
      expect(deliveries.forResponse(res.json.id)).toEqual([]);
    }
  });
});

describe("restart", () => {
  test("a pending retry survives a restart and is delivered by the next process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "valar-webhook-restart-"));
    const db = join(dir, "valar.db");
    const base = { models: [{ id: MODEL_ID, ref: MODEL_PATH }], host: "127.0.0.1", port: 0, db };
    const path = "/fail-1/restart";
    try {
      // First process: the first attempt fails and the retry is 2 s away when it stops.
      const first = await startServer({ ...base, webhooks: { ...WEBHOOKS, backoffMs: [2_000] } });
      const res = await post(`${first.url}/v1/responses`, { model: MODEL_ID, input: "Hi", max_output_tokens: 1, metadata: { completion_webhook: receiver.url(path) } });
      expect(res.status).toBe(200);
      await receiver.waitFor(path, 1);
      for (let i = 0; i < 100 && new DeliveryStore(first.ctx.auth.db).forResponse(res.json.id)[0]?.attempts !== 1; i++) await Bun.sleep(20);
      await first.stop();
      const reopened = openDb(db);
      expect(new DeliveryStore(reopened).forResponse(res.json.id)[0]).toMatchObject({ status: "pending", attempts: 1, lastStatus: 500 });
      reopened.$client.close();
      expect(receiver.to(path)).toHaveLength(1);

      // Second process on the same file: it finds the retry due and delivers it.
      const second = await startServer({ ...base, webhooks: WEBHOOKS });
      try {
        const hits = await receiver.waitFor(path, 2);
        expect(hits).toHaveLength(2);
        expect(hits[1].body).toBe(hits[0].body);
        expect(hits[1].body).toBe(await (await fetch(`${second.url}/v1/responses/${res.json.id}`)).text());
        const store = new DeliveryStore(second.ctx.auth.db);
        for (let i = 0; i < 100 && store.forResponse(res.json.id)[0].status === "pending"; i++) await Bun.sleep(20);
        expect(store.forResponse(res.json.id)[0]).toMatchObject({ status: "delivered", attempts: 2, lastStatus: 200 });
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
