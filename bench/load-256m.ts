// Load + vision benchmark at SmolVLM-256M-Instruct size with random weights:
//   tsx bench/load-256m.ts [--dir DIR] [--dtype bf16|f32]
// Generates the checkpoint (real config from test/fixtures/smolvlm-256m-real-tokenizer) in a child
// process if missing, so this process's peak RSS measures loading alone; then runs one 512×512 tile
// through the vision encoder + connector.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tf, initBackend } from '../src/backend/index.ts';
import { Idefics3Model } from '../src/models/index.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { dir: { type: 'string' }, dtype: { type: 'string', default: 'bf16' } } });
const dir = values.dir ?? path.join(os.tmpdir(), `tfvlm-smolvlm-256m-random-${values.dtype}`);
const MB = 2 ** 20;
const peakRssMB = () => (process.resourceUsage().maxRSS * 1024) / MB;

if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
  console.log(`generating ${dir} …`);
  execFileSync(process.execPath, [
    '--import', 'tsx', path.join(ROOT, 'bench/make-random-checkpoint.ts'), '--preset', 'smolvlm-256m-instruct',
    '--out', dir, '--dtype', values.dtype!, '--seed', '0',
  ], { stdio: 'inherit', cwd: ROOT });
}

const backend = await initBackend();
const rssBefore = process.memoryUsage().rss / MB;
const t0 = performance.now();
const loadCpu0 = process.cpuUsage();
const model = await Idefics3Model.load(dir);
const loadMs = performance.now() - t0;
const loadCpu = process.cpuUsage(loadCpu0);
const rssAfter = process.memoryUsage().rss / MB;
const fileMB = fs.statSync(path.join(dir, 'model.safetensors')).size / MB;
console.log(`backend ${backend}; checkpoint ${fileMB.toFixed(0)} MiB (${values.dtype})`);
console.log(`load: ${(loadMs / 1000).toFixed(2)} s (CPU ${((loadCpu.user + loadCpu.system) / 1e6).toFixed(2)} s); RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB; peak RSS ${peakRssMB().toFixed(0)} MiB; tf.memory ${(tf.memory().numBytes / MB).toFixed(0)} MiB in ${tf.memory().numTensors} tensors`);

const vc = model.config.vision_config;
const pixels = tf.randomUniform([1, 1, vc.num_channels, vc.image_size, vc.image_size], -1, 1, 'float32', 1);
const times: number[] = [];
const cpuTimes: number[] = [];
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const features = model.encodeImages(pixels);
  features.dataSync();
  times.push(performance.now() - t);
  const cpu = process.cpuUsage(cpu0);
  cpuTimes.push((cpu.user + cpu.system) / 1000);
  if (i === 0) console.log(`image features: [${features.shape}]`);
  features.dispose();
}
console.log(`one ${vc.image_size}×${vc.image_size} tile, vision encoder + connector: wall ${times.map((t) => `${t.toFixed(0)} ms`).join(', ')} (first is warm-up); ` +
  `CPU time ${cpuTimes.map((t) => `${t.toFixed(0)} ms`).join(', ')} (wall ≫ CPU means other processes share the cores)`);
console.log(`peak RSS overall: ${peakRssMB().toFixed(0)} MiB`);
pixels.dispose();
model.dispose();
