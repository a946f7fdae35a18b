// End to end on a SmolVLM-256M-size random checkpoint, in its own process so peak RSS is this
// model's alone: load, the first (cold) prompt, vision encoder per 512×512 tile and the prompt again
// warm, decode at short and long context. Run by bench/run.ts:
//   node --import tsx bench/lib/e2e.ts --dir CHECKPOINT --out RESULT.json [--quick] [--weights stored|float32] [--dtype auto|q8|q4]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { tf, initBackend, backendInfo } from '../../src/backend/index.ts';
import { Idefics3Model } from '../../src/models/idefics3/model.ts';
import type { WeightsResidence } from '../../src/models/weights.ts';
import type { LoadDType } from '../../src/models/load-options.ts';
import { KernelArena } from '../../src/kernels/index.ts';
import { formatBytes, type PackedMatrix } from '../../src/layers/weight-store.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { generateTokens, type TokenLoopResult } from '../../src/generation/generate.ts';
import { GREEDY } from '../../src/generation/sampler.ts';
import { image } from '../../test/helpers/paths.ts';
import { MB, median } from './measure.ts';
import { measureDecodeBreakdown, type DecodeBreakdown } from './decode-breakdown.ts';

export interface DecodeRun {
  context: number;
  tokens: number;
  ms_per_token: number;
  tok_s: number;
}

export interface E2EResult {
  /** Where the weights lived: 'stored' (checkpoint precision, tfvlm's kernels) or 'float32' (tfjs tensors, XNNPACK). */
  weights: WeightsResidence;
  /** 'auto': as stored; 'q8' / 'q4': quantized at load (groups of 64). */
  dtype: LoadDType;
  checkpoint_mb: number;
  load_ms: number;
  /** Warm: the tile's weights already packed by XNNPACK. */
  vision_ms_per_tile: number;
  vision_runs_ms: number[];
  /** The first tile after load (XNNPACK packs every vision weight it multiplies). */
  vision_cold_ms: number;
  prompt_tokens: number;
  /** Warm: vision + embedding + decoder over the prompt + first token, every weight already packed. */
  time_to_first_token_ms: number;
  /** The same right after load (the first use of every weight). */
  time_to_first_token_cold_ms: number;
  /** Warm: decoder over the prompt only (after vision); median of 2 (--quick) or 3 runs. */
  prefill_ms: number;
  prefill_tok_s: number;
  /** The decoder's first use after load: includes XNNPACK packing every decoder weight. */
  prefill_cold_ms: number;
  /** Short context (after the prompt), then long context (a cache already holding ~2000 positions). */
  decode: [DecodeRun, DecodeRun];
  /** Bytes of every weight a decode step reads, as held (decoder layers, final norm, LM head; one embedding row is negligible). */
  decode_weight_bytes: number;
  decode_breakdown: DecodeBreakdown;
  peak_rss_mb: number;
  tensors_mb_after_load: number;
  /** The wasm heap (all tensors + XNNPACK's packed weights) after load and after every weight was used once. */
  wasm_heap_mb_after_load: number | null;
  wasm_heap_mb_after_warmup: number | null;
  threads: number;
}

/** Bytes of the weights in a tree: float32 tensors, and packed matrices in their stored dtype. */
function tensorBytes(tree: unknown, seen = new Set<unknown>()): number {
  if (tree === null || typeof tree !== 'object' || seen.has(tree)) return 0;
  seen.add(tree);
  if (tree instanceof tf.Tensor) return tree.size * 4;
  if (tree instanceof KernelArena) return 0;
  const m = tree as Partial<PackedMatrix>;
  if (m.arena instanceof KernelArena && m.format && m.rows && m.cols) return formatBytes(m.format, m.rows, m.cols);
  return Object.values(tree as Record<string, unknown>).reduce<number>((a, v) => a + tensorBytes(v, seen), 0);
}

async function drain(gen: AsyncGenerator<unknown, TokenLoopResult>): Promise<TokenLoopResult> {
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
  }
}

