// GET /openapi.json: the OpenAPI 3.1 document of every route, generated from the routes' TypeBox
// schemas by @elysiajs/openapi's generator. GET /docs: a page that renders it (Scalar's viewer,
// loaded from its CDN, so it needs a browser with internet access; the JSON does not).

import { Elysia, type AnyElysia } from "elysia";
import { Kind, type TSchema } from "@sinclair/typebox";
import { toOpenAPISchema } from "@elysiajs/openapi";
import { ErrorObject } from "./errors.ts";
import { MAX_IDEMPOTENCY_KEY_LENGTH, REPLAYED_HEADER } from "./idempotency.ts";

export const OPENAPI_SPEC_PATH = "/openapi.json";
export const OPENAPI_DOCS_PATH = "/docs";

const INFO = {
  title: "Valar",
  version: "0.1.0",
  description: "Self-hosted inference: OpenAI Responses, Chat Completions and Batches, Anthropic Messages.",
};

type Operation = {
  requestBody?: { content?: Record<string, unknown>; required?: boolean };
  responses?: Record<string, { content?: Record<string, { schema: unknown }> }>;
};

/** A response's body: one schema as JSON, or a schema per content type. */
type Body = TSchema | Record<string, TSchema>;

const contentOf = (body: Body) =>
  Object.fromEntries(Object.entries(Kind in body ? { "application/json": body } : body).map(([type, schema]) => [type, { schema }]));

const ERROR_RESPONSE = { description: "An error in the OpenAI envelope, naming the parameter at fault", content: contentOf(ErrorObject) };

/** What else a route's documentation says: the idempotency header it takes, or that it needs no key. */
interface RouteDoc {
  /** The header naming a retry of the same request (API.md, Idempotency). */
  idempotencyHeader?: string;
  /** Not authenticated (the operations routes, as probes and scrapers expect). */
  public?: boolean;
}

const idempotencyParameter = (name: string) => ({
  name, in: "header" as const, required: false,
  description: "Makes retries safe: a request repeated with the same key gets the first one's result, not a second run.",
  schema: { type: "string" as const, minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH },
});

const REPLAYED = { [REPLAYED_HEADER]: { description: "true when the answer is an earlier request's, replayed for its idempotency key", schema: { type: "string" as const, const: "true" } } };

/**
 * A route's `detail`: what it answers with, by status, for the OpenAPI document. The schemas are
 * the ones that type the route's renderers; the errors are the envelope every route shares.
 */
export function documented(answers: Record<number, Body>, summary?: string, doc: RouteDoc = {}) {
  const responses: Record<string, unknown> = {};
  for (const [status, body] of Object.entries(answers)) {
    responses[status] = {
      description: Number(status) === 202 ? "Accepted: the background work's state" : "OK",
      ...(doc.idempotencyHeader ? { headers: REPLAYED } : {}),
      content: contentOf(body),
    };
  }
  return {
    ...(summary ? { summary } : {}),
    ...(doc.idempotencyHeader ? { parameters: [idempotencyParameter(doc.idempotencyHeader)] } : {}),
    ...(doc.public ? { security: [] } : {}),
    responses: { ...responses, "4XX": ERROR_RESPONSE, "5XX": ERROR_RESPONSE },
  };
}

/** Keys are Bearer tokens; with no key configured the server takes requests without one. */
const SECURITY_SCHEMES = {
  bearer: { type: "http", scheme: "bearer", description: "An API key (VALAR_API_KEY or a managed key), required once the server has any." },
};

/** `schema` with every titled schema in it moved to `components` and named by reference. */
function hoist(schema: unknown, components: Record<string, unknown>): unknown {
  if (Array.isArray(schema)) return schema.map((s) => hoist(s, components));
  if (schema === null || typeof schema !== "object") return schema;
  const copy = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, hoist(v, components)]));
  if (typeof copy.title !== "string") return copy;
  components[copy.title] ??= copy;
  return { $ref: `#/components/schemas/${copy.title}` };
}

/** `/v1/models/:id` as OpenAPI writes it, `/v1/models/{id}`. */
const openapiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** The document for `app` (read when asked, so it lists every route the app has by then). */
export function openapiDocument(app: AnyElysia): Record<string, unknown> {
  const { paths, components } = toOpenAPISchema(app) as {
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, unknown>; securitySchemes?: unknown };
  };
  // Every body is JSON read by the app's own parser (body limits, depth), which the generator
  // cannot name as a content type: it leaves `content` empty, so say what it is.
  for (const route of app.routes) {
    const body = (route.hooks as { body?: unknown } | undefined)?.body;
    const op = paths[openapiPath(route.path)]?.[route.method.toLowerCase()];
    if (!body || !op?.requestBody) continue;
    if (Object.keys(op.requestBody.content ?? {}).length === 0) op.requestBody.content = { "application/json": { schema: body } };
  }
  // Response bodies are named components (Response, ChatCompletion, ...), each written once. The
  // answers are the routes' own `detail` objects: hoisted into copies, so the next request's
  // document starts from them unchanged.
  const hoistContent = (content: Record<string, { schema: unknown }>) =>
    Object.fromEntries(Object.entries(content).map(([type, media]) => [type, { ...media, schema: hoist(media.schema, components.schemas) }]));
  for (const op of Object.values(paths).flatMap((p) => Object.values(p))) {
    if (!op.responses) continue;
    op.responses = Object.fromEntries(Object.entries(op.responses)
      .map(([status, answer]) => [status, answer.content ? { ...answer, content: hoistContent(answer.content) } : answer]));
  }
  components.securitySchemes = SECURITY_SCHEMES;
  // a key, or none when the server has none
  return { openapi: "3.1.0", info: INFO, security: [{ bearer: [] }, {}], paths, components };
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
