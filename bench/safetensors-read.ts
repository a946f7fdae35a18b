// Safetensors read throughput: writes a ~500 MB BF16 checkpoint shaped like SmolVLM-256M
// (SigLIP-style vision tower 768/3072 × 12, connector 576×12288, Llama-style decoder 576/1536 × 30,
// vocab 49280) to os.tmpdir(), reads it back tensor by tensor through Checkpoint.readArray in a
// child process (so peak RSS is the reader's alone), prints MB/s and peak RSS, deletes the file.
// Usage: npx tsx bench/safetensors-read.ts [--json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { initBackend } from '../src/backend/index.ts';
import { Checkpoint } from '../src/io/checkpoint.ts';
import { writeSafetensors, type RawTensor } from '../src/io/safetensors.ts';

function smolvlmShapes(): [string, number[]][] {
  const out: [string, number[]][] = [];
  const v = 768, vi = 3072, t = 576, ti = 1536, kv = 192, vocab = 49280;
  out.push(['model.vision_model.embeddings.patch_embedding.weight', [v, 3, 16, 16]]);
  out.push(['model.vision_model.embeddings.position_embedding.weight', [1024, v]]);
  for (let l = 0; l < 12; l++) {
    const p = `model.vision_model.encoder.layers.${l}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      out.push([`${p}.self_attn.${n}.weight`, [v, v]], [`${p}.self_attn.${n}.bias`, [v]]);
    }
    out.push([`${p}.mlp.fc1.weight`, [vi, v]], [`${p}.mlp.fc1.bias`, [vi]]);
    out.push([`${p}.mlp.fc2.weight`, [v, vi]], [`${p}.mlp.fc2.bias`, [v]]);
    out.push([`${p}.layer_norm1.weight`, [v]], [`${p}.layer_norm1.bias`, [v]]);
    out.push([`${p}.layer_norm2.weight`, [v]], [`${p}.layer_norm2.bias`, [v]]);
  }
  out.push(['model.vision_model.post_layernorm.weight', [v]], ['model.vision_model.post_layernorm.bias', [v]]);
  out.push(['model.connector.modality_projection.proj.weight', [t, v * 16]]);
  out.push(['model.text_model.embed_tokens.weight', [vocab, t]]);
  for (let l = 0; l < 30; l++) {
    const p = `model.text_model.layers.${l}`;
    out.push([`${p}.self_attn.q_proj.weight`, [t, t]], [`${p}.self_attn.k_proj.weight`, [kv, t]]);
    out.push([`${p}.self_attn.v_proj.weight`, [kv, t]], [`${p}.self_attn.o_proj.weight`, [t, t]]);
    out.push([`${p}.mlp.gate_proj.weight`, [ti, t]], [`${p}.mlp.up_proj.weight`, [ti, t]]);
    out.push([`${p}.mlp.down_proj.weight`, [t, ti]]);
    out.push([`${p}.input_layernorm.weight`, [t]], [`${p}.post_attention_layernorm.weight`, [t]]);
  }
  out.push(['model.text_model.norm.weight', [t]], ['lm_head.weight', [vocab, t]]);
  return out;
}

const RESULT_MARK = 'READ_RESULT ';

/** Random finite bf16 bits (|x| in [2^-8, 2^-4)); tensors are views into this pool, so the writer never holds 500 MB. */
function randomBf16Pool(n: number): Uint16Array {
  const pool = new Uint16Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    pool[i] = (s & 0x807f) | ((0x77 + ((s >>> 8) & 3)) << 7);
  }
  return pool;
}

function writeCheckpoint(file: string): { tensors: number; bytes: number } {
  const shapes = smolvlmShapes();
  const maxNumel = Math.max(...shapes.map(([, s]) => s.reduce((a, b) => a * b, 1)));
  const pool = randomBf16Pool(maxNumel + 4096);
  const tensors = new Map<string, RawTensor>();
  shapes.forEach(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const start = (i * 997) % 4096;
    tensors.set(name, { dtype: 'BF16', shape, data: pool.subarray(start, start + n) });
  });
  writeSafetensors(file, tensors, { format: 'pt' });
  return { tensors: shapes.length, bytes: fs.statSync(file).size };
}

/**
 * fresh: readArray returns a new array per tensor (the default API);
 * reuse: one Float32Array sized for the largest tensor serves every read (no fresh pages per tensor);
 * tensor: readTensor on the active backend (wasm here), each tensor disposed right away.
 */
async function readAll(file: string, mode: string): Promise<void> {
  const reuse = mode === 'reuse';
  let backend = '';
  if (mode === 'tensor') backend = await initBackend();
  const t0 = performance.now();
  const ckpt = Checkpoint.open(file);
  let elements = 0;
  let checksum = 0;
  const scratch = reuse
    ? new Float32Array(Math.max(...ckpt.keys().map((k) => ckpt.entry(k).shape.reduce((a, b) => a * b, 1))))
    : undefined;
  for (const name of ckpt.keys()) {
    if (mode === 'tensor') {
      const t = ckpt.readTensor(name);
      elements += t.size;
      t.dispose();
      continue;
    }
    const a = ckpt.readArray(name, scratch);
    elements += a.length;
    checksum += a[a.length >> 1]!;
  }
  const wallMs = performance.now() - t0;
  const stats = ckpt.stats;
  ckpt.close();
  const bytes = fs.statSync(file).size;
  process.stdout.write(RESULT_MARK + JSON.stringify({
    mode: { fresh: 'readArray, fresh array per tensor', reuse: 'readArray, reused out buffer', tensor: `readTensor on ${backend}` }[mode],
    fileBytes: bytes, bytesRead: stats.bytesRead, tensors: ckpt.keys().length, elements,
    wallMs, readMs: stats.readMs, mbPerS: bytes / 2 ** 20 / (wallMs / 1000),
    peakRssMB: process.resourceUsage().maxRSS / 1024, checksum,
  }));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--read') {
    const [, file, mode] = args;
    if (!file || !mode) throw new Error('usage: safetensors-read.ts --read FILE fresh|reuse|tensor');
    return readAll(file, mode);
  }
  const file = path.join(os.tmpdir(), `tfvlm-bench-${process.pid}.safetensors`);
  try {
    const tw = performance.now();
    const { tensors, bytes } = writeCheckpoint(file);
    const writeMs = performance.now() - tw;
    const self = fileURLToPath(import.meta.url);
    const runs = [];
    for (const mode of ['fresh', 'fresh', 'reuse', 'tensor']) {
      const child = spawnSync(process.execPath, ['--import', 'tsx', self, '--read', file, mode], { encoding: 'utf8' });
      if (child.status !== 0) throw new Error(`reader failed: ${child.stderr}`);
      const line = child.stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (!line) throw new Error(`reader printed no result: ${child.stdout}`);
      runs.push(JSON.parse(line.slice(RESULT_MARK.length)));
    }
    const result = { file: path.basename(file), tensors, fileMB: bytes / 2 ** 20, writeMs, writeMBPerS: bytes / 2 ** 20 / (writeMs / 1000), reads: runs };
    if (args.includes('--json')) {
      console.log(JSON.stringify(result));
    } else {
      console.log(`safetensors read bench: ${tensors} BF16 tensors, ${result.fileMB.toFixed(1)} MB (written in ${(writeMs / 1000).toFixed(2)} s)`);
      for (const [i, r] of runs.entries()) {
        console.log(`  read #${i + 1} (${r.mode}): ${r.mbPerS.toFixed(0)} MB/s (file MB / wall s, page cache warm), ` +
          `${(r.wallMs / 1000).toFixed(2)} s wall, ${(r.readMs / 1000).toFixed(2)} s in readSync, peak RSS ${r.peakRssMB.toFixed(0)} MB`);
      }
    }
  } finally {
    fs.rmSync(file, { force: true });
  }
}

await main();
