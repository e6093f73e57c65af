// Server-Sent Events framing: `data: <json>\n\n` events on a stream whose consumer going away
// (client disconnect) aborts the producer's signal.

import { toApiError } from "./errors.ts";

const encoder = new TextEncoder();

export interface SseSink {
  /** Sends one `data:` event with the JSON of `value`, or the literal text when given a string. */
  send(value: unknown): void;
  readonly signal: AbortSignal;
}

export function frame(value: unknown): Uint8Array {
  const data = typeof value === "string" ? value : JSON.stringify(value);
  return encoder.encode(`data: ${data}\n\n`);
}

/**
 * A text/event-stream Response fed by `produce`. The producer's signal aborts when the client
 * disconnects (stream cancelled or the request's own signal); when `produce` settles the stream
 * closes; a producer that throws ends the stream with an error event.
 */
export function sseResponse(produce: (sink: SseSink) => Promise<void>, requestSignal?: AbortSignal): Response {
  const abort = new AbortController();
  const onRequestAbort = () => abort.abort();
  requestSignal?.addEventListener("abort", onRequestAbort, { once: true });
  let open = true;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const sink: SseSink = {
        send(value) {
          if (!open) return;
          try {
            controller.enqueue(frame(value));
          } catch {
            open = false;
            abort.abort();
          }
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
    cancel() {
      open = false;
      abort.abort();
    },
  });
  return new Response(stream, {
    status: 200,
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" },
  });
}
