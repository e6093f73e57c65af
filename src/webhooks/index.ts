// Wires completion webhooks to the store: a record that becomes terminal with a usable
// `metadata.completion_webhook` gets a delivery row in the same transaction (so a crash cannot
// lose it), and the dispatcher is woken once that transaction has committed.

import type { ResponseStore } from "../store/responses.ts";
import type { BatchStore } from "../store/batches.ts";
import type { DeliveryStore } from "../store/deliveries.ts";
import type { WebhookDispatcher } from "./dispatcher.ts";
import { webhookTarget } from "./target.ts";

/** A batch's completion webhook comes from the batch's own metadata; its body is the batch status object. */
export function wireBatchWebhooks(batches: BatchStore, deliveries: DeliveryStore, dispatcher: WebhookDispatcher): void {
  batches.addHooks({
    inTransaction(tx, batch) {
      const target = webhookTarget(batch.metadata);
      if (target) deliveries.enqueue(tx, { responseId: batch.id, ...target });
    },
    afterCommit(batch) {
      if (webhookTarget(batch.metadata)) dispatcher.poke();
    },
  });
}

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
