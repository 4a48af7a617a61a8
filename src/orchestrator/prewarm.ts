import type { Logger } from 'pino';
import type { Config, PrewarmStrategy } from '../config/config.ts';
import type { PipelineContext, TopLevelState } from '../domain/context.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import { STAGE_KEYS, type StageKey } from '../domain/stage.ts';
import { SystemApiError, type OpenFaasSystemClient } from '../transport/openfaas-system.ts';

/**
 * Pre-warming: asks the gateway for replicas of the stages a running request is about to need,
 * before it needs them, and gives them back once no running request of this process does.
 * Every scale call is fire-and-forget and bounded: a refused, failed or slow call is logged and
 * changes nothing else (docs/configuration.md, "Pre-warming").
 */

/** A scale call made (or tried) on behalf of the running requests named. */
export interface PrewarmAction {
  at: number;
  stage: StageKey;
  function_name: string;
  from: number;
  replicas: number;
  kind: 'raise' | 'give-back';
  ok: boolean;
  error: string | null;
  request_ids: string[];
}

export interface PrewarmerOptions {
  client: OpenFaasSystemClient;
  config: Config;
  logger?: Logger;
  /** Overrides PREWARM_STRATEGY (the bench compares both). */
  strategy?: PrewarmStrategy;
}

/** The top-level state in which each stage is called. */
const PHASE_OF: Record<StageKey, TopLevelState> = {
  ffmpeg0: 'FFMPEG0',
  librosa: 'LIBROSA',
  ffmpeg1: 'CLIP',
  ffmpeg2: 'FANOUT',
  deepspeech: 'FANOUT',
  ffmpeg3: 'FANOUT',
  detector: 'DETECT',
};
const RANK: Record<TopLevelState, number> = { INIT: 0, FFMPEG0: 1, LIBROSA: 2, CLIP: 3, FANOUT: 4, DETECT: 5, COMPLETED: 6, FAILED: 6 };
const PER_CLIP: readonly StageKey[] = ['ffmpeg2', 'deepspeech', 'ffmpeg3'];
/** How much earlier than the estimated cold start a just-in-time scale call goes out. */
const LEAD_FACTOR = 1.25;
const LEAD_SLACK_MS = 300;
/** Scale calls of one moment (a burst of requests starting) are merged into one per function. */
const COALESCE_MS = 10;
const PROBE_RETRY_MS = 30_000;
/** Pre-warm actions kept per request for its timeline. */
const ACTIONS_PER_REQUEST = 64;

interface Want {
  /** Calls of this stage the request will have in flight at once. */
  calls: number;
  /** Epoch ms from which it counts (just in time: ahead of need by the cold start). */
  activeAt: number;
}

interface Tracked {
  requestId: string;
  min: number;
  max: number;
  cap: number;
  names: Record<StageKey, string>;
  detector: boolean;
  top: TopLevelState;
  wants: Map<StageKey, Want>;
  actions: PrewarmAction[];
  /**
   * The detector's calls once every clip's frames are known: they no longer change, and
   * counting them again walked every clip at every snapshot of the fan-out.
   */
  detectorCalls: number | null;
}

interface FunctionState {
  stage: StageKey;
  /** Replicas the function had when this process first raised it (null until read). */
  before: number | null;
  perReplica: number;
  /** The replicas last asked for (or read). */
  asked: number;
  /** The highest `replicas.min` of the requests that needed it since: give-back stops there. */
  releaseFloor: number;
  reading: boolean;
  /**
   * Whether `asked` is what the function has now. Read again when a request starts needing it:
   * something else (the platform's idler, an operator, another orchestrator) may have scaled it.
   */
  fresh: boolean;
  unreadable: boolean;
  scaling: boolean;
  again: boolean;
  /** The requests that have needed it since it was first raised: a give-back is made on their behalf. */
  holders: Set<string>;
}

type ApiState = { kind: 'unknown' } | { kind: 'probing' } | { kind: 'on' } | { kind: 'off'; reason: string } | { kind: 'retry-after'; at: number };

