import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend, tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { DTYPE_BYTES, bf16ToF32, f16ToF32, type SafetensorsDType } from '../../src/io/dtypes.ts';
import { MAX_HEADER_BYTES, SafetensorsFile, writeSafetensors, type RawTensor } from '../../src/io/safetensors.ts';
import { FIXTURES } from '../helpers/paths.ts';

let tmp: string;
let counter = 0;
const tmpFile = (stem = 'f') => path.join(tmp, `${stem}-${counter++}.safetensors`);

before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-safetensors-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A file written byte by byte: u64 header length (default: the JSON's), header text, data. */
function rawFile(header: string | object, data: Uint8Array | number = 0, headerLength?: number): string {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  const file = tmpFile('raw');
  fs.writeFileSync(file, out);
  return file;
}

function throwsNaming(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TfvlmError, `expected TfvlmError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message lacks '${p}': ${e.message}`);
    return true;
  });
}

const openFails = (file: string, ...parts: string[]) => throwsNaming(() => SafetensorsFile.open(file), file, ...parts);

function findSafetensors(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return findSafetensors(p);
    return e.name.endsWith('.safetensors') ? [p] : [];
  });
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

describe('SafetensorsFile on the fixtures', () => {
  const files = findSafetensors(FIXTURES);

  it('finds fixture files', () => assert.ok(files.length > 0));

  for (const file of files) {
    it(`reads every tensor of ${path.relative(FIXTURES, file)}`, () => {
      const f = SafetensorsFile.open(file);
      try {
        assert.ok(f.keys().length > 0);
        let dataBytes = 0;
        for (const name of f.keys()) {
          const e = f.entry(name);
          const arr = f.readArray(name);
          assert.equal(arr.length, numel(e.shape), name);
          dataBytes += e.byteLength;
          const before = tf.memory().numTensors;
          const t = f.readTensor(name);
          assert.deepEqual(t.shape, e.shape);
          assert.equal(t.size, arr.length);
          t.dispose();
          assert.equal(tf.memory().numTensors, before);
        }
        // header + every tensor read twice (readArray + readTensor)
        assert.equal(f.stats.bytesRead, 8 + f.headerLength + 2 * dataBytes);
        assert.equal(fs.statSync(file).size, 8 + f.headerLength + dataBytes);
      } finally {
        f.close();
      }
    });
  }
});

/** Values per dtype, chosen to hit edge cases; floats as the bits / values expected back. */
function sample(dtype: SafetensorsDType, n: number): { data: ArrayBufferView; expected: number[] } {
  const idx = Array.from({ length: n }, (_, i) => i);
  switch (dtype) {
    case 'F64': {
      const v = idx.map((i) => (i % 2 ? -1 : 1) * (i + 0.1) * 1e3);
      return { data: Float64Array.from(v), expected: v.map(Math.fround) };
    }
    case 'F32': {
      const v = idx.map((i) => Math.fround((i - 2) / 3));
      return { data: Float32Array.from(v), expected: v };
    }
    case 'F16': {
      const bits = Uint16Array.from(idx, (i) => [0x3c00, 0x8001, 0x7bff, 0xfc00, 0x03ff, 0x3555][i % 6]!);
      return { data: bits, expected: [...f16ToF32(bits)] };
    }
    case 'BF16': {
      const bits = Uint16Array.from(idx, (i) => [0x3f80, 0x8001, 0x7f7f, 0xff80, 0x007f, 0x3eab][i % 6]!);
      return { data: bits, expected: [...bf16ToF32(bits)] };
    }
    case 'I64': {
      const v = idx.map((i) => [0, -1, 2147483647, -2147483648, 49279, -7][i % 6]!);
      return { data: BigInt64Array.from(v, BigInt), expected: v };
    }
    case 'I32': {
      const v = idx.map((i) => [0, -1, 2147483647, -2147483648, 5, -7][i % 6]!);
      return { data: Int32Array.from(v), expected: v };
    }
    case 'I16': {
      const v = idx.map((i) => [0, -1, 32767, -32768, 5, -7][i % 6]!);
      return { data: Int16Array.from(v), expected: v };
    }
    case 'I8': {
      const v = idx.map((i) => [0, -1, 127, -128, 5, -7][i % 6]!);
      return { data: Int8Array.from(v), expected: v };
    }
    case 'U32': {
      const v = idx.map((i) => [0, 1, 4294967295, 2147483648, 0x76543210, 7][i % 6]!);
      return { data: Uint32Array.from(v), expected: v };
    }
    case 'U8': {
      const v = idx.map((i) => [0, 1, 255, 128, 5, 7][i % 6]!);
      return { data: Uint8Array.from(v), expected: v };
    }
    case 'BOOL': {
      const v = idx.map((i) => i % 3 === 0 ? 1 : 0);
      return { data: Uint8Array.from(v), expected: v };
    }
  }
}

