// The browser build (scripts/build-web.mjs, `npm run build:web`): the bundle of src/browser.ts builds
// with no Node builtin or Node-only package in it; the check refuses a deliberately Node-only entry
// and names the chain of imports; the built bundle, run as a page runs it (its own tfjs, the browser
// host fetching the demo model from a local HTTP server in ranges, the image as bytes), answers with
// the same greedy tokens as the Node CLI.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleForBrowser, describeNodeOnly, WASM_ASSETS } from '../../scripts/build-web.mjs';
import { decodeImage } from '../../src/io/image.ts';
import { startStaticServer, type StaticServer } from '../helpers/static-server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BUILD = path.join(ROOT, 'scripts/build-web.mjs');
const NODE_ONLY_ENTRY = 'test/package/fixtures/node-only-entry.ts';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-web-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('browser bundle', () => {
  it('src/browser.ts bundles with no Node-only import', async () => {
    const built = await bundleForBrowser({ write: false });
    assert.deepEqual(built.nodeOnly, [], describeNodeOnly(built.nodeOnly));
    assert.ok(built.bytes > 100_000 && built.gzipBytes < built.bytes, `${built.bytes} bytes, ${built.gzipBytes} gzip`);
    const inputs = Object.keys(built.metafile.inputs);
    // The shared engine is in (tokenizer, preprocessing, generation) and the Node halves are not.
    for (const f of ['src/tokenizer/tokenizer.ts', 'src/processing/idefics3-image-processor.ts', 'src/generation/generate.ts', 'src/io/host-browser.ts']) {
      assert.ok(inputs.includes(f), `${f} is in the bundle`);
    }
    for (const f of ['src/io/host-node.ts', 'src/backend/index.ts', 'src/kernels/pool-threads.ts', 'src/io/hub/resolve-model.ts']) {
      assert.ok(!inputs.includes(f), `${f} is not in the bundle`);
    }
  });

  it('the check refuses a Node-only entry and names the import chain', async () => {
    const built = await bundleForBrowser({ entry: NODE_ONLY_ENTRY, write: false });
    const fsImport = built.nodeOnly.find((o) => o.path === 'node:fs');
    assert.ok(fsImport, describeNodeOnly(built.nodeOnly));
    assert.deepEqual(fsImport.chain, [NODE_ONLY_ENTRY, 'src/io/host-node.ts', 'node:fs']);

    const outdir = path.join(tmp, 'refused');
    const r = spawnSync(process.execPath, [BUILD, '--entry', NODE_ONLY_ENTRY, '--outdir', outdir], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /build:web: \d+ Node-only imports in the browser bundle:/);
    assert.ok(r.stderr.includes(`node:fs, imported via ${NODE_ONLY_ENTRY} → src/io/host-node.ts → node:fs`), r.stderr);
    assert.ok(!fs.existsSync(path.join(outdir, 'tfvlm.js')), 'a refused build leaves no bundle');
  });

  describe('built', () => {
    let outdir: string;
    let server: StaticServer;
    before(async () => {
      outdir = path.join(tmp, 'dist-web');
      const r = spawnSync(process.execPath, [BUILD, '--outdir', outdir], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /tfvlm\.js [\d.]+ MB \(gzip [\d.]+ MB\), wasm assets [\d.]+ MB/);
      server = await startStaticServer(ROOT);
    });
    after(() => server?.close());

    it('emits the bundle and the .wasm files it fetches', () => {
      for (const f of ['tfvlm.js', 'tfvlm.js.map', 'linear.wasm', ...WASM_ASSETS.map((a) => path.basename(a))]) {
        assert.ok(fs.existsSync(path.join(outdir, f)), f);
      }
    });

    let cli: { generated_ids: number[]; text: string; prompt: string } | undefined;
    /** `tfvlm generate --greedy` on shapes.png, once. */
    function nodeCli(): { generated_ids: number[]; text: string; prompt: string } {
      if (cli) return cli;
      const messages = path.join(tmp, 'messages.json');
      fs.writeFileSync(messages, JSON.stringify([{ role: 'user', content: [
        { type: 'image', image: path.join(ROOT, 'examples/assets/shapes.png') }, { type: 'text', text: 'Describe this image.' },
      ] }]));
      cli = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'generate', '--messages', messages,
        '--greedy', '--max-new-tokens', '64', '--json', '-q'], { cwd: ROOT, encoding: 'utf8' })) as { generated_ids: number[]; text: string; prompt: string };
      return cli;
    }

    for (const [page, weights] of [['not-isolated', 'float32'], ['isolated', 'stored']] as const) {
      it(`captions shapes.png with the Node CLI's greedy tokens in a page that is ${page.replace('-', ' ')} (weights ${weights})`, async () => {
        const cli = nodeCli();

        // The bundle's .wasm files come from a second server over its folder (as a page would get them beside tfvlm.js).
        const assets = await startStaticServer(outdir);
        try {
          const seen = server.requests.length;
          // Asynchronously: this process's servers answer the child's requests.
          const { stdout: out } = await promisify(execFile)(process.execPath,
            [path.join(ROOT, 'test/package/browser-bundle-child.mjs'), outdir, server.url, assets.url, page], { cwd: ROOT, encoding: 'utf8' });
          const got = JSON.parse(out.trim().split('\n').at(-1)!) as {
            backend: { backend: string; weights: string; notUsed: string[] }; text: string; fetched: number; numTensors: number; decoded: Record<string, string>;
            result: { generatedIds: number[]; prompt: string; stopReason: string };
          };
          assert.equal(got.backend.backend, 'wasm');
          assert.equal(got.backend.weights, weights);
          assert.match(got.backend.notUsed.join('\n'), /webgpu: navigator\.gpu is absent/);
          assert.equal(got.result.prompt, cli.prompt);
          assert.deepEqual(got.result.generatedIds, cli.generated_ids);
          assert.equal(got.text, cli.text);
          assert.equal(got.result.stopReason, 'eos');
          assert.equal(got.fetched, fs.statSync(path.join(ROOT, 'weights/tfvlm-demo/model.safetensors')).size);
          // One size probe and one 32 MiB range: the model is fetched once, in ranges.
          const weightRequests = server.requests.slice(seen).filter((r) => r.path.endsWith('/model.safetensors'));
          assert.deepEqual(weightRequests.map((r) => r.range), ['bytes=0-7', `bytes=0-${got.fetched - 1}`]);
          assert.equal(got.numTensors, 0, 'the model disposed, no tensor is left');
          const expected: Record<string, string> = {};
          for (const f of Object.keys(got.decoded)) {
            const img = await decodeImage(new Uint8Array(fs.readFileSync(path.join(ROOT, f))), f);
            expected[f] = `${img.width}x${img.height} ${img.mode} ${createHash('sha256').update(img.data).digest('hex')}`;
          }
          assert.equal(Object.keys(expected).length, 3);
          assert.deepEqual(got.decoded, expected, 'JPEG and WebP: the bundle decodes the pixels Node does');
        } finally {
          await assets.close();
        }
      });
    }
  });
});
