// Delivers completion webhooks from the deliveries table: one POST per attempt with the record's
// `GET /v1/responses/{id}` body, retried with backoff on a non-2xx answer, a network error or a
// timeout, at most `maxAttempts` times. Best effort: nothing here touches the record.
//
// The table is the queue, so pending retries survive a restart: a new dispatcher finds them due.
// Wakes up when told a delivery was added (`poke`), when the next retry falls due, and every
// `pollMs` regardless (another server process may have added rows).

import type { Delivery, DeliveryStore } from "../store/deliveries.ts";

export interface WebhookOptions {
  /** Per-attempt time limit (API.md: 30 s). */
  timeoutMs: number;
  /** Wait before retry n (1-based) is backoffMs[n-1]; the last entry repeats. */
  backoffMs: number[];
  /** API.md: up to 3 retries, so 4 attempts. */
  maxAttempts: number;
  /** Longest sleep between scans of the table. */
  pollMs: number;
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookOptions = {
  timeoutMs: 30_000,
  backoffMs: [1_000, 5_000, 25_000],
  maxAttempts: 4,
  pollMs: 5_000,
};

/** What became of one attempt: accepted, failed with a retry to come, or failed for good. */
export type AttemptOutcome = "delivered" | "retry" | "failed";

/** Hooks for metrics. */
export interface WebhookObserver {
  webhookAttempt?(outcome: AttemptOutcome): void;
}

/** The body to send for a record (its GET /v1/responses/{id} JSON), or null when it is gone. */
export type RenderRecord = (responseId: string) => string | null;

/** The lease an attempt holds on its row beyond its own timeout, for the bookkeeping after it. */
const LEASE_MARGIN_MS = 5_000;

export class WebhookDispatcher {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();
  private scanning = false;
  private rescan = false;

  constructor(
    private readonly deliveries: DeliveryStore,
    private readonly render: RenderRecord,
    private readonly opts: WebhookOptions = DEFAULT_WEBHOOK_OPTIONS,
    private readonly observer: WebhookObserver = {},
  ) {}

  start(): void {
    this.poke();
  }

  /** Scan now (a delivery was just added). */
  poke(): void {
    if (this.stopping.signal.aborted) return;
    this.schedule(0);
  }

  /** Stops scanning and abandons attempts in flight; their rows are due again for the next start. */
  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.scan();
    }, Math.max(0, delayMs));
  }

  private scan(): void {
    if (this.stopping.signal.aborted) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    try {
      do {
        this.rescan = false;
        const now = Date.now();
        for (const d of this.deliveries.due(now)) {
          if (this.inFlight.has(d.id)) continue;
          if (!this.deliveries.claim(d, now + this.opts.timeoutMs + LEASE_MARGIN_MS)) continue;
          const attempt = this.attempt(d).finally(() => {
            this.inFlight.delete(d.id);
            this.poke();
          });
          this.inFlight.set(d.id, attempt);
        }
      } while (this.rescan);
    } catch (err) {
      // The store is closing or briefly locked: try again at the next wake-up.
      if (!this.stopping.signal.aborted) console.error("webhook scan failed:", err);
    } finally {
      this.scanning = false;
    }
    if (this.stopping.signal.aborted) return;
    let next: number | null = null;
    try {
      next = this.deliveries.nextDueAt();
    } catch {
      next = null;
    }
    const wait = next === null ? this.opts.pollMs : Math.min(this.opts.pollMs, next - Date.now());
    this.schedule(wait);
  }

  private async attempt(d: Delivery): Promise<void> {
    const attempts = d.attempts + 1;
    const body = this.render(d.responseId);
    if (body === null) {
      this.deliveries.attemptFailed(d.id, attempts, null, "the record no longer exists", null);
      this.observer.webhookAttempt?.("failed");
      return;
    }
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "valar-webhooks" };
    if (d.token) headers.authorization = `Bearer ${d.token}`;
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    let status: number | null = null;
    let error: string;
    try {
      const res = await fetch(d.url, {
        method: "POST", headers, body, redirect: "manual",
        signal: AbortSignal.any([timeout, this.stopping.signal]),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      error = `the endpoint answered HTTP ${status}`;
    } catch (err) {
      if (this.stopping.signal.aborted) {
        this.safely(() => this.deliveries.release(d.id));
        return;
      }
      error = timeout.aborted
        ? `no answer within ${this.opts.timeoutMs} ms`
        : `network error: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (status !== null && status >= 200 && status < 300) {
      const ok = status;
      this.safely(() => this.deliveries.delivered(d.id, attempts, ok));
      this.observer.webhookAttempt?.("delivered");
      return;
    }
    const retryAt = attempts >= this.opts.maxAttempts ? null : Date.now() + this.backoff(attempts);
    this.safely(() => this.deliveries.attemptFailed(d.id, attempts, status, error, retryAt));
    this.observer.webhookAttempt?.(retryAt === null ? "failed" : "retry");
  }

  private backoff(attempt: number): number {
    const table = this.opts.backoffMs;
    return table[Math.min(attempt, table.length) - 1] ?? 0;
  }

  private safely(write: () => void): void {
    try {
      write();
    } catch (err) {
      if (!this.stopping.signal.aborted) console.error("webhook bookkeeping failed:", err);
    }
  }
}
