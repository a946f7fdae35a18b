// The page's static server (`npm run web`, and the browser tests): web/ at /, the browser bundle
// (dist-web/) at /dist-web/, the shipped demo model at /weights/tfvlm-demo/ (where the bundle's
// DEMO_MODEL_URL points), the example images at /examples/. Cross-origin isolated by default (COOP
// same-origin + COEP require-corp), which is what lets the page use SharedArrayBuffer and so wasm
// threads; `isolated: false` serves without, to see the single-thread fallback. Byte ranges (one
// per request) for the safetensors reads; GET and HEAD only; nothing outside the mounts is served.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/** URL prefix → folder. The longest matching prefix wins. */
export const MOUNTS = [
  ['/dist-web/', path.join(ROOT, 'dist-web')],
  ['/weights/tfvlm-demo/', path.join(ROOT, 'weights', 'tfvlm-demo')],
  ['/examples/', path.join(ROOT, 'examples', 'assets')],
  ['/', path.join(ROOT, 'web')],
];

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.map': 'application/json',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif',
  '.svg': 'image/svg+xml', '.txt': 'text/plain; charset=utf-8', '.md': 'text/markdown; charset=utf-8',
};

/** The file a URL path names, or undefined when it is outside every mount. */
export function fileFor(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  for (const [prefix, dir] of MOUNTS) {
    if (!decoded.startsWith(prefix)) continue;
    const rest = decoded.slice(prefix.length) || 'index.html';
    const file = path.resolve(dir, rest);
    return file === dir || file.startsWith(dir + path.sep) ? file : undefined;
  }
  return undefined;
}

/** [start, end] (inclusive) of a single `bytes=` range within size, 'unsatisfiable', or undefined for none. */
export function parseRange(header, size) {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'unsatisfiable';
  let start;
  let end;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? 'unsatisfiable' : [start, end];
}

function send(res, status, headers, body) {
  res.writeHead(status, headers);
  res.end(body);
}

/** Starts the server; resolves to { url, close() }. port 0 picks a free one. */
export function startWebServer({ host = '127.0.0.1', port = 8000, isolated = true } = {}) {
  const server = http.createServer((req, res) => {
    const common = { 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
    if (isolated) Object.assign(common, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'cross-origin-resource-policy': 'same-origin' });
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { ...common, allow: 'GET, HEAD' }, 'method not allowed\n');
    const urlPath = new URL(req.url ?? '/', 'http://x').pathname;
    const file = fileFor(urlPath);
    let stat;
    try {
      stat = file ? fs.statSync(file) : undefined;
      if (stat?.isDirectory()) stat = undefined;
    } catch {
      stat = undefined;
    }
    if (!file || !stat) return send(res, 404, { ...common, 'content-type': 'text/plain' }, `not found: ${urlPath}\n`);
    const headers = { ...common, 'content-type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream', 'accept-ranges': 'bytes' };
    const range = parseRange(req.headers.range, stat.size);
    if (range === 'unsatisfiable') return send(res, 416, { ...headers, 'content-range': `bytes */${stat.size}` });
    const [start, end] = range ?? [0, stat.size - 1];
    const length = stat.size === 0 ? 0 : end - start + 1;
    res.writeHead(range ? 206 : 200, { ...headers, 'content-length': length, ...(range ? { 'content-range': `bytes ${start}-${end}/${stat.size}` } : {}) });
    if (req.method === 'HEAD' || length === 0) return res.end();
    fs.createReadStream(file, { start, end }).on('error', () => res.destroy()).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      resolve({ url: `http://${host}:${actual}`, close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }) });
    });
  });
}
