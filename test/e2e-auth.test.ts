// Authentication end to end: VALAR_API_KEY plus managed keys of two organizations, against the
// real server. Bearer only; x-api-key gets a 401 that explains Bearer; records are private to
// the organization that created them; a non-loopback host without a key refuses to start.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { MODEL_ID, envelope, post, startTestServer, type TestServer } from "./e2e-harness.ts";
import { openDb, closeDb } from "../src/store/db.ts";
import { createKey, revokeKey, type CreatedKey } from "../src/store/keys.ts";
import { startServer, StartError } from "../src/server.ts";

const ENV_KEY = "valar-env-key-for-tests";
setDefaultTimeout(60_000);

let server: TestServer;
let acme: CreatedKey;
let globex: CreatedKey;
let revoked: CreatedKey;

beforeAll(async () => {
  server = await startTestServer({ apiKey: ENV_KEY }, (dbPath) => {
    const db = openDb(dbPath);
    acme = createKey(db, "acme");
    globex = createKey(db, "globex");
    revoked = createKey(db, "acme");
    revokeKey(db, revoked.id);
    closeDb(db);
  });
});
afterAll(async () => {
  await server?.close();
});

const chat = { model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time" }], max_completion_tokens: 2 };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe("bearer auth", () => {
  test("no key, wrong key, revoked key -> 401 authentication_error", async () => {
    for (const headers of [{}, bearer("valar-wrong"), bearer(revoked.key), { authorization: "Basic abc" }]) {
      const res = await post(`${server.url}/v1/chat/completions`, chat, headers);
      expect(res.status).toBe(401);
      expect(envelope(res.json).type).toBe("authentication_error");
    }
    expect((await fetch(`${server.url}/v1/models`)).status).toBe(401);
  });

  test("x-api-key alone -> 401 explaining Bearer and authToken", async () => {
    const res = await post(`${server.url}/v1/messages`, { model: MODEL_ID, max_tokens: 2, messages: [{ role: "user", content: "Hi" }] }, { "x-api-key": acme.key });
    expect(res.status).toBe(401);
    const err = envelope(res.json);
    expect(err.message).toContain("Bearer");
    expect(err.message).toContain("authToken");

    // The SDK sending only x-api-key (as it does against api.anthropic.com).
    const viaApiKey = new Anthropic({ baseURL: server.url, apiKey: null, authToken: null, maxRetries: 0, defaultHeaders: { "x-api-key": acme.key, authorization: null } });
    const failure = await viaApiKey.messages.create({ model: MODEL_ID, max_tokens: 2, messages: [{ role: "user", content: "Hi" }] }).catch((e) => e);
    expect(failure).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(failure.status).toBe(401);
    expect(failure.message).toContain("authToken");

    const viaToken = new Anthropic({ baseURL: server.url, authToken: acme.key, maxRetries: 0 });
    const msg = await viaToken.messages.create({ model: MODEL_ID, max_tokens: 2, messages: [{ role: "user", content: "Hi" }] });
    expect(msg.stop_reason).toBe("end_turn");
  });

  test("the env key and managed keys work with the OpenAI SDK", async () => {
    for (const key of [ENV_KEY, acme.key, globex.key]) {
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries: 0 });
      expect((await client.models.list()).data[0].id).toBe(MODEL_ID);
    }
  });

  test("a record is visible to its organization only", async () => {
    const created = await post(`${server.url}/v1/chat/completions`, chat, bearer(acme.key));
    expect(created.status).toBe(200);
    const id = created.json.id;
    const get = (key: string) => fetch(`${server.url}/v1/responses/${id}`, { headers: bearer(key) });
    const mine = await get(acme.key);
    expect(mine.status).toBe(200);
    expect((await mine.json()).id).toBe(id);
    for (const other of [globex.key, ENV_KEY]) {
      const res = await get(other);
      expect(res.status).toBe(404);
      expect(envelope(await res.json()).type).toBe("not_found_error");
    }
  });

  test("probes and metrics need no key", async () => {
    for (const p of ["/health", "/ready", "/metrics"]) expect((await fetch(server.url + p)).status).toBe(200);
  });
});

test("a non-loopback host without any key refuses to start", async () => {
  const dir = `${server.dbPath}.other.db`;
  const err = await startServer({ models: [{ id: MODEL_ID, ref: "unused" }], host: "0.0.0.0", port: 0, db: dir }).catch((e) => e);
  expect(err).toBeInstanceOf(StartError);
  expect(err.message).toContain("VALAR_API_KEY");
});
