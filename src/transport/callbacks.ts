import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { toFaveError } from '../domain/errors.ts';
import { isNotFound, isPreconditionFailed, type Store } from '../persistence/store.ts';
import type { StageHttpResponse } from './transport.ts';

/**
 * Results of async stage calls, as OpenFaaS's queue-worker posts them back. Each callback
 * belongs to one attempt of one call of one request (its address), is stored durably under
 * `requests/{id}/callbacks/` before it is acknowledged, and wakes whoever waits for it in this
 * process at once; a process that owns the request elsewhere finds it at its next poll.
 */

/** Which attempt of which call a callback answers. `run` counts redrives, so a redriven call's attempt 1 is not the first run's. */
export interface CallbackAddress {
  request_id: string;
  task_id: string;
  run: number;
  attempt: number;
}

/** The task ids the machine gives its calls (`ffmpeg0`, `clip-3/deepspeech`, `frame-3-7`). */
export const TASK_ID_PATTERN = /^(?:ffmpeg0|librosa|ffmpeg1|clip-\d{1,6}\/(?:ffmpeg2|deepspeech|ffmpeg3)|frame-\d{1,6}-\d{1,7})$/;

/** The largest callback body accepted: a stage's JSON answer, well above any real one. */
export const CALLBACK_MAX_BODY_BYTES = 1024 * 1024;

export const callbackKeys = {
  prefix: (requestId: string) => `requests/${requestId}/callbacks/`,
  of: (a: CallbackAddress) => `requests/${a.request_id}/callbacks/${a.task_id}/r${a.run}-a${a.attempt}.json`,
};

/** An HMAC of the address under the callback secret: only this orchestrator can make one. */
export function callbackToken(secret: string, a: CallbackAddress): string {
  return createHmac('sha256', secret).update(`fave-callback\n${a.request_id}\n${a.task_id}\n${a.run}\n${a.attempt}`).digest('base64url');
}

