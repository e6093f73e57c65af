// The server on Deno: Deno.serve, file bodies streamed through node:fs, and Deno.bundle
// (esbuild; deno.json turns on its `bundle` unstable flag) for the browser files.

import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { Host } from "./types.ts";

// Deno's globals, as much of them as this module uses (the project type-checks against Bun's).
declare const Deno: {
  serve(opts: { hostname: string; port: number; onListen?: () => void }, handler: (r: Request) => Promise<Response>): {
    addr: { port: number };
    shutdown(): Promise<void>;
  };
  bundle(opts: { entrypoints: string[]; platform: "browser"; format: "esm"; minify: boolean; external: string[]; write: false }): Promise<{
    success: boolean;
    errors: { text?: string }[];
    outputFiles?: { text(): string }[];
  }>;
};

/** How long stop() waits for open streams to end before it lets them go. */
const SHUTDOWN_GRACE_MS = 1000;

export const denoHost: Host = {
  name: "deno",
  async listen(opts) {
    // No body-size option: the app enforces its limits on every request.
    const server = Deno.serve({ hostname: opts.hostname, port: opts.port, onListen: () => {} }, opts.fetch);
    return {
      port: server.addr.port,
      stop: () => Promise.race([server.shutdown(), new Promise<void>((r) => setTimeout(r, SHUTDOWN_GRACE_MS))]),
    };
  },
  fileBody: (path, start, end) => Readable.toWeb(createReadStream(path, { start, end })) as unknown as ReadableStream<Uint8Array>,
  async bundle(entry, opts) {
    const out = await Deno.bundle({ entrypoints: [entry], platform: "browser", format: "esm", minify: opts.minify, external: opts.external, write: false });
    if (!out.success || !out.outputFiles?.length) throw new Error(`bundling ${entry} failed: ${out.errors.map((e) => e.text ?? String(e)).join("\n")}`);
    return out.outputFiles[0].text();
  },
};
