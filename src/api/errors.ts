// The OpenAI error envelope, used on every route (the Anthropic surface included, per API.md).
// Anything thrown below the routes that is not an ApiError becomes a 500 `server_error`.

import { t } from "elysia";

export type ErrorType =
  | "invalid_request_error"
  | "idempotency_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "server_error"
  | "overloaded_error";

/** The HTTP status each error type is answered with. */
export const STATUS_OF: Record<ErrorType, number> = {
  invalid_request_error: 400,
  idempotency_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  server_error: 500,
  overloaded_error: 503,
};

export const ERROR_TYPES = Object.keys(STATUS_OF) as ErrorType[];

/** The envelope as a schema, for the OpenAPI document (ErrorBody is its type). */
export const ErrorObject = t.Object({
  error: t.Object({
    message: t.String(),
    type: t.Union(ERROR_TYPES.map((e) => t.Literal(e))),
    param: t.Union([t.String({ description: "the parameter at fault, as a path: messages[0].content" }), t.Null()]),
    code: t.Union([t.String(), t.Null()]),
  }, { additionalProperties: false }),
}, { title: "Error", additionalProperties: false });

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;
  readonly status: number;

  constructor(type: ErrorType, message: string, opts: { param?: string | null; code?: string | null; status?: number } = {}) {
    super(message);
    this.name = "ApiError";
    this.type = type;
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.status = opts.status ?? STATUS_OF[type];
  }

  toJSON(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError("invalid_request_error", message, { param, code });

export const notFound = (message: string, param: string | null = null) =>
  new ApiError("not_found_error", message, { param, code: "not_found" });

export function unknownModel(model: string): ApiError {
  return new ApiError("not_found_error", `The model '${model}' does not exist or is not loaded on this server.`, {
    param: "model",
    code: "model_not_found",
  });
}

/** Any thrown value as an ApiError: unknown failures become a 500 without leaking internals beyond the message. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError("server_error", `Internal error: ${message}`, { code: "server_error" });
}

export function errorResponse(err: ApiError, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(err.toJSON()), {
    status: err.status,
    headers: { "content-type": "application/json", ...headers },
  });
}
