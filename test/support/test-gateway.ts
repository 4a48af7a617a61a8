import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { REQUEST_ID_PATTERN } from '../../src/domain/request.ts';
import { FaveFailure } from '../../src/domain/errors.ts';
import { ConnectionReset, startGatewayServer } from '../../src/stages/gateway/server.ts';
import type { CallbackPost, FunctionCall, FunctionReply, GatewayServer } from '../../src/stages/gateway/types.ts';
import type { ReplicaModel, ReplicaModelOptions } from '../../src/stages/gateway/replica-model.ts';
import { formatS3Uri, parseS3Uri, type Store } from '../../src/persistence/store.ts';
import { makeTarGz } from './archives.ts';
import { validateStagePayload, validateStageResult, type StagePayload } from './python-stage-models.ts';
import { type StageKey } from '../../src/domain/stage.ts';
import {
  PLACEHOLDER_NOTE,
  artifactKeys,
  clipTimes,
  framesOf,
  resolveScript,
  stageKeyOf,
  timestampsTxt,
  transcriptText,
  wireDetection,
  type Script,
  type ScriptOptions,
} from './gateway-script.ts';

export * from './gateway-script.ts';

/**
 * What a scripted call does instead of (or before) its normal answer:
 * - status: the gateway answers that HTTP status (502/503 scaling, 504, 404, 500…), immediately,
 *   or once `after` has settled;
 * - error: HTTP 200 `{"status":"error","message"}` and nothing else, as a stage rejecting its input;
 * - malformed: HTTP 200 whose body is not JSON;
 * - contract: HTTP 200 with a full response whose outputs[0].uri is missing;
 * - hang: never answers until the call is aborted (client gone, gateway timeout, close);
 * - slow: waits `ms` more, then answers normally;
 * - reset: the connection is reset without an answer;
 * - lose-callback: an async call runs and answers normally, but its callback is never posted.
 */
export type FaultAction =
  | { kind: 'status'; status: number; body?: string; after?: Promise<unknown> }
  | { kind: 'error'; message?: string }
  | { kind: 'malformed' }
  | { kind: 'contract' }
  | { kind: 'hang' }
  | { kind: 'slow'; ms: number }
  | { kind: 'reset' }
  | { kind: 'lose-callback' };

export interface FaultMatch {
  /** A stage key (`ffmpeg2`) or function name (`stage-ffmpeg-2`). */
  stage: string;
  clip?: number;
  frame?: number;
  requestId?: string;
  /** Applies to the first `times` matching calls; every matching call when absent. */
  times?: number;
}

export type Fault = FaultMatch & FaultAction;
export type FaultKind = FaultAction['kind'];

export type CallOutcome = 'success' | 'error' | 'malformed' | 'contract' | 'status' | 'hang' | 'reset' | 'aborted' | 'crash';

export interface CallRecord {
  /** Function name, e.g. `stage-ffmpeg-2`. */
  stage: string;
  stage_key: StageKey;
  request_id: string | null;
  clip: number | null;
  frame: number | null;
  call_id: string;
  /** Epoch milliseconds. */
  started_at: number;
  ended_at: number | null;
  /** HTTP status the function answered; null when it never answered (hang, reset, abort). */
  status: number | null;
  outcome: CallOutcome | null;
  fault: FaultKind | null;
  cold_start: boolean | null;
  /** `metrics.cost_unit` of the answer; null when it answered none. */
  cost_unit: number | null;
}

