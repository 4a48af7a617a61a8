import { Pool, errors } from 'undici';
import type { AsyncDispatch } from '../domain/context.ts';
import type { StageRequest } from './contract.ts';
import { callbackUrl, responseOfCallback, type CallbackAddress, type CallbackInbox, type StoredCallback } from './callbacks.ts';
import { DEFAULT_STAGE_RESPONSE_MAX_BYTES, Exchange, ExchangesBySignal, FunctionPaths } from './http-transport.ts';
import { StageResponseTooLarge, StageTimeout, type StageCallOptions, type StageHttpResponse, type StageTransport } from './transport.ts';

/**
 * One async attempt as persisted in the request's state: when it was queued and for how long
 * its callback is awaited, so a restarted process keeps waiting (or gives up) on the same clock.
 */
export interface CallbackConfig {
  /** The orchestrator as the queue-worker reaches it, without a trailing slash. */
  baseUrl: string;
  /** HMAC key of the callback tokens. Never logged or stored. */
  secret: string;
}

/** When an async attempt was queued, when its function started and when its answer came. */
export interface AsyncTiming {
  dispatched_at: number | null;
  function_started_at: number | null;
  answered_at: number | null;
}

export interface AsyncAttemptOptions {
  /** The dispatch of this very attempt made before a restart: wait for it instead of queueing again. */
  resume: AsyncDispatch | null;
  /** Told once the gateway has queued the call, to persist it. */
  onDispatch: (dispatch: AsyncDispatch) => void;
  /** The attempt's dispatch-journal marker, when there is a journal. */
  dispatchId: string | null;
}

export interface AsyncStageCallerOptions {
  gatewayUrl: string;
  auth?: { user: string; password: string } | null;
  callback: CallbackConfig;
  inbox: CallbackInbox;
  connections?: number;
  /** The largest answer to a queueing read from the gateway (default 16 MiB), as for synchronous calls. */
  maxResponseBytes?: number;
}

/** How long the gateway may take to accept (queue) a call; the call itself has its own timeout. */
const ENQUEUE_TIMEOUT_MS = 30_000;

/**
 * Calls stages through `{GATEWAY_URL}/async-function/{name}`: the gateway queues the call and
 * answers 202; the queue-worker runs it under the function's own timeout and posts its answer
 * to the callback route. No process holds the call open, so the gateway's upstream timeout does
 * not cap it.
 */
export class AsyncStageCaller {
  private readonly pool: Pool;
  private readonly base: URL;
  private readonly authorization: string | null;
  private readonly maxResponseBytes: number;
  private readonly paths: FunctionPaths;
  private readonly inFlight = new ExchangesBySignal();

  constructor(private readonly options: AsyncStageCallerOptions) {
    this.base = new URL(options.gatewayUrl);
    this.paths = new FunctionPaths(this.base, 'async-function');
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_STAGE_RESPONSE_MAX_BYTES;
    this.pool = new Pool(this.base.origin, {
      connections: options.connections ?? 64,
      keepAliveTimeout: 30_000,
      // Checked by undici as the bytes arrive: past it the connection is dropped, unread.
      maxResponseSize: this.maxResponseBytes,
    });
    this.authorization = options.auth ? `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}` : null;
  }

  /** A transport for one attempt: the shape the synchronous path calls, so its answer is classified the same way. */
  attempt(address: CallbackAddress, options: AsyncAttemptOptions): AsyncAttempt {
    return new AsyncAttempt(this, address, options);
  }

  get inbox(): CallbackInbox {
    return this.options.inbox;
  }