/** Exponentially weighted mean; the first sample sets it. */
function ewma(previous: number | undefined, sample: number): number {
  return previous === undefined ? sample : previous * 0.7 + sample * 0.3;
}

export class Prewarmer {
  private api: ApiState = { kind: 'unknown' };
  private readonly requests = new Map<string, Tracked>();
  private readonly functions = new Map<string, FunctionState>();
  private readonly pending = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private jitTimer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  /** The actions of requests that have ended here, for their timeline (the last 256). */
  private readonly finished = new Map<string, PrewarmAction[]>();
  private readonly listeners = new Set<(action: PrewarmAction) => void>();
  /** What this process has learned of the stages: warm call latency, cold-start delay, fan-out widths. */
  private readonly warmMs = new Map<StageKey, number>();
  private readonly coldMs = new Map<StageKey, number>();
  private clipsSeen: number | undefined;
  private framesPerClipSeen: number | undefined;
  readonly strategy: PrewarmStrategy;

  constructor(private readonly options: PrewarmerOptions) {
    this.strategy = options.strategy ?? options.config.prewarm.strategy;
  }

  /** True when no scale call is waiting to go out or awaiting its answer. */
  get idle(): boolean {
    return this.flushTimer === null && this.pending.size === 0 && this.inFlight.size === 0;
  }

  /** Why pre-warming is off for this gateway, or null while it is on or not yet known. */
  get offReason(): string | null {
    return this.api.kind === 'off' ? this.api.reason : null;
  }

  /** The pre-warm actions made while a running request needed them (its timeline shows them). */
  actionsOf(requestId: string): PrewarmAction[] {
    return this.requests.get(requestId)?.actions ?? this.finished.get(requestId) ?? [];
  }

  /** A request starts (or resumes) in this process. */
  track(requestId: string, top: TopLevelState, context: PipelineContext): void {
    if (this.closed || this.requests.has(requestId)) return;
    const { settings } = context;
    const profile = this.options.config.profiles[settings.profile] ?? this.options.config.profiles[this.options.config.profileName];
    if (!profile || profile.prewarm === 'off' || this.api.kind === 'off') return;
    this.requests.set(requestId, {
      requestId,
      min: profile.replicas.min,
      max: profile.replicas.max,
      cap: settings.max_concurrency,
      names: settings.stage_names,
      detector: settings.detector_enabled,
      top: 'INIT',
      wants: new Map(),
      actions: [],
      detectorCalls: null,
    });
    for (const stage of STAGE_KEYS) {
      const fn = this.functions.get(settings.stage_names[stage]);
      if (fn) fn.fresh = false;
    }
    this.probe();
    this.observe(requestId, top, context);
  }

  /** Every snapshot of a tracked request: plans its wants again when what it knows has changed. */
  observe(requestId: string, top: TopLevelState, context: PipelineContext): void {
    const tracked = this.requests.get(requestId);
    if (!tracked) return;
    if (top === 'COMPLETED' || top === 'FAILED') return this.release(requestId);
    const changedPhase = top !== tracked.top;
    tracked.top = top;
    const now = Date.now();
    const etas = changedPhase || tracked.wants.size === 0 ? this.etas(tracked, context) : null;
    for (const stage of STAGE_KEYS) {
      const passed = RANK[top] > RANK[PHASE_OF[stage]] || (stage === 'detector' && !tracked.detector);
      const want = tracked.wants.get(stage);
      if (passed) {
        if (want) {
          tracked.wants.delete(stage);
          this.touch(tracked.names[stage], stage, tracked.min);
        }
        continue;
      }
      const planned = this.callsOf(stage, tracked, context);
      // An estimate only grows until the count is known, so replicas are not asked for and given back in turns.
      const calls = planned.exact || !want ? planned.calls : Math.max(want.calls, planned.calls);
      const activeAt = want && want.activeAt <= now ? want.activeAt : etas ? this.activeAt(stage, etas, now) : (want?.activeAt ?? now);
      if (!want || want.calls !== calls || want.activeAt !== activeAt) {
        tracked.wants.set(stage, { calls, activeAt });
        this.touch(tracked.names[stage], stage, tracked.min);
      }
    }
    this.armJit();
  }

