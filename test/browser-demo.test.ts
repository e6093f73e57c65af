// The demo page and the embeddable engine, in headless Chromium on its own WebGPU (SwiftShader
// here), driven like a person would (puppeteer-core on the system Chromium): the page served
// by a real server at /demo/ loads stories15M-q8_0 from /v1/models/{id}/file through its UI,
// and a prompt typed into it streams back llama.cpp's greedy text; a reload loads from the
// browser's cache without downloading again; the same conversation run on the server gives the
// same text. Skipped where no Chromium is installed (scripts/setup-system.sh installs it).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { MODEL_ID, greedyCases, startTestServer, type GreedyCase, type TestServer } from "./e2e-harness.ts";

const CHROMIUM = Bun.which("chromium") ?? Bun.which("chromium-browser");
const WAIT = { timeout: 100_000 };
const dir = mkdtempSync(join(tmpdir(), "valar-demo-"));
/** VALAR_DEMO_SCREENSHOT keeps the screenshot (the README's comes from here). */
const SCREENSHOT = process.env.VALAR_DEMO_SCREENSHOT ?? join(dir, "demo.png");

let server: TestServer;
let browser: Browser;
let cases: GreedyCase[];

beforeAll(async () => {
  if (!CHROMIUM) return;
  cases = await greedyCases();
  server = await startTestServer();
  const puppeteer = (await import("puppeteer-core")).default;
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    pipe: true,
    userDataDir: join(dir, "profile"),
    args: ["--no-sandbox", "--enable-unsafe-webgpu", "--no-first-run"],
    defaultViewport: { width: 1000, height: 900 },
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const text = (page: Page, selector: string) => page.$eval(selector, (e) => e.textContent ?? "");
const waitForText = (page: Page, selector: string, part: string) =>
  page.waitForFunction((s, p) => document.querySelector(s)?.textContent?.includes(p), WAIT, selector, part);

async function loadThroughUi(page: Page) {
  await page.waitForFunction((id) => [...document.querySelectorAll("#model-select option")].some((o) => (o as HTMLOptionElement).value === id), WAIT, MODEL_ID);
  await page.select("#model-select", MODEL_ID);
  await page.click("#load-button");
  await waitForText(page, "#progress-text", "is ready");
  return text(page, "#progress-text");
}

async function sendThroughUi(page: Page, prompt: string, replies: number): Promise<string> {
  await page.type("#prompt", prompt);
  await page.keyboard.press("Enter");
  await page.waitForFunction((n) => document.body.dataset.replies === String(n), WAIT, replies);
  const all = await page.$$eval(".message.assistant .text", (els) => els.map((e) => e.textContent ?? ""));
  return all.at(-1)!;
}

/**
 * The share of the screenshot's pixels inside the reply's box that are not its background:
 * text drawn there. The page decodes the PNG itself (a canvas), so no image library is needed.
 */
async function inkWhereTheReplyIs(page: Page, png: Buffer): Promise<number> {
  return page.evaluate(async (b64) => {
    const box = document.querySelector(".message.assistant .text")!.getBoundingClientRect();
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.width;
    canvas.height = img.height;
    const g = canvas.getContext("2d")!;
    g.drawImage(img, 0, 0);
    const px = g.getImageData(Math.floor(box.x), Math.floor(box.y), Math.ceil(box.width), Math.ceil(box.height)).data;
    const bg = [px[0], px[1], px[2]];
    let ink = 0;
    for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - bg[0]) + Math.abs(px[i + 1] - bg[1]) + Math.abs(px[i + 2] - bg[2]) > 96) ink++;
    return ink / (px.length / 4);
  }, png.toString("base64"));
}

describe.skipIf(!CHROMIUM)("the demo page", () => {
  test("loads stories15M through its UI, streams llama.cpp's greedy text, reloads from the cache", async () => {
    const page = await browser.newPage();
    const downloads: string[] = [];
    page.on("request", (r) => { if (r.url().endsWith(`/v1/models/${MODEL_ID}/file`)) downloads.push(r.method()); });
    await page.goto(`${server.url}/demo`);
    expect(await text(page, "#gpu-status")).toStartWith("WebGPU:");

    const loaded = await loadThroughUi(page);
    expect(loaded).toContain("downloaded");
    await page.$eval("#max-tokens", (e) => { (e as HTMLInputElement).value = "64"; });
    const c = cases[0];
    const reply = await sendThroughUi(page, c.prompt, 1);
    expect(reply.trimStart()).toBe(c.greedy_text.trimStart());
    expect(await text(page, ".message.user .text")).toBe(c.prompt);
    expect(await text(page, "#stats")).toMatch(/64 tokens at [\d.]+ tok\/s on /);

    // the conversation, on screen
    await page.screenshot({ path: SCREENSHOT });
    const png = readFileSync(SCREENSHOT);
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1000, 900]);
    expect(await (await page.$("#messages"))!.isIntersectingViewport()).toBe(true);
    expect(await page.$$eval(".message", (els) => els.length)).toBe(2);
    const ink = await inkWhereTheReplyIs(page, png);
    console.log(`screenshot: ${(ink * 100).toFixed(1)}% of the reply box is text`);
    expect(ink).toBeGreaterThan(0.02);

    // the same conversation on the server: the same greedy text
    await page.click("#clear");
    await page.click('input[name="run-on"][value="server"]');
    const fromServer = await sendThroughUi(page, c.prompt, 2);
    expect(fromServer).toBe(reply);

    expect(downloads).toEqual(["GET"]);
    await page.reload();
    expect(await loadThroughUi(page)).toContain("from the browser cache");
    expect(downloads.filter((m) => m === "GET")).toEqual(["GET"]);

    // from the cached copy it runs, and Stop ends a reply early
    await page.$eval("#max-tokens", (e) => { (e as HTMLInputElement).value = "200"; });
    await page.type("#prompt", cases[2].prompt);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => (document.querySelector(".message.assistant .text")?.textContent ?? "").length > 0, WAIT);
    await page.click("#stop");
    await page.waitForFunction(() => document.body.dataset.replies === "1", WAIT);
    expect(await text(page, ".message.assistant .meta")).toContain("stopped");
    await page.close();
  }, 240_000);
});

