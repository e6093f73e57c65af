// The idempotency header of each surface (API.md: `Idempotency-Key`, and on /v1/messages
// `anthropic-idempotency-key`), checked before anything is stored so a bad key leaves no trace.

import type { Surface } from "./unsupported.ts";
import { invalidRequest } from "./errors.ts";

export const IDEMPOTENCY_HEADER: Record<Surface, string> = {
  responses: "Idempotency-Key",
  chat: "Idempotency-Key",
  messages: "anthropic-idempotency-key",
};

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** Set on an answer that replays an earlier request's record instead of running inference. */
export const REPLAYED_HEADER = "Idempotent-Replayed";

/** The request's idempotency key, null when absent; a 400 naming the header when unusable. */
export function idempotencyKeyOf(request: Request, surface: Surface): string | null {
  const name = IDEMPOTENCY_HEADER[surface];
  const key = request.headers.get(name);
  if (key === null) return null;
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw invalidRequest(
      `The ${name} header must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters long; it is ${key.length}.`,
      name, "invalid_idempotency_key",
    );
  }
  return key;
}
