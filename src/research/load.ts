import { createReadStream } from 'node:fs';
import { rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import { faveError, FaveFailure } from '../domain/errors.ts';
import { arrivalOffsets, type Regime } from './arrivals.ts';
import type { ResultRecord } from './results-file.ts';

/**
 * `fave load`: requests to an orchestrator (`fave serve`, or the OpenFaaS function) on an
 * open-loop schedule, written as FAVE's results files.
 *
 * Each request is one synchronous `POST /?format=fave-v1` carrying its own `request_id`. A
 * retry (after a network error or a 5xx) sends the same id again: the orchestrator joins the
 * running request, or answers the finished one, so a request is never run twice and its latency
 * is that of one request. The synchronous call keeps `duration_ms` what FAVE's generator
 * measures (the time until the answer arrives), to the millisecond, where polling
 * `GET /requests/{id}` after `?async=true` would round it up to the polling interval.
 */

export interface LoadOptions {
  /** The orchestrator's base URL: `POST {target}/` runs a request. */
  target: string;
  /** The video: an s3:// or http(s):// URI given as is, or a local file uploaded once. */
  video: string;
  regime: Regime;
  /** Requests per second (steady: constant; ramp: the final rate). */
  rate: number;
  requests: number;
  /** Most requests in flight at once; an arrival past it waits, and that wait is its queue delay. */
  concurrency: number;
  profile: string;
  token: string | null;
  /** Per HTTP attempt. */
  timeoutMs: number;
  /** HTTP attempts per request (1 = no retry). */
  attempts: number;
  /** The whole run: requests still running then are abandoned and recorded as failures. */
  maxDurationMs: number;
  /** Base of the exponential backoff between attempts. */
  retryBaseMs?: number;
  /** The largest answer read. */
  maxAnswerBytes?: number;
}

export interface LoadProgress {
  due: number;
  started: number;
  done: number;
  failed: number;
  total: number;
}

export const LOAD_LIMITS = { requests: 10_000, rate: 1_000, concurrency: 10_000, attempts: 10 } as const;

const RETRIED_STATUSES = new Set([500, 502, 503, 504]);
const DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** Python's `datetime.now().isoformat()`: local time, no zone, microseconds. */
export function localIsoTimestamp(at: Date): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}000`;
}

function authHeaders(token: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

function baseOf(target: string): string {
  return target.replace(/\/+$/, '');
}

/** Uploads a local video once (`POST /uploads`) and answers the `s3://` URI to submit. */
export async function uploadVideo(target: string, path: string, token: string | null, dispatcher: Dispatcher): Promise<string> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) throw new FaveFailure(faveError('BAD_REQUEST', `video: no such file ${path}`));
  const url = `${baseOf(target)}/uploads?filename=${encodeURIComponent(basename(path))}`;
  let answer: Dispatcher.ResponseData;
  try {
    answer = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(info.size), ...authHeaders(token) },
      body: createReadStream(path),
    });
  } catch (err) {
    throw new FaveFailure(faveError('STAGE_TRANSPORT', `POST /uploads: ${(err as Error).message}`));
  }
  const text = await answer.body.text();
  if (answer.statusCode !== 201 && answer.statusCode !== 200) {
    throw new FaveFailure(faveError('BAD_REQUEST', `POST /uploads answered HTTP ${answer.statusCode}: ${text.slice(0, 300)}`, { http_status: answer.statusCode }));
  }
  const uri = (JSON.parse(text) as { uri?: unknown }).uri;
  if (typeof uri !== 'string') throw new FaveFailure(faveError('STAGE_CONTRACT', 'POST /uploads answered no uri'));
  return uri;
}

interface Attempted {
  status: 'success' | 'failure';
  response: unknown;
  httpStatus: number | null;
  retry: boolean;
}

async function attempt(url: string, body: string, options: LoadOptions, dispatcher: Dispatcher, signal: AbortSignal): Promise<Attempted> {
  let answer: Dispatcher.ResponseData;
  try {
    answer = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', accept: 'application/json', ...authHeaders(options.token) },
      body,
      signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]),
    });
  } catch (err) {
    return { status: 'failure', response: { error: (err as Error).message }, httpStatus: null, retry: !signal.aborted };
  }
  const max = options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  const declared = Number(answer.headers['content-length'] ?? NaN);
  if (declared > max) {
    answer.body.destroy();
    return { status: 'failure', response: { error: `answer of ${declared} bytes: more than the ${max} read` }, httpStatus: answer.statusCode, retry: false };
  }
  let text: string;
  try {
    text = await answer.body.text();
  } catch (err) {
    return { status: 'failure', response: { error: `the answer was cut off: ${(err as Error).message}` }, httpStatus: answer.statusCode, retry: !signal.aborted };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (answer.statusCode >= 200 && answer.statusCode < 300 && parsed !== undefined) return { status: 'success', response: parsed, httpStatus: answer.statusCode, retry: false };
  const error = `HTTP ${answer.statusCode}: ${text.slice(0, 500)}`;
  return { status: 'failure', response: { error }, httpStatus: answer.statusCode, retry: RETRIED_STATUSES.has(answer.statusCode) };
}

