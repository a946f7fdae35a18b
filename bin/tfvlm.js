#!/usr/bin/env node
// The `tfvlm` command. The installed package runs the built JavaScript (dist/); a source checkout
// (src/cli.ts present) runs the TypeScript through tsx, both of its hooks as `node --import tsx`
// (training require()s tfjs-core's ESM gradient files), so edits take effect without a build.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register: registerCjs } = await import('tsx/cjs/api');
  const { register: registerEsm } = await import('tsx/esm/api');
  registerCjs();
  registerEsm();
  cli = await import(source.href);
} else {
  cli = await import('../dist/cli.js');
}
process.exitCode = await cli.main(process.argv.slice(2));
