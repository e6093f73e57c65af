// What the server needs from the runtime it runs on beyond web standards: an HTTP listener,
// file bodies, and a bundler for the browser files (src/browser/build.ts). One module per host implements it (bun.ts, deno.ts); index.ts picks the one running.
// (SQLite is the third difference: `bun:sqlite`, mapped to deno-sqlite.ts by deno.json.)

export interface ListenOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  fetch: (request: Request) => Promise<Response>;
  /** Where the listener itself cuts a body off (the app answers smaller excesses with its own 413). */
  maxRequestBodySize: number;
}

export interface Listener {
  port: number;
  /** Stops listening and closes open connections. */
  stop(): Promise<void>;
}

export interface Host {
  name: "bun" | "deno";
  listen(opts: ListenOptions): Promise<Listener>;
  /** Bytes start..end (inclusive) of the file at `path`, as a response body. */
  fileBody(path: string, start: number, end: number): BodyInit;
  /** One ES module for browsers from the entry point, imports inlined except `external`. */
  bundle(entry: string, opts: { minify: boolean; external: string[] }): Promise<string>;
}