const ALL_DTYPES = Object.keys(DTYPE_BYTES) as SafetensorsDType[];
const SHAPES: number[][] = [[2, 3], [], [0, 4], [7], [1, 1, 5]];

describe('writeSafetensors → SafetensorsFile round trip', () => {
  it('keeps every dtype and shape (0-d and empty included), bytes and values', () => {
    const tensors = new Map<string, RawTensor>();
    const expected = new Map<string, number[]>();
    for (const dtype of ALL_DTYPES) {
      for (const shape of SHAPES) {
        const name = `${dtype}.${shape.join('x') || 'scalar'}`;
        const { data, expected: values } = sample(dtype, numel(shape));
        tensors.set(name, { dtype, shape, data });
        expected.set(name, values);
      }
    }
    const file = tmpFile();
    writeSafetensors(file, tensors, { format: 'pt', note: 'ü ✓' });
    const f = SafetensorsFile.open(file);
    try {
      assert.deepEqual(f.metadata, { format: 'pt', note: 'ü ✓' });
      assert.deepEqual(f.keys(), [...tensors.keys()]);
      for (const [name, t] of tensors) {
        const e = f.entry(name);
        assert.equal(e.dtype, t.dtype);
        assert.deepEqual(e.shape, t.shape);
        assert.equal(e.byteLength, numel(t.shape) * DTYPE_BYTES[t.dtype]);
        assert.equal(e.file, file);
        assert.deepEqual(f.readBytes(name), new Uint8Array((t.data as ArrayBufferView).buffer, (t.data as ArrayBufferView).byteOffset, (t.data as ArrayBufferView).byteLength));
        const arr = f.readArray(name);
        const kind = ['F64', 'F32', 'F16', 'BF16'].includes(t.dtype) ? Float32Array
          : ['U8', 'BOOL'].includes(t.dtype) ? Uint8Array : t.dtype === 'U32' ? Uint32Array : Int32Array;
        assert.ok(arr instanceof kind, `${name}: ${arr.constructor.name}`);
        assert.deepEqual([...arr], expected.get(name), name);
        // into a reused buffer that is longer than the tensor and starts mid-ArrayBuffer
        const backing = new kind(new ArrayBuffer(4 * (2 * arr.length + 8)), 16, 2 * arr.length + 3).fill(99);
        const into = f.readArray(name, backing);
        assert.equal(into.buffer, backing.buffer);
        assert.equal(into.byteOffset, 16);
        assert.deepEqual([...into], expected.get(name), `${name} into out`);
        if (arr.length > 0) {
          throwsNaming(() => f.readArray(name, backing.subarray(0, arr.length - 1)), file, `'${name}'`, 'elements');
        }
        throwsNaming(() => f.readArray(name, kind === Float32Array ? new Int32Array(arr.length) : new Float32Array(arr.length)), file, `'${name}'`, kind.name);
        if (t.dtype === 'U32') {
          throwsNaming(() => f.readTensor(name), file, `'${name}'`, 'quantized codes');
          continue;
        }
        const tensor = f.readTensor(name);
        assert.deepEqual(tensor.shape, t.shape);
        assert.equal(tensor.dtype, t.dtype === 'BOOL' ? 'bool' : kind === Float32Array ? 'float32' : 'int32');
        assert.deepEqual([...tensor.dataSync()], expected.get(name), name);
        tensor.dispose();
      }
    } finally {
      f.close();
    }
  });

  it('writes tf tensors as F32 / F16 / BF16, int32 as I32, bool as BOOL', () => {
    const values = [1, -2.5, 1 / 3, 65504, 1e-6, 0];
    const floats = tf.tensor(values, [2, 3]);
    const ints = tf.tensor([1, -2, 3], [3], 'int32');
    const bools = tf.tensor([true, false, true, true], [2, 2], 'bool');
    const scalar = tf.scalar(7.25);
    const empty = tf.zeros([3, 0]);
    for (const floatDType of ['F32', 'F16', 'BF16'] as const) {
      const file = tmpFile(floatDType);
      writeSafetensors(file, { floats, ints, bools, scalar, empty }, undefined, { floatDType });
      const f = SafetensorsFile.open(file);
      assert.deepEqual(f.metadata, {});
      assert.deepEqual(f.keys(), ['floats', 'ints', 'bools', 'scalar', 'empty']);
      assert.deepEqual(['floats', 'ints', 'bools', 'scalar', 'empty'].map((k) => f.entry(k).dtype),
        [floatDType, 'I32', 'BOOL', floatDType, floatDType]);
      const got = f.readArray('floats');
      const narrow = floatDType === 'F32' ? Math.fround
        : floatDType === 'F16' ? roundF16 : roundBf16;
      assert.deepEqual([...got], values.map(narrow));
      assert.deepEqual([...f.readArray('ints')], [1, -2, 3]);
      const b = f.readTensor('bools');
      assert.equal(b.dtype, 'bool');
      assert.deepEqual([...b.dataSync()], [1, 0, 1, 1]);
      b.dispose();
      const s = f.readTensor('scalar');
      assert.deepEqual(s.shape, []);
      assert.equal(s.dataSync()[0], 7.25);
      s.dispose();
      assert.deepEqual(f.entry('empty').shape, [3, 0]);
      assert.equal(f.readArray('empty').length, 0);
      f.close();
    }
    tf.dispose([floats, ints, bools, scalar, empty]);
  });

  it('produces the same bytes as the Rust crate for its documented examples', () => {
    // huggingface/safetensors safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement, test_empty
    const data = Float32Array.of(0, 1, 2, 3, 4, 5);
    const rustBytes = (header: string, pad: number, body: Uint8Array) => {
      const json = new TextEncoder().encode(header + ' '.repeat(pad));
      const out = new Uint8Array(8 + json.length + body.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      out.set(body, 8 + json.length);
      return out;
    };
    const body = new Uint8Array(data.buffer);
    let file = tmpFile();
    writeSafetensors(file, { 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data } });
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)),
      rustBytes('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', 0, body));
    assert.equal(fs.readFileSync(file).readUInt32LE(0), 64);

    file = tmpFile();
    writeSafetensors(file, { attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data } });
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)),
      rustBytes('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}', 7, body));

    file = tmpFile();
    writeSafetensors(file, {});
    assert.deepEqual([...fs.readFileSync(file)], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const emptyFile = SafetensorsFile.open(file);
    assert.equal(emptyFile.keys().length, 0);
    emptyFile.close();

    file = tmpFile();
    writeSafetensors(file, {}, { framework: 'pt' });
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), rustBytes('{"__metadata__":{"framework":"pt"}}', 5, new Uint8Array(0)));
  });

  it('keeps header order for integer-like tensor names (which JSON.parse would move first)', () => {
    const file = tmpFile();
    const one = { dtype: 'U8' as const, shape: [1], data: Uint8Array.of(9) };
    writeSafetensors(file, new Map([['b', one], ['10', one], ['a', one], ['2', one]]));
    const f = SafetensorsFile.open(file);
    assert.deepEqual(f.keys(), ['b', '10', 'a', '2']);
    f.close();
  });

  it('reads one tensor per call and counts the bytes', () => {
    const file = tmpFile();
    const big = new Float32Array(1000).map((_, i) => i);
    writeSafetensors(file, { small: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }, big: { dtype: 'F32', shape: [10, 100], data: big } });
    const f = SafetensorsFile.open(file);
    const afterHeader = f.stats.bytesRead;
    assert.equal(afterHeader, 8 + f.headerLength);
    f.readArray('small');
    assert.equal(f.stats.bytesRead - afterHeader, 8);
    assert.deepEqual(f.readArray('big'), big);
    assert.equal(f.stats.bytesRead - afterHeader, 8 + 4000);
    assert.ok(f.stats.readMs >= 0);
    f.close();
    throwsNaming(() => f.readArray('big'), file, "'big'", 'closed');
  });

  it('returns independent tensors from successive readTensor calls (the staging buffer is reused)', () => {
    const file = tmpFile();
    writeSafetensors(file, {
      a: { dtype: 'BF16', shape: [3], data: Uint16Array.of(0x3f80, 0x4000, 0x4040) },
      b: { dtype: 'F32', shape: [5], data: Float32Array.of(9, 8, 7, 6, 5) },
      c: { dtype: 'I16', shape: [2], data: Int16Array.of(-3, 4) },
      m: { dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
    });
    const f = SafetensorsFile.open(file);
    const before = tf.memory().numTensors;
    const ts = ['a', 'b', 'c', 'm', 'a'].map((k) => f.readTensor(k));
    assert.deepEqual(ts.map((t) => [...t.dataSync()]), [[1, 2, 3], [9, 8, 7, 6, 5], [-3, 4], [1, 0], [1, 2, 3]]);
    tf.dispose(ts);
    assert.equal(tf.memory().numTensors, before);
    f.close();
  });

  it('names the file and tensor when a tensor is missing', () => {
    const file = tmpFile();
    writeSafetensors(file, { a: { dtype: 'U8', shape: [1], data: Uint8Array.of(1) } });
    const f = SafetensorsFile.open(file);
    assert.equal(f.has('a'), true);
    assert.equal(f.has('nope'), false);
    throwsNaming(() => f.entry('nope'), file, "'nope'");
    throwsNaming(() => f.readArray('nope'), file, "'nope'");
    f.close();
  });

  it('refuses an I64 value outside int32, naming the tensor', () => {
    const file = tmpFile();
    writeSafetensors(file, { ids: { dtype: 'I64', shape: [3], data: BigInt64Array.of(1n, 2n ** 31n, 3n) } });
    const f = SafetensorsFile.open(file);
    throwsNaming(() => f.readArray('ids'), file, "'ids'", '2147483648', 'int32');
    f.close();
  });

  it('refuses bad writer input without leaving files behind', () => {
    const before = fs.readdirSync(tmp).length;
    const file = tmpFile();
    throwsNaming(() => writeSafetensors(file, { x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), "'x'", '12 bytes', '8');
    throwsNaming(() => writeSafetensors(file, { x: { dtype: 'Q4' as SafetensorsDType, shape: [1], data: new Uint8Array(1) } }), "'x'", 'Q4');
    throwsNaming(() => writeSafetensors(file, { x: { dtype: 'U8', shape: [-1], data: new Uint8Array(1) } }), "'x'", 'shape');
    throwsNaming(() => writeSafetensors(file, { __metadata__: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }), '__metadata__');
    const t = tf.tensor([1, 2]);
    t.dispose();
    throwsNaming(() => writeSafetensors(file, { gone: t }), "'gone'", 'disposed');
    throwsNaming(() => writeSafetensors(file, {}, { n: 1 as unknown as string }), 'metadata', "'n'");
    assert.equal(fs.readdirSync(tmp).length, before);
  });
});

