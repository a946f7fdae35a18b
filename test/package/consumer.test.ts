// The npm package as a user gets it: `npm pack` (prepare builds dist/), the tarball installed into a
// fresh project, then (a) plain `node` importing 'tfvlm' captions an image with the shipped demo
// model, exactly as the source checkout does; the installed `tfvlm` command runs from dist/; the
// built training path finds tfjs-core's gradients without tsx; (b) a TypeScript consumer under
// `strict` and `noUncheckedIndexedAccess` type-checks against the package's .d.ts files.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vlm } from '../../src/engine.ts';
import { captionRequest } from '../../src/tasks/prompts.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const IMAGE = path.join(ROOT, 'examples', 'assets', 'shapes.png');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The packed tarball's limit (the issue's: the engine, the demo model and the docs). */
const MAX_PACKED_BYTES = 10 * 1024 * 1024;

const CONSUMER_MJS = `
import { Vlm, DEMO_MODEL_DIR, captionRequest } from 'tfvlm';
const vlm = await Vlm.load();
const out = await vlm.generate(captionRequest(['shapes.png']), { maxNewTokens: 60 });
vlm.dispose();
console.log(JSON.stringify({ text: out.text, demo: DEMO_MODEL_DIR }));
`;

const CONSUMER_TS = `
import { Vlm, DEMO_MODEL_DIR, type GenerationOutput } from 'tfvlm';
import { linear } from 'tfvlm/layers';

async function caption(image: string): Promise<string> {
  const vlm: Vlm = await Vlm.load(DEMO_MODEL_DIR, { dtype: 'q8' });
  try {
    const out: GenerationOutput = await vlm.generate({ messages: [{ role: 'user', content: [{ type: 'image', image }] }] });
    const first: number | undefined = out.generatedIds[0];
    return first === undefined ? '' : out.text;
  } finally {
    vlm.dispose();
  }
}
export { caption, linear };
`;

describe('the npm package', () => {
  let tmp: string;
  let tarball: string;
  let consumer: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-package-'));
    const out = execFileSync(NPM, ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const packed = JSON.parse(out.slice(out.indexOf('[')));
    tarball = path.join(tmp, packed[0].filename);
    consumer = path.join(tmp, 'consumer');
    fs.mkdirSync(consumer);
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // The dependencies come from npm's cache (npm ci filled it); the optional native backends are skipped.
    execFileSync(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--omit=optional', tarball], { cwd: consumer, stdio: 'pipe' });
    fs.copyFileSync(IMAGE, path.join(consumer, 'shapes.png'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it(`packs the engine, the demo model and the docs in at most ${MAX_PACKED_BYTES / 2 ** 20} MB, no sources, tests or bench results`, () => {
    assert.ok(fs.statSync(tarball).size <= MAX_PACKED_BYTES, `${fs.statSync(tarball).size} bytes`);
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.ok(files.includes('package/dist/index.js') && files.includes('package/dist/index.d.ts'));
    assert.ok(files.includes('package/dist/kernels/linear.wasm') && files.includes('package/weights/tfvlm-demo/config.json'));
    for (const f of files) assert.doesNotMatch(f, /^package\/(src|test|bench|scripts|examples)\//, f);
  });

  it('plain node: import { Vlm } from "tfvlm" captions an image with the demo model, as the checkout does', async () => {
    fs.writeFileSync(path.join(consumer, 'consumer.mjs'), CONSUMER_MJS);
    const got = JSON.parse(execFileSync(process.execPath, ['consumer.mjs'], { cwd: consumer, encoding: 'utf8' }));
    assert.equal(got.demo, path.join(consumer, 'node_modules', 'tfvlm', 'weights', 'tfvlm-demo') + path.sep);
    const vlm = await Vlm.load();
    try {
      const want = await vlm.generate(captionRequest([IMAGE]), { maxNewTokens: 60 });
      assert.equal(got.text, want.text);
      assert.match(got.text, /circle|triangle|square/);
    } finally {
      vlm.dispose();
    }
  });

  it('the installed tfvlm command runs from dist/', () => {
    const bin = path.join(consumer, 'node_modules', '.bin', 'tfvlm');
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(execFileSync(bin, ['--version'], { cwd: consumer, encoding: 'utf8' }), `tfvlm ${pkg.version}\n`);
    assert.match(execFileSync(bin, ['describe', 'shapes.png'], { cwd: consumer, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), /circle|triangle|square/);
  });

  it("the built training path registers tfjs-core's gradients without tsx", () => {
    const gradients = path.join(consumer, 'node_modules', 'tfvlm', 'dist', 'train', 'gradients.js');
    const script = `
      const { initBackend, tf } = await import('tfvlm');
      const { installTrainingGradients } = await import(${JSON.stringify(gradients)});
      await initBackend();
      installTrainingGradients();
      const g = tf.grad((x) => tf.mul(x, x))(tf.scalar(3));
      console.log(g.dataSync()[0]);
    `;
    assert.equal(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer, encoding: 'utf8' }).trim(), '6');
  });

  it('a TypeScript consumer type-checks under strict and noUncheckedIndexedAccess', () => {
    fs.writeFileSync(path.join(consumer, 'consumer.ts'), CONSUMER_TS);
    // tfjs-core's own hash_util.d.ts names the global \`Long\` of @types/long, which it does not depend
    // on; declared here so every .d.ts, tfvlm's included, is checked (skipLibCheck off).
    fs.writeFileSync(path.join(consumer, 'long.d.ts'), 'type Long = { low: number; high: number; unsigned: boolean };\n');
    fs.writeFileSync(path.join(consumer, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noUncheckedIndexedAccess: true,
        noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')], lib: ['ES2022', 'DOM'],
      },
      files: ['consumer.ts', 'long.d.ts'],
    }));
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: consumer, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      assert.fail(`tsc: ${(e as { stdout?: string }).stdout ?? ''}`);
    }
  });
});
