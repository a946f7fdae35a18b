// The project type-checks under the flags a strict consumer uses (issue 26): `strict` and
// `noUncheckedIndexedAccess` for src/ (what the package's dist/ is built from), tests, bench and
// examples. CI runs the tests, not `npm run lint`, so the check lives here.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function tsc(args: string[]): string {
  try {
    return execFileSync(process.execPath, [TSC, ...args], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe', maxBuffer: 64 << 20 });
  } catch (e) {
    const out = e as { stdout?: string; stderr?: string };
    return assert.fail(`tsc ${args.join(' ')}:\n${(out.stdout ?? '').split('\n').slice(0, 40).join('\n')}${out.stderr ?? ''}`);
  }
}

describe('type-checking', () => {
  for (const project of ['tsconfig.json', 'tsconfig.build.json']) {
    it(`${project} has strict and noUncheckedIndexedAccess on`, () => {
      const options = (JSON.parse(tsc(['-p', project, '--showConfig'])) as { compilerOptions: Record<string, unknown> }).compilerOptions;
      assert.equal(options.strict, true);
      assert.equal(options.noUncheckedIndexedAccess, true);
    });
  }

  it('src, test, bench and examples compile without an error', () => {
    tsc(['-p', 'tsconfig.json', '--noEmit']);
  });
});
