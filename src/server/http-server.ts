import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { App } from '../app.ts';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { describeAuth, type ApiAuth } from '../config/api-tokens.ts';
import { createMetrics, type FaveMetrics } from './metrics.ts';
import { createRouter, STREAMED_UPLOAD_PATH, type Router } from './router.ts';
import type { HttpRequestLike, HttpResponseLike } from './types.ts';
import { MAX_BODY_BYTES, type HostLookup } from './validate.ts';
import { apiError, errorAnswer } from './error-policy.ts';
import { badRequestTarget } from './request-target.ts';

export interface HttpServerOptions {
  app: App;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Default 0.0.0.0. */
  host?: string;
  /** Overrides `config.allowPrivateSources`. */
  allowPrivateSources?: boolean;
  lookup?: HostLookup;
  /** Adds prom-client's process metrics to /metrics (default true). */
  processMetrics?: boolean;
  /** Without tokens or an anonymous role, allows binding an address other than loopback (every caller may operate). */
  insecureNoAuth?: boolean;
  /** Refuses to start without tokens or an explicit `FAVE_ANONYMOUS_ROLE`, even on loopback (the container image). */
  requireAuth?: boolean;
}

export interface HttpServer {
  readonly url: string;
  readonly port: number;
  readonly metrics: FaveMetrics;
  readonly router: Router;
  /**
   * Stops accepting connections and waits up to `graceMs` for answers in progress, then drops
   * what is left. Requests keep their state: stopping the orchestrator is the caller's call.
   */
  close(graceMs?: number): Promise<void>;
}

/** After a 413 the rest of an upload is read and dropped, up to this much, so the client sees the answer. */
const DISCARD_LIMIT_BYTES = 64 * MAX_BODY_BYTES;

/** `fave serve`: the router of the OpenFaaS function on node:http. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { app } = options;
  const host = options.host ?? (app.config.auth.tokens.length > 0 ? '0.0.0.0' : '127.0.0.1');
  const { auth, notice } = serveAuth(app.config.auth, host, options);
  app.logger[notice ? 'warn' : 'info']({ event: 'api_auth', ...describeAuth(auth), ...(notice ? { notice } : {}) });
  const metrics = createMetrics(app.orchestrator, { processMetrics: options.processMetrics ?? true });
  // Made once the port is known: anonymous callers' Host must name it.
  let router: Router | null = null;

  const server = createServer((req, res) => {
    if (router === null) {
      send(res, errorAnswer(apiError('INTERNAL', 'the server is starting'), 'json', { headers: { 'retry-after': '1' } }));
      return;
    }
    void serve(req, res, router).catch((err: unknown) => {
      app.logger.error({ event: 'http_server_error', error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) send(res, errorAnswer(apiError('INTERNAL', 'the server failed to answer'), 'json'));
      else res.destroy();
    });
  });
  // A synchronous request is answered when its pipeline ends: no socket idle timeout.
  server.timeout = 0;
  server.requestTimeout = 120_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  router = createRouter({
    orchestrator: app.orchestrator,
    logger: app.logger,
    metrics,
    config: app.config,
    auth,
    port: address.port,
    ...(options.allowPrivateSources !== undefined ? { allowPrivateSources: options.allowPrivateSources } : {}),
    ...(options.lookup ? { lookup: options.lookup } : {}),
  });
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${address.port}`,
    port: address.port,
    metrics,
    router,
    close(graceMs = 10_000) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          metrics.close();
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/**
 * The access rule `fave serve` runs with. Tokens or an anonymous role from the configuration
 * are used as they are. Without either, only loopback callers can reach the server, and they may
 * operate; any other address needs `insecureNoAuth`, and `requireAuth` (the image, where
 * of-watchdog forwards outside callers to loopback) refuses to start.
 */
