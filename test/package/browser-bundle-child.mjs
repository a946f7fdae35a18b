// Runs dist-web's bundle as a page would, in a separate plain-Node process (no tsx: nothing here is
// transformed; test/package/browser-bundle.test.ts starts it): the bundle's own tfjs, the browser host
// fetching the demo model from a local HTTP server in ranges, shapes.png passed as bytes. Node has no
// window: WorkerGlobalScope makes tfjs take its browser platform, and an ImageData class stands in for
// the page's. A page that is not cross-origin isolated has no SharedArrayBuffer; an isolated one says so.
// argv: bundle folder, the server's root URL, the assets' URL, isolated | not-isolated. Prints one JSON line.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const [bundleDir, rootUrl, assetsUrl, page] = process.argv.slice(2);
globalThis.WorkerGlobalScope ??= class {};
globalThis.ImageData ??= class {
  constructor(data, width, height) {
    this.data = data;
    this.width = width;
    this.height = height;
  }
};
if (page === 'isolated') globalThis.crossOriginIsolated = true;
else delete globalThis.SharedArrayBuffer;

const m = await import(pathToFileURL(path.join(bundleDir, 'tfvlm.js')).href);
const fetched = [];
const vlm = await m.loadVlm(`${rootUrl}weights/tfvlm-demo/`, { assetBase: assetsUrl, onFetchProgress: (loaded) => fetched.push(loaded) });
const image = new Uint8Array(fs.readFileSync(path.join(ROOT, 'examples/assets/shapes.png')));
const request = { messages: [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'Describe this image.' }] }] };
const it = vlm.stream(request, { maxNewTokens: 64, doSample: false });
let text = '';
let r;
for (r = await it.next(); !r.done; r = await it.next()) text += r.value;
vlm.dispose();
// JPEG and WebP go through the bundle's wasm decoders (fetched from the assets' server).
const decoded = {};
for (const f of ['test/images/rocket.jpg', 'test/images/webp/lossy.webp', 'test/images/webp/lossless-alpha.webp']) {
  const img = await m.decodeImage(new Uint8Array(fs.readFileSync(path.join(ROOT, f))), f);
  decoded[f] = `${img.width}x${img.height} ${img.mode} ${createHash('sha256').update(img.data).digest('hex')}`;
}
console.log(JSON.stringify({
  backend: m.browserBackend(), text, result: { ...r.value }, fetched: fetched.at(-1), numTensors: m.tf.memory().numTensors, decoded,
}));
// The bundle's setImmediate keeps a MessageChannel open (a page never exits); this process does.
process.exit(0);
