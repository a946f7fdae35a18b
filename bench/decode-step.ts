// Decode time per token alone, for A/B comparisons of the decode path: the random SmolVLM-256M-size
// checkpoint (npm run bench generates it into the OS temp dir), a 20-token text prompt, greedy, the
// median over --steps one-token steps after a warm-up run. To compare two commits, run this script in
// a git worktree of each, alternating, on a quiet machine.
//   npx tsx bench/decode-step.ts [--dir CHECKPOINT] [--steps 40] [--weights stored|float32]
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backend/index.ts';
import { generateTokens } from '../src/generation/generate.ts';
import { loadModel } from '../src/models/registry.ts';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: path.join(os.tmpdir(), 'tfvlm-bench-smolvlm-256m-bf16') },
    steps: { type: 'string', default: '40' },
    weights: { type: 'string', default: 'stored' },
  },
});
const steps = Number(values.steps);
await initBackend();
const model = await loadModel(values.dir!, { weights: values.weights as 'stored' | 'float32' });

async function perToken(n: number): Promise<number[]> {
  const prompt = { input_ids: [Array.from({ length: 20 }, (_, i) => 100 + i)] };
  const options = { maxNewTokens: n, eosTokenIds: [], doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0 };
  const times: number[] = [];
  let t = performance.now();
  const gen = generateTokens(model, prompt, options);
  for (let r = await gen.next(); !r.done; r = await gen.next()) {
    const now = performance.now();
    times.push(now - t);
    t = now;
  }
  return times.slice(1); // the first token comes from the prefill
}

await perToken(10);
const times = (await perToken(steps + 1)).sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
const min = times[0];
const max = times[times.length - 1];
if (median === undefined || min === undefined || max === undefined) throw new Error(`--steps ${values.steps}: no decode step was timed (give a whole number ≥ 1)`);
const row = { steps: times.length, median_ms: median, min_ms: min, max_ms: max, tok_s: 1000 / median };
console.log('| weights | steps | median ms/token | min | max | tok/s | peak RSS MB |\n|---|---|---|---|---|---|---|');
const rss = (process.resourceUsage().maxRSS / 1024).toFixed(0);
console.log(`| ${values.weights} | ${row.steps} | ${median.toFixed(1)} | ${row.min_ms.toFixed(1)} | ${row.max_ms.toFixed(1)} | ${row.tok_s.toFixed(1)} | ${rss} |`);
console.log(JSON.stringify({ bench: 'decode-step', weights: values.weights, ...row, peak_rss_mb: Number(rss) }));
model.dispose();
