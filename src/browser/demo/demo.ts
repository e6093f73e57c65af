// The demo page: pick a model the server serves (or drop a .gguf), load it onto this browser's
// GPU, and chat with it; the same conversation can be sent to the server instead, to compare.
// Plain DOM, no framework: the page is small.

import { CreateMLCEngine, type ValarEngine } from "../index.ts";
import type { ChatCompletionChunk, ChatCompletionMessageParam } from "../openai-types.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  gpu: $("gpu-status"),
  select: $<HTMLSelectElement>("model-select"),
  load: $<HTMLButtonElement>("load-button"),
  file: $<HTMLInputElement>("file-input"),
  progress: $<HTMLProgressElement>("progress"),
  progressText: $("progress-text"),
  apiKey: $<HTMLInputElement>("api-key"),
  messages: $("messages"),
  composer: $<HTMLFormElement>("composer"),
  prompt: $<HTMLTextAreaElement>("prompt"),
  temperature: $<HTMLInputElement>("temperature"),
  maxTokens: $<HTMLInputElement>("max-tokens"),
  send: $<HTMLButtonElement>("send"),
  stop: $<HTMLButtonElement>("stop"),
  clear: $<HTMLButtonElement>("clear"),
  stats: $("stats"),
};

const API_KEY_STORE = "valar-demo-api-key";
ui.apiKey.value = localStorage.getItem(API_KEY_STORE) ?? "";
ui.apiKey.addEventListener("change", () => localStorage.setItem(API_KEY_STORE, ui.apiKey.value));
const authHeaders = (): Record<string, string> => (ui.apiKey.value ? { authorization: `Bearer ${ui.apiKey.value}` } : {});

let engine: ValarEngine | null = null;
let loading = false;
let generating: { stop(): void } | null = null;
const conversation: ChatCompletionMessageParam[] = [];
const hasWebGPU = Boolean((navigator as Navigator & { gpu?: GPU }).gpu);

function runOn(): "browser" | "server" {
  return (document.querySelector<HTMLInputElement>('input[name="run-on"]:checked')?.value as "browser" | "server") ?? "browser";
}

function refreshControls() {
  const busy = generating !== null;
  ui.send.disabled = busy || loading || (runOn() === "browser" ? engine === null : ui.select.value === "");
  ui.stop.disabled = !busy;
  ui.load.disabled = loading || !hasWebGPU || ui.select.value === "";
  ui.file.disabled = loading || !hasWebGPU;
}

async function describeGpu() {
  if (!hasWebGPU) {
    ui.gpu.textContent = "This browser has no WebGPU, so models cannot run here. Use a recent Chrome or Edge (or Safari 26, Firefox 141+), or choose \u201cthe server\u201d below.";
    ui.gpu.classList.add("error");
    document.querySelector<HTMLInputElement>('input[name="run-on"][value="server"]')!.checked = true;
    return;
  }
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) {
    ui.gpu.textContent = "WebGPU is present but no GPU adapter is available (it may be disabled). Choose \u201cthe server\u201d below.";
    ui.gpu.classList.add("error");
    return;
  }
  const info = adapter.info;
  ui.gpu.textContent = `WebGPU: ${[info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "available"}`;
}

async function listModels() {
  try {
    const res = await fetch("../v1/models", { headers: authHeaders() });
    if (res.status === 401) throw new Error("the server needs an API key (Server access, below)");
    if (!res.ok) throw new Error(`${res.status}`);
    const { data } = (await res.json()) as { data: { id: string }[] };
    ui.select.replaceChildren(...data.map((m) => new Option(m.id, m.id)));
  } catch (e) {
    ui.select.replaceChildren(new Option(`(no server models: ${(e as Error).message})`, ""));
  }
  refreshControls();
}

async function load(source: string | File, label: string) {
  loading = true;
  refreshControls();
  ui.progress.value = 0;
  try {
    const onProgress = (r: { progress: number; text: string }) => { ui.progress.value = r.progress; ui.progressText.textContent = r.text; };
    if (engine) await engine.reload(source, { initProgressCallback: onProgress, headers: authHeaders() });
    else engine = await CreateMLCEngine(source, { initProgressCallback: onProgress, headers: authHeaders() });
    ui.progressText.textContent = `${label} is ready on ${engine.model!.adapter} (${engine.fromCache ? "from the browser cache" : "downloaded"}).`;
    document.querySelector<HTMLInputElement>('input[name="run-on"][value="browser"]')!.checked = true;
  } catch (e) {
    ui.progressText.textContent = `Could not load ${label}: ${(e as Error).message}`;
  } finally {
    loading = false;
    refreshControls();
  }
}

