// `pull` against a local imitation of the Hugging Face hub: `resolve` URLs that answer HEAD with
// the LFS metadata headers and redirect to a separate CDN server, which serves byte ranges and
// can drop the connection part-way through a file.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";
import { createProgress, formatBytes, formatDuration } from "../src/hub/progress.ts";
import { pull, PullError } from "../src/hub/pull.ts";
import { parseHfRef, resolveUrl } from "../src/hub/ref.ts";

interface HubFile {
  data: Uint8Array;
  /** sha256 the hub announces (defaults to the real one). */
  announcedSha?: string;
  /** Repository needs `Authorization: Bearer secret`. */
  gated?: boolean;
}

interface Seen {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range: string | null;
  auth: string | null;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const files = new Map<string, HubFile>(); // key "owner/repo/file"
const seen: Seen[] = [];
/** Per sha: drop the connection after this many bytes, for the next `times` GETs. */
const cuts = new Map<string, { after: number; times: number }>();
let ignoreRange = false;

let cdn: Server;
let hub: ReturnType<typeof Bun.serve>;

const recordHub = (req: Request) =>
  seen.push({ server: "hub", method: req.method, path: new URL(req.url).pathname, range: req.headers.get("range"), auth: req.headers.get("authorization") });

beforeAll(async () => {
  // The CDN is a raw HTTP/1.1 server so that it can really drop the connection part-way through
  // a body (announcing the full Content-Length, then closing the socket).
  cdn = createServer((socket) => {
    let head = "";
    socket.on("data", (chunk) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      const [requestLine, ...headerLines] = head.split("\r\n\r\n")[0].split("\r\n");
      const [method, target] = requestLine.split(" ");
      const header = (name: string) =>
        headerLines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? null;
      const path = new URL(target, "http://cdn").pathname;
      seen.push({ server: "cdn", method, path, range: header("range"), auth: header("authorization") });
      const reply = (status: string, headers: Record<string, string | number>, body: Uint8Array, cutAfter?: number) => {
        const lines = Object.entries({ ...headers, "Content-Length": body.length, Connection: "close" }).map(([k, v]) => `${k}: ${v}`);
        socket.write(`HTTP/1.1 ${status}\r\n${lines.join("\r\n")}\r\n\r\n`);
        if (cutAfter === undefined) return void socket.end(body);
        void (async () => {
          // Trickle the bytes as a real network does, so the client has them before the cut.
          for (let i = 0; i < cutAfter; i += 16384) {
            socket.write(body.subarray(i, Math.min(i + 16384, cutAfter)));
            await Bun.sleep(2);
          }
          await Bun.sleep(20);
          socket.destroy();
        })();
      };
      const hash = path.split("/").pop()!;
      const file = [...files.values()].find((f) => sha(f.data) === hash);
      if (!file) return reply("404 Not Found", {}, new TextEncoder().encode("no such blob"));
      const size = file.data.length;
      let start = 0;
      const range = /^bytes=(\d+)-$/.exec(header("range") ?? "");
      if (range && !ignoreRange) {
        start = Number(range[1]);
        if (start >= size) return reply("416 Range Not Satisfiable", { "Content-Range": `bytes */${size}` }, new Uint8Array());
      }
      const headers: Record<string, string> = { "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream" };
      if (start > 0) headers["Content-Range"] = `bytes ${start}-${size - 1}/${size}`;
      const cut = cuts.get(hash);
      const cutAfter = cut && cut.times-- > 0 ? cut.after : undefined;
      reply(start > 0 ? "206 Partial Content" : "200 OK", headers, file.data.subarray(start), cutAfter);
    });
  });
  await new Promise<void>((resolve) => cdn.listen(0, "127.0.0.1", resolve));
  hub = Bun.serve({
    port: 0,
    fetch(req) {
      recordHub(req);
      const m = /^\/([^/]+)\/([^/]+)\/resolve\/main\/(.+)$/.exec(new URL(req.url).pathname);
      // A renamed repository: the hub answers with a relative redirect to the new name.
      if (m && m[2].startsWith("old-")) {
        return new Response(null, { status: 307, headers: { Location: `/${m[1]}/${m[2].slice(4)}/resolve/main/${m[3]}` } });
      }
      const file = m ? files.get(`${m[1]}/${m[2]}/${decodeURIComponent(m[3])}`) : undefined;
      if (!file) return new Response("Entry not found", { status: 404, headers: { "X-Error-Code": "EntryNotFound" } });
      if (file.gated && req.headers.get("authorization") !== "Bearer secret") {
        return new Response("Access to this repository is restricted", { status: 401, headers: { "X-Error-Message": "Access to model is restricted." } });
      }
      const real = sha(file.data);
      const announced = file.announcedSha ?? real;
      // What huggingface.co answers for an LFS file: a redirect to the CDN with the file's
      // size and sha256 in X-Linked-* headers (ETag carries the sha256 too).
      return new Response("Found. Redirecting", {
        status: 302,
        headers: {
          Location: `http://127.0.0.1:${(cdn.address() as AddressInfo).port}/repos/ab/cd/${real}?response-content-disposition=attachment`,
          "X-Linked-Etag": `"${announced}"`,
          "X-Linked-Size": String(file.data.length),
          ETag: `"${announced}"`,
          "X-Repo-Commit": "0123456789abcdef0123456789abcdef01234567",
        },
      });
    },
  });
});

