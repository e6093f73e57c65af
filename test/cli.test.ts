// The command line: the serve configuration table (flags, env, defaults, checks) as unit tests,
// and the commands run as real subprocesses (`bun src/cli.ts ...`) on the shared models, with a
// local imitation of the hub for `pull` and for `serve`'s default model.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, DEFAULT_MODEL_REF, defaultModelId, exposureRefusal, isLoopbackHost, loadServeConfig, SERVE_SETTINGS } from "../src/config.ts";
import { openDb, closeDb } from "../src/store/db.ts";
import { createKey, revokeKey } from "../src/store/keys.ts";

const ROOT = join(import.meta.dir, "..");
/** What loadServeConfig gives for the settings the README lists after the basic ones, when none is set. */
const DURABLE_DEFAULTS = {
  idempotencyTtlMs: 86_400_000, webhookTimeoutMs: 30_000, webhookBackoffMs: [1000, 5000, 25000],
  maxContext: undefined, contexts: undefined, replicas: "auto" as const,
  maxBodyBytes: 32 * 1024 * 1024, maxBatchBodyBytes: 256 * 1024 * 1024,
  batching: { maxRunning: 32, maxStepTokens: 128, kvCacheTokens: undefined },
  scheduling: { standardWaitMs: 5, maxAgeMs: 300_000, maxQueued: 256, maxQueuedPerKey: 0 },
};
const MODELS = join(ROOT, "..", "shared", "models");
const STORIES_Q8 = join(MODELS, "stories15M", "stories15M-q8_0.gguf");
const TINY_DIR = join(MODELS, "tinystories-656k");

