// The server on Bun: Bun.serve, and Bun.file bodies (sent from the file, not through JS).

import type { Host } from "./types.ts";

export const bunHost: Host = {
  name: "bun",
  async listen(opts) {
    const server = Bun.serve({
      hostname: opts.hostname,
      port: opts.port,
      fetch: opts.fetch,
      maxRequestBodySize: opts.maxRequestBodySize,
      // Generations can be long and a sync request is silent until done: no idle cut-off.
      idleTimeout: 0,
    });
    return { port: server.port!, stop: () => server.stop(true) };
  },
  fileBody: (path, start, end) => Bun.file(path).slice(start, end + 1),
  async bundle(entry, opts) {
    const out = await Bun.build({ entrypoints: [entry], target: "browser", format: "esm", minify: opts.minify, external: opts.external });
    if (!out.success) throw new Error(`bundling ${entry} failed: ${out.logs.map(String).join("\n")}`);
    return out.outputs[0].text();
  },
};
