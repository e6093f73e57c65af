// GET /openapi.json: the OpenAPI 3.1 document of every route, generated from the routes' TypeBox
// schemas by @elysiajs/openapi's generator. GET /docs: a page that renders it (Scalar's viewer,
// loaded from its CDN, so it needs a browser with internet access; the JSON does not).

import { Elysia, type AnyElysia } from "elysia";
import { toOpenAPISchema } from "@elysiajs/openapi";

export const OPENAPI_SPEC_PATH = "/openapi.json";
export const OPENAPI_DOCS_PATH = "/docs";

const INFO = {
  title: "Valar",
  version: "0.1.0",
  description: "Self-hosted inference: OpenAI Responses, Chat Completions and Batches, Anthropic Messages.",
};

type Operation = { requestBody?: { content?: Record<string, unknown>; required?: boolean } };

/** `/v1/models/:id` as OpenAPI writes it, `/v1/models/{id}`. */
const openapiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** The document for `app` (read when asked, so it lists every route the app has by then). */
export function openapiDocument(app: AnyElysia): Record<string, unknown> {
  const { paths, components } = toOpenAPISchema(app) as { paths: Record<string, Record<string, Operation>>; components: unknown };
  // Every body is JSON read by the app's own parser (body limits, depth), which the generator
  // cannot name as a content type: it leaves `content` empty, so say what it is.
  for (const route of app.routes) {
    const body = (route.hooks as { body?: unknown } | undefined)?.body;
    const op = paths[openapiPath(route.path)]?.[route.method.toLowerCase()];
    if (!body || !op?.requestBody) continue;
    if (Object.keys(op.requestBody.content ?? {}).length === 0) op.requestBody.content = { "application/json": { schema: body } };
  }
  return { openapi: "3.1.0", info: INFO, paths, components };
}

const docsPage = () => `<!doctype html>
<html>
  <head>
    <title>${INFO.title} API</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <script id="api-reference" data-url="${OPENAPI_SPEC_PATH}"></script>
    <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
  </body>
</html>
`;

/** The two routes; `app` is the whole app, whose routes the document describes. */
export function openapiRoutes(app: () => AnyElysia) {
  return new Elysia({ name: "openapi" })
    .get(OPENAPI_SPEC_PATH, () => openapiDocument(app()), { detail: { hide: true } })
    .get(OPENAPI_DOCS_PATH, () => new Response(docsPage(), { headers: { "content-type": "text/html; charset=utf-8" } }), { detail: { hide: true } });
}
