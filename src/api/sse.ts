// Server-Sent Events: one small typed writer for every streaming surface. An event has `data`
// (JSON of a value, or a literal string such as "[DONE]") and optionally `event`, `id` and
// `retry`, framed as the HTML spec reads them (each line of data its own `data:` line). The
// stream has a high-water mark: `write` resolves once the client has taken enough to be under it
// (await it where pausing the producer is possible), and a client that stops reading while
// MAX_UNREAD_BYTES pile up is treated as gone: the producer's signal aborts and the stream ends.

import { toApiError } from "./errors.ts";

const encoder = new TextEncoder();

export interface SseEvent {
  /** A JSON-serialized value, or a string sent as is. */
  data: unknown;
  /** The event's type (`event:`); absent means the default "message". */
  event?: string;
  /** `id:`, what a reconnecting client sends back as Last-Event-ID. */
  id?: string;
  /** `retry:`, the client's reconnection delay in milliseconds. */
  retry?: number;
}

export interface SseSink {
  /** Sends one event; resolves when the stream is under its high-water mark again. */
  write(event: SseEvent): Promise<void>;
  /** `write({ data: value })`. */
  send(value: unknown): Promise<void>;
  /** Aborts when the client disconnects or stops reading. */
  readonly signal: AbortSignal;
}

/** Bytes queued before `write` starts waiting for the client. */
const HIGH_WATER_BYTES = 64 * 1024;
/** Bytes a client may leave unread before it counts as gone. */
export const MAX_UNREAD_BYTES = 8 * 1024 * 1024;

const singleLine = (field: string, value: string) => {
  if (/[\r\n]/.test(value)) throw new RangeError(`SSE ${field} must be one line, got ${JSON.stringify(value)}`);
  return value;
};

/** The bytes of one event, blank line included. */
export function frame(e: SseEvent): Uint8Array {
  let text = "";
  if (e.event !== undefined) text += `event: ${singleLine("event", e.event)}\n`;
  if (e.id !== undefined) text += `id: ${singleLine("id", e.id)}\n`;
  if (e.retry !== undefined) {
    if (!Number.isInteger(e.retry) || e.retry < 0) throw new RangeError(`SSE retry must be a non-negative integer, got ${e.retry}`);
    text += `retry: ${e.retry}\n`;
  }
  const data = typeof e.data === "string" ? e.data : JSON.stringify(e.data);
  for (const line of data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return encoder.encode(text + "\n");
}

/**
 * A text/event-stream Response fed by `produce`. The producer's signal aborts when the client
 * disconnects (stream cancelled or the request's own signal) or stops reading; when `produce`
 * settles the stream closes; a producer that throws ends the stream with an error event.
 */
export function sseResponse(produce: (sink: SseSink) => Promise<void>, requestSignal?: AbortSignal): Response {
  const abort = new AbortController();
  const onRequestAbort = () => abort.abort();
  requestSignal?.addEventListener("abort", onRequestAbort, { once: true });
  let open = true;
  let drained: (() => void) | null = null;
  const close = () => {
    open = false;
    abort.abort();
    drained?.();
    drained = null;
  };
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const sink: SseSink = {
        write(event) {
          if (!open) return Promise.resolve();
          try {
            controller.enqueue(frame(event));
          } catch {
            close();
            return Promise.resolve();
          }
          const room = controller.desiredSize ?? 0;
          if (room > 0) return Promise.resolve();
          if (HIGH_WATER_BYTES - room > MAX_UNREAD_BYTES) {
            close();
            controller.error(new Error("the client stopped reading"));
            return Promise.resolve();
          }
          return new Promise<void>((resolve) => {
            const previous = drained;
            drained = () => { previous?.(); resolve(); };
          });
        },
        send(value) {
          return sink.write({ data: value });
        },
        signal: abort.signal,
      };
      // A producer should report its own errors; this is the net under it (`data: {"error":…}`).
      produce(sink).catch((err) => sink.send(toApiError(err).toJSON())).finally(() => {
        requestSignal?.removeEventListener("abort", onRequestAbort);
        if (open) {
          open = false;
          try {
            controller.close();
          } catch {
            // already closed by a cancel
          }
        }
      });
    },
    pull(controller) {
      if ((controller.desiredSize ?? 0) > 0) {
        drained?.();
        drained = null;
      }
    },
    cancel() {
      close();
    },
  }, { highWaterMark: HIGH_WATER_BYTES, size: (chunk) => chunk?.byteLength ?? 0 });
  return new Response(stream, {
    status: 200,
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" },
  });
}
