// The page's static server (scripts/web-server.mjs): the mounts and nothing outside them, byte
// ranges as the browser host reads safetensors, the isolation headers that give the page
// SharedArrayBuffer, and refusals (405, 404, 416) that never crash it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileFor, parseRange, startWebServer } from '../../scripts/web-server.mjs';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A raw request (fetch would normalise the path before the server sees it). */
function raw(url: string, pathname: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${pathname}`, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.path = pathname;
    req.end();
  });
}

describe('web server', () => {
  let server: { url: string; close(): Promise<void> };
  before(async () => {
    server = await startWebServer({ port: 0 });
  });
  after(() => server.close());

  it('maps the mounts, and nothing outside them', () => {
    assert.equal(fileFor('/'), path.join(ROOT, 'web', 'index.html'));
    assert.equal(fileFor('/weights/tfvlm-demo/config.json'), path.join(ROOT, 'weights', 'tfvlm-demo', 'config.json'));
    assert.equal(fileFor('/examples/shapes.png'), path.join(ROOT, 'examples', 'assets', 'shapes.png'));
    for (const bad of ['/../package.json', '/%2e%2e/package.json', '/weights/tfvlm-demo/../../package.json', '/examples/%2e%2e%2f%2e%2e%2fpackage.json', '/a%00b', '/%E0%A4%A']) {
      assert.equal(fileFor(bad), undefined, bad);
    }
  });

  it('parses one byte range, and refuses what it cannot satisfy', () => {
    assert.equal(parseRange(undefined, 10), undefined);
    assert.deepEqual(parseRange('bytes=2-5', 10), [2, 5]);
    assert.deepEqual(parseRange('bytes=7-', 10), [7, 9]);
    assert.deepEqual(parseRange('bytes=-3', 10), [7, 9]);
    assert.deepEqual(parseRange('bytes=8-100', 10), [8, 9]);
    for (const bad of ['bytes=10-12', 'bytes=5-2', 'bytes=-', 'bytes=0-1,4-5', 'items=0-1']) assert.equal(parseRange(bad, 10), 'unsatisfiable', bad);
  });

  it('serves the page cross-origin isolated, and the model in byte ranges', async () => {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await page.text(), /<title>tfvlm/);
    const file = path.join(ROOT, 'weights', 'tfvlm-demo', 'model.safetensors');
    const bytes = fs.readFileSync(file);
    const part = await fetch(`${server.url}/weights/tfvlm-demo/model.safetensors`, { headers: { range: 'bytes=8-1031' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 8-1031/${bytes.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(8, 1032));
    const head = await fetch(`${server.url}/weights/tfvlm-demo/model.safetensors`, { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), String(bytes.length));
    assert.equal(head.headers.get('accept-ranges'), 'bytes');
  });

  it('refuses traversal, other methods and impossible ranges, and keeps serving', async () => {
    assert.equal((await raw(server.url, '/../package.json')).status, 404);
    assert.equal((await raw(server.url, '/weights/tfvlm-demo/../../package.json')).status, 404);
    assert.equal((await raw(server.url, '/weights/tfvlm-demo/')).status, 404, 'a folder');
    assert.equal((await raw(server.url, '/', { method: 'POST' })).status, 405);
    const range = await raw(server.url, '/weights/tfvlm-demo/config.json', { headers: { range: 'bytes=999999-' } });
    assert.equal(range.status, 416);
    assert.match(String(range.headers['content-range']), /^bytes \*\/\d+$/);
    assert.equal((await fetch(`${server.url}/app.js`)).status, 200);
  });

  it('serves without the isolation headers when asked', async () => {
    const plain = await startWebServer({ port: 0, isolated: false });
    try {
      const res = await fetch(`${plain.url}/`);
      assert.equal(res.headers.get('cross-origin-embedder-policy'), null);
    } finally {
      await plain.close();
    }
  });
});
