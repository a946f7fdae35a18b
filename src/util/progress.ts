// Progress of long work: loading weights (bytes), a vision pass and a prefill (layers). The work
// reports where it is; whoever wants to show it installs a listener around the call. Forward passes
// are synchronous, so a listener installed with withProgress sees exactly the work of that call
// without a callback threaded through every layer function.

export type ProgressStage = 'load' | 'vision' | 'prefill' | 'quantize';

export interface ProgressEvent {
  stage: ProgressStage;
  /** Units done so far (bytes for load, layers for vision/prefill); done = total is the last event. */
  done: number;
  total: number;
  unit: 'bytes' | 'layers';
}

export type ProgressListener = (event: ProgressEvent) => void;

let current: ProgressListener | undefined;

/** Runs fn (synchronous) with `listener` receiving the progress fn reports; restores the previous listener. */
export function withProgress<T>(listener: ProgressListener | undefined, fn: () => T): T {
  if (!listener) return fn();
  const previous = current;
  current = listener;
  try {
    return fn();
  } finally {
    current = previous;
  }
}

/**
 * withProgress for asynchronous work: `listener` receives every report until fn's promise settles.
 * The listener is the process's while it runs (work started meanwhile elsewhere reports to it too),
 * which suits a command running one thing at a time.
 */
export async function withProgressAsync<T>(listener: ProgressListener | undefined, fn: () => Promise<T>): Promise<T> {
  if (!listener) return fn();
  const previous = current;
  current = listener;
  try {
    return await fn();
  } finally {
    current = previous;
  }
}

/** Called by long work at each step; a no-op unless a listener is installed. */
export function reportProgress(stage: ProgressStage, done: number, total: number, unit: ProgressEvent['unit']): void {
  current?.({ stage, done, total, unit });
}
