// The OpenAI-compatible HTTP server on node:http: it only translates. Requests are read under limits
// (body bytes, headers and body deadlines, connections), validated (chat-request.ts), their images
// fetched and decoded (request-images.ts), and handed to the batcher, which owns sequences, batching
// and cancellation; answers go back in OpenAI's shapes (openai-responses.ts). Every request has a
// deadline to arrive and a cancel path: a client that leaves aborts its sequence, which frees its cache.
import http from 'node:http';
import path from 'node:path';
import type { GenerateCallOptions, GenerationOutput, Vlm, VlmRequest } from '../engine.ts';
import { TfvlmError } from '../errors.ts';
import { BatcherClosedError, QueueFullError } from '../generation/continuous-batching.ts';
import { resolvePixelLimits, type PixelLimits } from '../io/pixel-budget.ts';
import { ApiError } from './api-error.ts';
import { messagesSize, parseChatRequest } from './chat-request.ts';
import { DEFAULT_IMAGE_POLICY, type ImagePolicy } from './image-url.ts';
import {
  chatCompletion, chunk, completionMeta, errorBody, finishReason, modelList, modelObject, sseData, SSE_DONE, usageChunk,
  type CompletionMeta,
} from './openai-responses.ts';
import { toVlmRequest } from './request-images.ts';

/** What the server needs of a batcher (src/vlm-batcher.ts VlmBatcher). */
export interface ServeBatcher {
  stream(request: VlmRequest, options?: GenerateCallOptions): AsyncGenerator<string, GenerationOutput>;
  readonly load: { running: number; waiting: number; maxBatch: number; maxQueue: number };
}

export interface ServerOptions extends PixelLimits, Partial<ImagePolicy> {
  vlm: Vlm;
  batcher: ServeBatcher;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Overrides the checkpoint's do_image_splitting for every request (SmolVLM; off is much faster on CPU). */
  imageSplitting?: boolean;
  /** The id /v1/models lists and responses echo (default: the model folder's name). */
  modelId?: string;
  /** Request body limit (default 8 MiB); past it, 413 and the rest is not read. */
  maxBodyBytes?: number;
  /**
   * Characters of message text one request may hold (default 32 × the model's context in tokens, more
   * than any prompt that fits): longer ones are refused before tokenizing, which would hold the server.
   */
  maxPromptChars?: number;
  /** Time for a request's headers to arrive (default 10 s); then Node answers 408 and closes. */
  headersTimeoutMs?: number;
  /** Time for a request's body to arrive once its headers have (default 30 s); then 408 and the connection is closed. */
  requestTimeoutMs?: number;
  /** Time a client may take to read what was written to it (default 30 s); then its request is aborted. */
  stallTimeoutMs?: number;
  /** Open connections at most (default 256); more are refused at connect. */
  maxConnections?: number;
  /** Time an idle keep-alive connection is kept (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** One line per request and per internal error (default: none). */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** `http://host:port` as bound (port 0 resolved). */
  url: string;
  port: number;
  server: http.Server;
  /** Stops accepting, aborts the requests in flight (they get 503 / an SSE error), closes every connection. */
  close(): Promise<void>;
}

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 8 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  stallTimeoutMs: 30_000,
  maxConnections: 256,
  keepAliveTimeoutMs: 5_000,
} as const;

/** The client went away: nothing more is written. */
class ClientGone extends Error {}

interface InFlight {
  controller: AbortController;
  done: Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const o = { ...SERVE_DEFAULTS, ...definedOnly(options) };
  const { vlm, batcher, log } = o;
  for (const key of ['maxBodyBytes', 'headersTimeoutMs', 'requestTimeoutMs', 'stallTimeoutMs', 'maxConnections', 'keepAliveTimeoutMs'] as const) {
    if (!Number.isSafeInteger(o[key]) || o[key] < 1) throw new TfvlmError(`serve: ${key} must be a whole number ≥ 1, got ${o[key]}`);
  }
  const pixelLimits = resolvePixelLimits({ maxImagePixels: o.maxImagePixels, maxRequestPixels: o.maxRequestPixels });
  const policy: ImagePolicy = {
    allowLocalFiles: o.allowLocalFiles ?? DEFAULT_IMAGE_POLICY.allowLocalFiles,
    allowRemoteImages: o.allowRemoteImages ?? DEFAULT_IMAGE_POLICY.allowRemoteImages,
    maxImageBytes: o.maxImageBytes ?? DEFAULT_IMAGE_POLICY.maxImageBytes,
    fetchTimeoutMs: o.fetchTimeoutMs ?? DEFAULT_IMAGE_POLICY.fetchTimeoutMs,
    maxRedirects: o.maxRedirects ?? DEFAULT_IMAGE_POLICY.maxRedirects,
  };
  const modelId = o.modelId ?? path.basename(vlm.dir);
  const created = Math.floor(Date.now() / 1000);
  const sampleByDefault = vlm.generateOptions().doSample;
  const maxPromptChars = o.maxPromptChars ?? 32 * vlm.model.maxPositions;
  const inFlight = new Set<InFlight>();
  let closing = false;

