// Safetensors reader and writer. Format and checks mirror huggingface/safetensors
// safetensors/src/tensor.rs (read_metadata + Metadata::validate): u64 LE header length N (≤ 100 MB),
// N bytes of UTF-8 JSON, then a data area the tensors must tile exactly (sorted by offsets, no gap,
// no overlap, last end = end of file). Tensors are read one at a time with positioned reads.
import { TfvlmError } from '../errors.ts';
import { host, type FileSink, type RandomAccessFile } from './host.ts';
import { tf } from '../backend/index.ts';
import {
  DTYPE_BYTES, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, isSafetensorsDType,
  type SafetensorsDType,
} from './dtypes.ts';

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute offset in the file. */
  byteOffset: number;
  byteLength: number;
  file: string;
}

export type TensorArray = Float32Array | Int32Array | Uint32Array | Uint8Array;

export interface RawTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** The bytes, or a function producing them when the writer reaches this tensor (one tensor in memory at a time). */
  data: ArrayBufferView | (() => ArrayBufferView);
}

export interface ReadStats {
  bytesRead: number;
  readMs: number;
}

/** Same cap as the Rust crate (MAX_HEADER_SIZE = 100_000_000). */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new TfvlmError('tfvlm safetensors I/O assumes a little-endian host (safetensors data is little-endian)');
}

export class SafetensorsFile {
  readonly file: string;
  readonly metadata: Record<string, string>;
  readonly entries: Map<string, TensorEntry>;
  readonly stats: ReadStats;
  /** Bytes of the JSON header (N); the data area starts at 8 + N. */
  readonly headerLength: number;
  private fd: RandomAccessFile | undefined;
  private readonly scratch: ReadScratch;

  private constructor(file: string, fd: RandomAccessFile, headerLength: number, metadata: Record<string, string>,
    entries: Map<string, TensorEntry>, stats: ReadStats, scratch: ReadScratch) {
    this.scratch = scratch;
    scratch.users.add(this);
    this.file = file;
    this.fd = fd;
    this.headerLength = headerLength;
    this.metadata = metadata;
    this.entries = entries;
    this.stats = stats;
  }

  /**
   * Opens the file and reads + validates its header only. Files given the same `scratch`
   * (e.g. the shards of one checkpoint) share one staging buffer for readTensor.
   */
  static open(file: string, scratch: ReadScratch = new ReadScratch()): SafetensorsFile {
    let fd: RandomAccessFile;
    try {
      fd = host().open(file);
    } catch (e) {
      if ((e as { code?: unknown }).code === 'EISDIR') throw new TfvlmError(`safetensors ${file}: not a regular file (a directory?)`);
      throw new TfvlmError(`safetensors ${file}: cannot open: ${(e as Error).message}`);
    }
    try {
      const stats: ReadStats = { bytesRead: 0, readMs: 0 };
      const { headerLength, metadata, entries } = readHeader(file, fd, stats);
      return new SafetensorsFile(file, fd, headerLength, metadata, entries, stats, scratch);
    } catch (e) {
      fd.close();
      if (e instanceof TfvlmError) throw e;
      throw new TfvlmError(`safetensors ${file}: cannot read: ${(e as Error).message}`);
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) {
      throw new TfvlmError(`safetensors ${this.file}: no tensor '${name}' (file has ${this.entries.size} tensors)`);
    }
    return e;
  }

  /** The tensor's raw little-endian bytes, read with one positioned read. */
  readBytes(name: string): Uint8Array {
    const e = this.entry(name);
    const out = new Uint8Array(e.byteLength);
    this.readInto(e, out);
    return out;
  }

  /**
   * Raw bytes [start, start + dst.length) of the tensor into `dst` (any Uint8Array, e.g. a view of a
   * kernel arena), with one positioned read.
   */
  readBytesInto(name: string, dst: Uint8Array, start = 0): void {
    const e = this.entry(name);
    if (!Number.isSafeInteger(start) || start < 0 || start + dst.length > e.byteLength) {
      throw new TfvlmError(`safetensors ${this.file}: tensor '${name}': bytes [${start}, ${start + dst.length}) are outside its ${e.byteLength}`);
    }
    this.readInto({ ...e, byteOffset: e.byteOffset + start, byteLength: dst.length }, dst);
  }