export interface TestGatewayOptions extends ScriptOptions {
  store: Store;
  /** Fixed delay of every call, or per stage (keyed by stage key or function name). */
  latencyMs?: number | Partial<Record<string, number>>;
  /** Every Nth successful answer reports `metrics.cold_start: true`. */
  coldStartEvery?: number;
  faults?: Fault[];
  /**
   * Answer `status: "error"` when `input_uri` names no object in the store, as a stage failing
   * to download its input would. Default true: it catches wrongly chained URIs.
   */
  requireInputs?: boolean;
  /**
   * 'none': the per-clip and per-frame stages store nothing and answer inline (transcripts and
   * detections in `metadata`), so a call costs little more than its latency. For benchmarks.
   */
  artifacts?: 'write' | 'none';
  /** Synchronous calls longer than this get 504 from the gateway, as OpenFaaS's upstream timeout. */
  upstreamTimeoutMs?: number;
  /** The queue-worker's own timeout for async calls (none by default). */
  asyncTimeoutMs?: number;
  /** The queue-worker's max_inflight (no bound by default). */
  asyncMaxInflight?: number;
  basicAuth?: { user: string; password: string };
  /** The basic auth of `/system/*` (as OpenFaaS's gateway admin); `basicAuth` when absent. */
  systemAuth?: { user: string; password: string } | null;
  /** Cold starts and replicas (see src/stages/gateway/replica-model.ts); off: every call is warm. */
  replicas?: Partial<ReplicaModelOptions>;
  /** What `/system/*` answers: served (null, the default) or this status (401, 403, 404, 500…). */
  systemStatus?: number | null;
  /** What scale calls alone answer: served (null), this status, or never ('hang'). */
  scaleStatus?: number | 'hang' | null;
  host?: string;
  port?: number;
}

/** A scale call the gateway accepted. */
export interface ScaleRecord {
  name: string;
  replicas: number;
  /** Epoch milliseconds. */
  at: number;
}

export interface TestGateway {
  readonly url: string;
  readonly port: number;
  readonly script: Script;
  readonly bucket: string;
  /** Every call since start or the last reset(), in arrival order (live array). */
  readonly calls: CallRecord[];
  /** Peak number of calls in flight at once, over all requests. */
  readonly maxConcurrent: number;
  readonly inFlight: number;
  maxConcurrentByRequest(requestId: string): number;
  /** Calls of one stage (key or function name). */
  callsTo(stage: string): CallRecord[];
  addFault(fault: Fault): void;
  clearFaults(): void;
  /** Every callback posted (or lost) for an async call, in order. */
  readonly callbacks: CallbackPost[];
  /** Holds callbacks of the matching stage (all when absent) until `releaseCallbacks()`. */
  holdCallbacks(stage?: string): void;
  releaseCallbacks(): void;
  /** Callbacks waiting to be released. */
  readonly heldCallbacks: number;
  /**
   * Queues async calls of the matching stage (all when absent) but holds their 202 until
   * `releaseAccepts()`: the calls run and call back, their caller does not hear they were queued.
   */
  holdAccepts(stage?: string): void;
  releaseAccepts(): void;
  /** Async calls queued whose 202 is held. */
  readonly heldAccepts: number;
  /** Clears calls, concurrency peaks, scale calls and the cold-start counter; faults stay. */
  reset(): void;
  /** The replica model, when `replicas` was given. */
  readonly replicaModel: ReplicaModel | null;
  /** Every scale call accepted since start or the last reset(). */
  readonly scaleCalls: ScaleRecord[];
  /** Makes `/system/*` answer this status from now on (null: served normally). */
  setSystemStatus(status: number | null): void;
  /** Makes scale calls alone answer this status, or never answer, from now on (null: served). */
  setScaleStatus(status: number | 'hang' | null): void;
  close(): Promise<void>;
}

const MEMORY_LIMIT_MB: Record<StageKey, number> = {
  ffmpeg0: 512,
  librosa: 512,
  ffmpeg1: 512,
  ffmpeg2: 512,
  deepspeech: 1024,
  ffmpeg3: 512,
  detector: 1024,
};

const JSON_HEADERS = { 'content-type': 'application/json' };

/** Thrown inside a stage for what the Python stages report as `{status: "error"}`. */
class StageInputError extends Error {}

interface Peek {
  requestId: string | null;
  clip: number | null;
  frame: number | null;
}

interface StageContext {
  key: StageKey;
  name: string;
  request: StagePayload;
  requestId: string;
}

interface Answer {
  reply: FunctionReply;
  outcome: CallOutcome;
}

interface ActiveFault {
  fault: Fault;
  remaining: number;
}

/**
 * A scripted FAVE pipeline behind a real OpenFaaS-compatible gateway. Each stage writes real
 * artifacts into the store under `requests/{id}/{stage}/…` and answers the DESIGN §3 shapes;
 * see `expectedClips` for what a correct orchestrator learns from it.
 */
