// Download (and device upload) progress on stderr: a bar redrawn in place on a terminal, plain
// lines (one per 10%) when stderr is a file or a pipe, so CI logs stay readable.

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Progress {
  /** `resumedFrom` bytes were already on disk; they count as done but not towards the rate. */
  start(total: number | undefined, resumedFrom: number): void;
  update(done: number): void;
  finish(done: number): void;
}

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** Bytes in decimal units, as download tools show them: `144.8 MB`. */
export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

const BAR_WIDTH = 24;
const TTY_REDRAW_MS = 100;
const PLAIN_STEP_BYTES_UNKNOWN_TOTAL = 8 * 1024 * 1024;

/** `action` names what moves the bytes in the opening line ("downloading", "uploading to the GPU"). */
export function createProgress(
  label: string, stream: ProgressStream, now: () => number = performance.now.bind(performance), action = "downloading",
): Progress {
  let total: number | undefined;
  let base = 0;
  let startedAt = 0;
  let lastDraw = -Infinity;
  let lastStep = -1;

  const line = (done: number, final: boolean): string => {
    const elapsed = (now() - startedAt) / 1000;
    const rate = elapsed > 0 ? (done - base) / elapsed : 0;
    const parts = [label];
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, done / total);
      if (stream.isTTY) {
        const filled = Math.round(frac * BAR_WIDTH);
        parts.push(`[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`);
      }
      parts.push(`${String(Math.floor(frac * 100)).padStart(3)}%`, `${formatBytes(done)} / ${formatBytes(total)}`);
    } else {
      parts.push(formatBytes(done));
    }
    parts.push(`${formatBytes(Math.round(rate))}/s`);
    if (final) parts.push(`in ${formatDuration(elapsed)}`);
    else if (total !== undefined) parts.push(`ETA ${rate > 0 ? formatDuration((total - done) / rate) : "?"}`);
    return parts.join("  ");
  };

  const stepOf = (done: number) =>
    total !== undefined && total > 0 ? Math.floor((done / total) * 10) : Math.floor(done / PLAIN_STEP_BYTES_UNKNOWN_TOTAL);

  return {
    start(t, resumedFrom) {
      total = t;
      base = resumedFrom;
      startedAt = now();
      lastStep = stepOf(resumedFrom);
      const resumed = resumedFrom > 0 ? ` (resuming at ${formatBytes(resumedFrom)})` : "";
      stream.write(`${label}: ${action} ${total !== undefined ? formatBytes(total) : "unknown size"}${resumed}\n`);
    },
    update(done) {
      if (stream.isTTY) {
        const t = now();
        if (t - lastDraw < TTY_REDRAW_MS) return;
        lastDraw = t;
        stream.write(`\r\x1b[K${line(done, false)}`);
        return;
      }
      const step = stepOf(done);
      if (step > lastStep && (total === undefined || done < total)) {
        lastStep = step;
        stream.write(`${line(done, false)}\n`);
      }
    },
    finish(done) {
      stream.write(`${stream.isTTY ? "\r\x1b[K" : ""}${line(done, true)}\n`);
    },
  };
}
