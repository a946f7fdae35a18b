// Every command's --json: snake_case keys (src/cli/json-output.ts), as the commands print them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('--json output', () => {
  /** Every identifier-like key of v, recursively (data keys such as package names are not identifiers). */
  const keys = (v: unknown, out: string[] = []): string[] => {
    if (Array.isArray(v)) v.forEach((x) => keys(x, out));
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (/^[A-Za-z][A-Za-z0-9_]*$/.test(k)) out.push(k);
        keys(x, out);
      }
    }
    return out;
  };

  it('is snake_case everywhere: env, a generating command, prompt', () => {
    const runs = [
      ['env', '--json'],
      ['describe', 'examples/assets/shapes.png', '--json', '-q', '--max-new-tokens', '4'],
      ['prompt', '--prompt', '<image>Hi', '--image', 'examples/assets/shapes.png', '--json'],
    ];
    for (const argv of runs) {
      const out = JSON.parse(execFileSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', cwd: ROOT }));
      const camel = keys(out).filter((k) => !/^[a-z0-9_]+$/.test(k));
      assert.deepEqual(camel, [], `tfvlm ${argv[0]} --json keys`);
    }
    const env = JSON.parse(execFileSync(process.execPath, [BIN, 'env', '--json'], { encoding: 'utf8' }));
    assert.equal(env.tfjs_version, '4.22.0');
    assert.ok(env.fast_paths_verified_on['@tensorflow/tfjs-core'], 'data keys stay as they are');
  });
});
