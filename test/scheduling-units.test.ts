// The bookkeeping under batching, without a device: the KV pages and prefix index
// (src/engine/kv-cache.ts) and the completion-window policy (src/scheduler/windows.ts).
import { describe, expect, test } from "bun:test";
import { KvCache, pageHash } from "../src/engine/kv-cache.ts";
import { WindowQueue, type Waiting } from "../src/scheduler/windows.ts";
import { pickReplica } from "../src/engine/pool.ts";

const page = (first: number) => Array.from({ length: 4 }, (_, i) => first + i);

describe("KV pages and the prefix index", () => {
  test("a chain of full pages is found again from the same tokens, not from others; a partial page never", () => {
    const kv = new KvCache(8, 4);
    const tokens = [...page(10), ...page(20), 30, 31];
    const held = [kv.allocate()!, kv.allocate()!];
    let h = kv.publish(held[0], "", tokens.slice(0, 4), false);
    h = kv.publish(held[1], h, tokens.slice(4, 8), false);
    expect(h).toBe(pageHash(pageHash("", page(10)), page(20)));
    // while still held, a second sequence borrows both pages
    const b = kv.borrowPrefix(tokens, 2, false);
    expect(b.pages).toEqual(held);
    expect(b.hash).toBe(h);
    // another second page: only the first matches; another first page: nothing
    expect(kv.borrowPrefix([...page(10), ...page(21)], 2, false).pages).toEqual([held[0]]);
    expect(kv.borrowPrefix([...page(11), ...page(20)], 2, false).pages).toEqual([]);
    // the two tokens after the full pages are no page
    expect(kv.borrowPrefix(tokens, 3, false).pages).toEqual(held);
    expect(kv.stats()).toMatchObject({ used: 2, hitTokens: 20 });
  });

  test("released pages stay cached until the pool needs them, least recently released first, free pages before any", () => {
    const kv = new KvCache(3, 4);
    const a = kv.allocate()!, b = kv.allocate()!;
    kv.publish(a, "", page(1), false);
    kv.publish(b, "", page(2), false);
    kv.release(b);
    kv.release(a);
    expect(kv.stats()).toMatchObject({ used: 0, cached: 2, free: 1 });
    const c = kv.allocate()!; // the never-used page first
    expect([a, b]).not.toContain(c);
    expect(kv.allocate()).toBe(b); // then the oldest cached one
    expect(kv.stats()).toMatchObject({ cached: 1, evictions: 1 });
    expect(kv.borrowPrefix(page(2), 1, false).pages).toEqual([]);
    expect(kv.borrowPrefix(page(1), 1, false).pages).toEqual([a]);
    expect(kv.allocate()).toBeNull(); // every page held
  });

  test("pages of a prompt_cache_key are evicted only after every other cached page", () => {
    const kv = new KvCache(2, 4);
    const keyed = kv.allocate()!, plain = kv.allocate()!;
    kv.publish(keyed, "", page(1), true);
    kv.publish(plain, "", page(2), false);
    kv.release(keyed); // released first, so the oldest...
    kv.release(plain);
    expect(kv.allocate()).toBe(plain); // ...but kept over the plain one
    expect(kv.borrowPrefix(page(1), 1, false).pages).toEqual([keyed]);
  });

  test("two sequences computing the same page: the first one indexed keeps the place, the other stays private", () => {
    const kv = new KvCache(4, 4);
    const a = kv.allocate()!, b = kv.allocate()!;
    kv.publish(a, "", page(5), false);
    kv.publish(b, "", page(5), false);
    kv.release(b);
    expect(kv.stats()).toMatchObject({ used: 1, cached: 0, free: 3 });
    expect(() => kv.release(b)).toThrow(/released more often than held/);
  });
});

describe("completion windows", () => {
  const settings = { standardWaitMs: 100, maxAgeMs: 10_000 };
  const job = (window: "asap" | "standard", queuedAt: number): Waiting & { name: string } => ({ window, queuedAt, name: `${window}@${queuedAt}` });
  const names = (d: { job: { name: string }; priority: string }[]) => d.map((x) => `${x.job.name}:${x.priority}`);

  test("asap goes at once, beyond capacity, and before standard work queued earlier", () => {
    const q = new WindowQueue<ReturnType<typeof job>>(settings);
    q.push(job("standard", 0));
    q.push(job("asap", 1));
    expect([...q].map((j) => j.name)).toEqual(["asap@1", "standard@0"]);
    expect(names(q.take(2, 4, 4))).toEqual(["asap@1:asap"]); // engine full: standard waits
    expect(q.length).toBe(1);
  });

  test("standard work fills free capacity; an idle engine gathers it for standardWaitMs unless a batch is full", () => {
    const q = new WindowQueue<ReturnType<typeof job>>(settings);
    q.push(job("standard", 0));
    q.push(job("standard", 10));
    expect(q.take(50, 0, 4)).toEqual([]); // idle, two of four, 50 ms: gathering
    expect(q.nextDecisionAt(50)).toBe(100);
    expect(names(q.take(50, 1, 4))).toEqual(["standard@0:standard", "standard@10:standard"]); // busy engine: join it
    q.push(job("standard", 60));
    q.push(job("standard", 61));
    expect(names(q.take(62, 0, 2))).toEqual(["standard@60:standard", "standard@61:standard"]); // a full batch
    q.push(job("standard", 70));
    expect(names(q.take(170, 0, 4))).toEqual(["standard@70:standard"]); // waited long enough
  });

  test("standard work older than maxAgeMs goes as asap, capacity or not", () => {
    const q = new WindowQueue<ReturnType<typeof job>>(settings);
    q.push(job("standard", 0));
    q.push(job("standard", 5000));
    expect(q.take(9000, 8, 8)).toEqual([]);
    expect(q.nextDecisionAt(9000)).toBe(10_000);
    expect(names(q.take(10_000, 8, 8))).toEqual(["standard@0:asap"]);
  });
});

describe("replica choice (src/engine/pool.ts)", () => {
  test("the prefix's replica, unless it is busier by more than one or full beside a free slot", () => {
    expect(pickReplica(1, [3, 4], 8)).toBe(1); // one more is even enough
    expect(pickReplica(1, [3, 5], 8)).toBe(0); // uneven
    expect(pickReplica(1, [7, 8], 8)).toBe(0); // full while replica 0 has a slot
    expect(pickReplica(1, [8, 8], 8)).toBe(1); // all full: wait where the prefix is
    expect(pickReplica(0, [9, 8], 8)).toBe(0);
  });
});
