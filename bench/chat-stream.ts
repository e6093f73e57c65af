// Reading a streamed chat completion in the benches: the whole SSE text, and when its first
// content delta arrived.

/** Reads `res`'s stream to the end; `ttft` is ms from `t0` (performance.now()) to the first content delta. */
export async function readChatStream(res: Response, t0: number): Promise<{ text: string; ttft: number }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let ttft = NaN;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (Number.isNaN(ttft) && /"delta":\{"content":"[^"]/.test(text)) ttft = performance.now() - t0;
  }
  return { text, ttft };
}
