// Assembles the Elysia app: body parsing, body-size limit, authentication, the error envelope
// for everything that goes wrong (Elysia's own parse/validation/not-found errors included), and
// the surface modules. `handle` wraps the app to count requests by route and status.

import { Elysia } from "elysia";
import type { AppContext } from "./context.ts";
import { ApiError, errorResponse, invalidRequest, toApiError } from "./errors.ts";
import { schemaError } from "./validation.ts";
import { authenticate } from "./auth.ts";
import { setPrincipal } from "./principal.ts";
import { responsesRoutes } from "./responses.ts";
import { chatRoutes } from "./chat.ts";
import { messagesRoutes } from "./messages.ts";
import { modelsRoutes } from "./models.ts";
import { opsRoutes } from "./ops.ts";
import { batchesRoutes } from "./batches.ts";
import { bodyLimit } from "./context.ts";
import { checkDeclaredLength, readJsonBody } from "./body.ts";
import { DEMO_PREFIX, demoRoutes } from "./demo.ts";
import { OPENAPI_DOCS_PATH, OPENAPI_SPEC_PATH, openapiRoutes } from "./openapi.ts";

/** Route labels for metrics: path patterns, so ids do not explode the label set. */
const ROUTE_PATTERNS: [RegExp, string][] = [
  [/^\/v1\/responses\/[^/]+$/, "/v1/responses/{id}"],
  [/^\/v1\/responses\/[^/]+\/cancel$/, "/v1/responses/{id}/cancel"],
  [/^\/v1\/models\/[^/]+\/file$/, "/v1/models/{id}/file"],
  [/^\/v1\/models\/.+$/, "/v1/models/{id}"],
  [/^\/v1\/batches\/[^/]+$/, "/v1/batches/{id}"],
  [/^\/v1\/batches\/[^/]+\/cancel$/, "/v1/batches/{id}/cancel"],
  [/^\/v1\/batches\/[^/]+\/results$/, "/v1/batches/{id}/results"],
  [/^\/v1\/batches\/[^/]+\/[^/]+$/, "/v1/batches/{id}/{custom_id}"],
  [/^\/demo(\/.*)?$/, "/demo/{file}"],
];
const KNOWN_ROUTES = new Set(["/v1/responses", "/v1/chat/completions", "/v1/messages", "/v1/models", "/v1/batches", "/health", "/ready", "/metrics", OPENAPI_SPEC_PATH, OPENAPI_DOCS_PATH]);

export function routeLabel(path: string): string {
  if (KNOWN_ROUTES.has(path)) return path;
  for (const [re, label] of ROUTE_PATTERNS) if (re.test(path)) return label;
  return "other";
}

const UNAUTHENTICATED_PATHS = new Set(["/health", "/ready", "/metrics", OPENAPI_SPEC_PATH, OPENAPI_DOCS_PATH]);
const isPublic = (path: string) => UNAUTHENTICATED_PATHS.has(path) || path === DEMO_PREFIX || path.startsWith(`${DEMO_PREFIX}/`);

export function createApp(ctx: AppContext) {
  const app = new Elysia({ normalize: false })
    .onRequest(({ request }) => {
      const path = new URL(request.url).pathname;
      checkDeclaredLength(request.headers, bodyLimit(ctx.limits, path));
      if (!isPublic(path)) setPrincipal(request, authenticate(request.headers, ctx.auth));
    })
    // Every body is JSON whatever its content type (curl users forget the header).
    .onParse(({ request }) => readJsonBody(request, bodyLimit(ctx.limits, new URL(request.url).pathname)))
    .onError(({ code, error }) => {
      if (error instanceof ApiError) return errorResponse(error);
      switch (code) {
        case "VALIDATION":
          return errorResponse(schemaError(error.valueError));
        case "PARSE":
          // Elysia wraps what the parse hook throws (a 413, a JSON error with its detail)
          if (error.cause instanceof ApiError) return errorResponse(error.cause);
          return errorResponse(invalidRequest("The request body is not valid JSON.", null, "invalid_json"));
        case "NOT_FOUND":
          return errorResponse(new ApiError("not_found_error", "Unknown route: this server does not serve that method and path.", { code: "unknown_route" }));
        default:
          console.error("unhandled error:", error);
          return errorResponse(toApiError(error));
      }
    })
    .use(opsRoutes(ctx))
    .use(modelsRoutes(ctx))
    .use(responsesRoutes(ctx))
    .use(chatRoutes(ctx))
    .use(messagesRoutes(ctx))
    .use(batchesRoutes(ctx))
    .use(demoRoutes());
  return app.use(openapiRoutes(() => app));
}

export type App = ReturnType<typeof createApp>;

/** The app's fetch handler with per-request metrics. */
export function instrumentedFetch(app: App, ctx: AppContext): (request: Request) => Promise<Response> {
  return async (request) => {
    let response: Response;
    try {
      response = await app.handle(request);
    } catch (err) {
      response = errorResponse(toApiError(err));
    }
    ctx.metrics.http(request.method, routeLabel(new URL(request.url).pathname), response.status);
    return response;
  };
}
