// A file as an HTTP response with single byte-range support (RFC 9110 §14): what a browser
// needs to resume or page through a multi-gigabyte weights download.

import { statSync } from "node:fs";
import { ApiError } from "./errors.ts";
import { host } from "../hosts/index.ts";

/** The inclusive byte range a `Range` header asks of a file of `size` bytes; null for the whole file. */
export function parseRange(header: string | null, size: number): { start: number; end: number } | null | "unsatisfiable" {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges, or another unit: a server may answer with the whole file (§14.2).
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

/** The file at `path` for `request` (the listener sends no body for a HEAD): 200 whole, 206 one range, 304 when the client's copy is current, 416 past its end. */
export function fileResponse(request: Request, path: string, contentType = "application/octet-stream"): Response {
  const stat = statSync(path);
  const size = stat.size;
  const etag = `"${size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const headers: Record<string, string> = {
    "accept-ranges": "bytes",
    "content-type": contentType,
    etag,
    "last-modified": stat.mtime.toUTCString(),
  };
  if (request.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
  // If-Range with another validator: the file changed, so the range would splice two versions.
  const ifRange = request.headers.get("if-range");
  const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.get("range"), size);
  if (range === "unsatisfiable") {
    return new Response(JSON.stringify(new ApiError("invalid_request_error", `The range '${request.headers.get("range")}' lies outside the file's ${size} bytes.`, { param: "Range", code: "range_not_satisfiable", status: 416 }).toJSON()), {
      status: 416,
      headers: { ...headers, "content-type": "application/json", "content-range": `bytes */${size}` },
    });
  }
  if (!range) return new Response(size === 0 ? null : host.fileBody(path, 0, size - 1), { headers: { ...headers, "content-length": String(size) } });
  const length = range.end - range.start + 1;
  return new Response(host.fileBody(path, range.start, range.end), {
    status: 206,
    headers: { ...headers, "content-length": String(length), "content-range": `bytes ${range.start}-${range.end}/${size}` },
  });
}
