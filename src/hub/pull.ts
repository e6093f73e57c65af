// Downloads one file from a Hugging Face-style hub into the models directory.
//
// The protocol is the one huggingface_hub uses: a HEAD on `/OWNER/REPO/resolve/main/FILE` that
// does not follow the redirect to the CDN, whose answer carries the file's size and, for LFS
// files, its sha256 (`X-Linked-Size`, `X-Linked-Etag`); then a GET of the CDN location. The
// bytes go to `FILE.part`, which survives an interruption and is resumed with a `Range` request;
// only a complete file whose size and sha256 match is renamed to its final name, so a file in
// the models directory is always whole.

import { closeSync, createReadStream, existsSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { createProgress, formatBytes, type ProgressStream } from "./progress.ts";
import { DEFAULT_HF_ENDPOINT, localFileName, parseHfRef, resolveUrl } from "./ref.ts";

export class PullError extends Error {
  override name = "PullError";
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export interface PullOptions {
  /** Destination directory (created if missing). Default `models`. */
  dir?: string;
  /** Hub base URL. Default `$VALAR_HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Sent as `Authorization: Bearer` to the hub (not to the CDN). Default `$HF_TOKEN`. */
  token?: string;
  /** Where progress goes; default stderr; null for silence. */
  progress?: ProgressStream | null;
  /** How many times a dropped connection is resumed within one call. Default 3. */
  retries?: number;
}

export interface PullResult {
  path: string;
  bytes: number;
  /** The verified sha256, when the hub published one (LFS files). */
  sha256?: string;
  /** False when the file was already there and nothing was fetched. */
  downloaded: boolean;
  /** Bytes found in an earlier `.part` and kept. */
  resumedFrom: number;
}

interface RemoteFile {
  downloadUrl: string;
  size?: number;
  sha256?: string;
}

const MAX_RELATIVE_REDIRECTS = 5;

export function hubEndpoint(env: Record<string, string | undefined> = process.env): string {
  return env.VALAR_HF_ENDPOINT || DEFAULT_HF_ENDPOINT;
}

/** Downloads `hf:OWNER/REPO/FILE` unless it is already in `dir`; returns where it is. */
export async function pull(refText: string, opts: PullOptions = {}): Promise<PullResult> {
  const ref = parseHfRef(refText);
  const dir = opts.dir ?? "models";
  const endpoint = opts.endpoint ?? hubEndpoint();
  const token = opts.token ?? (process.env.HF_TOKEN || undefined);
  const dest = join(dir, localFileName(ref));
  if (existsSync(dest)) return { path: dest, bytes: statSync(dest).size, downloaded: false, resumedFrom: 0 };

  mkdirSync(dir, { recursive: true });
  const url = resolveUrl(ref, endpoint);
  const authFor = (target: string): Record<string, string> =>
    token && new URL(target).origin === new URL(endpoint).origin ? { Authorization: `Bearer ${token}` } : {};

  const remote = await headRemote(refText, url, authFor);
  const part = `${dest}.part`;
  const progressStream = opts.progress === undefined ? process.stderr : opts.progress;
  const label = localFileName(ref);
  const retries = opts.retries ?? 3;
  let resumedFrom = -1;

  for (let attempt = 0; ; attempt++) {
    let have = existsSync(part) ? statSync(part).size : 0;
    if (remote.size !== undefined && have > remote.size) {
      unlinkSync(part);
      have = 0;
    }
    if (resumedFrom < 0) resumedFrom = have;
    if (remote.size !== undefined && have === remote.size) break;

    let interrupted: Error | undefined;
    try {
      await fetchInto(refText, remote, part, have, authFor, progressStream ? createProgress(label, progressStream) : null);
    } catch (err) {
      if (err instanceof PullError) throw err;
      interrupted = err as Error;
    }
    const got = existsSync(part) ? statSync(part).size : 0;
    if (!interrupted && (remote.size === undefined || got === remote.size)) break;
    const why = interrupted ? interrupted.message : `connection closed early`;
    if (attempt >= retries) {
      throw new PullError(
        `${refText}: download interrupted at ${formatBytes(got)}${remote.size !== undefined ? ` of ${formatBytes(remote.size)}` : ""} ` +
          `(${why}); ${part} is kept: run the same pull again to resume`,
      );
    }
    progressStream?.write(`${label}: ${why} at ${formatBytes(got)}; resuming\n`);
    await sleep(100 * (attempt + 1));
  }

  const bytes = statSync(part).size;
  if (remote.size !== undefined && bytes !== remote.size) {
    unlinkSync(part);
    throw new PullError(`${refText}: size mismatch: the hub announced ${remote.size} bytes, got ${bytes}; removed the partial file`);
  }
  if (remote.sha256) {
    const actual = await sha256File(part);
    if (actual !== remote.sha256) {
      unlinkSync(part);
      throw new PullError(
        `${refText}: checksum mismatch: the hub's sha256 is ${remote.sha256}, the download's is ${actual}; removed the corrupt file, try again`,
      );
    }
  }
  renameSync(part, dest);
  return { path: dest, bytes, sha256: remote.sha256, downloaded: true, resumedFrom: Math.max(0, resumedFrom) };
}

/** HEAD without following the CDN redirect, as the hub's metadata lives on that first answer. */
async function headRemote(refText: string, url: string, authFor: (u: string) => Record<string, string>): Promise<RemoteFile> {
  let current = url;
  for (let hop = 0; ; hop++) {
    let res: Response;
    try {
      res = await fetch(current, { method: "HEAD", redirect: "manual", headers: authFor(current) });
    } catch (err) {
      throw new PullError(`${refText}: cannot reach ${new URL(current).origin} (${(err as Error).message})`);
    }
    const location = res.headers.get("location");
    const isRedirect = res.status >= 300 && res.status < 400 && location;
    // A relative redirect stays on the hub (a renamed repository): follow it for the metadata.
    if (isRedirect && !/^[a-z]+:\/\//i.test(location) && hop < MAX_RELATIVE_REDIRECTS) {
      current = new URL(location, current).toString();
      continue;
    }
    if (!isRedirect && !res.ok) throw statusError(refText, res, current);
    const sha = parseSha256(res.headers.get("x-linked-etag") ?? res.headers.get("etag"));
    // On a redirect, Content-Length is the size of the redirect's own body, not of the file.
    const sizeText = res.headers.get("x-linked-size") ?? (isRedirect ? null : res.headers.get("content-length"));
    const size = sizeText !== null && /^\d+$/.test(sizeText) ? Number(sizeText) : undefined;
    return { downloadUrl: isRedirect ? new URL(location, current).toString() : current, size, sha256: sha };
  }
}

/** One GET of the file, appending to `part` from byte `have` (or rewriting it if the server ignores Range). */
async function fetchInto(
  refText: string,
  remote: RemoteFile,
  part: string,
  have: number,
  authFor: (u: string) => Record<string, string>,
  progress: ReturnType<typeof createProgress> | null,
): Promise<void> {
  const headers: Record<string, string> = { ...authFor(remote.downloadUrl) };
  if (have > 0) headers.Range = `bytes=${have}-`;
  const res = await fetch(remote.downloadUrl, { headers });
  let offset = have;
  if (res.status === 416) {
    // The range starts past the end: the part is not a prefix of this file; start over.
    unlinkSync(part);
    throw new Error("server refused the resume range");
  }
  if (res.status === 206) {
    const start = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "")?.[1];
    if (start === undefined || Number(start) !== have) {
      await res.body?.cancel();
      unlinkSync(part);
      throw new Error(`server resumed at the wrong offset (${res.headers.get("content-range")})`);
    }
  } else if (res.ok) {
    offset = 0; // 200: the whole file again (the server does not do ranges)
  } else {
    throw statusError(refText, res, remote.downloadUrl);
  }

  const fd = openSync(part, offset > 0 ? "a" : "w");
  let done = offset;
  progress?.start(remote.size, offset);
  try {
    if (!res.body) throw new Error("empty response body");
    for await (const chunk of chunksOf(res.body)) {
      writeSync(fd, chunk);
      done += chunk.byteLength;
      progress?.update(done);
    }
  } finally {
    closeSync(fd);
  }
  progress?.finish(done);
}

const STATUS_HINTS: Record<number, string> = {
  401: "the repository is private or gated, or does not exist: set HF_TOKEN to a token that has access",
  403: "access denied: accept the model's terms on the hub, or use a token that has access (HF_TOKEN)",
  404: "no such repository or file on the hub (check OWNER/REPO/FILE and its case)",
  429: "rate-limited by the hub; try again later",
};

function statusError(refText: string, res: Response, url: string): PullError {
  const hint = STATUS_HINTS[res.status] ?? (res.status >= 500 ? "the hub had an error; try again later" : "unexpected answer");
  const detail = res.headers.get("x-error-message");
  return new PullError(
    `${refText}: HTTP ${res.status} from ${url}: ${hint}${detail ? ` (${detail})` : ""}`,
    res.status,
  );
}

/** The hub's etag for an LFS file is its sha256 (quoted, maybe weak); a git blob's is a sha1, not used. */
export function parseSha256(etag: string | null): string | undefined {
  if (!etag) return undefined;
  const value = etag.replace(/^W\//, "").replace(/"/g, "").trim().toLowerCase();
  return /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}

export async function sha256File(path: string): Promise<string> {
  const hasher = createHash("sha256");
  for await (const chunk of createReadStream(path)) hasher.update(chunk as Buffer);
  return hasher.digest("hex");
}

/** Chunks of a web stream (the DOM typings lack its async iterator). */
async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
