// Progress of a batch run on stderr: on a terminal a bar redrawn in place (done/total, items per
// minute, ETA, failures); otherwise (logs, CI) a plain line every lineEveryMs or every 5% of the items.
export interface BatchProgressOptions {
  stream?: { write(s: string): unknown; isTTY?: boolean };
  now?: () => number;
  /** Without a terminal, a line at least this often while items finish (default 10 s)… */
  lineEveryMs?: number;
  /** …and whenever another this many percent of the items are done (default 5). */
  linePercent?: number;
  /** Terminal redraws at most this often (default 200 ms). */
  redrawEveryMs?: number;
}

export interface BatchProgress {
  /** One more item done (failed: its line is an error). */
  item(failed: boolean): void;
  /** The last line, with the terminal bar's newline; after an interruption (complete false), only that newline. */
  finish(complete?: boolean): void;
}

const BAR_WIDTH = 24;

/** 95 s → "1m 35s", 4000 s → "1h 07m". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Progress over `total` items to do. */
export function batchProgress(total: number, options: BatchProgressOptions = {}): BatchProgress {
  const out = options.stream ?? process.stderr;
  const tty = out.isTTY === true;
  const now = options.now ?? (() => performance.now());
  const lineEveryMs = options.lineEveryMs ?? 10_000;
  const linePercent = options.linePercent ?? 5;
  const redrawEveryMs = options.redrawEveryMs ?? 200;
  const started = now();
  let done = 0;
  let failed = 0;
  let lastAt = -Infinity;
  let lastStep = 0;
  let drawn = false;

  const status = (t: number) => {
    const elapsed = t - started;
    const perMin = elapsed > 0 ? (done * 60_000) / elapsed : 0;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    const eta = done > 0 ? ((total - done) * elapsed) / done : Infinity;
    return `${done}/${total} (${pct}%) · ${perMin.toFixed(1)} items/min · ` +
      `${done >= total ? `took ${formatDuration(elapsed)}` : `ETA ${formatDuration(eta)}`}${failed ? ` · ${failed} failed` : ''}`;
  };

  const draw = (t: number, last: boolean) => {
    if (tty) {
      const filled = total > 0 ? Math.round((BAR_WIDTH * done) / total) : BAR_WIDTH;
      out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${status(t)}\x1b[K${last ? '\n' : ''}`);
    } else {
      out.write(`batch: ${status(t)}\n`);
    }
    drawn = true;
    lastAt = t;
  };

  if (tty && total > 0) draw(started, false);
  return {
    item(itemFailed) {
      done++;
      if (itemFailed) failed++;
      const t = now();
      if (done >= total) return; // finish() draws the last one
      if (tty) {
        if (t - lastAt >= redrawEveryMs) draw(t, false);
        return;
      }
      const step = total > 0 ? Math.floor((100 * done) / total / linePercent) : 0;
      if (t - lastAt >= lineEveryMs || step > lastStep) {
        lastStep = step;
        draw(t, false);
      }
    },
    finish(complete = true) {
      if (complete) draw(now(), true);
      else if (tty && drawn) out.write('\n');
    },
  };
}