  const server = http.createServer({
    headersTimeout: o.headersTimeoutMs,
    // Node's own whole-request deadline (a plain 408), behind the body deadline below.
    requestTimeout: o.headersTimeoutMs + o.requestTimeoutMs + 1000,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(Math.min(o.headersTimeoutMs, o.requestTimeoutMs) / 4))),
  });
  server.maxConnections = o.maxConnections;
  server.on('request', (req, res) => dispatch(req, res));
  // Expect: 100-continue (curl's way for large bodies): refuse an oversized body before it is sent.
  server.on('checkContinue', (req, res) => {
    if (declaredLength(req) > o.maxBodyBytes) {
      res.on('error', () => {});
      sendError(res, tooLarge(), true);
      return;
    }
    res.writeContinue();
    dispatch(req, res);
  });

  function dispatch(req: http.IncomingMessage, res: http.ServerResponse): void {
    const t0 = performance.now();
    req.on('error', () => {});
    res.on('error', () => {});
    handle(req, res)
      .catch((e: unknown) => {
        log?.(`internal error on ${req.method} ${req.url}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        if (!res.headersSent && !res.destroyed) sendError(res, new ApiError(500, 'internal server error', null, null));
        else res.destroy();
      })
      .finally(() => log?.(`${req.method} ${req.url} ${res.statusCode} ${((performance.now() - t0) / 1000).toFixed(2)} s`));
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return sendError(res, new ApiError(400, `invalid request URL ${JSON.stringify(req.url)}`), true);
    }
    const method = req.method ?? 'GET';
    const allow = (methods: string[]): boolean => {
      if (methods.includes(method) || (method === 'HEAD' && methods.includes('GET'))) return true;
      res.setHeader('Allow', methods.join(', '));
      sendError(res, new ApiError(405, `${method} is not allowed on ${pathname} (allowed: ${methods.join(', ')})`, null, 'method_not_allowed'));
      return false;
    };
    if (pathname === '/health') {
      if (!allow(['GET'])) return;
      const { running, waiting, maxBatch, maxQueue } = batcher.load;
      return sendJson(res, closing ? 503 : 200, {
        status: closing ? 'closing' : 'ok', model: modelId, running, waiting, max_batch: maxBatch, max_queue: maxQueue,
      });
    }
    if (pathname === '/v1/models') {
      if (!allow(['GET'])) return;
      return sendJson(res, 200, modelList(modelId, created));
    }
    if (pathname.startsWith('/v1/models/')) {
      if (!allow(['GET'])) return;
      const id = decodeURIComponentSafe(pathname.slice('/v1/models/'.length));
      if (id !== modelId) return sendError(res, new ApiError(404, `the model '${id}' is not served here (this server serves '${modelId}')`, 'model', 'model_not_found'));
      return sendJson(res, 200, modelObject(modelId, created));
    }
    if (pathname === '/v1/chat/completions') {
      if (!allow(['POST'])) return;
      return chatCompletions(req, res);
    }
    sendError(res, new ApiError(404, `no route ${method} ${pathname} (routes: POST /v1/chat/completions, GET /v1/models, GET /health)`, null, 'not_found'));
  }

  async function chatCompletions(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (closing) return sendError(res, closingError(), true);
    let body: unknown;
    try {
      const raw = await readBody(req, o.maxBodyBytes, o.requestTimeoutMs);
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (e) {
        throw new ApiError(400, `the request body is not valid JSON (${(e as Error).message})`, null, 'invalid_json');
      }
    } catch (e) {
      if (e instanceof ClientGone) return;
      // After 413 or 408 the rest of the body is not read: the connection closes.
      if (e instanceof ApiError) return sendError(res, e, e.status !== 400);
      throw e;
    }
    let params;
    try {
      params = parseChatRequest(body, { sampleByDefault });
    } catch (e) {
      if (e instanceof ApiError) return sendError(res, e);
      throw e;
    }
    // What cannot fit is refused before the chat template and tokenizer run on it (they would hold the server).
    const { chars, messages, parts } = messagesSize(params);
    if (chars > maxPromptChars || messages + parts > vlm.model.maxPositions) {
      const what = chars > maxPromptChars ? `${chars} characters of text` : `${messages} messages with ${parts} parts`;
      return sendError(res, new ApiError(400, `messages: ${what} cannot fit the model's context of ${vlm.model.maxPositions} tokens`, 'messages', 'context_length_exceeded'));
    }
    const load = batcher.load;
    if (inFlight.size >= load.maxBatch + load.maxQueue || (load.running >= load.maxBatch && load.waiting >= load.maxQueue)) {
      return sendError(res, queueFull(load));
    }

    const controller = new AbortController();
    let settle!: () => void;
    const entry: InFlight = { controller, done: new Promise<void>((resolve) => { settle = resolve; }) };
    inFlight.add(entry);
    const onClose = () => { if (!res.writableFinished) controller.abort(new ClientGone()); };
    res.on('close', onClose);
    try {
      await generate(res, params.stream, params.includeUsage, async () => {
        const request = await toVlmRequest(params, policy, pixelLimits, controller.signal);
        return batcher.stream(request, {
          ...params.overrides, ...pixelLimits, signal: controller.signal,
          ...(o.imageSplitting !== undefined ? { imageSplitting: o.imageSplitting } : {}),
        });
      }, controller.signal);
    } finally {
      res.off('close', onClose);
      inFlight.delete(entry);
      settle();
    }
  }

  /** Runs one generation and answers it, whole or as SSE chunks. */
  async function generate(
    res: http.ServerResponse, stream: boolean, includeUsage: boolean,
    start: () => Promise<AsyncGenerator<string, GenerationOutput>>, signal: AbortSignal,
  ): Promise<void> {
    const meta = completionMeta(modelId);
    let it: AsyncGenerator<string, GenerationOutput> | undefined;
    try {
      it = await start();
      let r = await it.next();
      // Errors until the first text (bad images, queue full, a prompt too long) are plain HTTP errors.
      // An aborted signal (the client left, or the server is closing) ends the generation within a token.
      if (!stream) {
        while (!r.done) r = await it.next();
        if (r.value.stopReason === 'aborted') return abortedAnswer(res, false);
        await sendJson(res, 200, chatCompletion(meta, r.value));
        return;
      }
      if (r.done && r.value.stopReason === 'aborted') return abortedAnswer(res, false);
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
      await write(res, sseData(chunk(meta, { role: 'assistant', content: '' }, null, includeUsage)));
      while (!r.done) {
        if (r.value) await write(res, sseData(chunk(meta, { content: r.value }, null, includeUsage)));
        r = await it.next();
      }
      const out = r.value;
      if (out.stopReason === 'aborted') return abortedAnswer(res, true);
      await write(res, sseData(chunk(meta, {}, finishReason(out.stopReason), includeUsage)));
      if (includeUsage) await write(res, sseData(usageChunk(meta, out)));
      await write(res, SSE_DONE);
      await end(res);
    } catch (e) {
      if (it) await leave(it);
      if (e instanceof ClientGone || signal.reason instanceof ClientGone) return;
      const api = signal.aborted ? closingError() : toApiError(e);
      if (api.status >= 500 && api.status !== 503) log?.(`internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      if (!res.headersSent) return sendError(res, api);
      // Headers are out: the error goes as an SSE data event, and the stream ends.
      if (!res.destroyed && !res.writableEnded) res.end(sseData(errorBody(api)));
    }
  }

  /** An aborted generation: the client left (nothing to write) or the server is closing (503). */
  function abortedAnswer(res: http.ServerResponse, sse: boolean): void {
    if (res.destroyed || res.writableEnded) return;
    const e = closingError();
    if (sse) res.end(sseData(errorBody(e)));
    else sendError(res, e, true);
  }

  /** Writes, then waits for a client that is not reading; one that reads nothing for stallTimeoutMs is cut off. */
  async function write(res: http.ServerResponse, data: string): Promise<void> {
    if (res.destroyed || res.writableEnded) throw new ClientGone();
    if (res.write(data)) return;
    await waitFor(res, 'drain', o.stallTimeoutMs);
  }

  async function end(res: http.ServerResponse, data?: string): Promise<void> {
    if (res.destroyed || res.writableEnded) return;
    res.end(data);
    if (!res.writableFinished) await waitFor(res, 'finish', o.stallTimeoutMs).catch(() => {});
  }

  function sendJson(res: http.ServerResponse, status: number, json: unknown, close = false): Promise<void> {
    if (res.headersSent || res.destroyed) return Promise.resolve();
    const text = JSON.stringify(json);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      ...(close || closing ? { Connection: 'close' } : {}),
    });
    return end(res, text);
  }

  function sendError(res: http.ServerResponse, e: ApiError, close = false): Promise<void> {
    if (e.status === 429 && !res.headersSent) res.setHeader('Retry-After', '1');
    return sendJson(res, e.status, errorBody(e), close);
  }

  const closingError = () => new ApiError(503, 'the server is shutting down', null, 'server_closing');
  const tooLarge = () => new ApiError(413, `the request body is larger than the ${o.maxBodyBytes}-byte limit`, null, 'request_too_large');

  function queueFull(load: ServeBatcher['load']): ApiError {
    return new ApiError(429, `the server is at capacity (${load.running} generating, ${load.waiting} waiting; max batch ${load.maxBatch}, max queue ${load.maxQueue}); retry later`, null, 'queue_full');
  }

  function toApiError(e: unknown): ApiError {
    if (e instanceof ApiError) return e;
    if (e instanceof QueueFullError) return queueFull(batcher.load);
    if (e instanceof BatcherClosedError) return closingError();
    if (e instanceof TfvlmError) return new ApiError(400, e.message, null, 'invalid_request');
    return new ApiError(500, `internal server error (${e instanceof Error ? e.message : String(e)})`, null, null);
  }

  /** The body, up to maxBytes (413 past it, without reading further), within timeoutMs (408). */
  function readBody(req: http.IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
    if (declaredLength(req) > maxBytes) return Promise.reject(tooLarge());
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let n = 0;
      const finish = (e?: Error) => {
        clearTimeout(timer);
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('close', onClose);
        if (e) {
          req.pause();
          reject(e);
        } else resolve(Buffer.concat(chunks, n));
      };
      const onData = (c: Buffer) => {
        n += c.length;
        if (n > maxBytes) finish(tooLarge());
        else chunks.push(c);
      };
      const onEnd = () => finish();
      const onClose = () => finish(new ClientGone());
      const timer = setTimeout(() => finish(new ApiError(408, `the request body did not arrive within ${timeoutMs} ms`, null, 'request_timeout')), timeoutMs);
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('close', onClose);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        for (const f of inFlight) f.controller.abort();
        await Promise.race([Promise.all([...inFlight].map((f) => f.done)), delay(5000)]);
        server.closeAllConnections();
        await stopped;
      })();
      return closed;
    },
  };
}

/** Leaves a generation early: the batcher frees its sequence. */
async function leave(it: AsyncGenerator<string, GenerationOutput>): Promise<void> {
  try {
    await it.return(undefined as never);
  } catch {
    // already failed: nothing held
  }
}

function waitFor(res: http.ServerResponse, event: 'drain' | 'finish', ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (e?: Error) => {
      clearTimeout(timer);
      res.off(event, ok);
      res.off('close', gone);
      if (e) {
        res.destroy();
        reject(e);
      } else resolve();
    };
    const ok = () => done();
    const gone = () => done(new ClientGone());
    const timer = setTimeout(() => done(new ClientGone()), ms);
    res.on(event, ok);
    res.on('close', gone);
  });
}

function declaredLength(req: http.IncomingMessage): number {
  const v = req.headers['content-length'];
  return v === undefined ? 0 : Number(v);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