  /** A request no longer runs here (finished, failed, abandoned, lost): its replicas are given back. */
  release(requestId: string): void {
    const tracked = this.requests.get(requestId);
    if (!tracked) return;
    this.requests.delete(requestId);
    this.finished.set(requestId, tracked.actions);
    // A bounded memory of past requests' actions, oldest out first.
    if (this.finished.size > 256) this.finished.delete(this.finished.keys().next().value!);
    for (const stage of tracked.wants.keys()) this.touch(tracked.names[stage], stage, tracked.min);
    tracked.wants.clear();
  }

  /** Learns stage latencies, cold-start delays and fan-out widths from every invocation record. */
  learn(record: InvocationRecord, names: Record<StageKey, string>): void {
    const stage = STAGE_KEYS.find((k) => names[k] === record.stage);
    if (!stage || record.outcome !== 'success') return;
    if (record.cold_start === true) {
      const warm = this.warmMs.get(stage) ?? 0;
      this.coldMs.set(stage, Math.max(0, ewma(this.coldMs.get(stage), record.latency_ms - warm)));
    } else if (record.cold_start === false || record.cold_start === null) {
      this.warmMs.set(stage, ewma(this.warmMs.get(stage), record.latency_ms));
    }
  }

  /** Learns fan-out widths from a finished request. */
  learnWidths(context: PipelineContext): void {
    const clips = context.clips.length;
    if (clips === 0) return;
    this.clipsSeen = clips;
    const frames = context.clips.reduce((n, c) => n + c.frames.length, 0);
    this.framesPerClipSeen = frames / clips;
  }

  /** Stops planning; scale calls already sent are awaited (each is bounded). */
  async close(): Promise<void> {
    for (const id of [...this.requests.keys()]) this.release(id);
    this.flush();
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.jitTimer) clearTimeout(this.jitTimer);
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** The calls of a stage in flight at once, and whether that is known (else estimated). */
  private callsOf(stage: StageKey, tracked: Tracked, context: PipelineContext): { calls: number; exact: boolean } {
    if (!PER_CLIP.includes(stage) && stage !== 'detector') return { calls: 1, exact: true };
    const knownClips = context.clips.length || context.clip_times?.length || 0;
    const clips = knownClips || this.clipsSeen || 1;
    if (stage !== 'detector') return { calls: Math.max(1, Math.min(clips, tracked.cap)), exact: knownClips > 0 };
    if (tracked.detectorCalls !== null) return { calls: tracked.detectorCalls, exact: true };
    let known = 0;
    let framesKnown = 0;
    for (const clip of context.clips) {
      const frames = clip.progress.frames;
      if (!frames) continue;
      known++;
      framesKnown += frames.length;
      // Frames already known fill the cap: the exact count can only be the cap too, and the
      // walk of every clip at every snapshot of the fan-out stops here.
      if (framesKnown >= tracked.cap) {
        tracked.detectorCalls = tracked.cap;
        return { calls: tracked.cap, exact: true };
      }
    }
    const perClip = known > 0 ? framesKnown / known : (this.framesPerClipSeen ?? 1);
    const frames = Math.ceil(framesKnown + (clips - known) * perClip);
    const calls = Math.max(1, Math.min(frames, tracked.cap));
    const exact = knownClips > 0 && known === knownClips;
    if (exact) tracked.detectorCalls = calls;
    return { calls, exact };
  }

  /** When each stage's first call is expected, in ms from now, by what this process has seen. */
  private etas(tracked: Tracked, context: PipelineContext): Map<StageKey, number> {
    const etas = new Map<StageKey, number>();
    const now = RANK[tracked.top];
    let t = 0;
    for (const stage of STAGE_KEYS) {
      if (stage === 'detector') continue;
      if (RANK[PHASE_OF[stage]] < now) {
        etas.set(stage, 0);
        continue;
      }
      etas.set(stage, t);
      t += this.warmMs.get(stage) ?? 0;
    }
    // The detector starts once every clip's chain has ended: one chain per round of the cap.
    const clips = context.clips.length || context.clip_times?.length || this.clipsSeen || 1;
    const rounds = Math.max(1, Math.ceil(clips / tracked.cap));
    const chain = PER_CLIP.reduce((n, k) => n + (this.warmMs.get(k) ?? 0), 0);
    etas.set('detector', now <= RANK.FANOUT ? (etas.get('ffmpeg2') ?? 0) + rounds * chain : 0);
    return etas;
  }

