// Fuzzing the three parsers that read untrusted bytes: the safetensors reader, the tokenizer loader
// and the image decoder. Each gets mutated copies of real fixture files (seeded, so CI is
// deterministic; TFVLM_FUZZ_RUNS / TFVLM_FUZZ_SEED explore more locally). Every input must either
// load or throw a TfvlmError — no TypeError/RangeError/library error escapes — within 2 s, and
// leave tf.memory().numTensors where it was.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Jimp } from 'jimp';
import { initBackend, tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { SafetensorsFile, writeSafetensors, type RawTensor } from '../../src/io/safetensors.ts';
import { encodeJpeg, loadImage } from '../../src/io/image.ts';
import { MODE_CHANNELS } from '../../src/io/bitmap.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { fixture, image } from '../helpers/paths.ts';
import { FUZZ_SEED, Mutator, concat, fuzzRuns } from './mutate.ts';

const MAX_MS_PER_INPUT = 2000;
const MAX_REPORTED = 8;

interface Failure {
  index: number;
  what: string;
  saved: string;
}

/** Runs every input, collecting failures (saved to disk for replay) instead of stopping at the first. */
class FuzzRun {
  readonly failures: Failure[] = [];
  slowest = 0;
  loaded = 0;
  rejected = 0;

  constructor(readonly name: string, readonly outDir: string) {}

  async case(index: number, input: Uint8Array | Record<string, string>, run: () => Promise<void> | void): Promise<void> {
    const tensors = tf.memory().numTensors;
    const t0 = performance.now();
    let problem: string | undefined;
    try {
      await run();
      this.loaded++;
    } catch (e) {
      if (e instanceof TfvlmError) this.rejected++;
      else problem = `${(e as Error)?.constructor?.name ?? typeof e} escaped: ${(e as Error)?.stack ?? String(e)}`;
    }
    const ms = performance.now() - t0;
    this.slowest = Math.max(this.slowest, ms);
    if (!problem && ms > MAX_MS_PER_INPUT) problem = `took ${ms.toFixed(0)} ms (limit ${MAX_MS_PER_INPUT})`;
    const leaked = tf.memory().numTensors - tensors;
    if (!problem && leaked !== 0) problem = `numTensors changed by ${leaked}`;
    if (problem) this.record(index, input, problem);
  }

  /** Fails the test with the first few problems and where their inputs were saved. */
  check(runs: number): void {
    const shown = this.failures.slice(0, MAX_REPORTED)
      .map((f) => `  #${f.index} (${f.saved}): ${f.what.split('\n').slice(0, 4).join(' | ')}`).join('\n');
    assert.equal(this.failures.length, 0, `${this.name}: ${this.failures.length} of ${runs} inputs failed (seed ${FUZZ_SEED}):\n${shown}`);
    assert.equal(this.loaded + this.rejected, runs);
  }

  private record(index: number, input: Uint8Array | Record<string, string>, what: string): void {
    const saved = path.join(this.outDir, `${this.name}-${index}`);
    if (input instanceof Uint8Array) fs.writeFileSync(saved, input);
    else {
      fs.mkdirSync(saved, { recursive: true });
      for (const [name, text] of Object.entries(input)) fs.writeFileSync(path.join(saved, name), text);
    }
    this.failures.push({ index, what, saved });
  }
}

let tmp: string;
let failDir: string;

before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-fuzz-'));
  failDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-fuzz-failures-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  if (fs.readdirSync(failDir).length === 0) fs.rmSync(failDir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ safetensors

function headerOf(bytes: Uint8Array): { json: unknown; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

function withHeader(json: unknown, data: Uint8Array, m: Mutator): Uint8Array {
  const text = new TextEncoder().encode(JSON.stringify(json) ?? 'null');
  const head = new Uint8Array(8 + text.length);
  // usually the true length; sometimes a lie
  const len = m.chance(0.9) ? BigInt(text.length) : m.pick([0n, 1n, BigInt(text.length + 1), 2n ** 63n, 100_000_001n]);
  new DataView(head.buffer).setBigUint64(0, len, true);
  head.set(text, 8);
  return concat(head, data);
}

/** A file with every dtype, a 0-d tensor and an empty one, so dtype/shape edits reach every read path. */
function allDtypesFile(file: string): void {
  const t: Record<string, RawTensor> = {
    f32: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    f16: { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0x4000, 0x7c00]) },
    bf16: { dtype: 'BF16', shape: [1, 3], data: new Uint16Array([0x3f80, 0x4000, 0xff80]) },
    f64: { dtype: 'F64', shape: [2], data: new Float64Array([1.5, -2]) },
    i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([5n, -7n]) },
    i32: { dtype: 'I32', shape: [2], data: new Int32Array([1, -1]) },
    i16: { dtype: 'I16', shape: [3], data: new Int16Array([1, -2, 3]) },
    i8: { dtype: 'I8', shape: [1], data: new Int8Array([-5]) },
    u8: { dtype: 'U8', shape: [4], data: new Uint8Array([1, 2, 3, 255]) },
    bool: { dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 1]) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([7]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
  writeSafetensors(file, t, { format: 'pt' });
}

function readEverything(file: string): void {
  const f = SafetensorsFile.open(file);
  try {
    for (const key of f.keys()) f.readArray(key);
    for (const key of f.keys().slice(0, 4)) f.readTensor(key).dispose();
  } finally {
    f.close();
  }
}

describe('fuzz: safetensors reader', () => {
  it('mutated fixture files load or throw a TfvlmError, quickly, without leaking tensors', { timeout: 120_000 }, async () => {
    const synthetic = path.join(tmp, 'all-dtypes.safetensors');
    allDtypesFile(synthetic);
    const seeds = [
      fs.readFileSync(synthetic),
      fs.readFileSync(fixture('tiny-smolvlm', 'golden', 'nosplit_single.inputs.safetensors')),
      fs.readFileSync(fixture('tiny-llava', 'golden', 'single_image.inputs.safetensors')),
    ].map((b) => new Uint8Array(b));
    const runs = fuzzRuns(1500);
    const m = new Mutator(FUZZ_SEED);
    const fuzz = new FuzzRun('safetensors', failDir);
    const file = path.join(tmp, 'fuzz.safetensors');
    for (let i = 0; i < runs; i++) {
      const seed = m.pick(seeds);
      let bytes: Uint8Array;
      const kind = m.int(10);
      if (kind < 4) {
        const n = Number(new DataView(seed.buffer, seed.byteOffset).getBigUint64(0, true));
        bytes = m.bytes(seed, 8 + n);
      } else if (kind < 8) {
        const { json, data } = headerOf(seed);
        bytes = withHeader(m.json(json), m.chance(0.2) ? m.bytes(data) : data, m);
      } else {
        const entries: Record<string, unknown> = {};
        for (let k = m.int(4); k > 0; k--) {
          entries[m.pick(['a', 'b', '__metadata__', '0', 'x.weight'])] = m.chance(0.7)
            ? { dtype: m.pick(['F32', 'F16', 'BF16', 'I64', 'BOOL', 'U8', 'F8_E4M3', 'Q4', 1]), shape: [m.int(5), m.int(3)], data_offsets: [m.int(40), m.int(80)] }
            : m.jsonValue(3);
        }
        bytes = withHeader(m.chance(0.8) ? entries : m.jsonValue(3), new Uint8Array(m.int(96)), m);
      }
      fs.writeFileSync(file, bytes);
      await fuzz.case(i, bytes, () => readEverything(file));
    }
    console.log(`safetensors: ${runs} inputs, ${fuzz.loaded} loaded, ${fuzz.rejected} rejected, slowest ${fuzz.slowest.toFixed(1)} ms`);
    fuzz.check(runs);
  });
});

// ------------------------------------------------------------------ tokenizer

describe('fuzz: tokenizer loader', () => {
  it('mutated tokenizer.json / tokenizer_config.json load or throw a TfvlmError, quickly', { timeout: 120_000 }, async () => {
    const seeds = ['tiny-smolvlm', 'tiny-llava', 'tiny-clip'].map((name) => ({
      tokenizer: fs.readFileSync(fixture(name, 'tokenizer.json'), 'utf8'),
      config: fs.readFileSync(fixture(name, 'tokenizer_config.json'), 'utf8'),
    }));
    const parsed = seeds.map((s) => ({ tokenizer: JSON.parse(s.tokenizer), config: JSON.parse(s.config) }));
    const runs = fuzzRuns(600);
    const m = new Mutator(FUZZ_SEED + 1);
    const fuzz = new FuzzRun('tokenizer', failDir);
    const dir = path.join(tmp, 'tok');
    fs.mkdirSync(dir);
    for (let i = 0; i < runs; i++) {
      const s = m.int(seeds.length);
      const seed = seeds[s]!;
      const files = { 'tokenizer.json': seed.tokenizer, 'tokenizer_config.json': seed.config };
      const target = m.chance(0.65) ? 'tokenizer.json' : 'tokenizer_config.json';
      const doc = target === 'tokenizer.json' ? parsed[s]!.tokenizer : parsed[s]!.config;
      if (m.chance(0.7)) {
        files[target] = JSON.stringify(m.json(doc)) ?? '';
      } else {
        const text = new TextEncoder().encode(files[target]);
        files[target] = new TextDecoder().decode(m.bytes(text, text.length));
      }
      for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
      await fuzz.case(i, files, async () => {
        const tok = await loadTokenizer(dir);
        const ids = tok.encode('Hello <image> wörld 12!');
        tok.decode(ids);
      });
    }
    console.log(`tokenizer: ${runs} inputs, ${fuzz.loaded} loaded, ${fuzz.rejected} rejected, slowest ${fuzz.slowest.toFixed(1)} ms`);
    fuzz.check(runs);
  });
});

// ------------------------------------------------------------------ images

async function imageSeeds(): Promise<Uint8Array[]> {
  const inputs = ['tiny-smolvlm', 'tiny-llava', 'tiny-clip'].flatMap((name) => {
    const d = fixture(name, 'golden', 'inputs');
    return fs.readdirSync(d).filter((f) => f.endsWith('.png')).map((f) => path.join(d, f));
  });
  const pngs = [...inputs, image('horse.png')].map((f) => new Uint8Array(fs.readFileSync(f)));
  const [first] = inputs;
  assert.ok(first, 'a golden input PNG');
  const small = await loadImage(first);
  const j = new Jimp({ width: 12, height: 9, color: 0x3366ccff });
  for (let x = 0; x < 12; x++) j.setPixelColor(x % 2 ? 0xff000080 : 0x00ff00ff, x, x % 9);
  const gray = { width: small.width, height: small.height, mode: 'L' as const, data: small.data.filter((_, i) => i % MODE_CHANNELS[small.mode] === 0) };
  return [
    ...pngs,
    await encodeJpeg(small, 80),
    await encodeJpeg(gray, 80),
    new Uint8Array(await j.getBuffer('image/gif')),
    new Uint8Array(await j.getBuffer('image/bmp')),
    new Uint8Array(await j.getBuffer('image/png')),
  ];
}

describe('fuzz: image decoder', () => {
  it('mutated PNG / JPEG / GIF / BMP bytes decode to a valid bitmap or throw a TfvlmError, quickly', { timeout: 120_000 }, async () => {
    const seeds = await imageSeeds();
    const runs = fuzzRuns(1500);
    const m = new Mutator(FUZZ_SEED + 2);
    const fuzz = new FuzzRun('image', failDir);
    for (let i = 0; i < runs; i++) {
      const bytes = m.bytes(m.pick(seeds), 48);
      await fuzz.case(i, bytes, async () => {
        const img = await loadImage(bytes, `fuzz input ${i}`);
        const channels = MODE_CHANNELS[img.mode];
        if (!(img.width >= 1 && img.height >= 1 && channels && img.data.length === img.width * img.height * channels)) {
          throw new Error(`decoded an invalid bitmap ${img.width}x${img.height} ${img.mode} with ${img.data.length} bytes`);
        }
      });
    }
    console.log(`image: ${runs} inputs, ${fuzz.loaded} loaded, ${fuzz.rejected} rejected, slowest ${fuzz.slowest.toFixed(1)} ms`);
    fuzz.check(runs);
  });
});