function roundBf16(x: number): number {
  const u = new Uint32Array(Float32Array.of(x).buffer)[0]!;
  const r = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return new Float32Array(Uint32Array.of(r).buffer)[0]!;
}

function roundF16(x: number): number {
  // nearest float16 by search over all finite patterns (slow, only for a handful of values)
  const all = f16ToF32(Uint16Array.from({ length: 0x7c00 }, (_, i) => i));
  let best = 0;
  for (let i = 0; i < all.length; i++) {
    const d = Math.abs(all[i]! - Math.abs(x)) - Math.abs(all[best]! - Math.abs(x));
    if (d < 0 || (d === 0 && (i & 1) === 0 && (best & 1) === 1)) best = i;
  }
  return Math.sign(x) * all[best]! || 0;
}

describe('SafetensorsFile validation: each corruption is a TfvlmError naming the file (and tensor)', () => {
  const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

  it('file shorter than 8 bytes', () => {
    const file = tmpFile('short');
    fs.writeFileSync(file, Uint8Array.of(1, 2, 3));
    openFails(file, '3 bytes', 'shorter than');
  });

  it('file truncated inside the data area', () => {
    const file = tmpFile();
    writeSafetensors(file, { a: { dtype: 'F32', shape: [4], data: new Float32Array(4) }, b: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
    fs.truncateSync(file, fs.statSync(file).size - 6);
    openFails(file, "tensor 'b'", 'past the data area');
  });

  it('header length longer than the file', () => {
    openFails(rawFile({ a: entry('U8', [1], [0, 1]) }, 1, 5000), 'header length 5000', 'past the end of the file');
  });

  it('header length above the 100 MB cap', () => {
    openFails(rawFile('{}', 0, MAX_HEADER_BYTES + 1), `${MAX_HEADER_BYTES + 1}`, 'cap');
    const file = tmpFile('huge');
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    fs.writeFileSync(file, b);
    openFails(file, 'cap');
  });

  it('header not valid UTF-8', () => {
    const file = tmpFile('utf8');
    const b = new Uint8Array(8 + 4);
    new DataView(b.buffer).setBigUint64(0, 4n, true);
    b.set([0x7b, 0xff, 0xfe, 0x7d], 8);
    fs.writeFileSync(file, b);
    openFails(file, 'UTF-8');
  });

  it('header not JSON, or not an object', () => {
    openFails(rawFile('{"a": {"dtype": "F32",'), 'not valid JSON');
    openFails(rawFile('[1, 2]'), 'not a JSON object', 'array');
    openFails(rawFile('null'), 'not a JSON object');
  });

  it('entry not an object, missing fields, fields of wrong types', () => {
    openFails(rawFile({ w: 3 }), "tensor 'w'", 'not an object');
    openFails(rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4), "tensor 'w'", 'missing dtype');
    openFails(rawFile({ w: { dtype: 'F32', data_offsets: [0, 4] } }, 4), "tensor 'w'", 'missing shape');
    openFails(rawFile({ w: { dtype: 'F32', shape: [1] } }, 4), "tensor 'w'", 'missing data_offsets');
    openFails(rawFile({ w: entry(7 as unknown as string, [1], [0, 4]) }, 4), "tensor 'w'", 'dtype is 7');
    openFails(rawFile({ w: entry('F32', '1', [0, 4]) }, 4), "tensor 'w'", 'shape', 'not an array');
    openFails(rawFile({ w: entry('F32', [1], [0]) }, 4), "tensor 'w'", 'data_offsets');
    openFails(rawFile({ w: entry('F32', [1], ['0', 4]) }, 4), "tensor 'w'", 'data_offsets');
    openFails(rawFile({ w: entry('F32', [1], [-4, 0]) }, 4), "tensor 'w'", 'data_offsets');
  });

  it('unknown dtype', () => {
    openFails(rawFile({ w: entry('F8_E4M3', [4], [0, 4]) }, 4), "tensor 'w'", "'F8_E4M3'");
    openFails(rawFile({ w: entry('float32', [1], [0, 4]) }, 4), "tensor 'w'", "'float32'");
  });

  it('negative or non-integer dimensions', () => {
    openFails(rawFile({ w: entry('U8', [-2], [0, 2]) }, 2), "tensor 'w'", 'dimension -2');
    openFails(rawFile({ w: entry('U8', [1.5, 2], [0, 3]) }, 3), "tensor 'w'", 'dimension 1.5');
  });

  it('shape × dtype size differs from end − begin', () => {
    openFails(rawFile({ w: entry('F32', [2, 3], [0, 20]) }, 20), "tensor 'w'", '24 bytes', 'span 20');
  });

  it('offsets out of range or reversed', () => {
    openFails(rawFile({ w: entry('U8', [8], [0, 8]) }, 4), "tensor 'w'", 'past the data area', '4 bytes');
    openFails(rawFile({ w: entry('U8', [0], [4, 2]) }, 4), "tensor 'w'", 'begin is after end');
  });

  it('overlapping tensors', () => {
    const header = { a: entry('U8', [4], [0, 4]), b: entry('U8', [4], [2, 6]) };
    openFails(rawFile(header, 6), "tensor 'b'", 'overlap', "'a'");
    // listed in the other order: sorting by offset still finds it
    openFails(rawFile({ b: header.b, a: header.a }, 6), "tensor 'b'", 'overlap', "'a'");
  });

  it('gaps and trailing bytes (the Rust crate requires the tensors to tile the data area)', () => {
    openFails(rawFile({ a: entry('U8', [2], [0, 2]), b: entry('U8', [2], [4, 6]) }, 6), "tensor 'b'", 'gap of 2');
    openFails(rawFile({ a: entry('U8', [2], [0, 2]) }, 5), 'trailing bytes', "'a'");
  });

  it('duplicate tensor names and bad __metadata__', () => {
    openFails(rawFile('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), "tensor 'w'", 'twice');
    openFails(rawFile({ __metadata__: { a: 1 } }), '__metadata__', 'not a string');
    openFails(rawFile({ __metadata__: ['x'] }), '__metadata__');
  });

  it('keeps a "__proto__" name or metadata key as plain data', () => {
    const file = rawFile('{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', Uint8Array.of(7));
    const f = SafetensorsFile.open(file);
    assert.equal(Object.getOwnPropertyDescriptor(f.metadata, '__proto__')?.value, 'x');
    assert.deepEqual(f.keys(), ['__proto__']);
    assert.deepEqual([...f.readArray('__proto__')], [7]);
    f.close();
  });

  it('accepts zero-length tensors sharing an offset, and a header padded with spaces', () => {
    const file = rawFile(`${JSON.stringify({ a: entry('F32', [0], [0, 0]), b: entry('U8', [0, 3], [0, 0]), c: entry('U8', [], [0, 1]) })}   `, Uint8Array.of(42));
    const f = SafetensorsFile.open(file);
    assert.deepEqual(f.keys(), ['a', 'b', 'c']);
    assert.equal(f.readArray('a').length, 0);
    assert.deepEqual([...f.readArray('c')], [42]);
    f.close();
  });

  it('a missing file', () => {
    const file = path.join(tmp, 'does-not-exist.safetensors');
    openFails(file, 'cannot open');
  });
});
