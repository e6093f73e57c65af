// Random, unguessable, URL-safe ids: a prefix per kind, then 144 random bits in base64url.

export const ID_PREFIX = {
  responses: "resp_",
  chat: "chatcmpl-",
  messages: "msg_",
  batch: "batch_",
  organization: "org_",
  apiKey: "key_",
} as const;

export function randomToken(bytes = 18): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  return Buffer.from(buf).toString("base64url");
}

export function newId(kind: keyof typeof ID_PREFIX): string {
  return ID_PREFIX[kind] + randomToken();
}
