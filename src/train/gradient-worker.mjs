// Entry of a data-parallel gradient worker thread. A worker does not inherit the parent's loaders
// (it starts with execArgv: []). In the built package (dist/) the body is gradient-worker.js beside
// this file; in the source checkout it is gradient-worker.ts, so register tsx first, both hooks as
// `node --import tsx` does: installTrainingGradients require()s tfjs-core's ESM gradient files.
import { existsSync } from 'node:fs';

const built = new URL('./gradient-worker.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register: registerCjs } = await import('tsx/cjs/api');
  const { register: registerEsm } = await import('tsx/esm/api');
  registerCjs();
  registerEsm();
  await import('./gradient-worker.ts');
}
