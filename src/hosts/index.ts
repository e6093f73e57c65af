// The host the server runs on, picked once at start-up.

import type { Host } from "./types.ts";

export type { Host, Listener, ListenOptions } from "./types.ts";

export const host: Host = "Deno" in globalThis ? (await import("./deno.ts")).denoHost : (await import("./bun.ts")).bunHost;
