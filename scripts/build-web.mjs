#!/usr/bin/env node
// Builds dist-web/, the library for the browser: one ES module bundle (esbuild) of src/browser.ts and
// the .wasm files it fetches at run time (tfjs-backend-wasm's three builds, the JPEG and WebP
// decoders, our linear.wasm). `npm run build:web`.
//
// Node-only code never enters the bundle, and the build checks it: every import of a Node builtin
// (`node:fs`, `fs`, `worker_threads`, …) or of a Node-only package is recorded (a package's own
// `"browser": {"fs": false}` map still applies), and the build fails listing each offending import
// with the chain of imports that reached it from the entry. A few src/ modules have a browser
// counterpart swapped in here (BROWSER_MODULES); everything else — tokenizer, chat template,
// Pillow-exact preprocessing, the models, generation — is the same code as under Node.
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** src/ modules replaced in the browser bundle by the file beside them (the Node one → the browser one). */
export const BROWSER_MODULES = {
  'src/backend/index.ts': 'src/backend/browser.ts',
  'src/io/host-default.ts': 'src/io/host-default.browser.ts',
  'src/io/hub/index.ts': 'src/io/hub/browser.ts',
  'src/io/video.ts': 'src/io/video.browser.ts',
  'src/kernels/pool-threads.ts': 'src/kernels/pool-threads.browser.ts',
  'src/kernels/module-bytes.ts': 'src/kernels/module-bytes.browser.ts',
  'src/backend/memory-budget.ts': 'src/backend/memory-budget.browser.ts',
  'src/io/png-gif-bmp.ts': 'src/io/png-gif-bmp.browser.ts',
};

/** Packages that only run under Node (native bindings, servers, queues). */
export const NODE_ONLY_PACKAGES = [
  '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'bullmq', 'ioredis', 'tsx', 'openai', 'esbuild', 'typescript',
];

/** The .wasm files the bundle fetches from beside itself (host-browser.ts readPackageAsset, backend/browser.ts). */
export const WASM_ASSETS = [
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm',
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm',
  '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm',
  '@jsquash/webp/codec/dec/webp_dec.wasm',
];

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function packageName(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function isNodeOnly(spec) {
  return spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]) || NODE_ONLY_PACKAGES.includes(packageName(spec));
}

/** The esbuild plugin that swaps BROWSER_MODULES and records (rather than resolves) Node-only imports. */
function browserPlugin(offenders, substitutes) {
  const swap = new Map(Object.entries(substitutes).map(([from, to]) => [resolve(ROOT, from), resolve(ROOT, to)]));
  return {
    name: 'tfvlm-browser',
    setup(build) {
      build.onResolve({ filter: /^\./ }, (args) => {
        const target = resolve(args.resolveDir, args.path);
        const to = swap.get(target);
        return to ? { path: to } : undefined;
      });
      // backend/browser.ts imports `tfvlm:webgpu`: tfjs-backend-webgpu when installed (an optional dependency).
      build.onResolve({ filter: /^tfvlm:webgpu$/ }, () => ({ path: 'webgpu', namespace: 'tfvlm' }));
      build.onLoad({ filter: /.*/, namespace: 'tfvlm' }, () => {
        let installed = true;
        try {
          require.resolve('@tensorflow/tfjs-backend-webgpu');
        } catch {
          installed = false;
        }
        return {
          contents: installed ? "import '@tensorflow/tfjs-backend-webgpu';\nexport const bundled = true;\n" : 'export const bundled = false;\n',
          resolveDir: ROOT,
          loader: 'js',
        };
      });
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === 'tfvlm-guard' || !isNodeOnly(args.path)) return undefined;
        // A package may map the builtin away for browsers ("browser": {"fs": false}): that is fine.
        if (!args.path.startsWith('node:') && !NODE_ONLY_PACKAGES.includes(packageName(args.path))) {
          const r = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'tfvlm-guard' });
          if (r.errors.length === 0 && !r.external) return undefined;
        }
        offenders.push({ importer: args.importer, path: args.path });
        return { path: args.path, external: true };
      });
    },
  };
}

