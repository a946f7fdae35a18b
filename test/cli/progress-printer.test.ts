// Progress on stderr: nothing for short work, a line every few seconds without a terminal, a bar
// redrawn in place on one, always a final line when shown.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { progressPrinter } from '../../src/cli/progress-printer.ts';

function sink(isTTY: boolean) {
  const lines: string[] = [];
  return { lines, stream: { isTTY, write: (s: string) => lines.push(s) } };
}

describe('progress printer', () => {
  it('loads under the threshold and short passes print nothing', () => {
    let t = 0;
    const { lines, stream } = sink(false);
    const p = progressPrinter({ stream, now: () => t });
    for (let i = 0; i <= 10; i++) p({ stage: 'load', done: i * 5e7, total: 5e8, unit: 'bytes' });
    for (let i = 1; i <= 24; i++) {
      t += 100;
      p({ stage: 'prefill', done: i, total: 24, unit: 'layers' });
    }
    assert.deepEqual(lines, []);
  });

  it('without a terminal: a line every 5 s once the pass passes 3 s, and a last line', () => {
    let t = 0;
    const { lines, stream } = sink(false);
    const p = progressPrinter({ stream, now: () => t });
    for (let i = 1; i <= 27; i++) {
      t += 1000;
      p({ stage: 'vision', done: i, total: 27, unit: 'layers' });
    }
    // Started at t=1 s; shown from 4 s (elapsed 3 s), then every 5 s, then the end.
    assert.deepEqual(lines, [
      'vision encoder 14% (4/27 layers, 3 s)\n',
      'vision encoder 33% (9/27 layers, 8 s)\n',
      'vision encoder 51% (14/27 layers, 13 s)\n',
      'vision encoder 70% (19/27 layers, 18 s)\n',
      'vision encoder 88% (24/27 layers, 23 s)\n',
      'vision encoder 100% (27/27 layers, 26 s)\n',
    ]);
  });

  it('on a terminal: a bar redrawn in place, ending with a newline; big loads show from the start', () => {
    let t = 0;
    const { lines, stream } = sink(true);
    const p = progressPrinter({ stream, now: () => t });
    for (let i = 0; i <= 4; i++) {
      t += 1000;
      p({ stage: 'load', done: i * 1.25e9, total: 5e9, unit: 'bytes' });
    }
    assert.equal(lines.length, 5);
    assert.ok(lines.every((l) => l.startsWith('\r[')));
    assert.match(lines[2]!, /^\r\[#{12}\.{12}\] loading weights 50% \(2\.5 GB\/5\.0 GB, 2 s\)\x1b\[K$/);
    assert.ok(lines[4]!.endsWith('\n') && !lines[3]!.endsWith('\n'));
  });
});
