import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressTracker, formatBytes, formatDuration, formatProgress, ttyProgressReporter, type DownloadProgress } from '../../../src/io/hub/progress.ts';

describe('download progress', () => {
  it('counts bytes across files, with speed over the recent window and an ETA', () => {
    let t = 0;
    const seen: DownloadProgress[] = [];
    const tracker = new ProgressTracker('org/x', 10_000_000, (p) => seen.push(p), () => t);
    tracker.startFile('a.safetensors', 6_000_000, 1_000_000);
    for (let i = 0; i < 5; i++) {
      t += 1000;
      tracker.advance(1_000_000);
    }
    const p = seen.at(-1);
    assert.ok(p, 'a progress report');
    assert.equal(p.bytes, 6_000_000);
    assert.equal(p.fileBytes, 6_000_000);
    assert.equal(p.bytesPerSecond, 1_000_000);
    assert.equal(p.etaSeconds, 4);
    tracker.skip(4_000_000);
    tracker.finish();
    const end = seen.at(-1);
    assert.ok(end, 'a final progress report');
    assert.deepEqual([end.done, end.bytes, end.etaSeconds], [true, 10_000_000, 0]);
  });

  it('formats bytes, speed, ETA and the file in one line', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1_500_000), '1.5 MB');
    assert.equal(formatDuration(75), '01:15');
    assert.equal(formatDuration(3725), '1:02:05');
    assert.equal(formatDuration(undefined), '--:--');
    const line = formatProgress({ repoId: 'o/x', file: 'model.safetensors', fileBytes: 0, bytes: 250_000_000, total: 500_000_000, bytesPerSecond: 12_300_000, etaSeconds: 20, done: false });
    assert.match(line, /50%/);
    assert.match(line, /250\.0 MB \/ 500\.0 MB/);
    assert.match(line, /12\.3 MB\/s/);
    assert.match(line, /ETA 00:20/);
    assert.match(line, /model\.safetensors/);
  });

  it('draws on stderr only when it is a terminal', () => {
    assert.equal(ttyProgressReporter({ isTTY: false } as NodeJS.WriteStream), undefined);
    let out = '';
    const fakeTty = { isTTY: true, columns: 120, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
    const report = ttyProgressReporter(fakeTty)!;
    report({ repoId: 'o/x', file: 'f', fileBytes: 1, bytes: 1, total: 2, bytesPerSecond: 1, etaSeconds: 1, done: false });
    report({ repoId: 'o/x', file: 'f', fileBytes: 2, bytes: 2, total: 2, bytesPerSecond: 1, etaSeconds: 0, done: true });
    assert.match(out, /^\r.*50%.*\r.*100%.*done o\/x\s*\n$/s);
  });
});
