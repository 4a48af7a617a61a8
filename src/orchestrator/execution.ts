import { createActor, type Actor, type InspectionEvent, type Observer, type StateValue } from 'xstate';
import type { Logger } from 'pino';
import { faveError, toFaveError, type FaveError } from '../domain/errors.ts';
import type { FinalResult } from '../domain/result.ts';
import type { PipelineContext, PipelineInput, TopLevelState } from '../domain/context.ts';
import { PIPELINE_SYSTEM_ID, type PipelineMachine } from '../machine/pipeline.machine.ts';
import { buildFinalResult } from '../domain/answer.ts';
import { buildEnvelope, persistedSnapshotOf, restorable, restoringPlainContext, type PersistedSnapshot, type StateEnvelope } from '../persistence/state-file.ts';
import type { StateWriter } from '../persistence/state-writer.ts';
import type { LiveRequest } from '../persistence/request-repository.ts';
import { isTerminal, topLevelState } from '../domain/progress.ts';
import { prepareClipAnswer } from '../domain/answer.ts';
import { SettledClips } from './settled-clips.ts';
import { requestView, type Lease, type RequestView } from '../domain/request-view.ts';
import { leaseMarginMs, type LeaseFence, type LeaseFences } from './lease-fence.ts';

export interface ExecutionOutcome {
  request_id: string;
  status: 'COMPLETED' | 'FAILED';
  result: FinalResult;
  /** What the request learned, its invocation records included (answer formats are built from it). */
  context: PipelineContext;
}

export interface ExecutionOptions {
  machine: PipelineMachine;
  start: { input: PipelineInput } | { snapshot: PersistedSnapshot; created_at: number; seq: number; redrive: boolean };
  writer: StateWriter;
  owner: string;
  leaseTtlMs: number;
  /** The clock lease times are read from (Date.now, unless a skew is simulated). */
  now?: () => number;
  /**
   * Stop before an unrenewed lease runs out. Only where the store enforces conditional writes:
   * elsewhere another process could not be kept out anyway, and stopping would only repeat calls.
   */
  fenced?: boolean;
  /** Where the fence checked before every stage call is opened (with `fenced`). */
  fences?: LeaseFences;
  /** The ETag of the request's state.json as stored now (null: gone), for the fence's last look. */
  storedEtag?: () => Promise<string | null>;
  logger?: Logger;
  /** Live inspection (`@statelyai/inspect`), when switched on. */
  inspect?: Observer<InspectionEvent>;
  /**
   * Asked at every lease renewal whether someone elsewhere asked to cancel this request (a
   * cancel that reached another replica); answers the reason, or null.
   */
  cancelRequested?: (since: number) => Promise<string | null>;
  /** Once the claim is stored and before the machine starts (so before any stage call); must not throw. */
  onClaimed?: () => Promise<void>;
  /** Once the final state is stored and before `done` resolves; must not throw. */
  onFinished?: (outcome: ExecutionOutcome) => Promise<void>;
  /** Sees every snapshot while the request runs here (pre-warming plans from it); must not throw. */
  onSnapshot?: (top: TopLevelState, context: PipelineContext) => void;
}

/**
 * One request running in this process: the machine actor, its state.json writer and its lease.
 * Top-level transitions and the end are written at once; fan-out progress is coalesced.
 */
export class Execution {
  readonly requestId: string;
  readonly done: Promise<ExecutionOutcome>;
  private readonly actor: Actor<PipelineMachine>;
  private readonly listeners = new Set<(view: RequestView) => void>();
  /** The lease of the newest state.json built (null before the first, and once released or finished). */
  private lease: Lease | null = null;
  private readonly createdAt: number;
  private seq: number;
  private lastTop: TopLevelState | null = null;
  /** The top-level state of the newest state.json built, the claim included. */
  private builtTop: TopLevelState | null = null;
  /** Makes what the end of the request needs of each clip as it settles. */
  private readonly settledClips: SettledClips;
  private renewTimer: NodeJS.Timeout | null = null;
  private fenceTimer: NodeJS.Timeout | null = null;
  /** Checked synchronously before every stage call (null: not fenced). */
  private fence: LeaseFence | null = null;
  /** When each state.json not yet stored was built (monotonic), by seq: the lease it carries counts from then. */
  private readonly builtAt = new Map<number, number>();
  private finished = false;
  private redriving: boolean;
  private resolveDone!: (outcome: ExecutionOutcome) => void;
  private rejectDone!: (error: FaveError) => void;