  /**
   * Queues the call; the gateway's answer (202 with X-Call-Id, or a refusal). Dispatched to the
   * pool with a handler that gathers the answer, as synchronous calls are (`HttpTransport`).
   */
  async enqueue(functionName: string, body: StageRequest, address: CallbackAddress, signal: AbortSignal, timeoutMs: number): Promise<StageHttpResponse> {
    if (signal.aborted) throw new errors.RequestAbortedError();
    const callback = callbackUrl(this.options.callback.baseUrl, this.options.callback.secret, address);
    const headers = this.authorization
      ? ['content-type', 'application/json', 'x-callback-url', callback, 'authorization', this.authorization]
      : ['content-type', 'application/json', 'x-callback-url', callback];
    const wait = Math.max(1, Math.min(ENQUEUE_TIMEOUT_MS, timeoutMs));
    const exchange = new Exchange();
    const calls = this.inFlight.of(signal);
    calls.add(exchange);
    try {
      this.pool.dispatch(
        { origin: this.base.origin, method: 'POST', path: this.paths.of(functionName), body: JSON.stringify(body), headers, headersTimeout: wait, bodyTimeout: wait },
        exchange,
      );
      return await exchange.answer;
    } catch (err) {
      if (err instanceof errors.ResponseExceededMaxSizeError) throw new StageResponseTooLarge(this.maxResponseBytes);
      throw err;
    } finally {
      calls.delete(exchange);
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

export class AsyncAttempt implements StageTransport {
  readonly kind = 'http' as const;
  readonly timing: AsyncTiming = { dispatched_at: null, function_started_at: null, answered_at: null };

  constructor(
    private readonly caller: AsyncStageCaller,
    private readonly address: CallbackAddress,
    private readonly options: AsyncAttemptOptions,
  ) {}

  /**
   * Resolves with the function's answer from its callback. A resumed attempt first uses a
   * callback stored while no one waited, then waits out what is left of its timeout, counted
   * from its dispatch; it is queued again only as a new attempt, after a StageTimeout.
   */
  async call(functionName: string, request: StageRequest, options: StageCallOptions): Promise<StageHttpResponse> {
    const { inbox } = this.caller;
    const resume = this.options.resume;
    if (resume) {
      this.timing.dispatched_at = resume.dispatched_at;
      const waiter = inbox.expect(this.address, options.answered);
      try {
        const stored = await inbox.read(this.address);
        if (stored) return this.answered(stored);
        const left = Math.min(options.timeoutMs, resume.dispatched_at + resume.timeout_ms - Date.now());
        return this.answered(await waitFor(waiter.received, left, options.signal));
      } finally {
        waiter.cancel();
      }
    }
    const waiter = inbox.expect(this.address, options.answered);
    try {
      const queued = await this.caller.enqueue(functionName, request, this.address, options.signal, options.timeoutMs);
      // Anything but "accepted" is the gateway's answer to the call, classified like a synchronous one.
      if (queued.status !== 202) return queued;
      const dispatchedAt = Date.now();
      this.timing.dispatched_at = dispatchedAt;
      this.options.onDispatch({
        run: this.address.run,
        attempt: this.address.attempt,
        call_id: queued.headers['x-call-id'] ?? null,
        dispatched_at: dispatchedAt,
        timeout_ms: options.timeoutMs,
        ...(this.options.dispatchId !== null ? { dispatch_id: this.options.dispatchId } : {}),
      });
      return this.answered(await waitFor(waiter.received, options.timeoutMs, options.signal));
    } finally {
      waiter.cancel();
    }
  }

  async close(): Promise<void> {}

  private answered(callback: StoredCallback): StageHttpResponse {
    this.timing.answered_at = callback.received_at;
    this.timing.function_started_at = callback.function_started_at;
    return responseOfCallback(callback);
  }
}

function waitFor(received: Promise<StoredCallback>, timeoutMs: number, signal: AbortSignal): Promise<StoredCallback> {
  if (timeoutMs <= 0) return Promise.reject(new StageTimeout(0));
  return new Promise<StoredCallback>((resolve, reject) => {
    const timer = setTimeout(() => done(() => reject(new StageTimeout(timeoutMs))), timeoutMs);
    const onAbort = () => done(() => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')));
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    void received.then((callback) => done(() => resolve(callback)));
    function done(settle: () => void) {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      settle();
    }
  });
}