export async function startTestGateway(options: TestGatewayOptions): Promise<TestGateway> {
  const { store } = options;
  const script = resolveScript(options, store.bucket);
  const lean = options.artifacts === 'none';
  const requireInputs = !lean && (options.requireInputs ?? true);
  let faults: ActiveFault[] = [];
  let calls: CallRecord[] = [];
  let inFlight = 0;
  let maxConcurrent = 0;
  let answered = 0;
  const inFlightByRequest = new Map<string, number>();
  const lostCallbacks = new Set<string>();
  const callbacks: CallbackPost[] = [];
  let hold: { stage: string | null; released: Promise<void>; release: () => void } | null = null;
  let held = 0;
  let acceptHold: { stage: string | null; released: Promise<void>; release: () => void } | null = null;
  let heldAccepts = 0;
  const peakByRequest = new Map<string, number>();
  let scaleCalls: ScaleRecord[] = [];
  let systemStatus = options.systemStatus ?? null;
  let scaleStatus = options.scaleStatus ?? null;

  const addFault = (fault: Fault) => faults.push({ fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
  for (const fault of options.faults ?? []) addFault(fault);

  function takeFault(key: StageKey, name: string, peek: Peek): Fault | null {
    for (const active of faults) {
      const f = active.fault;
      if (active.remaining <= 0) continue;
      if (f.stage !== key && f.stage !== name) continue;
      if (f.clip !== undefined && f.clip !== peek.clip) continue;
      if (f.frame !== undefined && f.frame !== peek.frame) continue;
      if (f.requestId !== undefined && f.requestId !== peek.requestId) continue;
      active.remaining--;
      return f;
    }
    return null;
  }

  function latencyFor(key: StageKey, name: string): number {
    const latency = options.latencyMs;
    if (latency === undefined) return 0;
    if (typeof latency === 'number') return latency;
    return latency[name] ?? latency[key] ?? 0;
  }

  function enter(requestId: string | null): void {
    inFlight++;
    maxConcurrent = Math.max(maxConcurrent, inFlight);
    if (requestId === null) return;
    const now = (inFlightByRequest.get(requestId) ?? 0) + 1;
    inFlightByRequest.set(requestId, now);
    peakByRequest.set(requestId, Math.max(peakByRequest.get(requestId) ?? 0, now));
  }

  function leave(requestId: string | null): void {
    inFlight--;
    if (requestId === null) return;
    const now = (inFlightByRequest.get(requestId) ?? 1) - 1;
    if (now === 0) inFlightByRequest.delete(requestId);
    else inFlightByRequest.set(requestId, now);
  }

  async function put(key: string, body: Buffer | string, contentType: string): Promise<string> {
    const loc = { bucket: script.bucket, key };
    await store.put(loc, body, { contentType });
    return formatS3Uri(loc);
  }

  /** Where a fan-out artifact would be; written unless the gateway is lean. */
  async function putUnit(key: string, body: () => Promise<Buffer | string> | Buffer | string, contentType: string): Promise<string> {
    if (lean) return formatS3Uri({ bucket: script.bucket, key });
    return put(key, await body(), contentType);
  }

  type Output = { type: string; uri: string; metadata: Record<string, unknown> };

  function requireClip(request: StagePayload): number {
    return requireIndex(request, 'clip_index');
  }

  async function work(ctx: StageContext): Promise<Output[]> {
    const { request, requestId: id } = ctx;
    const archive = (files: Record<string, string>) => makeTarGz(files);
    switch (ctx.key) {
      case 'ffmpeg0': {
        const body = await archive({ 'video.mp4': `video of ${id}`, 'audio.wav': `audio of ${id}` });
        return [{ type: 'archive', uri: await put(artifactKeys.media(script, id), body, 'application/gzip'), metadata: {} }];
      }
      case 'librosa': {
        const body = await archive({ 'video.mp4': `video of ${id}`, 'timestamps.txt': timestampsTxt(script) });
        const metadata = { segments: script.clips };
        return [{ type: 'archive', uri: await put(artifactKeys.segments(script, id), body, 'application/gzip'), metadata }];
      }
      case 'ffmpeg1': {
        const indexes = Array.from({ length: script.clips }, (_, i) => i);
        return Promise.all(
          indexes.map(async (i) => ({
            type: 'video',
            uri: await putUnit(artifactKeys.clip(script, id, i), () => `clip ${i} of ${id}`, 'video/mp4'),
            metadata: { clip_index: i, ...(script.clipTimesIn === 'metadata' ? clipTimes(script, i) : {}) },
          })),
        );
      }
      case 'ffmpeg2': {
        const clip = requireClip(request);
        const uri = await putUnit(
          artifactKeys.compressed(script, id, clip),
          () => archive({ 'video.mp4': `compressed clip ${clip}`, 'audio.wav': `16 kHz audio of clip ${clip}` }),
          'application/gzip',
        );
        return [{ type: 'archive', uri, metadata: { clip_index: clip } }];
      }
      case 'deepspeech': {
        const clip = requireClip(request);
        const text = transcriptText(script, clip);
        if (lean) return [{ type: 'archive', uri: request.input_uri, metadata: { clip_index: clip, transcript: text } }];
        switch (script.transcriptMode) {
          case 'txt':
            return [{ type: 'text', uri: await put(artifactKeys.transcriptTxt(script, id, clip), text, 'text/plain'), metadata: { clip_index: clip } }];
          case 'inline':
            // Nothing new to store: the media passes on to ffmpeg-3 and the words ride in metadata.
            return [{ type: 'archive', uri: request.input_uri, metadata: { clip_index: clip, transcript: text } }];
          case 'archive':
          case 'dummy': {
            const body = await archive({ 'video.mp4': `compressed clip ${clip}`, 'transcript.txt': text });
            const uri = await put(artifactKeys.transcriptArchive(script, id, clip), body, 'application/gzip');
            return [{ type: 'archive', uri, metadata: { clip_index: clip } }];
          }
        }
        throw new Error(`unknown transcript mode ${String(script.transcriptMode)}`);
      }
      case 'ffmpeg3': {
        const clip = requireClip(request);
        const frames = Array.from({ length: framesOf(script, clip) }, (_, f) => f);
        return Promise.all(
          frames.map(async (f) => ({
            type: 'image',
            uri: await putUnit(artifactKeys.frame(script, id, clip, f), () => jpegPlaceholder(clip, f), 'image/jpeg'),
            metadata: { clip, frame_index: f },
          })),
        );
      }
      case 'detector': {
        const clip = requireClip(request);
        const frame = requireIndex(request, 'frame_index');
        const document =
          script.detectorMode === 'placeholder'
            ? { model: 'yolov8n.onnx', raw_output_shapes: [[1, 84, 8400]], note: PLACEHOLDER_NOTE }
            : { model: 'scripted', detections: script.detections(clip, frame).map((d, i) => wireDetection(d, clip, frame, i)) };
        if (lean && 'detections' in document) {
          const uri = formatS3Uri({ bucket: script.bucket, key: artifactKeys.detections(script, id, clip, frame) });
          return [{ type: 'json', uri, metadata: { clip, frame_index: frame, detections: document.detections } }];
        }
        const uri = await put(artifactKeys.detections(script, id, clip, frame), JSON.stringify(document), 'application/json');
        return [{ type: 'json', uri, metadata: { clip, frame_index: frame } }];
      }
    }
  }

  async function respond(key: StageKey, call: FunctionCall, body: ParsedBody, fault: Fault | null, record: CallRecord): Promise<Answer> {
    const { name, signal } = call;
    const started = performance.now();
    switch (fault?.kind) {
      case 'status': {
        if (fault.after) await Promise.race([fault.after, waitForAbort(signal)]);
        const body = fault.body ?? (fault.status === 404 ? `error finding function ${name}: function not found` : (STATUS_CODES[fault.status] ?? 'error'));
        return { outcome: 'status', reply: { status: fault.status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body } };
      }
      case 'reset':
        throw new ConnectionReset();
      case 'hang':
        return waitForAbort(signal);
      case 'slow':
        await sleep(fault.ms, undefined, { signal });
        break;
      default:
        break;
    }
    const latency = latencyFor(key, name);
    if (latency > 0) await sleep(latency, undefined, { signal });

    if (fault?.kind === 'error') return stageError(fault.message ?? `${name}: scripted failure`);
    if (fault?.kind === 'malformed') {
      return { outcome: 'malformed', reply: { status: 200, headers: JSON_HEADERS, body: `{"request_id": "${record.request_id ?? ''}", "outputs": [` } };
    }

    if (!body.ok) return stageError(`invalid JSON body: ${body.message}`);
    const raw = body.value;
    // Every Python stage starts with `StagePayload(**body)` and answers its ValidationError as is.
    const parsed = validateStagePayload(raw);
    if (!parsed.ok) return stageError(parsed.message);
    const request = parsed.value;
    if (!REQUEST_ID_PATTERN.test(request.request_id)) return stageError(`invalid request: request_id ${JSON.stringify(request.request_id)}`);

    let outputs: Output[];
    try {
      if (requireInputs) {
        const loc = parseS3Uri(request.input_uri);
        if (!(await store.head(loc))) throw new StageInputError(`input not found: ${request.input_uri}`);
      }
      outputs = await work({ key, name, request, requestId: request.request_id });
    } catch (err) {
      if (err instanceof StageInputError || err instanceof FaveFailure) return stageError(err.message);
      throw err;
    }

    answered++;
    const coldStart = call.coldStart || (options.coldStartEvery !== undefined && options.coldStartEvery > 0 && answered % options.coldStartEvery === 0);
    record.cold_start = coldStart;
    const durationMs = Math.round(performance.now() - started);
    const memory = MEMORY_LIMIT_MB[key];
    const response = {
      request_id: request.request_id,
      stage: name,
      outputs: outputs as Array<Record<string, unknown>>,
      metrics: {
        duration_ms: durationMs,
        memory_limit_mb: memory,
        cold_start: coldStart,
        cost_unit: Math.round((durationMs / 1000) * (memory / 1024) * 1e6) / 1e6,
        extra: { scripted: true },
      },
      status: 'success',
      message: null,
    };
    if (fault?.kind === 'contract') {
      const first = response.outputs[0];
      if (first) delete first.uri;
      else response.outputs.push({ type: 'unknown', metadata: {} });
    } else {
      // The stages build their answer as a `StageResult`; one that does not validate raises, and
      // an exception in a stage is an HTTP 500 with its text.
      const checked = validateStageResult(response);
      if (!checked.ok) return { outcome: 'status', reply: { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: checked.message } };
    }
    record.cost_unit = response.metrics.cost_unit;
    return { outcome: fault?.kind === 'contract' ? 'contract' : 'success', reply: { status: 200, headers: JSON_HEADERS, body: JSON.stringify(response) } };
  }

  const handlerFor =
    (key: StageKey) =>
    async (call: FunctionCall): Promise<FunctionReply> => {
      // Parsed once: what the call is about (recorded even for bad input) and what the stage reads.
      const body = parseBody(call.body);
      const peek = peekRequest(body);
      const record: CallRecord = {
        stage: call.name,
        stage_key: key,
        request_id: peek.requestId,
        clip: peek.clip,
        frame: peek.frame,
        call_id: call.callId,
        started_at: Date.now(),
        ended_at: null,
        status: null,
        outcome: null,
        fault: null,
        cold_start: null,
        cost_unit: null,
      };
      calls.push(record);
      enter(peek.requestId);
      try {
        const fault = takeFault(key, call.name, peek);
        record.fault = fault?.kind ?? null;
        if (fault?.kind === 'lose-callback') lostCallbacks.add(call.callId);
        const { reply, outcome } = await respond(key, call, body, fault, record);
        record.status = reply.status;
        record.outcome = outcome;
        return reply;
      } catch (err) {
        record.outcome = err instanceof ConnectionReset ? 'reset' : call.signal.aborted ? (record.fault === 'hang' ? 'hang' : 'aborted') : 'crash';
        throw err;
      } finally {
        record.ended_at = Date.now();
        leave(peek.requestId);
      }
    };

  const functions = Object.fromEntries((Object.entries(script.stageNames) as Array<[StageKey, string]>).map(([key, name]) => [name, handlerFor(key)]));
  const server: GatewayServer = await startGatewayServer({
    functions,
    host: options.host,
    port: options.port,
    upstreamTimeoutMs: options.upstreamTimeoutMs,
    asyncTimeoutMs: options.asyncTimeoutMs,
    asyncMaxInflight: options.asyncMaxInflight,
    basicAuth: options.basicAuth,
    async beforeAccept(name) {
      const holding = acceptHold;
      if (!holding || (holding.stage !== null && stageKeyOf(script, holding.stage) !== stageKeyOf(script, name))) return;
      heldAccepts++;
      await holding.released;
      heldAccepts--;
    },
    ...(options.systemAuth !== undefined ? { systemAuth: options.systemAuth } : {}),
    ...(options.replicas ? { replicas: options.replicas } : {}),
    systemStatus: ({ path }) => systemStatus ?? (path.startsWith('/system/scale-function/') ? scaleStatus : null),
    onScale: (name, replicas) => scaleCalls.push({ name, replicas, at: Date.now() }),
    async beforeCallback(post) {
      callbacks.push(post);
      if (lostCallbacks.delete(post.callId)) return 'drop';
      const holding = hold;
      if (holding && (holding.stage === null || stageKeyOf(script, holding.stage) === stageKeyOf(script, post.name))) {
        held++;
        await holding.released;
        held--;
      }
      return 'deliver';
    },
  });

  return {
    url: server.url,
    port: server.port,
    script,
    bucket: script.bucket,
    get calls() {
      return calls;
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
    get inFlight() {
      return inFlight;
    },
    maxConcurrentByRequest: (requestId) => peakByRequest.get(requestId) ?? 0,
    callsTo: (stage) => {
      const key = stageKeyOf(script, stage);
      return calls.filter((c) => c.stage_key === key);
    },
    get callbacks() {
      return callbacks;
    },
    holdCallbacks(stage) {
      if (hold) return;
      let release = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      hold = { stage: stage ?? null, released, release };
    },
    releaseCallbacks() {
      hold?.release();
      hold = null;
    },
    get heldCallbacks() {
      return held;
    },
    holdAccepts(stage) {
      if (acceptHold) return;
      let release = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      acceptHold = { stage: stage ?? null, released, release };
    },
    releaseAccepts() {
      acceptHold?.release();
      acceptHold = null;
    },
    get heldAccepts() {
      return heldAccepts;
    },
    replicaModel: server.replicas ?? null,
    get scaleCalls() {
      return scaleCalls;
    },
    setSystemStatus(status) {
      systemStatus = status;
    },
    setScaleStatus(status) {
      scaleStatus = status;
    },
    addFault,
    clearFaults: () => {
      faults = [];
    },
    reset: () => {
      calls = [];
      maxConcurrent = inFlight;
      peakByRequest.clear();
      for (const [id, n] of inFlightByRequest) peakByRequest.set(id, n);
      answered = 0;
      scaleCalls = [];
    },
    close: () => {
      hold?.release();
      hold = null;
      acceptHold?.release();
      acceptHold = null;
      return server.close();
    },
  };
}

/** `payload.fanout["clip_index"]`, as the per-clip and per-frame stages read it. */
function requireIndex(request: StagePayload, key: 'clip_index' | 'frame_index'): number {
  const value = request.fanout[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new StageInputError(`fanout.${key} is required`);
  return value;
}

function stageError(message: string): Answer {
  return { outcome: 'error', reply: { status: 200, headers: JSON_HEADERS, body: JSON.stringify({ status: 'error', message }) } };
}

function waitForAbort(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    const abort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true });
  });
}

type ParsedBody = { ok: true; value: unknown } | { ok: false; message: string };

function parseBody(body: Buffer): ParsedBody {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as unknown };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** Reads what a call is about without validating it, so even bad input is recorded. */
function peekRequest(body: ParsedBody): Peek {
  const value = body.ok ? body.value : null;
  if (typeof value !== 'object' || value === null) return { requestId: null, clip: null, frame: null };
  const v = value as { request_id?: unknown; fanout?: { clip_index?: unknown; frame_index?: unknown } | null };
  const int = (x: unknown) => (typeof x === 'number' && Number.isInteger(x) ? x : null);
  return {
    requestId: typeof v.request_id === 'string' ? v.request_id : null,
    clip: int(v.fanout?.clip_index),
    frame: int(v.fanout?.frame_index),
  };
}

/** A few bytes that start like a JPEG, enough for anything that sniffs the type. */
function jpegPlaceholder(clip: number, frame: number): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from(`frame ${frame} of clip ${clip}`), Buffer.from([0xff, 0xd9])]);
}
