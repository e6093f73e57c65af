// Wires completion webhooks to the store: a record that becomes terminal with a usable
// `metadata.completion_webhook` gets a delivery row in the same transaction (so a crash cannot
// lose it), and the dispatcher is woken once that transaction has committed.

import type { ResponseStore } from "../store/responses.ts";
import type { DeliveryStore } from "../store/deliveries.ts";
import type { WebhookDispatcher } from "./dispatcher.ts";
import { webhookTarget } from "./target.ts";

export function wireWebhooks(store: ResponseStore, deliveries: DeliveryStore, dispatcher: WebhookDispatcher): void {
  store.addHooks({
    inTransaction(tx, rec) {
      const target = webhookTarget(rec.generation.metadata);
      if (target) deliveries.enqueue(tx, { responseId: rec.id, ...target });
    },
    afterCommit(rec) {
      if (webhookTarget(rec.generation.metadata)) dispatcher.poke();
    },
  });
}

export { WebhookDispatcher, DEFAULT_WEBHOOK_OPTIONS, type WebhookOptions, type WebhookObserver } from "./dispatcher.ts";
export { webhookTarget } from "./target.ts";
