// Runs a Trainer to the end: progress line (loss, tokens/s, ETA), periodic evaluation, periodic
// checkpoints, and a checkpoint on Ctrl-C (SIGINT) before stopping.
import path from 'node:path';
import type { TrainExample } from './examples.ts';
import type { EvalResult, StepResult, Trainer } from './trainer.ts';

export interface LoopOptions {
  /** Checkpoints go to `<outDir>/checkpoint-<step>`. */
  outDir: string;
  evalExamples?: readonly TrainExample[];
  /** Evaluate every N steps (0 = only at the end). */
  evalEvery?: number;
  /** Checkpoint every N steps (0 = only on SIGINT). */
  saveEvery?: number;
  /** Print a progress line every N steps. */
  logEvery?: number;
  /** Where progress goes (default stderr). */
  log?: (line: string) => void;
  /** Stop once the wall time exceeds this many seconds (checkpointing first). */
  timeLimitSeconds?: number;
  /**
   * Fit the whole learning-rate schedule into timeLimitSeconds: each step sits at the later of its
   * step fraction and its time fraction, and training ends when either reaches 1 (normally, no checkpoint).
   */
  timeBudgeted?: boolean;
}

export interface LoopResult {
  steps: number;
  /** Mean loss of the last logged window. */
  finalLoss: number;
  seconds: number;
  tokens: number;
  tokensPerSecond: number;
  interrupted: boolean;
  evals: ({ step: number } & EvalResult)[];
  /** Checkpoint written on interruption, if any. */
  checkpoint?: string;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

export function progressLine(r: StepResult, total: number, windowLoss: number, tokensPerSecond: number, etaSeconds: number): string {
  return `step ${r.step}/${total}  loss ${windowLoss.toFixed(4)}  lr ${r.lr.toExponential(2)}  grad ${r.gradNorm.toFixed(2)}  ` +
    `${Math.round(tokensPerSecond)} tok/s  ETA ${formatDuration(etaSeconds)}`;
}

export async function runTraining(trainer: Trainer, opts: LoopOptions): Promise<LoopResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const logEvery = Math.max(1, opts.logEvery ?? 10);
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupt: saving a checkpoint after this step (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSigint);
  const t0 = performance.now();
  const startStep = trainer.step;
  let tokens = 0;
  let window: number[] = [];
  let lastWindowLoss = NaN;
  const evals: LoopResult['evals'] = [];
  const evaluate = () => {
    if (!opts.evalExamples?.length) return;
    const e = trainer.evaluate(opts.evalExamples);
    evals.push({ step: trainer.step, ...e });
    log(`eval step ${trainer.step}: loss ${e.loss.toFixed(4)}  exact (teacher-forced) ${(100 * e.exact).toFixed(1)}% of ${e.examples}`);
  };
  let checkpoint: string | undefined;
  try {
    const budget = opts.timeBudgeted && opts.timeLimitSeconds ? opts.timeLimitSeconds : undefined;
    while (trainer.step < trainer.totalSteps) {
      const timeFraction = budget ? (performance.now() - t0) / 1000 / budget : undefined;
      if (timeFraction !== undefined && timeFraction >= 1) break;
      const r = await trainer.trainStepAsync(timeFraction === undefined ? undefined : Math.max(timeFraction, trainer.step / trainer.totalSteps));
      tokens += r.tokens;
      window.push(r.loss);
      const elapsed = (performance.now() - t0) / 1000;
      if (r.step % logEvery === 0 || r.step === trainer.totalSteps) {
        lastWindowLoss = window.reduce((a, b) => a + b, 0) / window.length;
        window = [];
        const perStep = elapsed / (r.step - startStep);
        log(progressLine(r, trainer.totalSteps, lastWindowLoss, tokens / elapsed, perStep * (trainer.totalSteps - r.step)));
      }
      // Yield to the event loop so a pending SIGINT is delivered.
      await new Promise((resolve) => setImmediate(resolve));
      const outOfTime = !budget && opts.timeLimitSeconds !== undefined && elapsed > opts.timeLimitSeconds;
      if (interrupted || outOfTime) {
        checkpoint = path.join(opts.outDir, `checkpoint-${trainer.step}`);
        trainer.saveCheckpoint(checkpoint);
        log(`${outOfTime ? 'time limit' : 'interrupted'}: checkpoint saved to ${checkpoint} (resume with --resume ${checkpoint})`);
        interrupted = true;
        break;
      }
      if (opts.evalEvery && trainer.step % opts.evalEvery === 0 && trainer.step < trainer.totalSteps) evaluate();
      if (opts.saveEvery && trainer.step % opts.saveEvery === 0 && trainer.step < trainer.totalSteps) {
        trainer.saveCheckpoint(path.join(opts.outDir, `checkpoint-${trainer.step}`));
      }
    }
    if (!interrupted) evaluate();
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (window.length) lastWindowLoss = window.reduce((a, b) => a + b, 0) / window.length;
  const seconds = (performance.now() - t0) / 1000;
  return {
    steps: trainer.step - startStep, finalLoss: lastWindowLoss, seconds, tokens, tokensPerSecond: tokens / seconds, interrupted, evals, checkpoint,
  };
}
