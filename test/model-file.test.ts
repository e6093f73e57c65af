// GET /v1/models/{id}/file: the served GGUF, whole or by byte range, behind the API's
// authentication, for pages that run the model on their own GPU.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { MODEL_ID, MODEL_PATH, envelope, startTestServer, type TestServer } from "./e2e-harness.ts";
import { parseRange } from "../src/api/byte-ranges.ts";

const bytes = new Uint8Array(readFileSync(MODEL_PATH));

describe("parseRange", () => {
  test.each([
    ["bytes=0-9", { start: 0, end: 9 }],
    ["bytes=10-", { start: 10, end: 99 }],
    ["bytes=-5", { start: 95, end: 99 }],
    ["bytes=-500", { start: 0, end: 99 }],
    ["bytes=90-200", { start: 90, end: 99 }],
    ["bytes=0-1,5-6", null],
    ["items=0-1", null],
    ["bytes=-", null],
    ["bytes=100-", "unsatisfiable"],
    ["bytes=5-4", "unsatisfiable"],
    ["bytes=-0", "unsatisfiable"],
  ] as const)("%s of 100 bytes", (header, want) => {
    expect(parseRange(header, 100)).toEqual(want as never);
  });
});

describe("GET /v1/models/{id}/file", () => {
  let server: TestServer;
  beforeAll(async () => { server = await startTestServer(); });
  afterAll(async () => { await server?.close(); });
  const url = () => `${server.url}/v1/models/${MODEL_ID}/file`;

  test("the whole file, with its validators", async () => {
    const res = await fetch(url());
    expect(res.status).toBe(200);
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("content-length")).toBe(String(bytes.length));
    expect(res.headers.get("etag")).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  test("a byte range is a 206 with exactly those bytes", async () => {
    const res = await fetch(url(), { headers: { range: "bytes=1000-1999" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 1000-1999/${bytes.length}`);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes.subarray(1000, 2000));
    const tail = await fetch(url(), { headers: { range: "bytes=-16" } });
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 16));
  });

  test("HEAD answers the size without the body; If-None-Match a 304", async () => {
    const head = await fetch(url(), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(bytes.length));
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    const again = await fetch(url(), { headers: { "if-none-match": head.headers.get("etag")! } });
    expect(again.status).toBe(304);
  });

  test("a range past the end is a 416 in the envelope; an If-Range of another version gets the whole file", async () => {
    const res = await fetch(url(), { headers: { range: `bytes=${bytes.length}-` } });
    expect(res.status).toBe(416);
    expect(res.headers.get("content-range")).toBe(`bytes */${bytes.length}`);
    expect(envelope(await res.json()).code).toBe("range_not_satisfiable");
    const stale = await fetch(url(), { headers: { range: "bytes=0-9", "if-range": '"0-0"' } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(bytes.length);
  });

  test("an unknown model is a 404 naming it", async () => {
    const res = await fetch(`${server.url}/v1/models/nope/file`);
    expect(res.status).toBe(404);
    expect(envelope(await res.json())).toMatchObject({ param: "model", code: "model_not_found" });
  });
});

describe("GET /v1/models/{id}/file with an API key", () => {
  test("needs the key like every /v1 route", async () => {
    const server = await startTestServer({ apiKey: "valar-file-test" });
    try {
      const head = (headers: Record<string, string>) => fetch(`${server.url}/v1/models/${MODEL_ID}/file`, { method: "HEAD", headers });
      expect((await head({})).status).toBe(401);
      expect((await head({ authorization: "Bearer valar-file-test" })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
