// A tfjs-node package whose install script failed or never ran is refused before its import, which
// would register its kernels and then fail (and make the next candidate print ~150 "already
// registered" lines): src/backend/native-binding.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { missingNativeBinding } from '../../src/backend/native-binding.ts';

function fakePackage(files: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-node-'));
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name": "@tensorflow/tfjs-node"}');
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), '');
  }
  return dir;
}

describe('missingNativeBinding', () => {
  it('names a package with its JavaScript but no lib/napi-v*/tfjs_binding.node', () => {
    for (const files of [['dist/index.js'], ['dist/index.js', 'lib/napi-v8/libtensorflow.so'], ['lib/other/tfjs_binding.node']]) {
      const dir = fakePackage(files);
      assert.match(missingNativeBinding(dir) ?? '', /installed without its native binding \(no .*napi-v\*.*tfjs_binding\.node: its install script failed or did not run\)/);
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('accepts a package whose binding was built for any N-API version', () => {
    for (const napi of ['napi-v8', 'napi-v9']) {
      const dir = fakePackage(['dist/index.js', `lib/${napi}/tfjs_binding.node`]);
      assert.equal(missingNativeBinding(dir), undefined);
      fs.rmSync(dir, { recursive: true });
    }
  });
});