  private activeAt(stage: StageKey, etas: Map<StageKey, number>, now: number): number {
    if (this.strategy === 'speculative') return now;
    const cold = this.coldMs.get(stage) ?? Math.max(0, ...this.coldMs.values());
    // Nothing seen yet of how long a cold start takes: ask now rather than late.
    if (this.coldMs.size === 0) return now;
    const eta = etas.get(stage) ?? 0;
    return now + Math.max(0, eta - (cold * LEAD_FACTOR + LEAD_SLACK_MS));
  }

  /** Wakes up when the next just-in-time want comes due. */
  private armJit(): void {
    if (this.closed) return;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const tracked of this.requests.values()) for (const want of tracked.wants.values()) if (want.activeAt > now) next = Math.min(next, want.activeAt);
    if (this.jitTimer) clearTimeout(this.jitTimer);
    this.jitTimer = null;
    if (!Number.isFinite(next)) return;
    this.jitTimer = setTimeout(() => {
      this.jitTimer = null;
      const at = Date.now();
      for (const tracked of this.requests.values()) {
        for (const [stage, want] of tracked.wants) if (want.activeAt <= at) this.touch(tracked.names[stage], stage, tracked.min);
      }
      this.armJit();
    }, next - now);
    this.jitTimer.unref();
  }

  private touch(name: string, stage: StageKey, min: number): void {
    let fn = this.functions.get(name);
    if (!fn) {
      fn = {
        stage,
        before: null,
        perReplica: this.options.config.prewarm.callsPerReplica,
        asked: 0,
        releaseFloor: 0,
        reading: false,
        fresh: false,
        unreadable: false,
        scaling: false,
        again: false,
        holders: new Set(),
      };
      this.functions.set(name, fn);
    }
    fn.releaseFloor = Math.max(fn.releaseFloor, min);
    this.pending.add(name);
    if (!this.flushTimer && !this.closed) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.flush();
      }, COALESCE_MS);
      this.flushTimer.unref();
    }
  }

  private flush(): void {
    if (this.api.kind !== 'on') {
      if (this.api.kind === 'off') this.pending.clear();
      return;
    }
    const names = [...this.pending];
    this.pending.clear();
    for (const name of names) this.apply(name);
  }

  /** The replicas a function should have now, and whether any running request still holds it. */
  private target(name: string, fn: FunctionState): { replicas: number; held: boolean; ids: string[] } {
    const now = Date.now();
    let calls = 0;
    let floor = 0;
    let upper = 0;
    let held = false;
    const ids: string[] = [];
    for (const tracked of this.requests.values()) {
      for (const [stage, want] of tracked.wants) {
        if (tracked.names[stage] !== name) continue;
        held = true;
        if (want.activeAt > now) continue;
        calls += want.calls;
        floor = Math.max(floor, tracked.min);
        upper = Math.max(upper, tracked.max);
        ids.push(tracked.requestId);
      }
    }
    const needed = Math.min(Math.max(floor, Math.ceil(calls / fn.perReplica)), upper);
    return { replicas: Math.max(fn.before ?? 0, fn.releaseFloor, needed), held, ids };
  }

  private apply(name: string): void {
    const fn = this.functions.get(name);
    if (!fn || fn.unreadable) return;
    if (fn.before === null || !fn.fresh) {
      if (!fn.reading) this.read(name, fn);
      return;
    }
    if (fn.scaling) {
      fn.again = true;
      return;
    }
    const { replicas, held, ids } = this.target(name, fn);
    if (!held) this.functions.delete(name);
    if (replicas === fn.asked) return;
    for (const id of ids) fn.holders.add(id);
    const kind = replicas > fn.asked ? 'raise' : 'give-back';
    this.scale(name, fn, replicas, kind, kind === 'raise' ? ids : [...fn.holders]);
  }

  private read(name: string, fn: FunctionState): void {
    fn.reading = true;
    this.background(
      this.options.client.getFunction(name).then(
        (status) => {
          fn.reading = false;
          fn.before ??= status.replicas;
          fn.asked = status.replicas;
          fn.fresh = true;
          const inflight = Number(status.envVars?.max_inflight);
          if (Number.isInteger(inflight) && inflight > 0) fn.perReplica = inflight;
          this.apply(name);
        },
        (err: unknown) => {
          fn.reading = false;
          // Without knowing what it had, a give-back could take replicas someone else set up.
          fn.unreadable = true;
          this.options.logger?.warn({ event: 'prewarm_read_failed', function: name, error: describe(err) });
        },
      ),
    );
  }

  private scale(name: string, fn: FunctionState, replicas: number, kind: PrewarmAction['kind'], ids: string[]): void {
    const from = fn.asked;
    fn.asked = replicas;
    fn.scaling = true;
    const action = (ok: boolean, error: string | null): PrewarmAction => ({
      at: Date.now(),
      stage: fn.stage,
      function_name: name,
      from,
      replicas,
      kind,
      ok,
      error,
      request_ids: ids,
    });
    this.background(
      this.options.client
        .scale(name, replicas)
        .then(
          () => this.record(action(true, null)),
          (err: unknown) => {
            const error = describe(err);
            this.options.logger?.warn({ event: 'prewarm_scale_failed', function: name, replicas, error });
            this.record(action(false, error));
          },
        )
        .finally(() => {
          fn.scaling = false;
          if (fn.again) {
            fn.again = false;
            if (!this.functions.has(name) && this.target(name, fn).held) this.functions.set(name, fn);
            this.apply(name);
          }
        }),
    );
  }

  private record(action: PrewarmAction): void {
    this.options.logger?.info({
      event: 'prewarm_scale',
      stage: action.stage,
      function: action.function_name,
      from: action.from,
      replicas: action.replicas,
      kind: action.kind,
      ok: action.ok,
    });
    for (const id of action.request_ids) {
      const list = this.requests.get(id)?.actions ?? this.finished.get(id);
      if (list && list.length < ACTIONS_PER_REQUEST) list.push(action);
    }
    for (const listener of this.listeners) listener(action);
  }

  /** Sees every scale call as it ends (the orchestrator's `prewarm` event). */
  onAction(listener: (action: PrewarmAction) => void): void {
    this.listeners.add(listener);
  }

  /** Finds out once whether the gateway's system API answers; 401/403/404 turn pre-warming off. */
  private probe(): void {
    const state = this.api;
    if (state.kind === 'on' || state.kind === 'off' || state.kind === 'probing') return;
    if (state.kind === 'retry-after' && Date.now() < state.at) return;
    this.api = { kind: 'probing' };
    this.background(
      this.options.client.listFunctions().then(
        () => {
          this.api = { kind: 'on' };
          this.options.logger?.info({ event: 'prewarm_on', strategy: this.strategy });
          this.flush();
        },
        (err: unknown) => {
          const status = err instanceof SystemApiError ? err.status : null;
          if (status === 401 || status === 403 || status === 404) {
            const reason =
              status === 404
                ? 'the gateway has no system API (GET /system/functions answered 404)'
                : `the gateway refused the system API (HTTP ${status}): set OPENFAAS_USERNAME/OPENFAAS_PASSWORD or the basic-auth-user/basic-auth-password secrets`;
            this.api = { kind: 'off', reason };
            this.options.logger?.info({ event: 'prewarm_off', reason });
            this.pending.clear();
            for (const tracked of this.requests.values()) tracked.wants.clear();
            this.requests.clear();
            return;
          }
          this.api = { kind: 'retry-after', at: Date.now() + PROBE_RETRY_MS };
          this.pending.clear();
          this.options.logger?.warn({ event: 'prewarm_unavailable', error: describe(err), retry_in_ms: PROBE_RETRY_MS });
        },
      ),
    );
  }

  private background(work: Promise<void>): void {
    const settled = work.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
