#!/usr/bin/env node
// npm run web [-- --port 8000] [--host 127.0.0.1] [--no-isolation] [--no-build]
// Builds the browser bundle (scripts/build-web.mjs) and serves the page with the demo model
// (scripts/web-server.mjs) until Ctrl-C.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startWebServer } from './web-server.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8000' }, host: { type: 'string', default: '127.0.0.1' },
    'no-isolation': { type: 'boolean', default: false }, 'no-build': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('npm run web [-- --port 8000] [--host 127.0.0.1] [--no-isolation] [--no-build]\n' +
    'Builds dist-web/ and serves the page (web/) with the demo model at /weights/tfvlm-demo/.\n' +
    '--no-isolation serves without COOP/COEP (no SharedArrayBuffer: single-thread wasm).');
  process.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`web: --port ${values.port} is not a port number`);
  process.exit(2);
}
if (!values['no-build']) {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build-web.mjs');
  const built = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}
const server = await startWebServer({ host: values.host, port, isolated: !values['no-isolation'] });
console.log(`tfvlm web: ${server.url}/ (${values['no-isolation'] ? 'not ' : ''}cross-origin isolated; Ctrl-C stops)`);
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close().then(() => process.exit(0)));