export function verifyCallbackToken(secret: string, a: CallbackAddress, token: string): boolean {
  const expected = Buffer.from(callbackToken(secret, a));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Where the queue-worker posts one attempt's result: the callback route, address and token in the query. */
export function callbackUrl(baseUrl: string, secret: string, a: CallbackAddress): string {
  const query = new URLSearchParams({ task: a.task_id, run: String(a.run), attempt: String(a.attempt), token: callbackToken(secret, a) });
  return `${baseUrl}/callbacks/${encodeURIComponent(a.request_id)}?${query}`;
}

/** A callback as stored: the function's answer and what the queue-worker said about it. */
export const StoredCallbackSchema = z.object({
  format: z.literal('fave-callback'),
  request_id: z.string(),
  task_id: z.string(),
  run: z.number().int().min(0),
  attempt: z.number().int().min(1),
  received_at: z.number(),
  call_id: z.string().nullable(),
  function_name: z.string().nullable(),
  function_status: z.number().int(),
  duration_seconds: z.number().nullable(),
  /** When the function started (X-Start-Time), epoch ms. */
  function_started_at: z.number().nullable(),
  content_type: z.string().nullable(),
  body: z.string(),
});
export type StoredCallback = z.infer<typeof StoredCallbackSchema>;

/** The callback as the answer of a call, for the same classification as a synchronous answer. */
export function responseOfCallback(callback: StoredCallback): StageHttpResponse {
  const headers: Record<string, string> = {};
  if (callback.call_id !== null) headers['x-call-id'] = callback.call_id;
  if (callback.duration_seconds !== null) headers['x-duration-seconds'] = String(callback.duration_seconds);
  if (callback.content_type !== null) headers['content-type'] = callback.content_type;
  return { status: callback.function_status, headers, body: callback.body };
}

/**
 * `X-Start-Time` as epoch ms. The watchdog writes nanoseconds; seconds, milliseconds and
 * microseconds are told apart by magnitude, so any of them reads right.
 */
export function parseStartTime(value: string | undefined): number | null {
  if (!value || !/^\d{1,20}(?:\.\d+)?$/.test(value.trim())) return null;
  const n = Number(value.trim());
  if (!Number.isFinite(n) || n <= 0) return null;
  if (n >= 1e17) return Math.round(n / 1e6);
  if (n >= 1e14) return Math.round(n / 1e3);
  if (n >= 1e11) return Math.round(n);
  return Math.round(n * 1000);
}

interface Waiter {
  key: string;
  address: CallbackAddress;
  resolve: (callback: StoredCallback) => void;
  /** Told when its callback comes in, before it is stored. */
  arrived: (() => void) | undefined;
}

export interface CallbackInboxOptions {
  store: Store;
  bucket: string;
  /** How often a process looks in the store for callbacks that reached another replica. */
  pollMs: number;
  logger?: Logger;
}

export class CallbackInbox {
  private readonly waiters = new Map<string, Waiter>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  /** The store's probe found `If-None-Match` honoured: the write alone tells a duplicate. */
  private conditionalWrites = false;

  constructor(private readonly options: CallbackInboxOptions) {}

  /** What the store's probe found (`Store.init`); until it is told, every write is looked before. */
  useConditionalWrites(honoured: boolean): void {
    this.conditionalWrites = honoured;
  }

  /**
   * Stores a callback unless one for its address is already stored (the first one wins: a
   * duplicate changes nothing), then hands it to a local waiter.
   */
  async accept(callback: StoredCallback): Promise<'stored' | 'duplicate'> {
    const loc = this.location(callback);
    const { store } = this.options;
    // The function is done: the call's place in the concurrency bound is free while the
    // callback is stored; the answer itself is handed over only once stored.
    this.waiters.get(loc.key)?.arrived?.();
    const body = JSON.stringify(callback);
    // The local store's create-if-absent alone tells a duplicate, atomically.
    if (store.createIfAbsent) {
      if (!(await store.createIfAbsent(loc, body, callbackKeys.prefix(callback.request_id)))) return 'duplicate';
    } else {
      // A look first where the store may ignore If-None-Match (allowed, with a warning, for one
      // process): a later duplicate would otherwise replace the first. Where the probe found it
      // honoured, the write's 412 says it, and a callback costs one request instead of two.
      if (!this.conditionalWrites && (await store.head(loc))) return 'duplicate';
      try {
        await store.put(loc, body, { contentType: 'application/json', ifNoneMatch: '*' });
      } catch (err) {
        if (isPreconditionFailed(err)) return 'duplicate';
        throw err;
      }
    }
    this.deliver(loc.key, callback);
    return 'stored';
  }

  /** The stored callback of an address, if one arrived. */
  async read(address: CallbackAddress): Promise<StoredCallback | null> {
    try {
      const { store } = this.options;
      const loc = this.location(address);
      const body = await (store.readRecord ? store.readRecord(loc, callbackKeys.prefix(address.request_id)) : store.get(loc));
      const parsed = StoredCallbackSchema.safeParse(JSON.parse(body.toString('utf8')));
      return parsed.success ? parsed.data : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      if (err instanceof SyntaxError) return null;
      throw err;
    }
  }

  /**
   * Waits for the callback of an address; register before the call is dispatched, so an answer
   * faster than the dispatch's own reply is not missed. `cancel` forgets the waiter.
   */
  expect(address: CallbackAddress, arrived?: () => void): { received: Promise<StoredCallback>; cancel: () => void } {
    const key = callbackKeys.of(address);
    let resolve!: (callback: StoredCallback) => void;
    const received = new Promise<StoredCallback>((r) => (resolve = r));
    const waiter: Waiter = { key, address, resolve, arrived };
    this.waiters.set(key, waiter);
    this.schedule();
    return {
      received,
      cancel: () => {
        if (this.waiters.get(key) === waiter) this.waiters.delete(key);
        if (this.waiters.size === 0) this.stopTimer();
      },
    };
  }

  get waiting(): number {
    return this.waiters.size;
  }

  close(): void {
    this.waiters.clear();
    this.stopTimer();
  }

  private location(address: CallbackAddress) {
    return { bucket: this.options.bucket, key: callbackKeys.of(address) };
  }

  private deliver(key: string, callback: StoredCallback): void {
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    if (this.waiters.size === 0) this.stopTimer();
    waiter.resolve(callback);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), Math.max(20, this.options.pollMs));
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Reads only the callbacks someone waits for. On a local store each is looked up by its key:
   * a listing would read one folder per call the request ever made, on every poll. On S3 one
   * listing per request with waiters (a call per thousand keys) finds them.
   */
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      if (this.options.store.kind === 'fs') {
        for (const [key, waiter] of [...this.waiters]) {
          const callback = await this.read(waiter.address);
          if (callback) this.deliver(key, callback);
        }
        return;
      }
      const requests = new Set([...this.waiters.values()].map((w) => w.address.request_id));
      for (const requestId of requests) {
        const keys = await this.options.store.list(this.options.bucket, callbackKeys.prefix(requestId));
        for (const key of keys) {
          const waiter = this.waiters.get(key);
          if (!waiter) continue;
          const { request_id, task_id, run, attempt } = waiter.address;
          const callback = await this.read({ request_id, task_id, run, attempt });
          if (callback) this.deliver(key, callback);
        }
      }
    } catch (err) {
      this.options.logger?.warn({ event: 'callback_poll_failed', error: toFaveError(err) });
    } finally {
      this.polling = false;
    }
  }
}