  constructor(private readonly options: ExecutionOptions) {
    this.done = new Promise<ExecutionOutcome>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Callers may only await `done` later; never let it count as an unhandled rejection.
    this.done.catch(() => undefined);
    const { start } = options;
    this.actor =
      'input' in start
        ? createActor(options.machine, {
            input: start.input,
            systemId: PIPELINE_SYSTEM_ID,
            ...(options.inspect ? { inspect: options.inspect } : {}),
          })
        : createActor(restoringPlainContext(options.machine), {
            ...restorable(start.snapshot),
            systemId: PIPELINE_SYSTEM_ID,
            ...(options.inspect ? { inspect: options.inspect } : {}),
          });
    this.createdAt = 'input' in start ? start.input.started_at : start.created_at;
    this.seq = 'input' in start ? 0 : start.seq;
    this.redriving = 'snapshot' in start && start.redrive;
    this.requestId = this.actor.getSnapshot().context.request_id;
    this.settledClips = new SettledClips((clip) => {
      this.options.writer.prepare(clip);
      prepareClipAnswer(clip, this.actor.getSnapshot().context.settings.detector_enabled);
    });
  }

  /**
   * Claims the request by writing its state before anything runs, then starts the machine.
   * Rejects with LEASE_HELD when another owner holds it.
   */
  async start(): Promise<void> {
    if (this.options.fenced) {
      const fence = this.options.fences?.open(this.requestId, () => this.persist(true)) ?? null;
      this.fence = fence;
      this.options.writer.onWritten((envelope) => {
        const builtAt = this.builtAt.get(envelope.seq);
        for (const seq of this.builtAt.keys()) if (seq <= envelope.seq) this.builtAt.delete(seq);
        if (fence && envelope.lease && builtAt !== undefined) fence.renewed(builtAt);
        this.armFence(envelope.lease?.expires_at ?? null);
      });
    }
    try {
      await this.options.writer.acquire(this.envelope());
      await this.options.onClaimed?.();
    } catch (err) {
      this.fence?.close();
      throw err;
    }
    this.options.writer.onLost((failure) => {
      if (failure.error.code === 'LEASE_HELD') void this.fail(failure.error);
      else this.stopOnStoreFault(failure.error);
    });
    this.actor.subscribe({
      next: (snapshot) => this.onSnapshot(snapshot.value, snapshot.context),
      error: (err) => void this.fail(toFaveError(err)),
    });
    // A redriven request restores into FAILED; the event leaves it before anything is reported.
    if ('snapshot' in this.options.start && this.options.start.redrive) this.actor.send({ type: 'REDRIVE' });
    this.actor.start();
    if (this.redriving) {
      // Nothing to redrive (no failed step recorded): report the failure as it stands.
      this.redriving = false;
      const snapshot = this.actor.getSnapshot();
      this.onSnapshot(snapshot.value, snapshot.context);
    }
    const renewEvery = Math.max(50, Math.floor(this.options.leaseTtlMs / 3));
    const startedHere = Date.now();
    this.renewTimer = setInterval(() => {
      this.persist(true);
      void this.options.cancelRequested?.(startedHere).then(
        (reason) => {
          if (reason !== null && !this.finished) this.cancel(reason);
        },
        () => undefined,
      );
    }, renewEvery);
    this.renewTimer.unref();
  }

  /** The full state value, substates included (e.g. `{DETECT: 'detecting'}`). */
  get value(): StateValue {
    return this.actor.getSnapshot().value;
  }

