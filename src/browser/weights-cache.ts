// Fetching a model file into the page with progress, kept in the browser's Cache Storage so
// that a reload starts from the local copy. A cached copy is checked against the server's
// ETag with a HEAD (no download); offline, the cached copy is used as it is.

const CACHE_NAME = "valar-models";

export interface FetchedWeights {
  blob: Blob;
  fromCache: boolean;
}

export interface FetchWeightsOptions {
  headers?: Record<string, string>;
  /** Bytes received so far and the total (0 when the server sends no length). */
  onProgress?: (received: number, total: number) => void;
  /** Use and fill Cache Storage (default true where the page has it: a secure context). */
  cache?: boolean;
}

async function openCache(use: boolean): Promise<Cache | null> {
  if (!use || typeof caches === "undefined") return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null; // storage disabled (private mode, quota): download every time
  }
}

async function currentEtag(url: string, headers: Record<string, string>): Promise<string | null | undefined> {
  try {
    const res = await fetch(url, { method: "HEAD", headers });
    return res.ok ? res.headers.get("etag") : undefined;
  } catch {
    return undefined; // unreachable: trust the cached copy
  }
}

export async function fetchWeights(url: string, opts: FetchWeightsOptions = {}): Promise<FetchedWeights> {
  const headers = opts.headers ?? {};
  const cache = await openCache(opts.cache ?? true);
  const cached = await cache?.match(url);
  if (cached) {
    const etag = await currentEtag(url, headers);
    if (etag === undefined || etag === cached.headers.get("etag")) return { blob: await cached.blob(), fromCache: true };
    await cache!.delete(url);
  }
  const res = await fetch(url, { headers });
  if (!res.ok || !res.body) {
    let detail = `${res.status} ${res.statusText}`;
    try { detail = ((await res.json()) as { error?: { message?: string } }).error?.message ?? detail; } catch { /* not JSON */ }
    throw new Error(`could not download ${url}: ${detail}`);
  }
  const total = Number(res.headers.get("content-length") ?? 0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.byteLength;
    opts.onProgress?.(received, total);
  }
  const blob = new Blob(chunks as BlobPart[], { type: "application/octet-stream" });
  if (cache) {
    const etag = res.headers.get("etag");
    try {
      await cache.put(url, new Response(blob, { headers: { "content-length": String(blob.size), ...(etag ? { etag } : {}) } }));
    } catch {
      // over the storage quota: the model still runs, it is downloaded again next time
    }
  }
  return { blob, fromCache: false };
}
