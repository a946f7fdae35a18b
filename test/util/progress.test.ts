// withProgress scopes a listener to one synchronous call, nested and through exceptions.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { reportProgress, withProgress, type ProgressEvent } from '../../src/util/progress.ts';

describe('progress', () => {
  it('withProgress delivers the reports of one call and restores the previous listener', () => {
    const outer: ProgressEvent[] = [];
    const inner: ProgressEvent[] = [];
    reportProgress('prefill', 1, 2, 'layers');
    withProgress((e) => outer.push(e), () => {
      reportProgress('vision', 1, 3, 'layers');
      withProgress((e) => inner.push(e), () => reportProgress('prefill', 2, 2, 'layers'));
      assert.throws(() => withProgress((e) => inner.push(e), () => { throw new Error('boom'); }));
      reportProgress('vision', 3, 3, 'layers');
    });
    assert.deepEqual(outer.map((e) => e.done), [1, 3]);
    assert.deepEqual(inner, [{ stage: 'prefill', done: 2, total: 2, unit: 'layers' }]);
  });

});