  get context(): PipelineContext {
    return this.actor.getSnapshot().context;
  }

  /** What a view of the request is drawn from while it runs here. */
  live(): LiveRequest {
    const snapshot = this.actor.getSnapshot();
    return { value: snapshot.value, context: snapshot.context, lease: this.lease };
  }

  onProgress(listener: (view: RequestView) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  cancel(reason?: string): void {
    this.actor.send({ type: 'CANCEL', ...(reason ? { reason } : {}) });
  }

  /** Stops working on the request without changing its state (process shutdown). */
  async abandon(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.stopTimers();
    // Persist what is known now, then nothing more: another owner resumes from exactly here.
    const envelope = this.envelope(true);
    this.options.writer.request(() => envelope, true);
    await this.options.writer.flush().catch(() => undefined);
    this.options.writer.close();
    this.actor.stop();
    this.rejectDone(faveError('CANCELLED', `request ${this.requestId} was abandoned by this process; resume it to continue`));
  }

  private onSnapshot(value: Parameters<typeof topLevelState>[0], context: PipelineContext): void {
    if (this.finished) return;
    const top = topLevelState(value);
    // A redriven request is restored in FAILED; that snapshot is the past, not the outcome.
    if (this.redriving) {
      if (top === 'FAILED') return;
      this.redriving = false;
    }
    const terminal = isTerminal(value);
    const changed = top !== this.lastTop;
    if (changed) {
      this.options.logger?.info({ request_id: this.requestId, event: 'state', state: top, ...(context.error ? { error: context.error } : {}) });
    }
    this.lastTop = top;
    this.options.onSnapshot?.(top, context);
    this.settledClips.observe(top, context);
    // A top-level state is written at once, unless a state.json built already holds it: the
    // claim holds the state the machine starts in, so its first snapshot waits for the interval.
    this.persist(top !== this.builtTop || terminal);
    if (this.options.writer.lost) return;
    if (this.listeners.size > 0) {
      const view = requestView({ ...this.live(), local: true, updated_at: null, observed_at: Date.now() });
      for (const listener of this.listeners) listener(view);
    }
    if (terminal) void this.finish(top === 'COMPLETED' ? 'COMPLETED' : 'FAILED', context);
  }

  private persist(urgent: boolean): void {
    if (this.finished && urgent) return;
    this.options.writer.request(() => this.envelope(), urgent);
  }

  /** The state.json of this moment; `release` gives up the lease so another owner may resume now. */
  private envelope(release = false): StateEnvelope {
    const snapshot = this.actor.getSnapshot();
    const now = this.options.now?.() ?? Date.now();
    const terminal = isTerminal(snapshot.value);
    this.builtTop = topLevelState(snapshot.value);
    this.lease = terminal || release ? null : { owner: this.options.owner, acquired_at: this.createdAt, expires_at: now + this.options.leaseTtlMs };
    if (this.fence && this.lease) this.builtAt.set(this.seq + 1, this.fence.now());
    return buildEnvelope({
      request_id: this.requestId,
      seq: ++this.seq,
      created_at: this.createdAt,
      updated_at: now,
      lease: this.lease,
      snapshot: persistedSnapshotOf(this.actor),
    });
  }

  private async finish(status: 'COMPLETED' | 'FAILED', context: PipelineContext): Promise<void> {
    this.finished = true;
    this.stopTimers();
    // The terminal snapshot's write was requested as it came (`onSnapshot`), built when it
    // starts, so it already is this one: writing it once more would put a second full
    // state.json on the answer's way for a new `seq` alone.
    try {
      await this.options.writer.flush();
    } catch (err) {
      const error = toFaveError(err);
      if (error.code === 'LEASE_HELD') this.rejectDone(error);
      else {
        this.options.logger?.error({ request_id: this.requestId, event: 'state_write_failed', error });
        this.rejectDone(storeFault(this.requestId, error));
      }
      return;
    } finally {
      this.options.writer.close();
    }
    this.options.logger?.info({ request_id: this.requestId, event: 'finished', status, state: topLevelState(this.actor.getSnapshot().value) });
    const outcome: ExecutionOutcome = { request_id: this.requestId, status, result: buildFinalResult(context, status, context.finished_at ?? Date.now()), context };
    await this.options.onFinished?.(outcome);
    this.resolveDone(outcome);
    this.actor.stop();
  }

  /**
   * The store refuses state.json (disk full, read-only, unreachable): what runs here can no
   * longer be made durable, so this process lets the request go, in memory only. The file keeps
   * the last state written, whose lease runs out: the next orphan sweep takes the request over.
   */
  private stopOnStoreFault(error: FaveError): void {
    if (this.finished) return;
    this.finished = true;
    this.stopTimers();
    this.actor.stop();
    this.options.writer.close();
    this.options.logger?.error({ request_id: this.requestId, event: 'state_write_failed', error });
    this.rejectDone(storeFault(this.requestId, error));
  }

  private async fail(error: FaveError): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.stopTimers();
    this.actor.stop();
    this.options.writer.close();
    // A lost lease is no fault of this process; its owner reports who took the request over.
    if (error.code !== 'LEASE_HELD') this.options.logger?.error({ request_id: this.requestId, event: 'execution_failed', error });
    this.rejectDone(error);
  }