afterAll(() => {
  hub.stop(true);
  cdn.close();
});

let dir = "";
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = "";
  seen.length = 0;
  cuts.clear();
  ignoreRange = false;
});

function setup(name: string, file: HubFile): { ref: string; dest: string } {
  dir = mkdtempSync(join(tmpdir(), "valar-pull-"));
  files.set(`acme/${name}/${name}.gguf`, file);
  return { ref: `hf:acme/${name}/${name}.gguf`, dest: join(dir, `${name}.gguf`) };
}

function capture() {
  const lines: string[] = [];
  return { stream: { isTTY: false, write: (s: string) => lines.push(s) }, text: () => lines.join("") };
}

const endpoint = () => `http://127.0.0.1:${hub.port}`;

describe("hf: references", () => {
  test("parse and map to the hub's resolve URL", () => {
    const ref = parseHfRef("hf:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf");
    expect(ref).toEqual({ owner: "bartowski", repo: "SmolLM2-135M-Instruct-GGUF", file: "SmolLM2-135M-Instruct-Q8_0.gguf", revision: "main" });
    expect(resolveUrl(ref)).toBe("https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q8_0.gguf");
    expect(resolveUrl(parseHfRef("hf:o/r/sub dir/f.gguf"), "http://x/")).toBe("http://x/o/r/resolve/main/sub%20dir/f.gguf");
  });
  test("malformed references name the problem", () => {
    expect(() => parseHfRef("hf:owner/repo")).toThrow(/expected hf:OWNER\/REPO\/FILE/);
    expect(() => parseHfRef("bartowski/x/y")).toThrow(/not a hub reference/);
    expect(() => parseHfRef("hf:o/r/../etc/passwd")).toThrow(/may not contain/);
  });
});

