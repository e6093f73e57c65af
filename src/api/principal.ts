// The authenticated principal of a request, attached by the app's request hook. A WeakMap keeps
// it out of the Request object and lets any route module read it without plugin ordering games.

import type { Principal } from "../store/keys.ts";

const principals = new WeakMap<Request, Principal>();

export function setPrincipal(request: Request, principal: Principal): void {
  principals.set(request, principal);
}

export function principalOf(request: Request): Principal {
  const p = principals.get(request);
  if (!p) throw new Error("request was not authenticated (the auth hook did not run)");
  return p;
}
