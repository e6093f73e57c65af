// The browser files, bundled by Bun.build: the demo page and the embeddable engine
// (valar-browser.js, which starts valar-engine-worker.js beside it). The server serves them at
// /demo/; `valar build-web OUT` writes them for any static web host.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { host } from "../hosts/index.ts";

export interface WebFile {
  body: string;
  contentType: string;
}

const HERE = fileURLToPath(new URL(".", import.meta.url));

/** Output name -> entry point. */
const ENTRIES: Record<string, string> = {
  "valar-browser.js": "index.ts",
  "valar-engine-worker.js": "worker.ts",
  "demo.js": "demo/demo.ts",
};
const STATIC: Record<string, string> = { "index.html": "demo/index.html", "demo.css": "demo/demo.css" };
const TYPES: Record<string, string> = { js: "text/javascript; charset=utf-8", html: "text/html; charset=utf-8", css: "text/css; charset=utf-8" };

// Server-only imports behind run-time checks (Dawn, libc through FFI, CommonJS for fresh
// xgrammar copies, emscripten's Node loader): never reached in a page.
const EXTERNAL = ["bun-webgpu", "bun:ffi", "node:module", "module"];

const bundle = (entry: string, minify: boolean) => host.bundle(join(HERE, entry), { minify, external: EXTERNAL });

/** Every file of the web build, by name. */
export async function buildWeb(opts: { minify?: boolean } = {}): Promise<Map<string, WebFile>> {
  const files = new Map<string, WebFile>();
  const type = (name: string) => TYPES[name.slice(name.lastIndexOf(".") + 1)] ?? "application/octet-stream";
  const bundles = await Promise.all(Object.entries(ENTRIES).map(async ([name, entry]) => [name, await bundle(entry, opts.minify ?? true)] as const));
  for (const [name, body] of bundles) files.set(name, { body, contentType: type(name) });
  for (const [name, src] of Object.entries(STATIC)) files.set(name, { body: readFileSync(join(HERE, src), "utf8"), contentType: type(name) });
  return files;
}

/** Writes the web build into `dir`; returns the names written. */
export async function writeWeb(dir: string): Promise<string[]> {
  const files = await buildWeb();
  mkdirSync(dir, { recursive: true });
  for (const [name, f] of files) writeFileSync(join(dir, name), f.body);
  return [...files.keys()];
}