describe("pull", () => {
  test("downloads through the CDN redirect, verifies, reports progress, renames atomically", async () => {
    const data = seededBytes(300_000, 1);
    const { ref, dest } = setup("plain", { data });
    const out = capture();
    const result = await pull(ref, { dir, endpoint: endpoint(), progress: out.stream });
    expect(result).toMatchObject({ path: dest, bytes: data.length, sha256: sha(data), downloaded: true, resumedFrom: 0 });
    expect(sha(readFileSync(dest))).toBe(sha(data));
    expect(existsSync(`${dest}.part`)).toBe(false);
    // Metadata from a HEAD on the hub that did not follow the redirect; bytes from the CDN.
    expect(seen.map((s) => `${s.server} ${s.method}`)).toEqual(["hub HEAD", "cdn GET"]);
    const text = out.text();
    expect(text).toContain("plain.gguf: downloading 300.0 KB");
    expect(text).toMatch(/plain\.gguf {2}100% {2}300\.0 KB \/ 300\.0 KB {2}\S+ \S?B\/s {2}in \d+s\n$/);
    expect(text.split("\n").length).toBeGreaterThanOrEqual(2);
  });

  test("a file already present is not fetched again", async () => {
    const data = seededBytes(1000, 2);
    const { ref, dest } = setup("present", { data });
    writeFileSync(dest, "already here");
    const result = await pull(ref, { dir, endpoint: endpoint(), progress: null });
    expect(result).toMatchObject({ path: dest, downloaded: false });
    expect(seen).toHaveLength(0);
  });

  test("resumes with a Range request after the connection drops mid-file", async () => {
    const data = seededBytes(400_000, 3);
    const { ref, dest } = setup("cut", { data });
    cuts.set(sha(data), { after: 150_000, times: 1 });
    const out = capture();
    const result = await pull(ref, { dir, endpoint: endpoint(), progress: out.stream });
    expect(sha(readFileSync(dest))).toBe(sha(data));
    expect(result.downloaded).toBe(true);
    const gets = seen.filter((s) => s.server === "cdn");
    expect(gets).toHaveLength(2);
    expect(gets[0].range).toBeNull();
    // Whatever arrived before the drop is kept: the second request starts after it.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(150_000);
    expect(out.text()).toContain("resuming");
  });

  test("an interrupted run leaves FILE.part; the next run resumes from it", async () => {
    const data = seededBytes(250_000, 4);
    const { ref, dest } = setup("again", { data });
    cuts.set(sha(data), { after: 100_000, times: 10 });
    const err = await pull(ref, { dir, endpoint: endpoint(), progress: null, retries: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(PullError);
    expect(err.message).toMatch(/download interrupted at .* of 250\.0 KB .*run the same pull again to resume/);
    expect(existsSync(dest)).toBe(false);
    const kept = readFileSync(`${dest}.part`);
    expect(kept.length).toBeGreaterThan(0);
    expect(sha(kept)).toBe(sha(data.subarray(0, kept.length)));

    cuts.clear();
    seen.length = 0;
    const result = await pull(ref, { dir, endpoint: endpoint(), progress: null });
    expect(result.resumedFrom).toBe(kept.length);
    expect(seen.find((s) => s.server === "cdn")?.range).toBe(`bytes=${kept.length}-`);
    expect(sha(readFileSync(dest))).toBe(sha(data));
  });

  test("a server that ignores Range (200) restarts the file from zero", async () => {
    const data = seededBytes(50_000, 5);
    const { ref, dest } = setup("norange", { data });
    writeFileSync(`${dest}.part`, data.subarray(0, 20_000));
    ignoreRange = true;
    await pull(ref, { dir, endpoint: endpoint(), progress: null });
    expect(sha(readFileSync(dest))).toBe(sha(data));
  });

  test("a checksum mismatch is an error and removes the corrupt part", async () => {
    const data = seededBytes(10_000, 6);
    const { ref, dest } = setup("corrupt", { data, announcedSha: "a".repeat(64) });
    const err = await pull(ref, { dir, endpoint: endpoint(), progress: null }).catch((e) => e);
    expect(err).toBeInstanceOf(PullError);
    expect(err.message).toContain(`checksum mismatch: the hub's sha256 is ${"a".repeat(64)}, the download's is ${sha(data)}`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  test("404 names the file and says what is wrong", async () => {
    dir = mkdtempSync(join(tmpdir(), "valar-pull-"));
    const err = await pull("hf:acme/nothing/missing.gguf", { dir, endpoint: endpoint(), progress: null }).catch((e) => e);
    expect(err).toBeInstanceOf(PullError);
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/^hf:acme\/nothing\/missing\.gguf: HTTP 404 .*no such repository or file on the hub/);
    expect(existsSync(join(dir, "missing.gguf.part"))).toBe(false);
  });

  test("a relative redirect (renamed repository) is followed for the metadata", async () => {
    const data = seededBytes(20_000, 8);
    const { dest } = setup("moved", { data });
    const result = await pull("hf:acme/old-moved/moved.gguf", { dir, endpoint: endpoint(), progress: null });
    expect(result).toMatchObject({ path: dest, sha256: sha(data), downloaded: true });
    expect(seen.map((s) => `${s.server} ${s.method} ${s.path.split("/").slice(0, 3).join("/")}`)).toEqual([
      "hub HEAD /acme/old-moved", "hub HEAD /acme/moved", "cdn GET /repos/ab",
    ]);
  });

  test("a gated repository needs HF_TOKEN, which goes to the hub and not to the CDN", async () => {
    const data = seededBytes(5_000, 7);
    const { ref, dest } = setup("gated", { data, gated: true });
    const err = await pull(ref, { dir, endpoint: endpoint(), progress: null, token: "" }).catch((e) => e);
    expect(err.status).toBe(401);
    expect(err.message).toContain("set HF_TOKEN");
    expect(err.message).toContain("Access to model is restricted.");

    seen.length = 0;
    await pull(ref, { dir, endpoint: endpoint(), progress: null, token: "secret" });
    expect(sha(readFileSync(dest))).toBe(sha(data));
    expect(seen.find((s) => s.server === "hub")?.auth).toBe("Bearer secret");
    expect(seen.find((s) => s.server === "cdn")?.auth).toBeNull();
  });
});

describe("progress display", () => {
  const fakeClock = () => {
    let t = 0;
    return { now: () => t, advance: (ms: number) => void (t += ms) };
  };

  test("on a terminal: one line redrawn in place with a bar, bytes, rate and ETA", () => {
    const out: string[] = [];
    const clock = fakeClock();
    const p = createProgress("m.gguf", { isTTY: true, write: (s) => out.push(s) }, clock.now);
    p.start(4_000_000, 0);
    clock.advance(1000);
    p.update(1_000_000);
    clock.advance(50); // redraws are throttled
    p.update(1_050_000);
    clock.advance(1000);
    p.finish(4_000_000);
    expect(out).toEqual([
      "m.gguf: downloading 4.0 MB\n",
      "\r\x1b[Km.gguf  [######------------------]   25%  1.0 MB / 4.0 MB  1.0 MB/s  ETA 3s",
      "\r\x1b[Km.gguf  [########################]  100%  4.0 MB / 4.0 MB  2.0 MB/s  in 2s\n",
    ]);
  });

  test("in a log: a plain line per tenth, rate counted from where a resume started", () => {
    const out: string[] = [];
    const clock = fakeClock();
    const p = createProgress("m.gguf", { isTTY: false, write: (s) => out.push(s) }, clock.now);
    p.start(1000, 500);
    for (let done = 550; done <= 1000; done += 50) {
      clock.advance(100);
      p.update(done);
    }
    p.finish(1000);
    expect(out[0]).toBe("m.gguf: downloading 1.0 KB (resuming at 500 B)\n");
    // 50% was where it started; one line per tenth after that, each with rate and ETA.
    expect(out.slice(1, -1)).toEqual([
      "m.gguf   60%  600 B / 1.0 KB  500 B/s  ETA 1s\n",
      "m.gguf   70%  700 B / 1.0 KB  500 B/s  ETA 1s\n",
      "m.gguf   80%  800 B / 1.0 KB  500 B/s  ETA 0s\n",
      "m.gguf   90%  900 B / 1.0 KB  500 B/s  ETA 0s\n",
    ]);
    expect(out.at(-1)).toBe("m.gguf  100%  1.0 KB / 1.0 KB  500 B/s  in 1s\n");
  });

  test("formats", () => {
    expect([0, 999, 1000, 144_800_000, 2.5e9].map(formatBytes)).toEqual(["0 B", "999 B", "1.0 KB", "144.8 MB", "2.5 GB"]);
    expect([0, 59.4, 61, 3599, 3600 * 2 + 60 * 5, Infinity].map(formatDuration)).toEqual(["0s", "59s", "1m01s", "59m59s", "2h05m", "?"]);
  });
});
