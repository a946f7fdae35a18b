// A static file server on 127.0.0.1 (free port) for the browser-host and bundle tests: GET and HEAD,
// single `Range: bytes=a-b` requests answered 206 as browsers' servers do. `ranges: false` ignores
// Range headers (answers 200 with the whole file), to test the error a page gets from such a server.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface StaticServer {
  url: string;
  /** Every request seen: method, path and Range header. */
  requests: { method: string; path: string; range: string | undefined }[];
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm',
  '.png': 'image/png', '.html': 'text/html',
};

export async function startStaticServer(root: string, options: { ranges?: boolean } = {}): Promise<StaticServer> {
  const requests: StaticServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const range = req.headers.range;
    requests.push({ method: req.method ?? '', path: url.pathname, range });
    const file = path.join(root, decodeURIComponent(url.pathname));
    if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    const size = fs.statSync(file).size;
    const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
    if (m && options.ranges !== false) {
      const start = Number(m[1]);
      const end = Math.min(size - 1, m[2] ? Number(m[2]) : size - 1);
      if (start >= size || end < start) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { 'content-type': type, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}`, 'accept-ranges': 'bytes' });
      if (req.method === 'HEAD') res.end();
      else fs.createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { 'content-type': type, 'content-length': size });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