describe("serve configuration", () => {
  test("defaults", () => {
    expect(loadServeConfig([], {})).toEqual({
      models: [], host: "127.0.0.1", port: 8080, db: "./data/valar.db", apiKey: undefined, modelsDir: "models", ...DURABLE_DEFAULTS,
    });
  });

  test("environment, and flags beat it", () => {
    const env = { VALAR_MODEL: "a.gguf, b=hf:o/r/c.gguf", VALAR_HOST: "localhost", VALAR_PORT: "9000", VALAR_DB: "/tmp/x.db", VALAR_API_KEY: "k" };
    expect(loadServeConfig([], env)).toEqual({
      models: [{ id: "a", ref: "a.gguf" }, { id: "b", ref: "hf:o/r/c.gguf" }],
      host: "localhost", port: 9000, db: "/tmp/x.db", apiKey: "k", modelsDir: "models", ...DURABLE_DEFAULTS,
    });
    const flagged = loadServeConfig(["--model", "m.gguf", "--port=1234", "--host", "127.0.0.2", "--db", "d.db", "--models-dir", "mm"], env);
    expect(flagged).toEqual({ models: [{ id: "m", ref: "m.gguf" }], host: "127.0.0.2", port: 1234, db: "d.db", apiKey: "k", modelsDir: "mm", ...DURABLE_DEFAULTS });
  });

  test("idempotency, webhook and window settings: env, flags beat it, bad values named", () => {
    const env = { VALAR_IDEMPOTENCY_TTL: "60", VALAR_WEBHOOK_TIMEOUT_MS: "500", VALAR_WEBHOOK_BACKOFF_MS: "10, 20", VALAR_MODEL_WINDOWS: "a=asap; b=asap,standard" };
    expect(loadServeConfig([], env)).toMatchObject({
      idempotencyTtlMs: 60_000, webhookTimeoutMs: 500, webhookBackoffMs: [10, 20], windows: { a: ["asap"], b: ["asap", "standard"] },
    });
    expect(loadServeConfig(["--idempotency-ttl", "0.5", "--webhook-timeout-ms", "7", "--webhook-backoff-ms", "1", "--model-windows", "c=standard"], env)).toMatchObject({
      idempotencyTtlMs: 500, webhookTimeoutMs: 7, webhookBackoffMs: [1], windows: { c: ["standard"] },
    });
    const bad: [Record<string, string>, RegExp][] = [
      [{ VALAR_IDEMPOTENCY_TTL: "a day" }, /^VALAR_IDEMPOTENCY_TTL: must be a non-negative number of seconds, got "a day"/],
      [{ VALAR_WEBHOOK_TIMEOUT_MS: "-1" }, /^VALAR_WEBHOOK_TIMEOUT_MS: must be a non-negative number/],
      [{ VALAR_WEBHOOK_BACKOFF_MS: "1000,,x" }, /^VALAR_WEBHOOK_BACKOFF_MS: must be a non-negative number of milliseconds/],
      [{ VALAR_MODEL_WINDOWS: "a=flex" }, /^VALAR_MODEL_WINDOWS: 'a=flex' is not MODEL_ID=WINDOW/],
    ];
    for (const [e, message] of bad) expect(() => loadServeConfig([], e)).toThrow(message);
    expect(() => loadServeConfig(["--model-windows", "asap"], {})).toThrow(/^--model-windows: 'asap'/);
  });

  test("batching, context and scheduling settings: env, flags beat it, bad values named", () => {
    const env = {
      VALAR_MAX_RUNNING: "8", VALAR_MAX_STEP_TOKENS: "64", VALAR_KV_CACHE_TOKENS: "4096", VALAR_CONTEXT: "a=512; b=1024",
      VALAR_STANDARD_WAIT_MS: "20", VALAR_STANDARD_MAX_AGE: "60", VALAR_MAX_QUEUED: "10", VALAR_MAX_QUEUED_PER_KEY: "3",
    };
    expect(loadServeConfig([], env)).toMatchObject({
      contexts: { a: 512, b: 1024 }, maxContext: undefined,
      batching: { maxRunning: 8, maxStepTokens: 64, kvCacheTokens: 4096 },
      scheduling: { standardWaitMs: 20, maxAgeMs: 60_000, maxQueued: 10, maxQueuedPerKey: 3 },
    });
    expect(loadServeConfig(["--max-running", "2", "--context", "300", "--max-queued", "0", "--replicas", "2"], env)).toMatchObject({
      replicas: 2, maxContext: 300, contexts: undefined, batching: { maxRunning: 2, maxStepTokens: 64 }, scheduling: { maxQueued: 0 },
    });
    const bad: [string[], Record<string, string>, RegExp][] = [
      [["--max-running", "0"], {}, /^--max-running: must be a whole number of at least 1, got "0"/],
      [[], { VALAR_REPLICAS: "many" }, /^VALAR_REPLICAS: must be a whole number of at least 1, got "many"/],
      [[], { VALAR_KV_CACHE_TOKENS: "lots" }, /^VALAR_KV_CACHE_TOKENS: must be a whole number/],
      [["--max-running", "64", "--max-step-tokens", "32"], {}, /--max-step-tokens \(32\) must be at least --max-running \(64\)/],
      [["--context", "a=big"], {}, /^--context \(a=big\): must be a whole number/],
      [["--context", "512;"], {}, /^--context: '512' is not MODEL_ID=N/],
      [[], { VALAR_STANDARD_MAX_AGE: "-5" }, /^VALAR_STANDARD_MAX_AGE: must be a non-negative number of seconds/],
    ];
    for (const [argv, e, message] of bad) expect(() => loadServeConfig(argv, e)).toThrow(message);
  });

  test("several --model flags, IDs from file names, directory names, hub files", () => {
    const dotted = join(mkdtempSync(join(tmpdir(), "valar-cli-")), "Qwen2.5-0.5B");
    mkdirSync(dotted);
    const c = loadServeConfig(["--model", STORIES_Q8, "--model", `tiny=${TINY_DIR}`, "--model", dotted, "--model", DEFAULT_MODEL_REF], {});
    expect(c.models.map((m) => m.id)).toEqual(["stories15M-q8_0", "tiny", "Qwen2.5-0.5B", "SmolLM2-135M-Instruct-Q8_0"]);
    expect(c.models[1].ref).toBe(TINY_DIR);
    expect(defaultModelId(TINY_DIR + "/")).toBe("tinystories-656k");
    rmSync(dotted, { recursive: true });
  });

  const refusals: [string, string[], Record<string, string>, RegExp][] = [
    ["a port out of range", ["--port", "70000"], {}, /--port: port must be between 0 and 65535, got 70000/],
    ["a port that is not a number", [], { VALAR_PORT: "http" }, /VALAR_PORT: port must be a whole number, got "http"/],
    ["two models with one ID", ["--model", "x/a.gguf", "--model", "y/a.gguf"], {}, /two models have the ID "a" \(x\/a\.gguf and y\/a\.gguf\)/],
    ["an unknown flag", ["--modle", "a.gguf"], {}, /Unknown option '--modle'/],
    ["a stray argument", ["a.gguf"], {}, /Unexpected argument 'a\.gguf'/],
    ["an ID with nothing after =", ["--model", "x="], {}, /no model reference after "x="/],
  ];
  for (const [what, argv, env, message] of refusals) {
    test(`refuses ${what}`, () => {
      expect(() => loadServeConfig(argv, env)).toThrow(ConfigError);
      expect(() => loadServeConfig(argv, env)).toThrow(message);
    });
  }

  test("a non-loopback host is fine with an API key", () => {
    expect(loadServeConfig(["--host", "0.0.0.0"], { VALAR_API_KEY: "secret" }).host).toBe("0.0.0.0");
  });

  test("the exposure rule: non-loopback needs VALAR_API_KEY or a managed key; the database is only asked when it matters", () => {
    let asked = 0;
    const keys = (has: boolean) => () => { asked++; return has; };
    expect(exposureRefusal("0.0.0.0", undefined, keys(false), "--host")).toMatch(/^--host: host 0\.0\.0\.0 is reachable from other machines; set VALAR_API_KEY or create a key with `valar keys create/);
    expect(exposureRefusal("0.0.0.0", undefined, keys(true))).toBeNull();
    expect(asked).toBe(2);
    expect(exposureRefusal("0.0.0.0", "secret", keys(false))).toBeNull();
    expect(exposureRefusal("127.0.0.1", undefined, keys(false))).toBeNull();
    expect(exposureRefusal("::1", undefined, keys(false))).toBeNull();
    expect(asked).toBe(2);
  });

  test("loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "example.com", "127.0.0.1.nip.io"]) expect(isLoopbackHost(h)).toBe(false);
  });

  test("the README documents every setting with its flag, variable and default", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    for (const s of Object.values(SERVE_SETTINGS)) {
      const row = readme.split("\n").find((l) => l.startsWith("|") && l.includes(`\`${s.env}\``));
      expect(row, s.env).toBeDefined();
      if (s.flag) expect(row).toContain(`\`--${s.flag}`);
      if ("default" in s && s.flag !== "model") expect(row).toContain(`\`${s.default}\``);
    }
  });
});

