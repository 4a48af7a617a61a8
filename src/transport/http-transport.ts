import type { IncomingHttpHeaders } from 'node:http';
import { Pool, errors, type Dispatcher } from 'undici';
import type { StageRequest } from './contract.ts';
import { StageResponseTooLarge, StageTimeout, type StageCallOptions, type StageHttpResponse, type StageTransport } from './transport.ts';

export interface HttpTransportOptions {
  gatewayUrl: string;
  auth?: { user: string; password: string } | null;
  /** Sockets kept open to the gateway; calls beyond it queue inside undici. */
  connections?: number;
  /** The largest answer read from a stage (default 16 MiB); reading stops there. */
  maxResponseBytes?: number;
}

export const DEFAULT_STAGE_RESPONSE_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Calls `{GATEWAY_URL}/function/{name}` over a keep-alive pool. The per-call timeout covers the
 * whole exchange, body included: undici's own timeouts only bound the idle time between chunks,
 * which a body dripping a byte at a time never reaches.
 */
export class HttpTransport implements StageTransport {
  readonly kind = 'http' as const;
  private readonly pool: Pool;
  private readonly base: URL;
  private readonly authorization: string | null;
  private readonly maxResponseBytes: number;
  /** The same for every call, as the name-value list undici takes without a lookup per key. */
  private readonly headers: string[];
  private readonly paths: FunctionPaths;
  private readonly inFlight = new ExchangesBySignal();

  constructor(options: HttpTransportOptions) {
    this.base = new URL(options.gatewayUrl);
    this.paths = new FunctionPaths(this.base, 'function');
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_STAGE_RESPONSE_MAX_BYTES;
    this.pool = new Pool(this.base.origin, {
      connections: options.connections ?? 256,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      // Each call's own timer bounds the whole exchange (below); undici's idle timers would
      // only be armed and refreshed per call and chunk without ever firing first.
      headersTimeout: 0,
      bodyTimeout: 0,
      // Checked by undici as the bytes arrive: past it the connection is dropped, unread.
      maxResponseSize: this.maxResponseBytes,
    });
    this.authorization = options.auth ? `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}` : null;
    this.headers = this.authorization ? ['content-type', 'application/json', 'authorization', this.authorization] : ['content-type', 'application/json'];
  }

  async call(functionName: string, body: StageRequest, options: StageCallOptions): Promise<StageHttpResponse> {
    if (options.signal.aborted) throw new errors.RequestAbortedError();
    // Dispatched straight to the pool with a handler that gathers the answer: the stream, the
    // async context and the promises of undici's `request()` cost about a third of its time per
    // call, and nothing here needs them. One timer per call, cleared as soon as the call ends.
    const exchange = new Exchange();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      exchange.cancel(new errors.RequestAbortedError());
    }, options.timeoutMs);
    const calls = this.inFlight.of(options.signal);
    calls.add(exchange);
    try {
      this.pool.dispatch({ origin: this.base.origin, method: 'POST', path: this.paths.of(functionName), body: JSON.stringify(body), headers: this.headers }, exchange);
      return await exchange.answer;
    } catch (err) {
      if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) throw new StageTimeout(options.timeoutMs);
      if (timedOut && !options.signal.aborted) throw new StageTimeout(options.timeoutMs);
      if (err instanceof errors.ResponseExceededMaxSizeError) throw new StageResponseTooLarge(this.maxResponseBytes);
      throw err;
    } finally {
      clearTimeout(timer);
      calls.delete(exchange);
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

/**
 * The gateway path of each function on one route (`/function/…` or `/async-function/…`), kept:
 * a request calls a handful of functions thousands of times each.
 */
export class FunctionPaths {
  private readonly paths = new Map<string, string>();
  private readonly prefix: string;

  constructor(base: URL, route: 'function' | 'async-function') {
    this.prefix = `${base.pathname.replace(/\/$/, '')}/${route}/`;
  }

  of(functionName: string): string {
    let path = this.paths.get(functionName);
    if (path === undefined) {
      path = `${this.prefix}${encodeURIComponent(functionName)}`;
      if (this.paths.size < 1024) this.paths.set(functionName, path);
    }
    return path;
  }
}

/**
 * The calls in flight under each signal, which has one listener that cancels them all: the calls
 * of a fan-out share one signal, and an EventTarget looks through every listener it has when one
 * is added, so a listener per call cost a walk of all the others per call.
 */
export class ExchangesBySignal {
  private readonly groups = new WeakMap<AbortSignal, Set<Exchange>>();

  of(signal: AbortSignal): Set<Exchange> {
    let calls = this.groups.get(signal);
    if (!calls) {
      const set = new Set<Exchange>();
      signal.addEventListener(
        'abort',
        () => {
          for (const exchange of set) exchange.cancel(new errors.RequestAbortedError());
        },
        { once: true },
      );
      this.groups.set(signal, set);
      calls = set;
    }
    return calls;
  }
}

/**
 * One call's exchange as undici reports it: status, headers, the body's chunks, or the error.
 * Dispatched straight to a pool with it, a call costs less than through undici's `request()`,
 * whose stream, async context and promises nothing here needs.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  readonly answer: Promise<StageHttpResponse>;
  private resolve!: (response: StageHttpResponse) => void;
  private reject!: (err: Error) => void;
  private controller: Dispatcher.DispatchController | null = null;
  /** Cancelled before undici started the request: it is aborted as soon as it starts. */
  private cancelled: Error | null = null;
  private status = 0;
  private headers: Record<string, string> = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private settled = false;

  constructor() {
    this.answer = new Promise<StageHttpResponse>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  cancel(reason: Error): void {
    if (this.settled) return;
    if (this.controller) return this.controller.abort(reason);
    // Still queued in the pool: the call ends now, and the request when undici starts it.
    this.cancelled = reason;
    this.settled = true;
    this.reject(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.cancelled) controller.abort(this.cancelled);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.status = statusCode;
    const flat: Record<string, string> = {};
    for (const name in headers) {
      const value = headers[name];
      if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    this.headers = flat;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    const body = this.chunks.length === 1 ? this.chunks[0]!.toString('utf8') : Buffer.concat(this.chunks, this.size).toString('utf8');
    this.resolve({ status: this.status, headers: this.headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(error);
  }
}
