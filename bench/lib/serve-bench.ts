// The `serve` bench section: `tfvlm serve`'s HTTP server (in this process, on 127.0.0.1) under 1, 4,
// 8 and 16 concurrent streamed chat requests, each asking for --tokens tokens with temperature 0.
// Per level: aggregate decode tok/s as the clients see it (tokens after each request's first one,
// over the window from the first first-token to the last end), the decode steps' own rate (the
// batcher's rows per step time), time to first token per request (median, max) and wall time.
//   npx tsx bench/lib/serve-bench.ts --dir CHECKPOINT [--streams 1,4,8,16] [--tokens 64] [--dtype q4] [--out FILE]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Vlm } from '../../src/engine.ts';
import type { LoadDType } from '../../src/models/load-options.ts';
import { startServer } from '../../src/serve/http-server.ts';
import { VlmBatcher } from '../../src/vlm-batcher.ts';

export interface ServeLevel {
  streams: number;
  /** Σ (tokens − 1) / (last end − first first token), as the clients measure it. */
  decode_tok_s: number;
  /** The batcher's decode steps alone: tokens / step time. */
  step_tok_s: number;
  ttft_ms_median: number;
  ttft_ms_max: number;
  wall_ms: number;
  tokens: number;
  max_rows: number;
}

export interface ServeResult {
  checkpoint: string;
  dtype: string;
  tokens_per_request: number;
  levels: ServeLevel[];
  /** decode_tok_s at 8 streams over 1 stream, when both ran. */
  speedup_8: number | null;
}

interface StreamTiming {
  ttft: number;
  end: number;
  tokens: number;
}

/** One streamed request; times from `t0`. */
async function streamedRequest(url: string, body: object, t0: number): Promise<StreamTiming> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok || !res.body) throw new Error(`serve bench: HTTP ${res.status}: ${await res.text()}`);
  let ttft = NaN;
  let tokens = 0;
  let buffered = '';
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      const data = event.replace(/^data: /, '');
      if (data === '[DONE]') continue;
      const json = JSON.parse(data) as { choices: { delta?: { content?: string } }[]; usage?: { completion_tokens: number } };
      if (Number.isNaN(ttft) && json.choices[0]?.delta?.content) ttft = performance.now() - t0;
      if (json.usage) tokens = json.usage.completion_tokens;
    }
  }
  return { ttft, end: performance.now() - t0, tokens };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function benchServe(dir: string, opts: { streams: number[]; tokens: number; dtype: LoadDType; log: (s: string) => void }): Promise<ServeResult> {
  const vlm = await Vlm.load(dir, { dtype: opts.dtype });
  const maxBatch = Math.max(...opts.streams);
  const batcher = new VlmBatcher(vlm, { maxBatch, maxQueue: maxBatch });
  const server = await startServer({ vlm, batcher, port: 0 });
  const levels: ServeLevel[] = [];
  try {
    // stream_options: usage in the last chunk; min tokens not in the API, so a checkpoint's eos may end one early (counted as made).
    const body = (i: number) => ({
      model: 'bench', stream: true, stream_options: { include_usage: true }, temperature: 0, max_tokens: opts.tokens,
      messages: [{ role: 'user', content: `Write a long story about the number ${i}.` }],
    });
    await streamedRequest(server.url, { ...body(0), max_tokens: 4 }, performance.now()); // warm-up
    for (const streams of opts.streams) {
      const before = { ...batcher.stats };
      const t0 = performance.now();
      const runs = await Promise.all(Array.from({ length: streams }, (_, i) => streamedRequest(server.url, body(i + 1), t0)));
      const stats = batcher.stats;
      const firstToken = Math.min(...runs.map((r) => r.ttft));
      const lastEnd = Math.max(...runs.map((r) => r.end));
      const decoded = runs.reduce((a, r) => a + Math.max(0, r.tokens - 1), 0);
      const level: ServeLevel = {
        streams,
        decode_tok_s: decoded / ((lastEnd - firstToken) / 1000),
        step_tok_s: (stats.rows - before.rows) / ((stats.decodeMs - before.decodeMs) / 1000),
        ttft_ms_median: median(runs.map((r) => r.ttft)),
        ttft_ms_max: Math.max(...runs.map((r) => r.ttft)),
        wall_ms: lastEnd,
        tokens: runs.reduce((a, r) => a + r.tokens, 0),
        max_rows: stats.maxRows,
      };
      opts.log(`  ${streams} stream(s): ${level.decode_tok_s.toFixed(1)} tok/s decode (steps ${level.step_tok_s.toFixed(1)}), TTFT median ${level.ttft_ms_median.toFixed(0)} ms, max ${level.ttft_ms_max.toFixed(0)} ms`);
      levels.push(level);
    }
  } finally {
    await server.close();
    await batcher.close();
    vlm.dispose();
  }
  const one = levels.find((l) => l.streams === 1);
  const eight = levels.find((l) => l.streams === 8);
  return { checkpoint: dir, dtype: opts.dtype, tokens_per_request: opts.tokens, levels, speedup_8: one && eight ? eight.decode_tok_s / one.decode_tok_s : null };
}

export function serveTable(r: ServeResult): string {
  const lines = [
    `| streams | decode tok/s (clients) | × 1 stream | decode steps tok/s | TTFT median ms | TTFT max ms | wall s |`,
    '|---|---|---|---|---|---|---|',
  ];
  const one = r.levels.find((l) => l.streams === 1)?.decode_tok_s;
  for (const l of r.levels) {
    lines.push(`| ${l.streams} | ${l.decode_tok_s.toFixed(1)} | ${one ? (l.decode_tok_s / one).toFixed(2) : '–'} | ${l.step_tok_s.toFixed(1)} | ${l.ttft_ms_median.toFixed(0)} | ${l.ttft_ms_max.toFixed(0)} | ${(l.wall_ms / 1000).toFixed(1)} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' }, streams: { type: 'string', default: '1,4,8,16' }, tokens: { type: 'string', default: '64' },
      dtype: { type: 'string', default: 'auto' }, out: { type: 'string' },
    },
  });
  if (!values.dir) throw new Error('serve bench: --dir CHECKPOINT is required');
  const result = await benchServe(values.dir, {
    streams: values.streams!.split(',').map(Number), tokens: Number(values.tokens), dtype: values.dtype as LoadDType, log: (s) => console.error(s),
  });
  console.log(serveTable(result));
  console.log(JSON.stringify(result));
  if (values.out) fs.writeFileSync(values.out, JSON.stringify(result));
}