  /**
   * Floats widen to Float32Array, signed ints to Int32Array, U32 stays Uint32Array, U8/BOOL stay Uint8Array.
   * With `out` (of that array type, at least as long as the tensor) the values land in it and the
   * result is `out` or its leading subarray, so one buffer can be reused across tensors.
   */
  readArray(name: string, out?: TensorArray): TensorArray {
    const e = this.entry(name);
    const n = e.byteLength / DTYPE_BYTES[e.dtype];
    const Kind = arrayTypeOf(e.dtype);
    let res: TensorArray;
    if (out === undefined) {
      res = new Kind(n);
    } else {
      if (!(out instanceof Kind)) {
        throw new TfvlmError(`safetensors ${this.file}: tensor '${name}': ${e.dtype} reads into a ${Kind.name}, got a ${out.constructor.name}`);
      }
      if (out.length < n) {
        throw new TfvlmError(`safetensors ${this.file}: tensor '${name}': out has ${out.length} elements, the tensor ${n}`);
      }
      res = out.length === n ? out : out.subarray(0, n);
    }
    const buf = res.buffer;
    const at = res.byteOffset;
    switch (e.dtype) {
      case 'F32':
      case 'I32':
      case 'U32':
      case 'U8':
      case 'BOOL':
        this.readInto(e, new Uint8Array(buf, at, e.byteLength));
        return res;
      case 'BF16':
      case 'F16': {
        // Read the 2-byte values into the upper half of the output (4-byte aligned, so from byte
        // 2n − 2 when n is odd), then widen forward in place.
        const src = at + 2 * n - (n & 1) * 2;
        this.readInto(e, new Uint8Array(buf, src, 2 * n));
        const bits = new Uint16Array(buf, src, n);
        return e.dtype === 'BF16' ? bf16ToF32(bits, res as Float32Array) : f16ToF32(bits, res as Float32Array);
      }
      case 'F64': {
        const src = new Float64Array(n);
        this.readInto(e, new Uint8Array(src.buffer));
        for (let i = 0; i < n; i++) res[i] = src[i]!; // rounds to nearest even
        return res;
      }
      case 'I16': {
        this.readInto(e, new Uint8Array(buf, at + 2 * n, 2 * n));
        const src = new Int16Array(buf, at + 2 * n, n);
        for (let i = 0; i < n; i++) res[i] = src[i]!; // forward widening in place is safe
        return res;
      }
      case 'I8': {
        this.readInto(e, new Uint8Array(buf, at + 3 * n, n));
        const src = new Int8Array(buf, at + 3 * n, n);
        for (let i = 0; i < n; i++) res[i] = src[i]!;
        return res;
      }
      case 'I64': {
        const src = new Int32Array(2 * n); // [lo, hi] pairs
        this.readInto(e, new Uint8Array(src.buffer));
        for (let i = 0; i < n; i++) {
          const lo = src[2 * i]!;
          const hi = src[2 * i + 1]!;
          if (hi !== lo >> 31) {
            const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
            throw new TfvlmError(
              `safetensors ${this.file}: tensor '${name}': I64 value ${v} at flat index ${i} does not fit in int32`,
            );
          }
          res[i] = lo;
        }
        return res;
      }
    }
  }

  /** float32 for float dtypes, int32 for signed ints and U8, bool for BOOL; shape as stored (0-d ok). */
  readTensor(name: string): tf.Tensor {
    const e = this.entry(name);
    if (e.dtype === 'U32') {
      throw new TfvlmError(`safetensors ${this.file}: tensor '${name}' is U32 (quantized codes), which tfjs has no dtype for; read it with readArray`);
    }
    if (tf.getBackend() === 'wasm' && e.dtype !== 'U8') {
      // tfjs-backend-wasm copies the values into its heap inside tf.tensor (backend_wasm.ts: move),
      // so a reused staging buffer saves allocating and page-faulting a fresh array per tensor.
      const Kind = arrayTypeOf(e.dtype);
      return toTensor(e, this.readArray(name, this.scratch.view(Kind, e.byteLength / DTYPE_BYTES[e.dtype])));
    }
    return toTensor(e, this.readArray(name));
  }

