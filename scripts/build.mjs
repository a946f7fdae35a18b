#!/usr/bin/env node
// Builds dist/, what the npm package runs: tsc over src/ (ES modules, .d.ts, source maps; relative
// `.ts` imports rewritten to `.js`), the runtime files beside the sources copied as they are
// (linear.wasm, the worker entries), and tfjs-core's gradient registrations bundled to CommonJS
// (dist/train/tfjs-gradients.cjs): the files ship as ES modules in a package Node reads as
// CommonJS, which only tsx's hooks load in the source checkout. `npm run build`; `prepare` runs it
// on npm ci / npm pack.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');
/** Files under src/ that run as they are. linear.c is the kernels' source, not shipped. */
const RUNTIME = /\.(wasm|mjs|cjs)$/;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: ${cmd} ${args.join(' ')} failed`);
    process.exit(r.status ?? 1);
  }
}

function copyRuntimeFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) copyRuntimeFiles(path);
    else if (RUNTIME.test(entry.name)) {
      const to = join(DIST, relative(SRC, path));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(path, to);
    }
  }
}

rmSync(DIST, { recursive: true, force: true });
run(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
copyRuntimeFiles(SRC);
const esbuild = await import('esbuild');
await esbuild.build({
  entryPoints: [createRequire(import.meta.url).resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')],
  outfile: join(DIST, 'train', 'tfjs-gradients.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  // The registries are global (tfjs keeps them on globalThis), so this copy registers into the one
  // the running tfjs-core reads; its own tfjs-core internals are only what the gradients call.
  logLevel: 'warning',
});
console.error(`built ${relative(ROOT, DIST)}/`);