  private stopTimers(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    this.fenceTimer = null;
    this.fence?.close();
    this.settledClips.close();
  }

  /**
   * Shortly before the newest stored lease runs out without a later write having renewed it
   * (a slow or unreachable store, a stalled process), looks once more: once it has run out
   * another replica may take the request over, and this process must not be calling stages for
   * it then. If state.json is still our last write, the lease is renewed at once; if it changed,
   * or the store does not answer within the margin, every call stops now.
   */
  private armFence(expiresAt: number | null): void {
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    this.fenceTimer = null;
    if (expiresAt === null || this.finished) return;
    const now = this.options.now?.() ?? Date.now();
    this.setFence(Math.max(0, expiresAt - this.fenceMarginMs() - now), () => void this.lastLook());
  }

  private fenceMarginMs(): number {
    // The look comes only when a renewal due by then has not landed.
    return leaseMarginMs(this.options.leaseTtlMs);
  }

  private setFence(delayMs: number, action: () => void): void {
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    this.fenceTimer = setTimeout(() => {
      this.fenceTimer = null;
      action();
    }, delayMs);
    this.fenceTimer.unref();
  }

  /** At most half the margin to look, half to renew: either way calls stop before the lease runs out. */
  private async lastLook(): Promise<void> {
    if (this.finished) return;
    const margin = Math.floor(this.fenceMarginMs() / 2);
    const expired = () => void this.fail(faveError('LEASE_HELD', `the lease on ${this.requestId} ran out before it could be renewed; this process stops working on it`));
    const before = this.options.writer.stored;
    // A write on its way renews the lease when it lands (and re-arms the fence); else, stop.
    if (before.writing) return this.setFence(margin, expired);
    let timer: NodeJS.Timeout | undefined;
    const etag = await Promise.race([
      (this.options.storedEtag?.() ?? Promise.resolve(undefined)).catch(() => undefined),
      new Promise<undefined>((resolve) => (timer = setTimeout(resolve, margin, undefined))),
    ]);
    clearTimeout(timer);
    if (this.finished) return;
    const after = this.options.writer.stored;
    if (after.etag !== before.etag) return; // our own write landed meanwhile, and re-armed the fence
    if (after.writing) return this.setFence(margin, expired);
    if (etag === undefined || etag !== before.etag) return expired();
    this.persist(true);
    this.setFence(margin, expired);
  }
}

function storeFault(requestId: string, error: FaveError): FaveError {
  return faveError(
    'STORE_ERROR',
    `state.json of ${requestId} could not be written (${error.message}); this process let the request go, and it is resumed once the store takes writes again`,
  );
}
