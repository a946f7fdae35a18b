// `tfvlm serve` as a process: help, flag checks, start on a free port, answer, stop on SIGTERM.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fixture } from '../helpers/paths.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const MODEL = fixture('tiny-smolvlm');
const ENV = { ...process.env, TFVLM_MODEL: '' };

describe('tfvlm serve (CLI)', () => {
  it('--help prints every flag; tfvlm --help lists the command', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8', env: ENV });
    assert.equal(r.status, 0, r.stderr);
    for (const flag of ['--model', '--model-id', '--host', '--port', '--max-batch', '--max-queue', '--max-body-mb', '--allow-local-files',
      '--allow-remote-images', '--image-splitting', '--dtype', '--quiet', 'POST /v1/chat/completions', 'GET  /v1/models', '/health']) {
      assert.ok(r.stdout.includes(flag), `help mentions ${flag}`);
    }
    const top = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8', env: ENV });
    assert.match(top.stdout, /^\s+serve\s+an OpenAI-compatible HTTP server/m);
  });

  it('refuses bad flag values by name before loading anything', () => {
    for (const [args, message] of [
      [['--port', '70000'], /--port must be a whole number from 0 to 65535/],
      [['--max-batch', '0'], /--max-batch must be a whole number from 1/],
      [['--max-body-mb', '0'], /--max-body-mb must be more than 0/],
      [['--image-splitting', 'maybe'], /--image-splitting must be on or off/],
    ] as const) {
      const r = spawnSync(process.execPath, [BIN, 'serve', '--model', MODEL, ...args], { encoding: 'utf8', env: ENV });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, message);
    }
  });

  it('--port 0 starts on a free port, answers /health and a completion, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--model', MODEL, '--port', '0', '--max-batch', '2', '--image-splitting', 'off'], { env: ENV });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening on" line in 60 s:\n${stderr}`)), 60_000);
        child.stderr.on('data', (d: string) => {
          stderr += d;
          const m = /listening on (http:\/\/\S+)/.exec(stderr);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.on('exit', () => reject(new Error(`exited before listening:\n${stderr}`)));
      });
      const health = await fetch(`${url}/health`);
      assert.equal(health.status, 200);
      assert.equal((await health.json()).status, 'ok');
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0 }),
      });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).object, 'chat.completion');
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /SIGTERM: stopping/);
      assert.match(stderr, /stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