/** Bytes of the wasm backend's memory (it only grows), or null on other backends. */
function wasmHeapMb(): number | null {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8 ? wasm.HEAPU8.buffer.byteLength / MB : null;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' }, out: { type: 'string' }, quick: { type: 'boolean' }, weights: { type: 'string', default: 'stored' },
      dtype: { type: 'string', default: 'auto' },
    },
  });
  if (!values.dir || !values.out) throw new Error('usage: e2e.ts --dir CHECKPOINT --out RESULT.json [--quick] [--weights stored|float32] [--dtype auto|q8|q4]');
  const weights = values.weights as WeightsResidence;
  const dtype = values.dtype as LoadDType;
  const quick = values.quick ?? false;
  await initBackend();
  const t0 = performance.now();
  const model = await Idefics3Model.load(values.dir, { weights, dtype });
  const loadMs = performance.now() - t0;
  const tensorsMb = tf.memory().numBytes / MB;
  const heapAfterLoad = wasmHeapMb();
  const processor = await VlmProcessor.load(values.dir);

  // The 81-token one-image prompt, image splitting off.
  const inputs = await processor.fromMessages(
    [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Can you describe this image?' }] }],
    { images: [[image('astronaut.png')]], imageSplitting: false },
  );
  const [promptIds] = inputs.input_ids;
  if (!promptIds) throw new Error('e2e: the processor returned no prompt row');
  const promptTokens = promptIds.length;
  const generate = async (maxNewTokens: number): Promise<{ firstTokenMs: number; result: TokenLoopResult }> => {
    const t = performance.now();
    const gen = generateTokens(model, inputs, { ...GREEDY, seed: 0, maxNewTokens, eosTokenIds: [] });
    let r = await gen.next();
    const firstTokenMs = performance.now() - t;
    while (!r.done) r = await gen.next();
    return { firstTokenMs, result: r.value };
  };
  // Cold: the first prompt after load uses (and XNNPACK packs) every vision and decoder weight.
  const cold = await generate(1);

  // One 512×512 tile through the vision encoder + connector, warm.
  const vc = model.config.vision_config;
  const pixels = tf.randomUniform([1, 1, vc.num_channels, vc.image_size, vc.image_size], -1, 1, 'float32', 1);
  const visionRuns: number[] = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    const t = performance.now();
    const f = model.encodeImages(pixels);
    f.dataSync();
    f.dispose();
    visionRuns.push(performance.now() - t);
  }
  pixels.dispose();

  // Warm: the same prompt again (median of a few runs), then short-context decode.
  const warmRuns: { firstTokenMs: number; result: TokenLoopResult }[] = [];
  for (let i = 0; i < (quick ? 2 : 3); i++) warmRuns.push(await generate(1));
  const firstTokenMs = median(warmRuns.map((r) => r.firstTokenMs));
  const prefillMs = median(warmRuns.map((r) => r.result.timings.prefillMs));
  const shortTokens = quick ? 8 : 48;
  const short = (await generate(shortTokens)).result;
  const heapAfterWarmup = wasmHeapMb();

  // Long context: a cache already holding ~2000 positions (random keys/values: decode cost depends
  // on the length only), then a one-token prompt and decode steps.
  const longContext = 2000;
  const tc = model.config.text_config;
  const cache = model.createCache();
  const longTokens = quick ? 6 : 24;
  let long: TokenLoopResult;
  try {
    tf.tidy(() => {
      const k = tf.randomNormal([1, tc.num_key_value_heads, longContext, tc.head_dim], 0, 1, 'float32', 2);
      for (const c of cache) c.update(k, k);
    });
    long = await drain(generateTokens(model, { input_ids: [[1]] }, { ...GREEDY, seed: 0, maxNewTokens: longTokens, eosTokenIds: [], cache }));
  } finally {
    for (const c of cache) c.dispose();
  }

  const decodeWeightBytes = tensorBytes(model.text.weights.layers) + tensorBytes(model.text.weights.norm) + tensorBytes(model.text.lmHead);
  const info = await backendInfo();
  const breakdown = await measureDecodeBreakdown(
    model,
    async (n) => { await drain(generateTokens(model, { input_ids: [[1]] }, { ...GREEDY, seed: 0, maxNewTokens: n, eosTokenIds: [] })); },
    { threads: [...new Set([1, info.threads])], quick },
  );
  const result: E2EResult = {
    weights,
    dtype,
    checkpoint_mb: fs.statSync(`${values.dir}/model.safetensors`).size / MB,
    load_ms: loadMs,
    vision_ms_per_tile: median(visionRuns),
    vision_runs_ms: visionRuns,
    vision_cold_ms: cold.result.timings.embedMs,
    prompt_tokens: promptTokens,
    time_to_first_token_ms: firstTokenMs,
    time_to_first_token_cold_ms: cold.firstTokenMs,
    prefill_ms: prefillMs,
    prefill_tok_s: (promptTokens / prefillMs) * 1000,
    prefill_cold_ms: cold.result.timings.prefillMs,
    decode: [
      { context: promptTokens + shortTokens, tokens: short.timings.decodeTokens, ms_per_token: short.timings.decodeMs / short.timings.decodeTokens, tok_s: (short.timings.decodeTokens / short.timings.decodeMs) * 1000 },
      { context: longContext + longTokens, tokens: long.timings.decodeTokens, ms_per_token: long.timings.decodeMs / long.timings.decodeTokens, tok_s: (long.timings.decodeTokens / long.timings.decodeMs) * 1000 },
    ],
    decode_weight_bytes: decodeWeightBytes,
    decode_breakdown: breakdown,
    peak_rss_mb: (process.resourceUsage().maxRSS * 1024) / MB,
    tensors_mb_after_load: tensorsMb,
    wasm_heap_mb_after_load: heapAfterLoad,
    wasm_heap_mb_after_warmup: heapAfterWarmup,
    threads: info.threads,
  };
  model.dispose();
  fs.writeFileSync(values.out, JSON.stringify(result, null, 2));
}

await main();
