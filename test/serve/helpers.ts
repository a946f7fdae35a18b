// Shared by the server tests: the batcher, requests without the openai client, and waiting for idle.
import fs from 'node:fs';
import http from 'node:http';
import type { GenerationOutput } from '../../src/engine.ts';
import type { ServeBatcher } from '../../src/serve/http-server.ts';

export { VlmBatcher } from '../../src/vlm-batcher.ts';

export const dataUri = (file: string, type = 'image/png') => `data:${type};base64,${fs.readFileSync(file).toString('base64')}`;

export async function postJson(url: string, body: unknown): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** A batcher that records how each of its generations ended: its stop reason, or 'left' when the server left the loop early. */
export function recording(batcher: ServeBatcher): ServeBatcher & { outputs: GenerationOutput[]; ends: string[]; onStart?: () => void } {
  const outputs: GenerationOutput[] = [];
  const ends: string[] = [];
  const rec = {
    outputs,
    ends,
    /** Called as each generation starts. */
    onStart: undefined as (() => void) | undefined,
    get load() {
      return batcher.load;
    },
    async *stream(request: Parameters<ServeBatcher['stream']>[0], options: Parameters<ServeBatcher['stream']>[1]) {
      let out: GenerationOutput | undefined;
      rec.onStart?.();
      try {
        out = yield* batcher.stream(request, options);
        return out;
      } finally {
        ends.push(out?.stopReason ?? 'left');
        if (out) outputs.push(out);
      }
    },
  };
  return rec;
}

/** Resolves once the batcher has nothing running or waiting (and a tick more, for the handlers to finish). */
export async function waitIdle(batcher: ServeBatcher, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const { running, waiting } = batcher.load;
    if (running === 0 && waiting === 0) break;
    if (Date.now() - t0 > timeoutMs) throw new Error(`batcher still busy after ${timeoutMs} ms: ${JSON.stringify(batcher.load)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 50));
}

/** A raw HTTP request (for bodies fetch will not send as asked): status and body, or the socket error. */
export function rawRequest(url: string, options: http.RequestOptions, write: (req: http.ClientRequest) => void): Promise<{ status?: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    let responded = false;
    const req = http.request(url, options, (res) => {
      responded = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', (e) => resolve({ status: res.statusCode, body, error: e.message }));
      res.on('aborted', () => resolve({ status: res.statusCode, body, error: 'aborted' }));
    });
    // Writing a body the server refused may fail (EPIPE, ECONNRESET) after its answer came: the answer counts.
    req.on('error', (e) => { if (!responded) resolve({ body: '', error: e.message }); });
    write(req);
  });
}
