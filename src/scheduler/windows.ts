// The completion-window policy for one model, as data in and decisions out (no engine, no
// timers): which waiting work goes to the engine now. `asap` work goes at once and takes the
// engine's capacity first (the engine preempts `standard` sequences to make room for it).
// `standard` work fills what capacity is left; when the engine is idle it may wait a little
// (`standardWaitMs`) to start with more of its kind in one batch, and it ages: once it has
// waited `maxAgeMs` it goes like `asap` work, so none waits past that bound.

import type { CompletionWindow } from "../generation.ts";

export interface WindowSettings {
  /** How long `standard` work may wait for others to start a fuller batch with (engine idle). */
  standardWaitMs: number;
  /** The longest any `standard` work waits before it goes as `asap`. */
  maxAgeMs: number;
}

export const DEFAULT_WINDOW_SETTINGS: WindowSettings = { standardWaitMs: 5, maxAgeMs: 5 * 60_000 };

export interface Waiting {
  window: CompletionWindow;
  /** performance.now() when it was queued. */
  queuedAt: number;
}

/** How a waiting job goes to the engine: with which precedence there. */
export type Dispatch<W> = { job: W; priority: "asap" | "standard" };

export class WindowQueue<W extends Waiting> {
  private readonly waiting: W[] = [];

  constructor(private readonly settings: WindowSettings) {}

  get length(): number {
    return this.waiting.length;
  }

  count(window: CompletionWindow): number {
    return this.waiting.reduce((n, w) => n + (w.window === window ? 1 : 0), 0);
  }

  *[Symbol.iterator](): IterableIterator<W> {
    yield* this.waiting;
  }

  /** Arrival order within a window; `asap` before `standard`. */
  push(job: W): void {
    let at = this.waiting.length;
    while (at > 0 && this.waiting[at - 1].window === "standard" && job.window === "asap") at--;
    this.waiting.splice(at, 0, job);
  }

  remove(job: W): boolean {
    const at = this.waiting.indexOf(job);
    if (at < 0) return false;
    this.waiting.splice(at, 1);
    return true;
  }

  drain(): W[] {
    return this.waiting.splice(0);
  }

  private aged(w: W, now: number): boolean {
    return w.window === "standard" && now - w.queuedAt >= this.settings.maxAgeMs;
  }

  /**
   * What goes to the engine now, given the model's capacity (sequences it runs at once) and
   * the jobs already there: every `asap` job and every aged `standard` one, then `standard`
   * jobs while capacity is free, unless the engine is idle and they may still wait for company.
   */
  take(now: number, inEngine: number, capacity: number): Dispatch<W>[] {
    const out: Dispatch<W>[] = [];
    let busy = inEngine;
    for (const w of [...this.waiting]) {
      if (w.window === "asap" || this.aged(w, now)) {
        out.push({ job: w, priority: "asap" });
        busy++;
      }
    }
    const standard = this.waiting.filter((w) => w.window === "standard" && !this.aged(w, now));
    const free = capacity - busy;
    if (standard.length > 0 && free > 0) {
      const oldest = standard[0];
      const full = standard.length >= free;
      const waited = now - oldest.queuedAt >= this.settings.standardWaitMs;
      // an engine already running joins them to its batch; an idle one gathers a batch first
      if (inEngine > 0 || full || waited) for (const w of standard.slice(0, free)) out.push({ job: w, priority: "standard" });
    }
    for (const d of out) this.remove(d.job);
    return out;
  }

  /** When `take` may decide differently with nothing else changing (a wait or an age bound ends). */
  nextDecisionAt(now: number): number | null {
    let at: number | null = null;
    for (const w of this.waiting) {
      if (w.window !== "standard") continue;
      const gathered = w.queuedAt + this.settings.standardWaitMs;
      const due = gathered > now ? gathered : w.queuedAt + this.settings.maxAgeMs;
      at = at === null ? due : Math.min(at, due);
    }
    return at;
  }
}