/** Runs the CLI as a user would; returns exit code and both outputs. */
async function cli(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src", "cli.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, VALAR_MODEL: "", VALAR_HOST: "", VALAR_PORT: "", VALAR_API_KEY: "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("commands", () => {
  test("no command, unknown command, --help", async () => {
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain("commands:");
    for (const name of ["serve", "generate", "info", "tokenize", "detokenize", "pull", "convert", "build-web", "keys"]) expect(none.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
    const unknown = await cli(["srve"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "srve"');
    const help = await cli(["tokenize", "--help"]);
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toContain("usage: valar tokenize REF TEXT");
  });

  test("build-web writes the demo page and the in-page engine as static files", async () => {
    const out = mkdtempSync(join(tmpdir(), "valar-web-"));
    try {
      const r = await cli(["build-web", out]);
      expect(r.code).toBe(0);
      const names = ["valar-browser.js", "valar-engine-worker.js", "demo.js", "index.html", "demo.css"];
      expect(r.stdout.trim().split("\n")).toEqual(names.map((n) => join(out, n)));
      const html = readFileSync(join(out, "index.html"), "utf8");
      expect(html).toContain('src="demo.js"');
      expect(html).toContain('href="demo.css"');
      // the client starts its worker by a URL relative to itself, which the build puts beside it
      expect(readFileSync(join(out, "valar-browser.js"), "utf8")).toContain("valar-engine-worker.js");
      expect((await cli(["build-web"])).code).toBe(2);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test("serve --help lists every setting's flag and variable", async () => {
    const help = await cli(["serve", "--help"]);
    expect(help.code).toBe(0);
    for (const s of Object.values(SERVE_SETTINGS)) {
      if (s.flag) expect(help.stdout).toContain(`--${s.flag} `);
      expect(help.stdout).toContain(s.env);
    }
  });

  test("bad usage exits 2 and names the problem", async () => {
    const missing = await cli(["tokenize", STORIES_Q8]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("valar tokenize: missing TEXT");
    const badFlag = await cli(["info", "--verbose", STORIES_Q8]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("Unknown option '--verbose'");
    const badIds = await cli(["detokenize", STORIES_Q8, "1,x"]);
    expect(badIds.code).toBe(2);
    expect(badIds.stderr).toContain('"x" is not a token id');
  });

  test("a missing or broken model file is a clear error, exit 1", async () => {
    const r = await cli(["info", "no/such/model.gguf"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("valar info: no/such/model.gguf: no such file or directory");
    const notGguf = await cli(["info", join(ROOT, "package.json")]);
    expect(notGguf.code).toBe(1);
    expect(notGguf.stderr).toMatch(/^valar info: .*package\.json: /);
  });

  test("info on the GGUF file and on the Hugging Face directory", async () => {
    const gguf = await cli(["info", STORIES_Q8]);
    expect(gguf.code).toBe(0);
    for (const line of [/^architecture +llama$/m, /^layers +6$/m, /^embedding +288$/m, /^context length +256$/m, /^vocab +32000$/m, /^chat template +no$/m, /Q8_0: 43/]) {
      expect(gguf.stdout).toMatch(line);
    }
    const dir = await cli(["info", TINY_DIR]);
    expect(dir.code).toBe(0);
    for (const line of [/^layers +2$/m, /^embedding +128$/m, /^heads +8$/m, /^kv heads +4$/m, /^vocab +2048$/m, /^chat template +no$/m]) {
      expect(dir.stdout).toMatch(line);
    }
  });

  test("tokenize gives llama.cpp's prompt ids for the reference prompts; detokenize inverts it", async () => {
    const ref = JSON.parse(readFileSync(join(MODELS, "stories15M", "llama.cpp-greedy-f32.json"), "utf8")) as { cases: { prompt: string; prompt_ids: number[] }[] };
    for (const c of ref.cases) {
      const r = await cli(["tokenize", join(MODELS, "stories15M", "stories15M-f32.gguf"), c.prompt]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(c.prompt_ids);
      const back = await cli(["detokenize", STORIES_Q8, c.prompt_ids.join(", ")]);
      expect(back.code).toBe(0);
      expect(back.stdout.replace(/\n$/, "").trim()).toBe(c.prompt.trim());
    }
  });

  test("tokenize --verbose shows each id with its piece", async () => {
    const r = await cli(["tokenize", "--verbose", STORIES_Q8, "Hello world"]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").filter((l) => l)).toEqual([
      expect.stringMatching(/^ +1 +"<s>" +<s>$/),
      // The decoded piece of a lone word-initial token may or may not keep its space.
      expect.stringMatching(/^15043 +" ?Hello" +▁Hello$/),
      expect.stringMatching(/^ 3186 +" ?world" +▁world$/),
    ]);
  });
});

describe("pull and serve against a local hub", () => {
  // The default model is served by the local hub under its real name, with real GGUF bytes
  // (stories15M) so that serve can open what it pulled.
  const bytes = readFileSync(STORIES_Q8);
  const sha = createHash("sha256").update(bytes).digest("hex");
  const [, owner, repo, file] = /^hf:([^/]+)\/([^/]+)\/(.+)$/.exec(DEFAULT_MODEL_REF)!;
  let hub: ReturnType<typeof Bun.serve>;
  let work = "";

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "valar-cli-"));
    hub = Bun.serve({
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === `/${owner}/${repo}/resolve/main/${file}`) {
          return new Response(null, {
            status: 302,
            headers: { Location: `${new URL(req.url).origin}/cdn/${sha}`, "X-Linked-Etag": `"${sha}"`, "X-Linked-Size": String(bytes.length) },
          });
        }
        if (path === `/cdn/${sha}`) return new Response(bytes);
        return new Response("Entry not found", { status: 404 });
      },
    });
  });
  afterAll(() => {
    hub.stop(true);
    rmSync(work, { recursive: true, force: true });
  });
  const endpoint = () => `http://127.0.0.1:${hub.port}`;

  test("pull prints progress lines on a non-TTY stderr and the path on stdout", async () => {
    const dir = join(work, "pulled");
    const r = await cli(["pull", DEFAULT_MODEL_REF, "--dir", dir], { VALAR_HF_ENDPOINT: endpoint() });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(join(dir, file));
    expect(r.stderr).toContain(`${file}: downloading 16.9 MB`);
    expect(r.stderr).toMatch(/ 100% {2}16\.9 MB \/ 16\.9 MB {2}.*\/s {2}in \d+s\n/);
    expect(r.stderr).toContain(`verified sha256 ${sha}`);
    expect(createHash("sha256").update(readFileSync(join(dir, file))).digest("hex")).toBe(sha);
    const missing = await cli(["pull", "hf:nobody/nothing/x.gguf", "--dir", dir], { VALAR_HF_ENDPOINT: endpoint() });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("HTTP 404");
  });

  test("serve with no model pulls the default into the models directory, then reports it", async () => {
    const modelsDir = join(work, "models");
    const r = await cli(["serve", "--dry-run", "--port", "0", "--db", join(work, "valar.db")], { VALAR_HF_ENDPOINT: endpoint(), VALAR_MODELS_DIR: modelsDir });
    expect(r.stderr).toContain(`pulling the default ${DEFAULT_MODEL_REF}`);
    expect(r.stderr).toMatch(/model SmolLM2-135M-Instruct-Q8_0: llama, 15\.19M parameters/);
    expect(readFileSync(join(modelsDir, file)).length).toBe(bytes.length);
    expect(r.code).toBe(0);
  });

  test("serve with no model uses what the models directory holds", async () => {
    const modelsDir = join(work, "models"); // filled by the previous test
    const r = await cli(["serve", "--dry-run", "--port", "0", "--db", join(work, "valar.db")], { VALAR_HF_ENDPOINT: "http://127.0.0.1:9", VALAR_MODELS_DIR: modelsDir });
    expect(r.stderr).not.toContain("pulling");
    expect(r.stderr).toContain("model SmolLM2-135M-Instruct-Q8_0: llama");
    expect(r.stderr).toContain("dry run: would serve SmolLM2-135M-Instruct-Q8_0 on 127.0.0.1:0");
    expect(r.code).toBe(0);
  });

  test("serve refuses bad configuration with exit 2 before touching anything", async () => {
    const db = join(work, "never-created.db");
    const r = await cli(["serve", "--dry-run", "--host", "0.0.0.0", "--model", STORIES_Q8, "--db", db]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--host: host 0.0.0.0 is reachable from other machines; set VALAR_API_KEY");
    expect(existsSync(db)).toBe(false);
  });

  test("serve on a non-loopback host starts when the database holds a managed key (keys create), not after it is revoked", async () => {
    const dbPath = join(work, "keyed.db");
    const db = openDb(dbPath);
    const key = createKey(db, "acme");
    closeDb(db);
    const ok = await cli(["serve", "--dry-run", "--host", "0.0.0.0", "--model", STORIES_Q8, "--db", dbPath]);
    expect(ok.stderr).toContain("dry run: would serve stories15M-q8_0 on 0.0.0.0:8080");
    expect(ok.code).toBe(0);
    const again = openDb(dbPath);
    revokeKey(again, key.id);
    closeDb(again);
    const refused = await cli(["serve", "--dry-run", "--host", "0.0.0.0", "--model", STORIES_Q8, "--db", dbPath]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("reachable from other machines");
  });

  test("serve without a WebGPU adapter says what to install, before downloading anything", async () => {
    // No Vulkan driver: Dawn then offers only its null backend, which must count as no adapter.
    const r = await cli(["serve", "--dry-run"], { VK_ICD_FILENAMES: "/nonexistent/icd.json", VK_DRIVER_FILES: "/nonexistent/icd.json", VALAR_MODELS_DIR: join(work, "empty"), VALAR_HF_ENDPOINT: endpoint() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("No WebGPU adapter found");
    expect(r.stderr).toContain("sudo scripts/setup-system.sh");
    expect(r.stderr).toContain("mesa-vulkan-drivers from bookworm-backports");
    expect(r.stderr).not.toContain("pulling");
  });

  test("serve listens, answers, and stops cleanly on SIGTERM", async () => {
    const proc = Bun.spawn([process.execPath, join(ROOT, "src", "cli.ts"), "serve", "--model", `tiny=${TINY_DIR}`, "--port", "0", "--db", join(work, "served.db")], {
      cwd: ROOT,
      env: { ...process.env, VALAR_MODEL: "", VALAR_HOST: "", VALAR_PORT: "", VALAR_API_KEY: "" },
      stdout: "ignore",
      stderr: "pipe",
    });
    const guard = setTimeout(() => proc.kill("SIGKILL"), 90_000);
    let stderr = "";
    const reader = proc.stderr.getReader();
    const decoder = new TextDecoder();
    let url: string | undefined;
    while (!url) {
      const { done, value } = await reader.read();
      if (done) break;
      stderr += decoder.decode(value, { stream: true });
      url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
    }
    expect(url, stderr).toBeDefined();
    // The weights' way to the device, shown before the server listens (plain lines on a pipe).
    expect(stderr).toMatch(/tiny: uploading weights to the device \d/);
    expect(stderr).toMatch(/\ntiny {2}100% {2}\S+ \S+ \/ \S+ \S+ .* in \d+s\n/);
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: "ok" });
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(["tiny"]);
    proc.kill("SIGTERM");
    const rest = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        stderr += decoder.decode(value, { stream: true });
      }
    })();
    expect(await proc.exited).toBe(0);
    await rest;
    clearTimeout(guard);
    expect(stderr).toContain("SIGTERM: stopping");
  });

  test("serve names a model that does not exist", async () => {
    const r = await cli(["serve", "--dry-run", "--model", "x=nowhere.gguf"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("nowhere.gguf: no such file or directory");
  });
});
