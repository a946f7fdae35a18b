// Progress on stderr for long work: a bar redrawn in place on a terminal, a line every few seconds
// otherwise (logs, CI). Loading shows once the weights exceed minLoadBytes; a vision pass or prefill
// once it has run for showAfterMs. Short work prints nothing.
import { TfvlmError } from '../errors.ts';
import type { ProgressEvent, ProgressListener, ProgressStage } from '../util/progress.ts';
import { formatBytes } from '../io/hub/progress.ts';

export interface ProgressPrinterOptions {
  stream?: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  now?: () => number;
  /** Loads smaller than this print nothing (default 1 GB). */
  minLoadBytes?: number;
  /** Vision / prefill passes print once they have run this long (default 3 s). */
  showAfterMs?: number;
  /** Without a terminal, at most one line per this many ms (default 5 s). */
  lineEveryMs?: number;
  /** Redraws of the terminal bar at most this often (default 100 ms). */
  redrawEveryMs?: number;
}

const LABEL: Record<ProgressStage, string> = { load: 'loading weights', vision: 'vision encoder', prefill: 'prefill', quantize: 'quantizing' };
const BAR_WIDTH = 24;

interface StageState {
  startedAt: number;
  lastDrawnAt: number;
  shown: boolean;
}

export function progressPrinter(options: ProgressPrinterOptions = {}): ProgressListener {
  const out = options.stream ?? process.stderr;
  const tty = out.isTTY === true;
  const now = options.now ?? (() => performance.now());
  const minLoadBytes = options.minLoadBytes ?? 1e9;
  const showAfterMs = options.showAfterMs ?? progressAfterMsFromEnv() ?? 3000;
  const lineEveryMs = options.lineEveryMs ?? 5000;
  const redrawEveryMs = options.redrawEveryMs ?? 100;
  let state: (StageState & { stage: ProgressStage; lastDone: number }) | undefined;

  const amount = (e: ProgressEvent, v: number) => (e.unit === 'bytes' ? formatBytes(v) : String(v));
  const describe = (e: ProgressEvent, elapsedMs: number) => {
    const pct = e.total > 0 ? Math.floor((100 * e.done) / e.total) : 100;
    const unit = e.unit === 'layers' ? ' layers' : '';
    return `${LABEL[e.stage]} ${pct}% (${amount(e, e.done)}/${amount(e, e.total)}${unit}, ${(elapsedMs / 1000).toFixed(0)} s)`;
  };

  return (e) => {
    const t = now();
    if (!state || state.stage !== e.stage || e.done < state.lastDone) {
      state = { stage: e.stage, startedAt: t, lastDrawnAt: -Infinity, shown: false, lastDone: e.done };
    }
    state.lastDone = e.done;
    const elapsed = t - state.startedAt;
    const last = e.done >= e.total;
    const worthShowing = e.stage === 'load' ? e.total >= minLoadBytes : elapsed >= showAfterMs;
    if (!state.shown && !worthShowing) return;
    if (tty) {
      if (!last && t - state.lastDrawnAt < redrawEveryMs) return;
      const filled = e.total > 0 ? Math.round((BAR_WIDTH * e.done) / e.total) : BAR_WIDTH;
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
      out.write(`\r${bar} ${describe(e, elapsed)}\x1b[K${last ? '\n' : ''}`);
    } else {
      if (!last && state.shown && t - state.lastDrawnAt < lineEveryMs) return;
      out.write(`${describe(e, elapsed)}\n`);
    }
    state.shown = true;
    state.lastDrawnAt = t;
    if (last) state = undefined;
  };
}

/** TFVLM_PROGRESS_AFTER_MS: how long a vision pass or prefill runs before its progress shows (0: always). */
function progressAfterMsFromEnv(): number | undefined {
  const raw = process.env.TFVLM_PROGRESS_AFTER_MS;
  if (raw === undefined || raw === '') return undefined;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new TfvlmError(`TFVLM_PROGRESS_AFTER_MS=${raw} is not a non-negative number of milliseconds`);
  return ms;
}
