// A model too big for the memory it would need is refused before anything is allocated, with an
// error naming the sizes: here a LLaVA-1.5-7B-shaped checkpoint (published config, f16, 14.1 GB) as
// a sparse file (its header is real; its data reads as zeros and takes no disk), against a machine
// with 8 GB available (TFVLM_MEMORY_AVAILABLE), and with float32 weights against tfjs-wasm's 4 GiB heap.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf, initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { findArchitecture, loadModel } from '../../src/models/registry.ts';
import { checkPromptFits } from '../../src/models/fit.ts';
import { parseLlavaConfig } from '../../src/models/llava/config.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LLAVA_7B = path.join(ROOT, 'bench/published/llava-1.5-7b-hf/config.json');

/** A model.safetensors with every key and shape of `config` in F16, its data area a hole. */
function writeSparseCheckpoint(dir: string, config: Record<string, unknown>): number {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const spec = findArchitecture(config)!.weightSpec(config);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [key, shape] of spec) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[key] = { dtype: 'F16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  const file = path.join(dir, 'model.safetensors');
  fs.writeFileSync(file, head);
  fs.truncateSync(file, head.length + offset);
  return offset;
}

describe('a model that does not fit is refused before allocation', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-fit-'));
  const dir = path.join(tmp, 'llava-7b');
  let dataBytes = 0;
  before(async () => {
    await initBackend();
    dataBytes = writeSparseCheckpoint(dir, JSON.parse(fs.readFileSync(LLAVA_7B, 'utf8')));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('the sparse checkpoint has the published size', () => {
    assert.ok(Math.abs(dataBytes / 1e9 - 14.13) < 0.01, `${dataBytes / 1e9} GB`);
  });

  it('stored weights against 8 GB available: a named error listing weights, KV cache and working memory', async () => {
    const tensors = tf.memory().numTensors;
    const rss = process.memoryUsage().rss;
    process.env.TFVLM_MEMORY_AVAILABLE = '8GB';
    try {
      await assert.rejects(loadModel(dir), (e: unknown) => e instanceof TfvlmError
        && /does not fit in memory: it needs weights \(stored\) 14\.1\d GB \+ KV cache \(1024 tokens\) 1\.07 GB \+ working memory 0\.51 GB = 15\.7\d GB, but 8\.00 GB is available \(TFVLM_MEMORY_AVAILABLE\)/.test(e.message));
    } finally {
      delete process.env.TFVLM_MEMORY_AVAILABLE;
    }
    assert.equal(tf.memory().numTensors, tensors);
    assert.ok(process.memoryUsage().rss - rss < 200e6, 'nothing big was allocated');
  });

  it("float32 weights against tfjs-wasm's 4 GiB heap: a named error, not an emscripten abort", async (t) => {
    if (tf.getBackend() !== 'wasm') return t.skip('the heap limit is tfjs-wasm’s');
    const tensors = tf.memory().numTensors;
    await assert.rejects(loadModel(dir, { weights: 'float32' }), (e: unknown) => e instanceof TfvlmError
      && /does not fit with weights 'float32': tfjs-wasm's heap holds at most 4\.29 GB, and this model needs 28\.\d+ GB of float32 weights/.test(e.message)
      && /Load it with weights 'stored'/.test(e.message));
    assert.equal(tf.memory().numTensors, tensors);
  });

  it("a prompt whose KV cache cannot fit in tfjs-wasm's heap is refused by name before the prefill", (t) => {
    if (tf.getBackend() !== 'wasm') return t.skip('the heap limit is tfjs-wasm’s');
    const text = parseLlavaConfig(JSON.parse(fs.readFileSync(LLAVA_7B, 'utf8'))).text_config;
    checkPromptFits(text, { batch: 1, promptTokens: 600, cachedTokens: 0, newTokens: 256 });
    assert.throws(() => checkPromptFits(text, { batch: 1, promptTokens: 4000, cachedTokens: 0, newTokens: 95 }), (e: unknown) =>
      e instanceof TfvlmError && /a prompt of 4000 tokens with 95 to generate needs a KV cache of 4\.29 GB \+ about \d+\.\d\d GB of activations in tfjs-wasm's heap/.test(e.message));
  });
});