/** The chain of imports from an entry point to `file`, through the metafile's inputs. */
function chainTo(metafile, entries, file) {
  const parents = new Map();
  const queue = [...entries];
  for (const e of entries) parents.set(e, null);
  while (queue.length) {
    const f = queue.shift();
    if (f === file) break;
    for (const imp of metafile.inputs[f]?.imports ?? []) {
      if (imp.external || parents.has(imp.path)) continue;
      parents.set(imp.path, f);
      queue.push(imp.path);
    }
  }
  const chain = [];
  for (let f = file; f !== undefined && f !== null; f = parents.get(f)) chain.unshift(f);
  return chain;
}

/**
 * Bundles `entry` for the browser. Returns the metafile, the Node-only imports found (each with its
 * chain from the entry) and, when written, the sizes. Does not throw for Node-only imports:
 * buildWeb's caller decides (the CLI below fails the build).
 */
export async function bundleForBrowser({ entry = 'src/browser.ts', outdir = join(ROOT, 'dist-web'), write = true, substitutes = BROWSER_MODULES } = {}) {
  const esbuild = await import('esbuild');
  const offenders = [];
  const outfile = join(outdir, 'tfvlm.js');
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: write ? 'linked' : false,
    metafile: true,
    write,
    logLevel: 'silent',
    plugins: [browserPlugin(offenders, substitutes)],
    define: { 'process.env.NODE_ENV': '"production"' },
    // `process` and `setImmediate` of the shared code (TFVLM_* settings, yielding between tokens).
    inject: [join(ROOT, 'src/browser-globals.ts')],
  });
  const entries = Object.keys(result.metafile.inputs).filter((f) => resolve(ROOT, f) === resolve(ROOT, entry));
  const nodeOnly = offenders.map((o) => {
    const importer = relative(ROOT, o.importer).split('\\').join('/');
    return { ...o, importer, chain: [...chainTo(result.metafile, entries, importer), o.path] };
  });
  const js = write ? readFileSync(outfile) : Buffer.from(result.outputFiles?.find((f) => f.path.endsWith('.js'))?.contents ?? []);
  return { metafile: result.metafile, nodeOnly, outfile, bytes: js.length, gzipBytes: gzipSync(js, { level: 9 }).length };
}

/** The message for Node-only imports found in a bundle: one line per import, with its chain. */
export function describeNodeOnly(nodeOnly) {
  return `${nodeOnly.length} Node-only import${nodeOnly.length === 1 ? '' : 's'} in the browser bundle:\n` +
    nodeOnly.map((o) => `  ${o.path}, imported via ${o.chain.join(' → ')}`).join('\n');
}

function copyAssets(outdir) {
  let bytes = 0;
  for (const spec of WASM_ASSETS) {
    const from = require.resolve(spec);
    copyFileSync(from, join(outdir, basename(from)));
    bytes += statSync(from).size;
  }
  const linear = join(ROOT, 'src/kernels/linear.wasm');
  copyFileSync(linear, join(outdir, 'linear.wasm'));
  return bytes + statSync(linear).size;
}

const mb = (n) => `${(n / 2 ** 20).toFixed(2)} MB`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // --entry and --outdir are for tests (a deliberately Node-only entry, a temporary folder).
  const { values } = parseArgs({ options: { entry: { type: 'string', default: 'src/browser.ts' }, outdir: { type: 'string', default: join(ROOT, 'dist-web') } } });
  const outdir = resolve(values.outdir);
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  let built;
  try {
    built = await bundleForBrowser({ entry: values.entry, outdir });
  } catch (e) {
    for (const err of e.errors ?? []) console.error(`build:web: ${err.location ? `${err.location.file}:${err.location.line}: ` : ''}${err.text}`);
    if (!e.errors) console.error(e);
    process.exit(1);
  }
  if (built.nodeOnly.length > 0) {
    rmSync(outdir, { recursive: true, force: true });
    console.error(`build:web: ${describeNodeOnly(built.nodeOnly)}`);
    process.exit(1);
  }
  const assets = copyAssets(outdir);
  writeFileSync(join(outdir, 'meta.json'), JSON.stringify(built.metafile));
  console.error(`built ${relative(ROOT, outdir)}/: tfvlm.js ${mb(built.bytes)} (gzip ${mb(built.gzipBytes)}), wasm assets ${mb(assets)}`);
}
