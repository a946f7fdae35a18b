// Entry of a data-parallel gradient worker thread. The package ships TypeScript and a worker does
// not inherit the parent's loaders (it starts with execArgv: []), so register tsx here, both hooks
// as `node --import tsx` does: installTrainingGradients require()s tfjs-core's ESM gradient files.
import { register as registerCjs } from 'tsx/cjs/api';
import { register as registerEsm } from 'tsx/esm/api';

registerCjs();
registerEsm();
await import('./gradient-worker.ts');