  /** Closes the file and drops the staging buffer (unless shared with other open files). */
  close(): void {
    if (this.fd !== undefined) {
      this.fd.close();
      this.fd = undefined;
    }
    this.scratch.release(this);
  }

  private readInto(e: TensorEntry, dst: Uint8Array): void {
    if (this.fd === undefined) {
      throw new TfvlmError(`safetensors ${this.file}: tensor '${e.name}': file is closed`);
    }
    const t0 = performance.now();
    readFully(this.fd, dst, e.byteOffset, () => `safetensors ${this.file}: tensor '${e.name}': file ended early (changed since open?)`);
    this.stats.readMs += performance.now() - t0;
    this.stats.bytesRead += dst.length;
  }
}

/** A staging buffer grown to the largest tensor read through it; freed when its last file closes. */
export class ReadScratch {
  readonly users = new Set<object>();
  private buf: ArrayBuffer | undefined;

  view<K extends Float32ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor | Uint8ArrayConstructor>(Kind: K, n: number): InstanceType<K> {
    const bytes = n * Kind.BYTES_PER_ELEMENT;
    if (!this.buf || this.buf.byteLength < bytes) this.buf = new ArrayBuffer(bytes);
    return new Kind(this.buf, 0, n) as InstanceType<K>;
  }

  release(user: object): void {
    this.users.delete(user);
    if (this.users.size === 0) this.buf = undefined;
  }
}

/** The array type readArray returns for a dtype. */
export function arrayTypeOf(
  dtype: SafetensorsDType,
): Float32ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor | Uint8ArrayConstructor {
  switch (dtype) {
    case 'F64': case 'F32': case 'F16': case 'BF16': return Float32Array;
    case 'I64': case 'I32': case 'I16': case 'I8': return Int32Array;
    case 'U32': return Uint32Array;
    case 'U8': case 'BOOL': return Uint8Array;
  }
}

/** Wraps a read TensorArray as a tf.Tensor of the entry's shape. */
export function toTensor(e: TensorEntry, arr: TensorArray): tf.Tensor {
  if (e.dtype === 'BOOL') return tf.tensor(arr, e.shape, 'bool');
  if (e.dtype === 'U8') return tf.tensor(Int32Array.from(arr), e.shape, 'int32');
  return tf.tensor(arr, e.shape, arr instanceof Float32Array ? 'float32' : 'int32');
}

function readFully(fd: RandomAccessFile, dst: Uint8Array, position: number, ended: () => string): void {
  let done = 0;
  while (done < dst.length) {
    const n = fd.read(done === 0 ? dst : dst.subarray(done), position + done);
    if (n === 0) throw new TfvlmError(ended());
    done += n;
  }
}

