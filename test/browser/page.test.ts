// The page in a real browser: Debian's chromium, headless, driven by puppeteer-core (no browser
// download), against scripts/web-server.mjs on a loopback port with the bundle built from this
// checkout. For each backend (wasm; WebGPU on SwiftShader, chromium's CPU Vulkan): load the demo
// model, upload examples/assets/shapes.png, press Describe, and the answer's tokens must equal the
// Node CLI's greedy tokens (`tfvlm describe --greedy --json`). Screenshots go to test-artifacts/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, ElementHandle } from 'puppeteer-core';
import { startWebServer } from '../../scripts/web-server.mjs';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = process.env.TFVLM_CHROMIUM ?? '/usr/bin/chromium';
const IMAGE = path.join(ROOT, 'examples', 'assets', 'shapes.png');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const missing = fs.existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM} (apt-get install chromium, or set TFVLM_CHROMIUM)`;

interface PageResult {
  question: string;
  text: string;
  generatedIds: number[];
  stopReason: string;
  backend: string;
}

/** The CLI's greedy answer for the image, the reference the page must equal. */
function cliAnswer(): { generated_ids: number[]; text: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli.ts'), 'describe', IMAGE, '--greedy', '--json'], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, TFVLM_BACKEND: 'wasm' } });
  assert.equal(r.status, 0, `tfvlm describe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { generated_ids: number[]; text: string };
}

describe('the page in headless chromium', { skip: missing }, () => {
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;
  let reference: { generated_ids: number[]; text: string };

  before(async () => {
    const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-web.mjs')], { encoding: 'utf8', cwd: ROOT });
    assert.equal(built.status, 0, `npm run build:web failed:\n${built.stdout}\n${built.stderr}`);
    reference = cliAnswer();
    server = await startWebServer({ port: 0 });
    const { default: puppeteer } = await import('puppeteer-core');
    browser = await puppeteer.launch({
      executablePath: CHROMIUM, headless: true,
      // SwiftShader: chromium's own CPU implementation of WebGPU (through its Vulkan driver), correct and slow.
      args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'],
    });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  for (const backend of ['wasm', 'webgpu'] as const) {
    it(`${backend}: describes shapes.png with the CLI's greedy tokens, and shows question, answer and timings`, { timeout: 300_000 }, async () => {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      try {
        const opened = performance.now();
        await page.goto(`${server.url}/?backend=${backend}`);
        await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), { timeout: 120_000 });
        const shown = await page.$eval('#backend', (e) => e.textContent ?? '');
        assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready', `page: ${await page.$eval('#error', (e) => e.textContent)}`);
        assert.ok(shown.startsWith(backend), `backend shown: ${shown}`);
        if (backend === 'wasm') {
          // The page is cross-origin isolated: one thread per logical core, at most tfjs's 4.
          const threads = Math.min(4, await page.evaluate(() => navigator.hardwareConcurrency));
          assert.match(shown, new RegExp(`^wasm, SIMD, ${threads} threads?, weights stored$`));
        }
        const input = await page.$('input#file[type=file]');
        assert.ok(input, 'no file input');
        await (input as ElementHandle<HTMLInputElement>).uploadFile(IMAGE);
        await page.waitForFunction(() => !(document.getElementById('describe') as HTMLButtonElement).disabled, { timeout: 30_000 });
        const ready = performance.now();
        await page.click('#describe');
        await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), { timeout: 280_000 });
        const answered = performance.now();
        console.log(`browser ${backend}: page open to model ready ${Math.round(ready - opened)} ms, Describe to answer ${Math.round(answered - ready)} ms`);
        await page.screenshot({ path: path.join(ARTIFACTS, `browser-${backend}.png`), fullPage: true });
        const result = await page.evaluate(() => (window as unknown as { tfvlmResult?: unknown }).tfvlmResult) as PageResult | undefined;
        assert.ok(result, `no answer: ${await page.$eval('#error', (e) => e.textContent)}`);
        assert.deepEqual(result.generatedIds, reference.generated_ids);
        assert.equal(result.text, reference.text);
        assert.equal(await page.$eval('#asked', (e) => e.textContent), 'Describe this image.');
        assert.equal(await page.$eval('#answer', (e) => e.textContent), reference.text);
        assert.match(await page.$eval('#timings', (e) => e.textContent ?? ''), /first token \d+ ms .* prefill \d+ ms .* tokens in \d+ ms/);
        assert.deepEqual(errors, []);
      } finally {
        await page.close();
      }
    });
  }
});
