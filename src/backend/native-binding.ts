// tfjs-node's JavaScript registers its kernels on import and only then loads its native binding
// (lib/napi-v<N>/tfjs_binding.node, built or downloaded by its install script). A package whose
// install script failed or never ran (npm skips scripts it was not allowed to run) keeps the
// JavaScript without the binding: importing it registers ~150 kernels and then fails, and the next
// candidate's import prints "kernel … already registered" for each. So the binding is looked for first.
import fs from 'node:fs';
import path from 'node:path';

/** Why the tfjs-node package in packageDir cannot load, if its native binding is missing; else undefined. */
export function missingNativeBinding(packageDir: string): string | undefined {
  const lib = path.join(packageDir, 'lib');
  const napiDirs = fs.existsSync(lib) ? fs.readdirSync(lib).filter((d) => /^napi-v\d+$/.test(d)) : [];
  if (napiDirs.some((d) => fs.existsSync(path.join(lib, d, 'tfjs_binding.node')))) return undefined;
  return `installed without its native binding (no ${path.join(lib, 'napi-v*', 'tfjs_binding.node')}: its install script failed or did not run)`;
}