function readHeader(file: string, fd: RandomAccessFile, stats: ReadStats): {
  headerLength: number; metadata: Record<string, string>; entries: Map<string, TensorEntry>;
} {
  const fail = (what: string): never => {
    throw new TfvlmError(`safetensors ${file}: ${what}`);
  };
  const fileSize = fd.size;
  if (fileSize < 8) fail(`file is ${fileSize} bytes, shorter than the 8-byte header length`);

  const t0 = performance.now();
  const lenBytes = new Uint8Array(8);
  readFully(fd, lenBytes, 0, () => `safetensors ${file}: file ended inside the header length`);
  const n64 = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${n64} bytes exceeds the ${MAX_HEADER_BYTES}-byte cap`);
  }
  const n = Number(n64);
  if (8 + n > fileSize) fail(`header length ${n} bytes runs past the end of the file (${fileSize} bytes)`);

  const headerBytes = new Uint8Array(n);
  readFully(fd, headerBytes, 8, () => `safetensors ${file}: file ended inside the header`);
  stats.readMs += performance.now() - t0;
  stats.bytesRead += 8 + n;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail(`header is not a JSON object (got ${Array.isArray(header) ? 'array' : header === null ? 'null' : typeof header})`);
  }
  const obj = header as Record<string, unknown>;

  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) fail(k === METADATA_KEY ? `header has '${METADATA_KEY}' twice` : `tensor '${k}': listed twice in the header`);
    seen.add(k);
  }

  let metadata: Record<string, string> = {};
  if (Object.hasOwn(obj, METADATA_KEY)) {
    const m = obj[METADATA_KEY];
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail(`'${METADATA_KEY}' is not an object of strings`);
    const pairs = Object.entries(m as Record<string, unknown>);
    for (const [k, v] of pairs) {
      if (typeof v !== 'string') fail(`'${METADATA_KEY}'.${k} is ${typeof v}, not a string`);
    }
    metadata = Object.fromEntries(pairs) as Record<string, string>; // fromEntries: a '__proto__' key stays data
  }

  const dataStart = 8 + n;
  const dataSize = fileSize - dataStart;
  const entries = new Map<string, TensorEntry>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const name of keys) {
    if (name === METADATA_KEY) continue;
    const bad = (what: string): never => fail(`tensor '${name}': ${what}`);
    const info = obj[name];
    if (typeof info !== 'object' || info === null || Array.isArray(info)) bad('entry is not an object');
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (dtype === undefined) bad('missing dtype');
    if (typeof dtype !== 'string') bad(`dtype is ${JSON.stringify(dtype)}, not a string`);
    if (!isSafetensorsDType(dtype)) {
      bad(`unknown or unsupported dtype '${dtype}' (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    if (shape === undefined) bad('missing shape');
    if (!Array.isArray(shape)) bad(`shape is ${JSON.stringify(shape)}, not an array`);
    for (const d of shape as unknown[]) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        bad(`shape ${JSON.stringify(shape)} has dimension ${JSON.stringify(d)}, not a non-negative integer`);
      }
    }
    if (offsets === undefined) bad('missing data_offsets');
    if (!Array.isArray(offsets) || offsets.length !== 2 ||
        !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
      bad(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const dims = shape as number[];
    const [begin, end] = offsets as [number, number];
    const dt = dtype as SafetensorsDType;
    let numel = 1;
    for (const d of dims) numel *= d;
    const nbytes = numel * DTYPE_BYTES[dt];
    if (!Number.isSafeInteger(nbytes)) bad(`shape ${JSON.stringify(dims)} × ${dt} overflows`);
    if (begin > end) bad(`data_offsets [${begin}, ${end}]: begin is after end`);
    if (end > dataSize) {
      bad(`data_offsets [${begin}, ${end}] run past the data area (${dataSize} bytes after the ${n}-byte header)`);
    }
    if (end - begin !== nbytes) {
      bad(`shape ${JSON.stringify(dims)} × ${dt} (${DTYPE_BYTES[dt]} B) = ${nbytes} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.set(name, { name, dtype: dt, shape: dims.slice(), byteOffset: dataStart + begin, byteLength: nbytes, file });
    spans.push({ name, begin, end });
  }

  // Metadata::validate: sorted by offsets, the tensors must tile the data area exactly.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: string | undefined;
  for (const s of spans) {
    if (s.begin < cursor) {
      fail(`tensor '${s.name}': data_offsets [${s.begin}, ${s.end}] overlap tensor '${prev}' (which ends at ${cursor})`);
    }
    if (s.begin > cursor) {
      fail(`tensor '${s.name}': data_offsets [${s.begin}, ${s.end}] leave a gap of ${s.begin - cursor} unused bytes at data offset ${cursor}` +
        (prev === undefined ? '' : ` (after tensor '${prev}')`));
    }
    cursor = s.end;
    prev = s.name;
  }
  if (cursor !== dataSize) {
    fail(`data area is ${dataSize} bytes but the tensors cover ${cursor}` +
      (prev === undefined ? '' : ` (last tensor '${prev}' ends at ${cursor})`) + '; the file has trailing bytes');
  }
  return { headerLength: n, metadata, entries };
}

/** Top-level keys of a valid JSON object text, in document order (JSON.parse moves integer-like keys first). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      let escaped = false;
      while (text.charCodeAt(j) !== 0x22) {
        if (text.charCodeAt(j) === 0x5c) {
          escaped = true;
          j += 2;
        } else {
          j++;
        }
      }
      if (depth === 1 && expectKey) {
        keys.push(escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j));
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2c && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

// ---------------------------------------------------------------- writer

interface PlannedTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  byteLength: number;
  bytes: () => Uint8Array;
}

const TF_FLOAT_CONVERT: Record<'F32' | 'F16' | 'BF16', (x: Float32Array) => ArrayBufferView> = {
  F32: (x) => x,
  F16: f32ToF16,
  BF16: f32ToBf16,
};

function planTensor(file: string, name: string, t: tf.Tensor | RawTensor, floatDType: 'F32' | 'F16' | 'BF16'): PlannedTensor {
  const bad = (what: string): never => {
    throw new TfvlmError(`safetensors ${file}: cannot write tensor '${name}': ${what}`);
  };
  if (name === METADATA_KEY) bad(`'${METADATA_KEY}' is reserved`);
  if (t instanceof tf.Tensor) {
    if (t.isDisposed) bad('tensor is disposed');
    const shape = t.shape.slice();
    let dtype: SafetensorsDType;
    let bytes: () => Uint8Array;
    const asBytes = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (t.dtype === 'float32') {
      dtype = floatDType;
      const convert = TF_FLOAT_CONVERT[floatDType];
      bytes = () => asBytes(convert(t.dataSync() as Float32Array));
    } else if (t.dtype === 'int32') {
      dtype = 'I32';
      bytes = () => asBytes(t.dataSync() as Int32Array);
    } else if (t.dtype === 'bool') {
      dtype = 'BOOL';
      bytes = () => Uint8Array.from(t.dataSync() as Uint8Array, (v) => (v ? 1 : 0));
    } else {
      return bad(`tf dtype '${t.dtype}' has no safetensors equivalent`);
    }
    return { name, dtype, shape, byteLength: t.size * DTYPE_BYTES[dtype], bytes };
  }
  const { dtype, shape, data } = t as RawTensor;
  if (!isSafetensorsDType(dtype)) bad(`unknown dtype '${String(dtype)}'`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  const byteLength = numel * DTYPE_BYTES[dtype];
  const checked = (view: ArrayBufferView): Uint8Array => {
    if (!ArrayBuffer.isView(view)) bad('data is not an ArrayBufferView');
    if (view.byteLength !== byteLength) {
      bad(`shape ${JSON.stringify(shape)} × ${dtype} needs ${byteLength} bytes, data has ${view.byteLength}`);
    }
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  };
  if (typeof data === 'function') return { name, dtype, shape: shape.slice(), byteLength, bytes: () => checked(data()) };
  const bytes = checked(data);
  return { name, dtype, shape: shape.slice(), byteLength, bytes: () => bytes };
}

/**
 * Writes a safetensors file: tensors in the given order, header space-padded to a multiple of 8
 * (as the Rust crate does), float32 tensors as F32 unless floatDType, int32 → I32, bool → BOOL.
 * Streams one tensor at a time to a temporary file that is renamed into place when complete.
 */
export function writeSafetensors(
  file: string,
  tensors: Record<string, tf.Tensor | RawTensor> | Map<string, tf.Tensor | RawTensor>,
  metadata?: Record<string, string>,
  options?: { floatDType?: 'F32' | 'F16' | 'BF16' },
): void {
  const floatDType = options?.floatDType ?? 'F32';
  if (!(floatDType in TF_FLOAT_CONVERT)) {
    throw new TfvlmError(`safetensors ${file}: floatDType must be F32, F16 or BF16, got '${floatDType}'`);
  }
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const plan = list.map(([name, t]) => planTensor(file, name, t, floatDType));

  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new TfvlmError(`safetensors ${file}: metadata '${k}' is ${typeof v}, must be a string`);
      }
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const p of plan) {
    const info = { dtype: p.dtype, shape: p.shape, data_offsets: [offset, offset + p.byteLength] };
    parts.push(`${JSON.stringify(p.name)}:${JSON.stringify(info)}`);
    offset += p.byteLength;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + headerLength).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLength), true);
  head.set(json, 8);

  let sink: FileSink | undefined;
  try {
    sink = host().create(file);
    const write = (buf: Uint8Array) => sink!.write(buf);
    write(head);
    for (const p of plan) {
      const bytes = p.bytes();
      if (bytes.length !== p.byteLength) {
        throw new TfvlmError(`safetensors ${file}: tensor '${p.name}' produced ${bytes.length} bytes, expected ${p.byteLength}`);
      }
      write(bytes);
    }
    sink.commit();
    sink = undefined;
  } catch (e) {
    sink?.abort();
    if (e instanceof TfvlmError) throw e;
    throw new TfvlmError(`safetensors ${file}: write failed: ${(e as Error).message}`);
  }
}