describe.skipIf(!CHROMIUM)("the demo page without WebGPU", () => {
  test("says so, offers the server, and still chats through it", async () => {
    const page = await browser.newPage();
    await page.evaluateOnNewDocument(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
    await page.goto(`${server.url}/demo/`);
    await waitForText(page, "#gpu-status", "no WebGPU");
    expect(await page.$eval("#gpu-status", (e) => e.classList.contains("error"))).toBe(true);
    expect(await page.$eval('input[name="run-on"][value="server"]', (e) => (e as HTMLInputElement).checked)).toBe(true);
    await page.waitForFunction((id) => (document.querySelector("#model-select") as HTMLSelectElement).value === id, WAIT, MODEL_ID);
    expect(await page.$eval("#load-button", (e) => (e as HTMLButtonElement).disabled)).toBe(true);
    await page.$eval("#max-tokens", (e) => { (e as HTMLInputElement).value = "8"; });
    const reply = await sendThroughUi(page, cases[1].prompt, 1);
    expect(cases[1].greedy_text.trimStart().startsWith(reply.trimStart())).toBe(true);
    expect(reply.length).toBeGreaterThan(0);
    await page.close();
  }, 120_000);
});

describe.skipIf(!CHROMIUM)("the embeddable engine (valar/browser)", () => {
  test("a bare page streams greedy text and follows a json_schema", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/health`); // any same-origin page: the engine comes by import
    const c = cases[1];
    const r = await page.evaluate(`(async () => {
      const { CreateMLCEngine, InvalidRequestError } = await import("/demo/valar-browser.js");
      const reports = [];
      const engine = await CreateMLCEngine("/v1/models/${MODEL_ID}/file", { initProgressCallback: (p) => reports.push(p) });
      let streamed = "";
      let usage = null;
      const chunks = await engine.chat.completions.create({
        messages: [{ role: "user", content: ${JSON.stringify(c.prompt)} }],
        stream: true, stream_options: { include_usage: true }, temperature: 0, max_tokens: 64,
      });
      for await (const chunk of chunks) { streamed += chunk.choices[0]?.delta.content ?? ""; if (chunk.usage) usage = chunk.usage; }
      const reply = await engine.chat.completions.create({
        messages: [{ role: "user", content: "Tell me about a cat." }], temperature: 0, max_tokens: 64,
        response_format: { type: "json_schema", json_schema: { name: "cat", strict: true, schema: {
          type: "object", properties: { name: { enum: ["Tom", "Kitty"] }, hungry: { type: "boolean" } }, required: ["name", "hungry"], additionalProperties: false } } },
      });
      let refused = null;
      try { await engine.chat.completions.create({ messages: [{ role: "user", content: "x" }], top_p: 3 }); }
      catch (e) { refused = { invalid: e instanceof InvalidRequestError, param: e.param, message: e.message }; }
      return { streamed, usage, reply, refused, stats: await engine.runtimeStatsText(), progress: reports.map((p) => p.progress), last: reports.at(-1).text };
    })()`) as any;
    expect(r.streamed.trimStart()).toBe(c.greedy_text.trimStart());
    expect(r.usage).toMatchObject({ prompt_tokens: c.prompt_ids.length, completion_tokens: 64, total_tokens: c.prompt_ids.length + 64 });
    expect(r.usage.extra.decode_tokens_per_s).toBeGreaterThan(0);
    expect(r.reply).toMatchObject({ object: "chat.completion", choices: [{ index: 0, message: { role: "assistant" } }] });
    const json = JSON.parse(r.reply.choices[0].message.content);
    expect(Object.keys(json).sort()).toEqual(["hungry", "name"]);
    expect(["Tom", "Kitty"]).toContain(json.name);
    expect(typeof json.hungry).toBe("boolean");
    expect(r.refused).toMatchObject({ invalid: true, param: "top_p" });
    expect(r.progress.at(-1)).toBe(1);
    expect(r.progress).toEqual([...r.progress].sort((a: number, b: number) => a - b));
    expect(r.last).toStartWith("Ready:");
    console.log(`in-page engine: ${r.stats}`);
    await page.close();
  }, 240_000);
});
