// GET /demo/: the demo page and the embeddable engine's files (src/browser/), bundled on the
// first request and kept in memory. Public like /health: the page asks for a key itself when
// the server's /v1 routes need one.

import { Elysia } from "elysia";
import { buildWeb, type WebFile } from "../browser/build.ts";
import { notFound } from "./errors.ts";

export const DEMO_PREFIX = "/demo";

let built: Promise<Map<string, WebFile>> | null = null;

async function demoFile(name: string): Promise<Response> {
  built ??= buildWeb().catch((e) => { built = null; throw e; });
  const f = (await built).get(name);
  if (!f) throw notFound(`The demo has no file '${name}'.`);
  // The page's URLs are relative (it also runs from a static host): anchor them at /demo/ for
  // `/demo` without its slash.
  const body = name === "index.html" ? f.body.replace("<head>", `<head>\n  <base href="${DEMO_PREFIX}/">`) : f.body;
  return new Response(body, { headers: { "content-type": f.contentType, "cache-control": "no-cache" } });
}

/** A page, not part of the API: left out of the OpenAPI document. */
const PAGE = { detail: { hide: true } };

export function demoRoutes() {
  return new Elysia({ name: "demo" })
    .get(DEMO_PREFIX, () => demoFile("index.html"), PAGE)
    .get(`${DEMO_PREFIX}/`, () => demoFile("index.html"), PAGE)
    .get(`${DEMO_PREFIX}/:file`, ({ params }) => demoFile(params.file), PAGE);
}
