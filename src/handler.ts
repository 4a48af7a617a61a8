import { Readable } from 'node:stream';
import { createApp, type App } from './app.ts';
import { createMetrics } from './server/metrics.ts';
import { createRouter, type Router } from './server/router.ts';
import { errorAnswer, startFailure } from './server/error-policy.ts';
import { describeAuth } from './config/api-tokens.ts';
import { serveAuth } from './server/http-server.ts';
import type { HttpRequestLike, HttpResponseLike } from './server/types.ts';

/**
 * The OpenFaaS Node template's request (`FunctionEvent` of the node20/node22 templates): Express's
 * `req.body` (an object for JSON, a string for text, a Buffer with RAW_BODY=true, `{}` when there
 * is none), lower-cased headers, the parsed query, and the path with the gateway's
 * `/function/{name}` prefix already removed.
 */
export interface FunctionEvent {
  body?: unknown;
  headers?: Record<string, string | string[] | undefined>;
  method?: string;
  query?: Record<string, unknown>;
  path?: string;
}

/** The template's `FunctionContext`: `status` and `headers` chain, `succeed`/`fail` answer. */
export interface FunctionContext {
  status(code: number): FunctionContext;
  headers(values: Record<string, string>): FunctionContext;
  succeed(value: unknown): void;
  fail(value: unknown): void;
}

export type FunctionHandler = (event: FunctionEvent, context: FunctionContext) => Promise<void>;

interface Runtime {
  app: App;
  router: Router;
}

/** Adapts the router to the template's event/context; `runtime` is created on first use. */
export function createHandler(runtime: () => Promise<{ router: Router }>): FunctionHandler {
  return async (event, context) => {
    let response: HttpResponseLike;
    try {
      const { router } = await runtime();
      response = await router(requestOf(event));
    } catch (err) {
      // Only the start can fail here (e.g. invalid configuration); the router answers everything else.
      response = errorAnswer(startFailure(err), 'json');
    }
    if (response.body instanceof Readable) {
      const body = await collect(response.body);
      if (typeof body === 'string') {
        context.status(413).headers({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).succeed(body);
        return;
      }
      context.status(response.status).headers(response.headers).succeed(body);
      return;
    }
    context.status(response.status).headers(response.headers).succeed(response.body);
  };
}

/** The most bytes of a streamed answer the template is handed in one piece. */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/**
 * The template answers whole bodies: a streamed one (an artifact) is read into memory first, up
 * to a bound. Past it the client is told to ask for a range (`fave serve` streams instead).
 */
async function collect(stream: Readable): Promise<Buffer | string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buf.length;
    if (size > MAX_BUFFERED_BYTES) {
      stream.destroy();
      return JSON.stringify({ error: { code: 'PAYLOAD_TOO_LARGE', message: `the answer is larger than the ${MAX_BUFFERED_BYTES} bytes this function buffers: ask for a Range` } });
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export function requestOf(event: FunctionEvent): HttpRequestLike {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  const query: Record<string, string> = {};
  for (const [key, value] of Object.entries(event.query ?? {})) {
    const first: unknown = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') query[key] = first;
  }
  return { method: (event.method ?? 'GET').toUpperCase(), path: event.path || '/', query, headers, body: bodyOf(event.body) };
}

/** Express has parsed a JSON body already; the router checks the text, so it is written back. */
function bodyOf(body: unknown): Buffer | string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body);
  return JSON.stringify(body);
}

let current: Promise<Runtime> | null = null;

/** One app per process, from the environment and the OpenFaaS secrets, made on the first call. */
function processRuntime(): Promise<Runtime> {
  current ??= (async () => {
    const app = await createApp();
    // Every caller of the function reaches this router: no loopback-only fallback here.
    let access: ReturnType<typeof serveAuth>;
    try {
      access = serveAuth(app.config.auth, '0.0.0.0', { requireAuth: true });
    } catch (err) {
      await app.close();
      throw err;
    }
    const { auth, notice } = access;
    app.logger[notice ? 'warn' : 'info']({ event: 'api_auth', ...describeAuth(auth), ...(notice ? { notice } : {}) });
    const metrics = createMetrics(app.orchestrator, { processMetrics: true });
    const router = createRouter({ orchestrator: app.orchestrator, logger: app.logger, metrics, config: app.config, auth });
    // As `fave serve` does: at start, then as the leases of owners that may be gone run out.
    if (app.config.resumeOnStart) app.startOrphanSweeps();
    app.startDebrisSweeps();
    return { app, router };
  })();
  // A failed start (say, a secret not mounted yet) is retried by the next call.
  current.catch(() => {
    current = null;
  });
  return current;
}

/** Closes the process's app, if one was made (tests, and a host that wants a clean stop). */
export async function closeHandler(): Promise<void> {
  const runtime = current;
  current = null;
  if (!runtime) return;
  const made = await runtime.catch(() => null);
  await made?.app.close();
}

/** The OpenFaaS Node template entry: `async (event, context)`. */
const handle: FunctionHandler = createHandler(processRuntime);
export default handle;