/** A counting semaphore for `--concurrency`; FIFO, so arrivals keep their order. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  constructor(size: number) {
    this.free = size;
  }
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

/**
 * Runs the load and answers one record per request in arrival order. The schedule is fixed
 * before the first request; `started_ms - intended_start_ms` is the wait for a slot (and the
 * timer's own lateness on a busy machine).
 */
export async function runLoad(options: LoadOptions, videoUri: string, onProgress: (p: LoadProgress) => void = () => undefined, dispatcher?: Dispatcher): Promise<ResultRecord[]> {
  const agent = dispatcher ?? new Agent({ headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs, connections: Math.min(options.concurrency, 1024) });
  const offsets = arrivalOffsets(options.regime, options.requests, options.rate);
  const url = `${baseOf(options.target)}/?format=fave-v1`;
  const slots = new Slots(options.concurrency);
  const run = new AbortController();
  const progress: LoadProgress = { due: 0, started: 0, done: 0, failed: 0, total: options.requests };
  const records: Array<ResultRecord | undefined> = new Array<ResultRecord | undefined>(options.requests);
  const t0 = performance.now();
  const stop = setTimeout(() => run.abort(), options.maxDurationMs);
  const since = (): number => performance.now() - t0;

  async function one(i: number): Promise<void> {
    const requestId = `load-${randomUUID()}`;
    const intended = offsets[i]!;
    await slots.take();
    const startedMs = since();
    const wallStart = new Date();
    progress.started += 1;
    onProgress({ ...progress });
    const body = JSON.stringify({ video_uri: videoUri, profile: options.profile, request_id: requestId });
    let outcome: Attempted = { status: 'failure', response: { error: 'the run ended before this request was sent' }, httpStatus: null, retry: false };
    let attempts = 0;
    try {
      while (attempts < options.attempts && !run.signal.aborted) {
        if (attempts > 0) {
          const backoff = Math.random() * Math.min(30_000, (options.retryBaseMs ?? 1000) * 2 ** (attempts - 1));
          await sleep(backoff, undefined, { signal: run.signal }).catch(() => undefined);
          if (run.signal.aborted) break;
        }
        attempts += 1;
        outcome = await attempt(url, body, options, agent, run.signal);
        if (!outcome.retry) break;
      }
      if (run.signal.aborted && outcome.status !== 'success') {
        outcome = { ...outcome, response: { error: `abandoned: the run's time limit (${Math.round(options.maxDurationMs / 1000)} s) passed` } };
      }
    } finally {
      slots.give();
    }
    records[i] = {
      timestamp: localIsoTimestamp(wallStart),
      duration_ms: Math.round(since() - startedMs),
      status: outcome.status,
      response: outcome.response,
      profile: options.profile,
      request_id: requestId,
      intended_start_ms: Math.round(intended * 1000) / 1000,
      started_ms: Math.round(startedMs * 1000) / 1000,
      queue_delay_ms: Math.round((startedMs - intended) * 1000) / 1000,
      attempts,
      http_status: outcome.httpStatus,
    };
    progress.done += 1;
    if (outcome.status !== 'success') progress.failed += 1;
    onProgress({ ...progress });
  }

  const running: Array<Promise<void>> = [];
  try {
    for (let i = 0; i < offsets.length; i += 1) {
      // Node's timers count whole milliseconds of the loop's clock, so one may fire a little
      // before its time by this one: the rest is waited out, and no request starts early.
      for (let wait = offsets[i]! - since(); wait > 0 && !run.signal.aborted; wait = offsets[i]! - since()) {
        await sleep(wait, undefined, { signal: run.signal }).catch(() => undefined);
      }
      progress.due += 1;
      // Recorded as a failure of that request rather than left to reject unobserved.
      running.push(
        one(i).catch((err: unknown) => {
          records[i] = {
            timestamp: localIsoTimestamp(new Date()),
            duration_ms: 0,
            status: 'failure',
            response: { error: (err as Error).message },
            profile: options.profile,
            attempts: 0,
          };
        }),
      );
    }
    await Promise.all(running);
  } finally {
    clearTimeout(stop);
    if (!dispatcher) await agent.close();
  }
  return records.map((r) => r!);
}

/** FAVE's file name: `results_{regime}_{profile}_…_{unix time}.json`. */
export function resultsFileName(options: Pick<LoadOptions, 'regime' | 'profile' | 'rate' | 'requests'>, replicas: 'cold' | 'warm' | null, at: Date): string {
  const rate = `${String(options.rate).replace('.', 'p')}rps`;
  const shape = options.regime === 'burst' ? `${options.requests}req` : `${rate}_${options.requests}req`;
  const profile = options.profile.replace(/[^A-Za-z0-9-]/g, '-');
  return `results_${options.regime}_${profile}_${shape}${replicas ? `_${replicas}` : ''}_${Math.floor(at.getTime() / 1000)}.json`;
}

/** Written whole or not at all, indented like FAVE's files. */
export async function writeResultsFile(dir: string, name: string, records: readonly ResultRecord[]): Promise<string> {
  const path = join(dir, name);
  const partial = `${path}.${process.pid}.tmp`;
  await writeFile(partial, `${JSON.stringify(records, null, 2)}\n`);
  await rename(partial, path);
  return path;
}
