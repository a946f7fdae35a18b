// Learning-rate schedule: linear warm-up then cosine decay to 0 (transformers optimization.py
// get_cosine_schedule_with_warmup, num_cycles 0.5). `step` = optimizer steps already taken.
export function cosineWithWarmup(step: number, baseLr: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return (baseLr * step) / Math.max(1, warmupSteps);
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
}
