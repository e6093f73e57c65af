// Where a record's completion webhook goes, read from its metadata. API.md: "an unusable URL does
// not fail the request", so anything but an absolute http(s) URL means "no callback" rather than
// a 400 (the hosted service's page says the same: no callback is sent, the request is unaffected).

export interface WebhookTarget {
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token: string | null;
}

export const WEBHOOK_URL_KEY = "completion_webhook";
export const WEBHOOK_TOKEN_KEY = "webhook_token";

const SCHEMES = new Set(["http:", "https:"]);

/** The http(s) URL in `metadata.completion_webhook`, or null when absent or unusable. */
export function webhookTarget(metadata: Record<string, string>): WebhookTarget | null {
  const raw = metadata[WEBHOOK_URL_KEY];
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (!SCHEMES.has(url.protocol) || !url.hostname) return null;
  const token = metadata[WEBHOOK_TOKEN_KEY];
  return { url: url.href, token: token ? token : null };
}
