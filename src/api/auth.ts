// Bearer-key authentication. Keys come from VALAR_API_KEY (the default organization) and from
// the managed keys in the store (each tied to an organization). Auth is on as soon as either
// exists; with neither, the server only starts on a loopback address (see server.ts).

import { timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.ts";
import type { Db } from "../store/db.ts";
import { DEFAULT_ORG, findKey, hasActiveKeys, type Principal } from "../store/keys.ts";

export interface AuthConfig {
  /** The key from VALAR_API_KEY / --api-key, if any. */
  apiKey?: string | null;
  db: Db;
}

const ANONYMOUS: Principal = { organizationId: DEFAULT_ORG.id, apiKeyId: null };

const unauthorized = (message: string, code: string) =>
  new ApiError("authentication_error", message, { code });

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function authEnabled(cfg: AuthConfig): boolean {
  return Boolean(cfg.apiKey) || hasActiveKeys(cfg.db);
}

/** The principal a request acts as; throws a 401 ApiError when auth is on and the key is missing or wrong. */
export function authenticate(headers: Headers, cfg: AuthConfig): Principal {
  if (!authEnabled(cfg)) return ANONYMOUS;
  const header = headers.get("authorization");
  if (!header) {
    if (headers.get("x-api-key")) {
      throw unauthorized(
        "The x-api-key header is not accepted: send the key as a Bearer token, `Authorization: Bearer <key>` " +
          "(with the Anthropic SDK, pass it as `authToken` instead of `apiKey`).",
        "bearer_required",
      );
    }
    throw unauthorized("Missing API key: send it as `Authorization: Bearer <key>`.", "missing_api_key");
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthorized("Malformed Authorization header: expected `Authorization: Bearer <key>`.", "invalid_authorization");
  const key = match[1];
  if (cfg.apiKey && sameSecret(key, cfg.apiKey)) return ANONYMOUS;
  const principal = findKey(cfg.db, key);
  if (!principal) throw unauthorized("Invalid API key.", "invalid_api_key");
  return principal;
}
