#!/usr/bin/env node
// Builds src/kernels/linear.wasm from src/kernels/linear.c with clang + wasm-ld (Debian: apt-get
// install clang lld). The flags are fixed and the output carries no names, paths, timestamps or
// producer strings (--strip-all), so the same compiler gives the same bytes; the .wasm is committed.
//
//   node scripts/build-kernels.mjs            rebuild src/kernels/linear.wasm
//   node scripts/build-kernels.mjs --out F    build into F instead
//   node scripts/build-kernels.mjs --check    build into a temp dir and exit 1 if it differs from
//                                             the committed file (CI); exits 0 with a message when
//                                             clang or wasm-ld is missing
// CLANG and WASM_LD override the tool names.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = 'src/kernels/linear.c';
const TARGET = 'src/kernels/linear.wasm';

export const CLANG_FLAGS = [
  '--target=wasm32-unknown-unknown',
  '-O3',
  // SIMD128 for the kernels; atomics + bulk memory so the module can import a shared memory.
  '-msimd128', '-matomics', '-mbulk-memory',
  // No libc: no calls to memcpy/memset appear, nothing links in.
  '-nostdlib', '-ffreestanding', '-fno-builtin',
  '-g0', '-Wall', '-Wextra', '-Werror',
];
export const LD_FLAGS = [
  '--no-entry',
  // The arena memory comes from JS: imported as env.memory, shared, up to 4 GiB.
  '--import-memory', '--shared-memory', '--max-memory=4294967296',
  // No name/producers sections: nothing in the output depends on the machine that built it.
  '--strip-all',
];

function run(tool, args, cwd) {
  const r = spawnSync(tool, args, { cwd, encoding: 'utf8' });
  if (r.error) return r.error.code === 'ENOENT' ? `${tool} not found` : r.error.message;
  if (r.status !== 0) return `${tool} ${args.join(' ')} failed:\n${r.stderr}`;
  return undefined;
}

/** Builds into `out`; returns an error string or undefined. */
export function build(out) {
  const clang = process.env.CLANG ?? 'clang';
  const ld = process.env.WASM_LD ?? 'wasm-ld';
  const tmp = mkdtempSync(join(tmpdir(), 'tfvlm-kernels-'));
  try {
    // Compiled from ROOT with relative paths, so no absolute path reaches the object file.
    const obj = relative(ROOT, join(tmp, 'linear.o'));
    const wasm = join(tmp, 'linear.wasm');
    const err = run(clang, [...CLANG_FLAGS, '-c', SOURCE, '-o', obj], ROOT) ?? run(ld, [...LD_FLAGS, '-o', wasm, obj], ROOT);
    if (err) return err;
    const problem = checkModule(readFileSync(wasm));
    if (problem) return `${SOURCE} built, but ${problem}`;
    copyFileSync(wasm, out);
    return undefined;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The module must not use the C stack or static data: one memory import (env.memory), no data
 * section, no global.get/global.set (wasm-ld still defines __stack_pointer, unused). The code
 * scan uses wasm-objdump (Debian: wabt) when it is installed.
 */
export function checkModule(bytes) {
  const sections = new Set();
  let i = 8;
  const leb = () => {
    let v = 0;
    for (let s = 0; ; s += 7) {
      const b = bytes[i++];
      v += (b & 0x7f) * 2 ** s;
      if (b < 0x80) return v;
    }
  };
  while (i < bytes.length) {
    const id = bytes[i++];
    const size = leb();
    sections.add(id);
    i += size;
  }
  if (sections.has(11) || sections.has(12)) return 'it has a data section';
  if (sections.has(0)) return 'it has a custom section (names or producers)';
  const mod = new WebAssembly.Module(bytes);
  const imports = WebAssembly.Module.imports(mod);
  if (imports.length !== 1 || imports[0].module !== 'env' || imports[0].name !== 'memory') {
    return `it imports ${JSON.stringify(imports)} (only env.memory is allowed)`;
  }
  const dump = spawnSync('wasm-objdump', ['-d', '-'], { input: bytes, encoding: 'utf8' });
  if (!dump.error && dump.status === 0 && /global\.(get|set)/.test(dump.stdout)) {
    return 'its code uses a global (the C stack pointer?)';
  }
  return undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, check: { type: 'boolean' } } });
  if (values.check) {
    const tmp = mkdtempSync(join(tmpdir(), 'tfvlm-kernels-check-'));
    try {
      const out = join(tmp, 'linear.wasm');
      const err = build(out);
      if (err?.endsWith(' not found')) {
        console.log(`build-kernels: ${err}; skipping the check that ${TARGET} matches ${SOURCE}`);
        process.exit(0);
      }
      if (err) {
        console.error(err);
        process.exit(1);
      }
      const committed = existsSync(join(ROOT, TARGET)) ? readFileSync(join(ROOT, TARGET)) : Buffer.alloc(0);
      if (!readFileSync(out).equals(committed)) {
        console.error(`${TARGET} is not what ${SOURCE} builds to: run npm run build:kernels and commit the result`);
        process.exit(1);
      }
      console.log(`${TARGET} matches ${SOURCE}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } else {
    const out = values.out ?? join(ROOT, TARGET);
    const err = build(out);
    if (err) {
      console.error(err);
      process.exit(1);
    }
    console.log(`built ${relative(process.cwd(), out) || out} (${readFileSync(out).length} bytes)`);
  }
}
