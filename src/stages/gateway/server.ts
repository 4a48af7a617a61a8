import { createServer, STATUS_CODES as STATUS_TEXT, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { Agent } from 'undici';
import type { FunctionCall, FunctionHandler, FunctionReply, GatewayServer, GatewayServerOptions } from './types.ts';
import { ReplicaModel } from './replica-model.ts';

/**
 * Thrown by a handler to make the gateway drop the connection with a TCP reset instead of
 * answering, which is what a caller sees when an upstream dies mid-request behind a proxy.
 * An async call that ends this way is reported to its callback as a 502.
 */
export class ConnectionReset extends Error {
  constructor(message = 'connection reset by upstream') {
    super(message);
    this.name = 'ConnectionReset';
  }
}

const FUNCTION_ROUTE = /^\/(function|async-function)\/([^/]+)(?:\/.*)?$/;
const SYSTEM_FUNCTION_ROUTE = /^\/system\/(function|scale-function)\/([^/]+)$/;
/** The largest body a scale call may carry; OpenFaaS's is a few dozen bytes. */
const SYSTEM_BODY_MAX_BYTES = 4096;
const CALLBACK_TIMEOUT_MS = 30_000;
/** Connections kept open per callback origin, as the queue-worker's HTTP client keeps them. */
const CALLBACK_CONNECTIONS = 64;
/** Headers the gateway frames itself; a handler's own values for them would corrupt the reply. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'x-call-id', 'x-duration-seconds']);

type Outcome =
  | { kind: 'reply'; reply: FunctionReply; seconds: number }
  | { kind: 'crash'; message: string; seconds: number }
  | { kind: 'timeout'; seconds: number; timeoutMs: number }
  | { kind: 'reset'; seconds: number }
  /** The caller went away or the gateway is closing: nobody is left to answer. */
  | { kind: 'abandoned' };

/** Starts an OpenFaaS-compatible gateway on loopback serving `options.functions`. */
export async function startGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const host = options.host ?? '127.0.0.1';
  const active = new Set<AbortController>();
  let closing = false;
  const inflight = semaphore(options.asyncMaxInflight ?? Number.POSITIVE_INFINITY);
  const names = Object.keys(options.functions);
  const model = options.replicas ? new ReplicaModel(names, options.replicas) : null;
  /** Without a replica model every function is one warm replica; scale calls are recorded, nothing more. */
  const staticReplicas = new Map<string, number>(names.map((n) => [n, 1]));
  const invocations = new Map<string, number>();
  // Callbacks go out over kept-alive connections: a new connection (or fetch's stream machinery)
  // per callback cost more CPU than the call it reports.
  const callbackAgent = new Agent({ connections: CALLBACK_CONNECTIONS, keepAliveTimeout: CALLBACK_TIMEOUT_MS, connectTimeout: CALLBACK_TIMEOUT_MS });

  async function runHandler(handler: FunctionHandler, call: FunctionCall, controller: AbortController, timeoutMs: number | undefined): Promise<Outcome> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    let timer: NodeJS.Timeout | undefined;
    const work: Promise<Outcome> = Promise.resolve()
      .then(async () => {
        invocations.set(call.name, (invocations.get(call.name) ?? 0) + 1);
        if (!model) return handler(call);
        // The gateway's timeout covers the wait for a replica, as a scale from zero does.
        const lease = await model.acquire(call.name, controller.signal);
        call.coldStart = lease.cold;
        try {
          return await handler(call);
        } finally {
          lease.release();
        }
      })
      .then(
        (reply): Outcome => ({ kind: 'reply', reply, seconds: seconds() }),
        (err: unknown): Outcome => {
          if (err instanceof ConnectionReset) return { kind: 'reset', seconds: seconds() };
          if (controller.signal.aborted) return { kind: 'abandoned' };
          return { kind: 'crash', message: err instanceof Error ? err.message : String(err), seconds: seconds() };
        },
      );
    const racers = [work];
    if (timeoutMs !== undefined) {
      racers.push(
        new Promise<Outcome>((resolve) => {
          timer = setTimeout(() => {
            resolve({ kind: 'timeout', seconds: seconds(), timeoutMs });
            controller.abort(new Error(`upstream timeout after ${timeoutMs} ms`));
          }, timeoutMs);
        }),
      );
    }
    try {
      return await Promise.race(racers);
    } finally {
      clearTimeout(timer);
    }
  }

  function startCall(name: string, req: IncomingMessage, body: Buffer): { call: FunctionCall; controller: AbortController } {
    const controller = new AbortController();
    active.add(controller);
    const callId = headerValue(req, 'x-call-id') || randomUUID();
    return { controller, call: { name, body, headers: lowerCaseHeaders(req), callId, signal: controller.signal, coldStart: false } };
  }

  async function invokeSync(req: IncomingMessage, res: ServerResponse, name: string, handler: FunctionHandler): Promise<void> {
    const body = await readBody(req);
    const { call, controller } = startCall(name, req, body);
    const onClose = () => {
      if (!res.writableEnded) controller.abort(new Error('client disconnected'));
    };
    res.on('close', onClose);
    try {
      const outcome = await runHandler(handler, call, controller, options.upstreamTimeoutMs);
      if (res.destroyed || res.writableEnded) return;
      const ids = (seconds: number) => ({ 'X-Call-Id': call.callId, 'X-Duration-Seconds': formatSeconds(seconds) });
      switch (outcome.kind) {
        case 'reply':
          sendReply(res, outcome.reply, ids(outcome.seconds));
          return;
        case 'crash':
          sendText(res, 502, `error calling function ${name}: ${outcome.message}`, ids(outcome.seconds));
          return;
        case 'timeout':
          sendText(res, 504, `function ${name} did not answer within ${options.upstreamTimeoutMs} ms`, ids(outcome.seconds));
          return;
        case 'reset':
          req.socket.resetAndDestroy();
          return;
        case 'abandoned':
          res.destroy();
          return;
      }
    } finally {
      res.off('close', onClose);
      active.delete(controller);
    }
  }

  async function invokeAsync(req: IncomingMessage, res: ServerResponse, name: string, handler: FunctionHandler): Promise<void> {
    const callbackHeader = headerValue(req, 'x-callback-url');
    let callbackUrl: URL | null = null;
    if (callbackHeader) {
      callbackUrl = URL.canParse(callbackHeader) ? new URL(callbackHeader) : null;
      if (!callbackUrl || !['http:', 'https:'].includes(callbackUrl.protocol)) {
        sendText(res, 400, `X-Callback-Url is not an http(s) URL: ${callbackHeader}`);
        return;
      }
    }
    const body = await readBody(req);
    const { call, controller } = startCall(name, req, body);
    void (async () => {
      try {
        // At most max_inflight queued calls run at once; the others wait in the queue.
        await inflight.acquire(controller.signal);
        // The queue-worker calls the function directly, past the gateway: only its own timeout applies.
        const startedAt = Date.now();
        const outcome = await runHandler(handler, call, controller, options.asyncTimeoutMs).finally(() => inflight.release());
        if (!callbackUrl || closing || outcome.kind === 'abandoned') return;
        await postCallback(callbackUrl, name, call.callId, outcome, startedAt);
      } catch {
        // The caller asked for fire-and-forget: an unreachable callback URL is its own problem.
      } finally {
        active.delete(controller);
      }
    })();
    // Queued already: the call runs and calls back whether or not the caller hears of it.
    await options.beforeAccept?.(name);
    sendText(res, 202, '', { 'X-Call-Id': call.callId });
  }

  async function postCallback(url: URL, name: string, callId: string, outcome: Exclude<Outcome, { kind: 'abandoned' }>, startedAt: number): Promise<void> {
    let status: number;
    let body: string | Buffer;
    // X-Start-Time as the watchdog sets it: when the function started, in nanoseconds since the epoch.
    const headers: Record<string, string> = {
      'X-Call-Id': callId,
      'X-Function-Name': name,
      'X-Duration-Seconds': formatSeconds(outcome.seconds),
      'X-Start-Time': `${startedAt}000000`,
    };
    switch (outcome.kind) {
      case 'reply': {
        status = outcome.reply.status;
        body = outcome.reply.body;
        const contentType = Object.entries(outcome.reply.headers ?? {}).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
        if (contentType) headers['Content-Type'] = contentType;
        break;
      }
      case 'crash':
        status = 502;
        body = `error calling function ${name}: ${outcome.message}`;
        break;
      case 'reset':
        status = 502;
        body = `error calling function ${name}: connection reset`;
        break;
      case 'timeout':
        status = 504;
        body = `function ${name} did not answer within ${outcome.timeoutMs} ms`;
        break;
    }
    headers['X-Function-Status'] = String(status);
    if ((await options.beforeCallback?.({ name, callId, url: url.href, headers, body })) === 'drop') return;
    const response = await callbackAgent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      headers,
      body,
      headersTimeout: CALLBACK_TIMEOUT_MS,
      bodyTimeout: CALLBACK_TIMEOUT_MS,
    });
    await response.body.dump();
  }

  function authorized(req: IncomingMessage): boolean {
    const auth = options.basicAuth;
    if (!auth) return true;
    const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) return false;
    const given = Buffer.from(match[1]!, 'base64').toString('utf8');
    return constantTimeEqual(given, `${auth.user}:${auth.password}`);
  }

  function systemAuthorized(req: IncomingMessage): boolean {
    const auth = options.systemAuth === undefined ? options.basicAuth : options.systemAuth;
    if (!auth) return true;
    const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) return false;
    return constantTimeEqual(Buffer.from(match[1]!, 'base64').toString('utf8'), `${auth.user}:${auth.password}`);
  }

  function functionStatus(name: string): Record<string, unknown> {
    const replicas = model ? model.status(name) : { replicas: staticReplicas.get(name) ?? 1, availableReplicas: staticReplicas.get(name) ?? 1, invocationCount: 0 };
    const maxInflight = model?.options.maxInflight;
    return {
      name,
      image: `fave/${name}:local`,
      namespace: 'openfaas-fn',
      replicas: replicas.replicas,
      availableReplicas: replicas.availableReplicas,
      invocationCount: invocations.get(name) ?? 0,
      labels: model ? { 'com.openfaas.scale.min': String(model.options.minReplicas), 'com.openfaas.scale.max': String(model.options.maxReplicas) } : {},
      annotations: {},
      // The watchdog reads max_inflight from the function's environment; a caller can read it here.
      envVars: maxInflight !== undefined ? { max_inflight: String(maxInflight) } : {},
    };
  }

  /** `/system/*` as the OpenFaaS gateway serves it (the parts a scaler uses), behind its basic auth. */
  async function system(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const forced = options.systemStatus?.({ method: req.method ?? 'GET', path });
    if (forced === 'hang') {
      // Never answers: the caller's own timeout has to end it.
      await new Promise<void>((resolve) => res.once('close', () => resolve()));
      return;
    }
    if (forced === 404) return sendText(res, 404, `no route for ${path}`);
    if (!systemAuthorized(req) || forced === 401) return sendText(res, 401, 'Unauthorized', { 'WWW-Authenticate': 'Basic realm="Restricted"' });
    if (forced !== undefined && forced !== null) return sendText(res, forced, STATUS_TEXT[forced] ?? 'error');
    if (path === '/system/functions') {
      if (req.method !== 'GET') return sendText(res, 405, 'method not allowed', { Allow: 'GET' });
      return sendJson(res, 200, names.map(functionStatus));
    }
    const match = SYSTEM_FUNCTION_ROUTE.exec(path);
    const name = match ? safeDecode(match[2]!) : null;
    if (!match) return sendText(res, 404, `no route for ${path}`);
    if (name === null || !Object.hasOwn(options.functions, name)) return sendText(res, 404, `error finding function ${name ?? match[2]}: function not found`);
    if (match[1] === 'function') {
      if (req.method !== 'GET') return sendText(res, 405, 'method not allowed', { Allow: 'GET' });
      return sendJson(res, 200, functionStatus(name));
    }
    if (req.method !== 'POST') return sendText(res, 405, 'method not allowed', { Allow: 'POST' });
    const body = await readBody(req, SYSTEM_BODY_MAX_BYTES).catch(() => null);
    if (body === null) return sendText(res, 400, 'scale request too large');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return sendText(res, 400, 'unable to parse scale request');
    }
    const replicas = typeof parsed === 'object' && parsed !== null ? (parsed as { replicas?: unknown }).replicas : undefined;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) return sendText(res, 400, 'replicas must be a non-negative integer');
    if (model) model.scale(name, replicas);
    else staticReplicas.set(name, replicas);
    options.onScale?.(name, replicas);
    return sendText(res, 202, '');
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
      return sendText(res, 200, 'OK');
    }
    if (path.startsWith('/system/')) return system(req, res, path);
    const match = FUNCTION_ROUTE.exec(path);
    if (!match) return sendText(res, 404, `no route for ${path}`);
    if (!authorized(req)) return sendText(res, 401, 'Unauthorized', { 'WWW-Authenticate': 'Basic realm="Restricted"' });
    if (req.method !== 'POST') return sendText(res, 405, 'method not allowed', { Allow: 'POST' });
    const name = safeDecode(match[2]!);
    const handler = name !== null && Object.hasOwn(options.functions, name) ? options.functions[name] : undefined;
    if (!handler) return sendText(res, 404, `error finding function ${name ?? match[2]}: function not found`);
    if (closing) return sendText(res, 503, 'gateway is shutting down');
    if (match[1] === 'function') return invokeSync(req, res, name!, handler);
    return invokeAsync(req, res, name!, handler);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        sendText(res, 500, `gateway error: ${err instanceof Error ? err.message : String(err)}`);
      } else {
        res.destroy();
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closed: Promise<void> | null = null;
  return {
    url,
    port,
    replicas: model,
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        model?.close();
        for (const controller of active) controller.abort(new Error('gateway shutting down'));
        // Callbacks in flight end with their connections.
        const agentClosed = callbackAgent.destroy().catch(() => undefined);
        server.close(() => void agentClosed.then(() => resolve()));
        // Keep-alive and in-flight sockets would otherwise hold close() open until they time out.
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** A counting semaphore; a waiter whose signal aborts leaves the line (and rejects). */
function semaphore(limit: number): { acquire(signal: AbortSignal): Promise<void>; release(): void } {
  let running = 0;
  const waiting: Array<() => void> = [];
  return {
    acquire(signal) {
      if (running < limit) {
        running++;
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => {
        const go = () => {
          signal.removeEventListener('abort', onAbort);
          running++;
          resolve();
        };
        const onAbort = () => {
          const at = waiting.indexOf(go);
          if (at >= 0) waiting.splice(at, 1);
          reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        };
        waiting.push(go);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
    release() {
      running--;
      waiting.shift()?.();
    },
  };
}

function readBody(req: IncomingMessage, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('request aborted by client'));
    });
  });
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function lowerCaseHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function sendReply(res: ServerResponse, reply: FunctionReply, extra: Record<string, string>): void {
  const status = Number.isInteger(reply.status) && reply.status >= 200 && reply.status <= 599 ? reply.status : null;
  if (status === null) {
    sendText(res, 502, `function answered an invalid HTTP status: ${String(reply.status)}`, extra);
    return;
  }
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(reply.headers ?? {})) {
    if (!FRAMING_HEADERS.has(key.toLowerCase())) headers[key.toLowerCase()] = value;
  }
  send(res, status, { ...headers, ...extra }, typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify(value)));
}

function sendText(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  send(res, status, { 'Content-Type': 'text/plain; charset=utf-8', ...extra }, Buffer.from(text));
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void {
  res.writeHead(status, { ...headers, 'Content-Length': String(body.length) });
  res.end(body);
}

function formatSeconds(seconds: number): string {
  return seconds.toFixed(6);
}

function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  // Hashing first gives equal lengths, which timingSafeEqual requires.
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}