function addMessage(role: "user" | "assistant", text: string, meta = ""): { body: HTMLElement; meta: HTMLElement } {
  const el = document.createElement("div");
  el.className = `message ${role}`;
  const metaEl = document.createElement("span");
  metaEl.className = "meta";
  metaEl.textContent = meta || (role === "user" ? "you" : "");
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  el.append(metaEl, body);
  ui.messages.append(el);
  ui.messages.scrollTop = ui.messages.scrollHeight;
  return { body, meta: metaEl };
}

/** The server's streamed chat completion, read from its SSE body. */
async function* serverStream(body: object, signal: AbortSignal): AsyncGenerator<ChatCompletionChunk> {
  const res = await fetch("../v1/chat/completions", { method: "POST", headers: { "content-type": "application/json", ...authHeaders() }, body: JSON.stringify(body), signal });
  if (!res.ok || !res.body) throw new Error(((await res.json().catch(() => null)) as { error?: { message?: string } } | null)?.error?.message ?? `${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data) as ChatCompletionChunk;
      }
    }
  }
}

async function send(text: string) {
  const where = runOn();
  conversation.push({ role: "user", content: text });
  addMessage("user", text);
  const out = addMessage("assistant", "", where === "browser" ? `this browser · ${engine?.model?.adapter ?? ""}` : "the server");
  out.body.parentElement!.setAttribute("aria-busy", "true");
  const request = {
    messages: [...conversation],
    stream: true as const,
    stream_options: { include_usage: true },
    temperature: Number(ui.temperature.value),
    max_tokens: Number(ui.maxTokens.value),
  };
  const abort = new AbortController();
  generating = { stop: () => (where === "browser" ? engine?.interruptGenerate() : abort.abort()) };
  refreshControls();
  const started = performance.now();
  let firstAt = 0;
  let tokens = 0;
  let reply = "";
  let finish: string | null = null;
  try {
    const stream = where === "browser"
      ? await engine!.chat.completions.create(request)
      : serverStream({ ...request, model: ui.select.value, max_tokens: undefined, max_completion_tokens: request.max_tokens }, abort.signal);
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta.content;
      if (piece) {
        firstAt ||= performance.now();
        reply += piece;
        out.body.textContent = reply;
        ui.messages.scrollTop = ui.messages.scrollHeight;
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  } catch (e) {
    if (!abort.signal.aborted) out.meta.textContent += ` · failed: ${(e as Error).message}`;
    finish = abort.signal.aborted ? "abort" : "error";
  } finally {
    generating = null;
    out.body.parentElement!.removeAttribute("aria-busy");
    refreshControls();
  }
  conversation.push({ role: "assistant", content: reply });
  const decodeS = firstAt ? (performance.now() - firstAt) / 1000 : 0;
  const rate = tokens > 1 && decodeS > 0 ? ((tokens - 1) / decodeS).toFixed(1) : "-";
  const stopped = finish === "abort" ? " · stopped" : finish === "length" ? " · hit max tokens" : "";
  out.meta.textContent += ` · ${tokens} tokens · ${rate} tok/s${stopped}`;
  ui.stats.textContent = `Last reply: ${tokens} tokens at ${rate} tok/s on ${where === "browser" ? engine?.model?.adapter : "the server"}, first token after ${firstAt ? ((firstAt - started) / 1000).toFixed(2) : "-"} s.`;
  document.body.dataset.replies = String(Number(document.body.dataset.replies ?? 0) + 1);
}

ui.composer.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = ui.prompt.value.trim();
  if (!text || ui.send.disabled) return;
  ui.prompt.value = "";
  void send(text);
});
ui.prompt.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); ui.composer.requestSubmit(); }
});
ui.stop.addEventListener("click", () => generating?.stop());
ui.clear.addEventListener("click", () => { conversation.length = 0; ui.messages.replaceChildren(); ui.stats.textContent = ""; });
ui.load.addEventListener("click", () => {
  const id = ui.select.value;
  if (id) void load(`../v1/models/${encodeURIComponent(id)}/file`, id);
});
ui.file.addEventListener("change", () => { const f = ui.file.files?.[0]; if (f) void load(f, f.name); });
ui.select.addEventListener("change", refreshControls);
document.querySelectorAll('input[name="run-on"]').forEach((r) => r.addEventListener("change", refreshControls));
document.addEventListener("dragover", (ev) => { ev.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (ev) => {
  ev.preventDefault();
  document.body.classList.remove("dragging");
  const f = ev.dataTransfer?.files[0];
  if (f && hasWebGPU) void load(f, f.name);
});

refreshControls();
void describeGpu();
void listModels();
