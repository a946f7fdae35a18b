// Generative retrieval: the batched, prefix-reusing scorer vs naive per-pair scoring (one full forward
// over image + prompt + caption per pair, the image encoded every time), on the same score matrix.
//   npx tsx bench/retrieve.ts [--model DIR] [--images N] [--texts M] [--runs R] [--json]
// Rows: naive pairs; prefix reuse with one candidate per forward (batch 1); prefix reuse + batched.
// Each row is timed after a warm-up call; the largest |Δ| of its matrix against the naive one is shown.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, backendInfo } from '../src/backend/index.ts';
import { Vlm } from '../src/engine.ts';
import { GenerativeRanker } from '../src/tasks/generative-rank.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: `${ROOT}test/fixtures/tiny-smolvlm` },
    images: { type: 'string', default: '2' },
    texts: { type: 'string', default: '8' },
    runs: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const nImages = Number(values.images);
const nTexts = Number(values.texts);
const runs = Math.max(1, Number(values.runs));

const PHOTOS = ['astronaut.png', 'camera.png', 'chelsea.png', 'horse.png', 'rocket.jpg'];
const images = Array.from({ length: nImages }, (_, i) => `${ROOT}test/images/${PHOTOS[i % PHOTOS.length]}`);
const WORDS = ['a photo of a cat', 'a red car parked near a tall building', 'two dogs running on the beach at sunset',
  'an astronaut in a white suit', 'a rocket on the launch pad', 'a horse in a field', 'an old camera on a table', 'a bowl of fruit'];
const texts = Array.from({ length: nTexts }, (_, j) => `${WORDS[j % WORDS.length]}${j >= WORDS.length ? ` (${j})` : ''}`);

await initBackend();
const vlm = await Vlm.load(values.model as string);

async function time<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  await fn(); // warm-up
  let best = Infinity;
  let value!: T;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    value = await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, value };
}

const batched = new GenerativeRanker(vlm, { batchSize: 16 });
const single = new GenerativeRanker(vlm, { batchSize: 1 });
const naive = await time(async () => {
  const m: number[][] = [];
  for (const img of images) {
    const row: number[] = [];
    for (const t of texts) row.push(await batched.scorePairDirect(img, t));
    m.push(row);
  }
  return m;
});
const prefixOnly = await time(async () => (await single.score(images, texts)).logProb);
const full = await time(async () => (await batched.score(images, texts)).logProb);
vlm.dispose();

// Every method scores the same images × texts grid as the naive one.
const maxDiff = (a: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - naive.value[i]![j]!))));
const rows = [
  { method: 'naive pairs (full forward per pair)', ms: naive.ms, maxAbsDiff: 0 },
  { method: 'prefix reuse, 1 candidate / forward', ms: prefixOnly.ms, maxAbsDiff: maxDiff(prefixOnly.value) },
  { method: 'prefix reuse + batched candidates', ms: full.ms, maxAbsDiff: maxDiff(full.value) },
];
const info = await backendInfo();
if (values.json) {
  process.stdout.write(`${JSON.stringify({ model: values.model, backend: info, images: nImages, texts: nTexts, runs, rows })}\n`);
} else {
  console.log(`generative retrieval, ${nImages} images × ${nTexts} texts, ${values.model} (${info.backend}, ${info.threads} thread(s), best of ${runs})`);
  console.log(`| method | ms | ms / pair | speed-up | max |Δ| vs naive |`);
  console.log(`| --- | ---: | ---: | ---: | ---: |`);
  for (const r of rows) {
    console.log(`| ${r.method} | ${r.ms.toFixed(0)} | ${(r.ms / (nImages * nTexts)).toFixed(1)} | ${(naive.ms / r.ms).toFixed(2)}× | ${r.maxAbsDiff.toExponential(1)} |`);
  }
}
