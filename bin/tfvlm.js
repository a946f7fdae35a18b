#!/usr/bin/env node
// The `tfvlm` command. The package ships TypeScript sources; tsx compiles them on the fly. Both of
// its hooks, as `node --import tsx`: training require()s tfjs-core's ESM gradient files.
import { register as registerCjs } from 'tsx/cjs/api';
import { register as registerEsm } from 'tsx/esm/api';

registerCjs();
registerEsm();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