export function serveAuth(configured: ApiAuth, host: string, options: { insecureNoAuth?: boolean; requireAuth?: boolean }): { auth: ApiAuth; notice: string | null } {
  if (configured.tokens.length > 0 || configured.anonymousRole !== null) {
    const notice = configured.anonymousRole ? `callers without a token get the ${configured.anonymousRole} role (FAVE_ANONYMOUS_ROLE)` : null;
    return { auth: configured, notice };
  }
  if (options.requireAuth) {
    throw new FaveFailure(
      faveError('BAD_CONFIG', 'FAVE_API_TOKENS is not set (nor the fave-api-tokens secret): set tokens, or FAVE_ANONYMOUS_ROLE=read|operate to let callers in without one'),
    );
  }
  if (isLoopback(host)) {
    return {
      auth: { tokens: [], anonymousRole: 'operate' },
      notice: `no API tokens are configured (FAVE_API_TOKENS): listening on ${host} only, where every local caller may operate`,
    };
  }
  if (options.insecureNoAuth) {
    return { auth: { tokens: [], anonymousRole: 'operate' }, notice: `no API tokens are configured and --insecure-no-auth is given: anyone who reaches ${host} may operate` };
  }
  throw new FaveFailure(
    faveError('BAD_CONFIG', `FAVE_API_TOKENS is not set: listening on ${host} without tokens needs --insecure-no-auth (or listen on 127.0.0.1, or set FAVE_API_TOKENS)`),
  );
}

function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/** Routes that read their body as a stream (into the store), bounded by their own cap. */
function streamsBody(method: string | undefined, path: string): boolean {
  return method?.toUpperCase() === 'POST' && path.replace(/\/+$/, '') === STREAMED_UPLOAD_PATH;
}

async function serve(req: IncomingMessage, res: ServerResponse, router: Router): Promise<void> {
  // Judged as sent: the URL parser below would resolve `..` and `//host` into another path.
  const bad = badRequestTarget(req.url ?? '/');
  if (bad !== null) {
    send(res, errorAnswer(apiError('BAD_REQUEST', `path: ${bad}`, 'path'), 'json', { headers: { connection: 'close' } }));
    discard(req);
    return;
  }
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (streamsBody(req.method, url.pathname)) {
    // A client that goes away before the route reads the body must not take the process with it.
    req.on('error', () => undefined);
    const response = await router({ ...requestParts(req, url), body: undefined, stream: req });
    if (!req.complete) {
      // The route stopped reading (a refusal): answer, then drop the rest up to a bound.
      send(res, { ...response, headers: { ...response.headers, connection: 'close' } });
      discard(req);
    } else {
      send(res, response);
    }
    return;
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    tooLarge(req, res, `body: ${declared} bytes is more than the ${MAX_BODY_BYTES} allowed`);
    return;
  }
  const body = await readBody(req, MAX_BODY_BYTES);
  if (body === 'too-large') {
    tooLarge(req, res, `body: more than the ${MAX_BODY_BYTES} bytes allowed`);
    return;
  }
  if (body === 'aborted') return;
  const request: HttpRequestLike = { ...requestParts(req, url), body: body.length > 0 ? body : undefined };
  send(res, await router(request));
}

function requestParts(req: IncomingMessage, url: URL): Pick<HttpRequestLike, 'method' | 'path' | 'query' | 'headers' | 'client'> {
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) if (!(key in query)) query[key] = value;
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { method: req.method ?? 'GET', path: url.pathname, query, headers, ...(req.socket.remoteAddress !== undefined ? { client: req.socket.remoteAddress } : {}) };
}

function discard(req: IncomingMessage): void {
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) req.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}

/** Answers 413 at once, then drops the rest of the upload (up to a bound) and closes. */
function tooLarge(req: IncomingMessage, res: ServerResponse, message: string): void {
  send(res, errorAnswer(apiError('PAYLOAD_TOO_LARGE', message, 'body'), 'json', { headers: { connection: 'close' } }));
  discard(req);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onAbort = () => {
      cleanup();
      resolve('aborted');
    };
    const onClose = () => {
      if (!req.complete) onAbort();
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}

function send(res: ServerResponse, response: HttpResponseLike): void {
  if (res.destroyed || res.writableEnded) {
    if (response.body instanceof Readable) response.body.destroy();
    return;
  }
  if (response.body instanceof Readable) {
    const stream = response.body;
    res.writeHead(response.status, response.headers);
    // A client that seeks closes the connection mid-body: stop reading the store then.
    pipeline(stream, res).catch(() => undefined);
    return;
  }
  const body = typeof response.body === 'string' ? Buffer.from(response.body) : response.body;
  // A HEAD answer has no body but says how long the GET one is (the artifact route sets it).
  const declared = body.length === 0 ? response.headers['content-length'] : undefined;
  res.writeHead(response.status, { ...response.headers, 'content-length': declared ?? String(body.length) });
  res.end(body);
}
