// The browser host (src/io/host-browser.ts) against a local HTTP server: a model folder fetched by URL,
// safetensors read in HTTP ranges (never one whole GET), the same tensors and tokenizer as the Node
// host reads from disk; clear errors, naming the URL, for a 404 and for a server without Range support.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend, tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { BrowserHost } from '../../src/io/host-browser.ts';
import { nodeHost } from '../../src/io/host-node.ts';
import { host, setHost } from '../../src/io/host.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { readGenerationConfig } from '../../src/generation/generation-config.ts';
import { loadPreprocessorConfig } from '../../src/processing/preprocessor-config.ts';
import { startStaticServer, type StaticServer } from '../helpers/static-server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'weights/tfvlm-demo');

let server: StaticServer;
let tmp: string;

before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-host-browser-'));
  server = await startStaticServer(ROOT);
});
after(async () => {
  setHost(undefined);
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Every tensor of the checkpoint at `dir` as (name → values), read through the host in effect. */
function readAll(dir: string): Map<string, number[]> {
  const ckpt = Checkpoint.open(dir);
  try {
    return new Map(ckpt.keys().sort().map((k) => [k, Array.from(ckpt.readArray(k))]));
  } finally {
    ckpt.close();
  }
}

/** Runs `fn` with `h` installed as the host. */
async function withHost<T>(h: BrowserHost, fn: () => T | Promise<T>): Promise<T> {
  setHost(h);
  try {
    return await fn();
  } finally {
    setHost(undefined);
  }
}

describe('host()', () => {
  it('is the Node host under Node unless one is installed', () => {
    assert.equal(host(), nodeHost);
    const b = new BrowserHost();
    assert.equal(setHost(b), undefined);
    assert.equal(host(), b);
    assert.equal(setHost(undefined), b);
    assert.equal(host(), nodeHost);
  });
});

describe('BrowserHost', () => {
  it('reads the demo model\'s safetensors in ranges: the same tensors as the Node host', async () => {
    const expected = readAll(DEMO);
    const b = new BrowserHost();
    const seen = server.requests.length;
    const dir = await b.mount(`${server.url}weights/tfvlm-demo`, { chunkBytes: 1 << 20 });
    assert.equal(dir, `${server.url}weights/tfvlm-demo/`);
    const got = await withHost(b, () => readAll(dir));
    assert.deepEqual([...got.keys()], [...expected.keys()]);
    for (const [k, v] of expected) assert.deepEqual(got.get(k), v, k);
    // Every request for the weights carried a Range: the 7.3 MB file is never one response.
    const weightRequests = server.requests.slice(seen).filter((r) => r.path.endsWith('model.safetensors'));
    assert.ok(weightRequests.length >= 8, `${weightRequests.length} requests`);
    for (const r of weightRequests) assert.match(r.range ?? '', /^bytes=\d+-\d+$/);
  });

  it('serves reads that span chunk boundaries, and drops the bytes once the file is closed', async () => {
    const b = new BrowserHost();
    const dir = await b.mount(`${server.url}weights/tfvlm-demo/`, { chunkBytes: 4099 });
    const onDisk = fs.readFileSync(path.join(DEMO, 'model.safetensors'));
    await withHost(b, () => {
      const f = b.open(`${dir}model.safetensors`);
      assert.equal(f.size, onDisk.length);
      for (const [at, n] of [[0, 8], [4090, 20], [4099 * 3 - 1, 4099 * 2 + 2], [onDisk.length - 10, 10]] as const) {
        const dst = new Uint8Array(n);
        assert.equal(f.read(dst, at), n);
        assert.deepEqual(dst, new Uint8Array(onDisk.subarray(at, at + n)), `bytes ${at}+${n}`);
      }
      assert.equal(f.read(new Uint8Array(4), onDisk.length), 0, 'a read at the end gives 0 bytes');
      f.close();
      assert.throws(() => b.open(`${dir}model.safetensors`), /released after an earlier load; mount the folder again/);
    });
    // Mounting again fetches them again.
    await b.mount(dir);
    b.open(`${dir}model.safetensors`).close();
  });

  it('reads the tokenizer, generation and preprocessor configs as the Node host does', async () => {
    const b = new BrowserHost();
    const dir = await b.mount(`${server.url}weights/tfvlm-demo/`);
    const nodeTok = await loadTokenizer(DEMO);
    const text = '<|im_start|>User:<image>Describe this image.<end_of_utterance>';
    const [browserIds, gen, pre] = await withHost(b, async () => {
      const tok = await loadTokenizer(dir);
      return [tok.encode(text), readGenerationConfig(dir), loadPreprocessorConfig(dir)] as const;
    });
    assert.deepEqual(browserIds, nodeTok.encode(text));
    assert.deepEqual(gen, readGenerationConfig(DEMO));
    assert.deepEqual(pre, loadPreprocessorConfig(DEMO));
    assert.equal(b.exists(`${dir}chat_template.json`), true);
    assert.equal(b.exists(`${dir}tokenizer.model`), false);
    assert.deepEqual(b.list(dir), fs.readdirSync(DEMO).filter((f) => f !== 'README.md').sort());
  });

  it('reads a sharded checkpoint (index + shards) in ranges', async () => {
    const dir = path.join(tmp, 'sharded');
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(DEMO, 'config.json'), path.join(dir, 'config.json'));
    const a = tf.tensor([1.5, -2, 3.25], [3]);
    const w = tf.tensor([[1, 2], [3, 4]], [2, 2]);
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), { a }, undefined, { floatDType: 'BF16' });
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), { w });
    a.dispose();
    w.dispose();
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 22 }, weight_map: { a: 'model-00001-of-00002.safetensors', w: 'model-00002-of-00002.safetensors' },
    }));
    const local = await startStaticServer(tmp);
    try {
      const b = new BrowserHost();
      const url = await b.mount(`${local.url}sharded/`);
      const got = await withHost(b, () => readAll(url));
      assert.deepEqual(got, readAll(dir));
      assert.deepEqual(got.get('a'), [1.5, -2, 3.25]);
    } finally {
      await local.close();
    }
  });

  it('keeps fetched ranges in the Cache API: a second mount reads no weights from the network', async () => {
    const stored = new Map<string, Uint8Array>();
    const fakeCache = {
      async match(key: string) {
        const b = stored.get(key);
        return b ? new Response(b.slice()) : undefined;
      },
      async put(key: string, res: Response) {
        stored.set(key, new Uint8Array(await res.arrayBuffer()));
      },
    };
    const g = globalThis as { caches?: unknown };
    g.caches = { open: async () => fakeCache, delete: async () => stored.size > 0 };
    try {
      const url = `${server.url}weights/tfvlm-demo/`;
      const first = new BrowserHost();
      await first.mount(url, { chunkBytes: 1 << 20 });
      const size = fs.statSync(path.join(DEMO, 'model.safetensors')).size;
      assert.equal(stored.size, Math.ceil(size / (1 << 20)));
      const seen = server.requests.length;
      const second = new BrowserHost();
      const dir = await second.mount(url, { chunkBytes: 1 << 20 });
      const ranges = server.requests.slice(seen).filter((r) => r.path.endsWith('model.safetensors')).map((r) => r.range);
      assert.deepEqual(ranges, ['bytes=0-7'], 'only the size probe goes to the network');
      assert.deepEqual(await withHost(second, () => readAll(dir)), readAll(DEMO));
      // cache: false reads from the network again.
      const third = new BrowserHost();
      const before = server.requests.length;
      await third.mount(url, { chunkBytes: 1 << 20, cache: false });
      assert.equal(server.requests.slice(before).filter((r) => r.path.endsWith('model.safetensors')).length, 1 + Math.ceil(size / (1 << 20)));
    } finally {
      delete g.caches;
    }
  });

  it('names the URL when the folder is not there (404)', async () => {
    const b = new BrowserHost();
    await assert.rejects(b.mount(`${server.url}weights/no-such-model/`), (e: unknown) => {
      assert.ok(e instanceof TfvlmError);
      assert.match(e.message, new RegExp(`${server.url}weights/no-such-model/config.json: not found \\(HTTP 404\\)`));
      return true;
    });
  });

  it('names the URL when a safetensors file is missing (404)', async () => {
    const dir = path.join(tmp, 'no-weights');
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(DEMO, 'config.json'), path.join(dir, 'config.json'));
    const local = await startStaticServer(tmp);
    try {
      await assert.rejects(new BrowserHost().mount(`${local.url}no-weights/`),
        new RegExp(`${local.url}no-weights/model.safetensors: not found \\(HTTP 404\\)`));
    } finally {
      await local.close();
    }
  });

  it('refuses a server that ignores Range, naming the URL', async () => {
    const plain = await startStaticServer(ROOT, { ranges: false });
    try {
      await assert.rejects(new BrowserHost().mount(`${plain.url}weights/tfvlm-demo/`), (e: unknown) => {
        assert.ok(e instanceof TfvlmError);
        assert.match(e.message, new RegExp(`^${plain.url}weights/tfvlm-demo/model.safetensors: the server ignored the HTTP Range header \\(answered 200, not 206\\)`));
        return true;
      });
    } finally {
      await plain.close();
    }
  });

  it('joins, resolves and splits URLs like paths', () => {
    const b = new BrowserHost();
    assert.equal(b.join('http://h/m/x', 'config.json'), 'http://h/m/x/config.json');
    assert.equal(b.join('http://h/m/x/', '/tokenizer.json'), 'http://h/m/x/tokenizer.json');
    assert.equal(b.join('http://h/m/x', '/'), 'http://h/m/x/');
    assert.equal(b.dirname('http://h/m/x/model.safetensors.index.json'), 'http://h/m/x');
    assert.equal(b.resolve('http://h/m/', 'a.png'), 'http://h/m/a.png');
    assert.throws(() => b.create('http://h/out.safetensors'), /does not write files/);
  });
});
