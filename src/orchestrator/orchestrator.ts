import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import { describeProfile, resolveSettings, type Config } from '../config/config.ts';
import { FaveFailure, toFaveError } from '../domain/errors.ts';
import { assertRequestId, parsePipelineRequest, type PipelineRequest } from '../domain/request.ts';
import { pipelineMachine, type PipelineMachine } from '../machine/pipeline.machine.ts';
import { createActors } from './actors.ts';
import { createLimiter, type Limiter } from '../lib/limiter.ts';
import type { StageTransport } from '../transport/transport.ts';
import type { AsyncStageCaller } from '../transport/async-transport.ts';
import type { CallbackInbox } from '../transport/callbacks.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import type { StateEnvelope } from '../persistence/state-file.ts';
import { RequestRepository } from '../persistence/request-repository.ts';
import type { SourcePolicy } from '../input/import.ts';
import { redactUrl } from '../lib/redact.ts';
import { readDispatches } from '../persistence/dispatch-journal.ts';
import { recordInterrupted } from '../machine/plan.ts';
import type { Store, StoreCapabilities } from '../persistence/store.ts';
import type { PipelineContext } from '../domain/context.ts';
import { Execution, type ExecutionOptions, type ExecutionOutcome } from './execution.ts';
import { RequestIndex } from '../persistence/request-index.ts';
import { LeaseFences, type FenceReason } from './lease-fence.ts';
import type { PrewarmAction, Prewarmer } from './prewarm.ts';
import { topLevelState } from '../domain/progress.ts';
import { BackgroundWork } from './background-work.ts';
import { DispatchJournals } from './dispatch-journals.ts';
import { ExecutionRegistry, type Handle } from './execution-registry.ts';
import { IndexMarks } from './index-marks.ts';
import { OrphanSweeper } from './orphan-sweeps.ts';
import { Ownership, type LostRacePhase } from './ownership.ts';
import { SourceAccesses, type SubmitOptions } from './source-access.ts';
import { StageWarmUp } from './stage-warm-up.ts';
import { StateWriters } from './state-writers.ts';
import { StoreFaultRetries } from './store-fault-retries.ts';

export type { Handle } from './execution-registry.ts';
export type { LostRacePhase } from './ownership.ts';
export type { SubmitOptions } from './source-access.ts';

export interface OrchestratorOptions {
  config: Config;
  store: Store;
  transport: StageTransport;
  logger?: Logger;
  /** Shared by every request of the process; defaults to the configured process-wide cap. */
  limiter?: Limiter;
  owner?: string;
  leaseTtlMs?: number;
  /** How often a joiner polls a request that another process owns. */
  pollMs?: number;
  /** The clock leases are written and judged by; defaults to Date.now shifted by LEASE_CLOCK_OFFSET_MS. */
  now?: () => number;
  /** Async stage calls: where their callbacks are kept, and the caller (null without a gateway). */
  callbacks?: AsyncCalls | null;
  /** Observes every actor, event and snapshot of the requests run here (a live inspector). */
  inspect?: Observer<InspectionEvent>;
  /** Scales the stages ahead of need through the gateway's system API; none: no pre-warming. */
  prewarm?: Prewarmer | null;
}

export interface AsyncCalls {
  inbox: CallbackInbox;
  caller: AsyncStageCaller | null;
}

/** What the orchestrator reports as it works: the feed for /metrics and live views. */
export interface OrchestratorEvents {
  invocation: [requestId: string, record: InvocationRecord];
  state_write: [requestId: string, bytes: number];
  started: [requestId: string, how: 'new' | 'resume' | 'redrive'];
  finished: [requestId: string, status: 'COMPLETED' | 'FAILED'];
  /** Another owner's write got in first; `winner` is the owner its lease names, if it could be read. */
  lease_lost: [requestId: string, phase: LostRacePhase, winner: string | null];
  /** A stage call was held back: the lease may have run out (deadline) or the process stalled. */
  lease_fenced: [requestId: string, reason: FenceReason];
  /** A pre-warm scale call ended (`ok` false: it failed, and nothing else changed). */
  prewarm: [action: PrewarmAction];
}

/**
 * Starts, joins, resumes and cancels requests, coordinating the parts that each do one job: the
 * registry of executions, this process's leases, the sources it may read, orphan sweeps, the
 * retries after store faults, the index entries, state writers and dispatch journals, and stage
 * warm-up. Owns the process-wide concurrency cap.
 */
export class Orchestrator {
  readonly owner: string;
  readonly limiter: Limiter;
  readonly events = new EventEmitter<OrchestratorEvents>();
  /** The requests of the bucket, and the one view of each: live when it runs here, else as stored. */
  readonly requests: RequestRepository;
  /** The running and listing indexes: what sweeps and the request list read instead of every state.json. */
  readonly index: RequestIndex;
  /** Takes over requests whose owner is gone, once or on a timer. */
  readonly orphans: OrphanSweeper;
  private readonly machine: PipelineMachine;
  private readonly registry = new ExecutionRegistry();
  private readonly ownership: Ownership;
  private readonly access: SourceAccesses;
  private readonly storeFaults: StoreFaultRetries;
  private readonly marks: IndexMarks;
  private readonly writers: StateWriters;
  private readonly journals: DispatchJournals;
  private readonly warmUp: StageWarmUp;
  private readonly fences: LeaseFences;
  private readonly background = new BackgroundWork();
  private capabilities: StoreCapabilities | null = null;

  constructor(private readonly options: OrchestratorOptions) {
    const { config, store, logger } = options;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.limiter = options.limiter ?? createLimiter(config.processMaxConcurrency);
    const offset = config.leaseClockOffsetMs;
    this.requests = new RequestRepository(store, config.bucket, {
      get: (requestId) => this.registry.get(requestId)?.live() ?? null,
      ids: () => this.registry.ids(),
    });
    this.index = new RequestIndex(store, config.bucket);
    this.ownership = new Ownership({
      owner: this.owner,
      ttlMs: options.leaseTtlMs ?? config.leaseTtlMs,
      now: options.now ?? (offset === 0 ? Date.now : () => Date.now() + offset),
      pollMs: options.pollMs ?? 250,
      requests: this.requests,
      onLost: (requestId, phase, winner) => this.events.emit('lease_lost', requestId, phase, winner),
      ...(logger ? { logger } : {}),
    });
    this.access = new SourceAccesses(config);
    this.orphans = new OrphanSweeper({
      requests: this.requests,
      index: this.index,
      registry: this.registry,
      ownership: this.ownership,
      concurrency: config.orphanResumeConcurrency,
      fullScanEveryMs: config.indexFullScanIntervalMs,
      ready: () => this.init(),
      takeOver: (envelope, etag) => this.once(envelope.request_id, () => this.launch(envelope, etag, false, 'leave')),
      ...(logger ? { logger } : {}),
    });
    this.storeFaults = new StoreFaultRetries({
      resume: (requestId, policy) => this.resumeUnder(requestId, policy),
      running: (requestId) => this.registry.has(requestId),
      ...(logger ? { logger } : {}),
    });
    this.marks = new IndexMarks(this.index, this.owner, logger);
    this.writers = new StateWriters({
      store,
      bucket: config.bucket,
      intervalMs: config.persistIntervalMs,
      onWrite: (requestId, bytes) => this.events.emit('state_write', requestId, bytes),
    });
    this.journals = new DispatchJournals(store, config.bucket, this.background);
    this.warmUp = new StageWarmUp(config, options.transport, options.prewarm ?? null);
    this.warmUp.onAction((action) => this.events.emit('prewarm', action));
    this.fences = new LeaseFences({
      ttlMs: this.ownership.ttlMs,
      onRefusal: (requestId, reason) => this.events.emit('lease_fenced', requestId, reason),
      ...(logger ? { logger } : {}),
    });
    this.machine = pipelineMachine.provide({
      actors: createActors({
        transport: options.transport,
        store,
        limiter: this.limiter,
        asyncCalls: options.callbacks?.caller ?? null,
        onInvocation: (requestId, record) => {
          this.warmUp.learn(record);
          this.events.emit('invocation', requestId, record);
        },
        sourceAccess: (requestId) => this.access.of(requestId),
        dispatches: {
          record: (requestId, marker) => this.journals.of(requestId).record(marker),
          unsent: (requestId, id) => this.journals.of(requestId).record({ id, unsent: true }),
        },
        leaseGate: (requestId) => this.fences.gate(requestId),
        ...(logger ? { logger } : {}),
      }),
    });
  }

  /** The profiles a request may name, the configured default first. */
  get profileNames(): string[] {
    const { profileName, profiles } = this.options.config;
    return [profileName, ...Object.keys(profiles).filter((p) => p !== profileName)];
  }

  /** Each profile's description, for those that have one. */
  get profileDescriptions(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, profile] of Object.entries(this.options.config.profiles)) if (profile.description) out[name] = profile.description;
    return out;
  }

  /** What each profile does at run time, one line each, by name. */
  get profileSummaries(): Record<string, string> {
    const { profiles, gatewayUrl } = this.options.config;
    return Object.fromEntries(Object.entries(profiles).map(([name, p]) => [name, describeProfile(p, gatewayUrl !== null)]));
  }

  /** True when the stages run in this process (no gateway): the embedded default. */
  get embedded(): boolean {
    return this.options.config.gatewayUrl === null;
  }

  /** True when pre-warming has no scale call waiting or in flight (always, without pre-warming). */
  get prewarmIdle(): boolean {
    return this.warmUp.idle;
  }

  /** The pre-warm actions made for a request this process ran (for its timeline); empty without pre-warming. */
  prewarmActions(requestId: string): PrewarmAction[] {
    return this.warmUp.actionsOf(requestId);
  }

  get store(): Store {
    return this.options.store;
  }

  /** Where callbacks of async stage calls are stored and handed to their waiting calls; null when not configured. */
  get callbackInbox(): CallbackInbox | null {
    return this.options.callbacks?.inbox ?? null;
  }

  /** Bytes this process has written to state.json files (for write-amplification figures). */
  get stateBytes(): number {
    return this.writers.bytes;
  }

  /** Bytes this process has written to dispatch journals, the other half of those figures. */
  get dispatchBytes(): number {
    return this.journals.bytes;
  }

  /** Probes the store once; a missing bucket or bad credentials fail here, not mid-request. */
  async init(): Promise<StoreCapabilities> {
    if (!this.capabilities) {
      this.capabilities = await this.options.store.init();
      this.options.callbacks?.inbox.useConditionalWrites(this.capabilities.conditionalWrites);
      this.options.logger?.info({
        event: 'store_ready',
        store: this.options.store.kind,
        bucket: this.options.store.bucket,
        conditional_writes: this.capabilities.conditionalWrites,
        owner: this.owner,
      });
      if (!this.capabilities.conditionalWrites) {
        this.options.logger?.warn({
          event: 'store_without_conditional_writes',
          message: 'the store ignores If-Match/If-None-Match: one owner per request is enforced within this process only',
        });
      }
    }
    return this.capabilities;
  }

  running(): Execution[] {
    return this.registry.all();
  }

  get(requestId: string): Execution | undefined {
    return this.registry.get(requestId);
  }

  /** Validates and starts a request, or joins it when its id is already known. */
  async submit(raw: unknown, options: SubmitOptions = {}): Promise<Handle> {
    const request = parsePipelineRequest(raw);
    const now = Date.now();
    // Resolve the profile before anything is stored, so an unknown one stores nothing.
    const settings = resolveSettings(this.options.config, request.profile, now);
    const requestId = request.request_id ?? randomUUID();
    // Stored and shown without its signature or credentials; the full URL is only kept here.
    const shown = redactUrl(request.video_uri);
    return this.once(requestId, async () => {
      await this.init();
      const existing = await this.requests.readState(requestId);
      const known = existing?.envelope.snapshot.context.video_uri;
      // The same source submitted again (say, after a crash at INIT) brings its signature back.
      this.access.set(requestId, { source: existing && known !== shown ? null : request.video_uri, policy: this.access.policy(options) });
      if (existing) return this.adopt(existing.envelope, existing.etag);
      return this.create({ ...request, video_uri: shown }, requestId, settings, now);
    });
  }

  /** Resumes a request from its state.json: continues a RUNNING one, redrives a FAILED one. */
  async resume(requestId: string, options: SubmitOptions = {}): Promise<Handle> {
    return this.resumeUnder(requestId, this.access.policy(options));
  }

  /**
   * Resumes every unfinished request whose owner is gone (lease expired or absent), e.g. at
   * server start and then periodically (`orphans.start`). Returns the ids it took over.
   */
  async sweepOrphans(): Promise<string[]> {
    return this.orphans.sweep();
  }

  cancel(requestId: string, reason?: string): boolean {
    const execution = this.registry.get(requestId);
    if (!execution) return false;
    execution.cancel(reason);
    return true;
  }

  /**
   * Asks whichever process runs a request to cancel it: a marker in the store that the owner
   * reads at its next lease renewal (within LEASE_TTL_MS / 3). False when it is not running.
   */
  async requestCancel(requestId: string, reason: string): Promise<boolean> {
    if (this.cancel(requestId, reason)) return true;
    const state = await this.requests.readState(requestId);
    if (!state || state.envelope.status !== 'RUNNING') return false;
    await this.requests.putCancelMarker(requestId, reason, this.owner);
    this.options.logger?.info({ request_id: requestId, event: 'cancel_requested' });
    return true;
  }

  /** Stops every local execution without touching its state, so another process can resume it. */
  async close(): Promise<void> {
    this.orphans.close();
    this.storeFaults.close();
    await this.registry.abandonAll();
    await this.background.drain();
    await this.warmUp.close();
  }

  private async resumeUnder(requestId: string, policy: SourcePolicy): Promise<Handle> {
    assertRequestId(requestId);
    return this.once(requestId, async () => {
      await this.init();
      this.access.set(requestId, { source: null, policy });
      const existing = await this.requests.readState(requestId);
      if (!existing) throw RequestRepository.missing(requestId);
      if (existing.envelope.status === 'FAILED') return this.launch(existing.envelope, existing.etag, true);
      return this.adopt(existing.envelope, existing.etag);
    });
  }

  /** One start at a time per request id; the source access outlives the start only if it runs here. */
  private async once(requestId: string, start: () => Promise<Handle>): Promise<Handle> {
    try {
      const handle = await this.registry.once(requestId, start);
      if (!this.registry.has(requestId)) this.access.forget(requestId);
      return handle;
    } catch (err) {
      this.access.forget(requestId);
      throw err;
    }
  }

  private async create(request: PipelineRequest, requestId: string, settings: PipelineContext['settings'], now: number): Promise<Handle> {
    const input = { request_id: requestId, video_uri: request.video_uri, query: request.query, settings, started_at: now };
    return this.register(this.execution(requestId, { input }, null), 'new');
  }

  /** A known id: finished ones answer from the store, live ones are joined, orphans resumed. */
  private async adopt(envelope: StateEnvelope, etag: string): Promise<Handle> {
    const requestId = envelope.request_id;
    if (envelope.status !== 'RUNNING') {
      return { request_id: requestId, local: false, done: Promise.resolve(await this.ownership.outcomeOf(envelope)), execution: null };
    }
    const lease = envelope.lease;
    if (lease && this.ownership.heldElsewhere(lease)) {
      const done = this.watch(requestId);
      done.catch(() => undefined);
      return { request_id: requestId, local: false, done, execution: null };
    }
    return this.launch(envelope, etag, false);
  }

  /** `ifLost`: when another owner claims it first or takes it over, wait for its answer, or leave it to that owner. */
  private async launch(envelope: StateEnvelope, etag: string, redrive: boolean, ifLost: 'watch' | 'leave' = 'watch'): Promise<Handle> {
    const requestId = envelope.request_id;
    const snapshot = await this.withInterrupted(envelope);
    const execution = this.execution(requestId, { snapshot, created_at: envelope.created_at, seq: envelope.seq, redrive }, etag);
    this.options.logger?.info({ request_id: requestId, event: redrive ? 'redrive' : 'resume', state: envelope.state });
    return this.register(execution, redrive ? 'redrive' : 'resume', ifLost);
  }

  /** Waits on a request another process owns, and runs it here once that owner's lease runs out. */
  private watch(requestId: string): Promise<ExecutionOutcome> {
    return this.ownership.watch(requestId, async (envelope, etag) => (await this.launch(envelope, etag, false)).done);
  }

  /** An execution of a request, new (`etag` null) or restored from the state.json of that ETag. */
  private execution(requestId: string, start: ExecutionOptions['start'], etag: string | null): Execution {
    const conditional = this.capabilities?.conditionalWrites ?? false;
    return new Execution({
      machine: this.machine,
      start,
      writer: this.writers.writer(requestId, etag, conditional),
      owner: this.owner,
      leaseTtlMs: this.ownership.ttlMs,
      now: this.ownership.now,
      fenced: conditional,
      fences: this.fences,
      storedEtag: () => this.requests.stateEtag(requestId),
      ...(this.options.logger ? { logger: this.options.logger } : {}),
      ...(this.options.inspect ? { inspect: this.options.inspect } : {}),
      cancelRequested: (since) => this.requests.takeCancelMarker(requestId, since),
      onClaimed: () => this.marks.running(requestId, 'input' in start ? start.input.started_at : start.created_at, 'snapshot' in start && start.redrive),
      // Before anyone is answered: a list read after the answer shows the request finished.
      onFinished: (outcome) => this.marks.finished(outcome),
      onSnapshot: (top, context) => this.warmUp.observe(requestId, top, context),
    });
  }

  /**
   * Claims the request for this process and runs it. When another owner claimed it first
   * (a concurrent submission elsewhere), waits for that owner's answer instead.
   */
  private async register(execution: Execution, how: 'new' | 'resume' | 'redrive', ifLost: 'watch' | 'leave' = 'watch'): Promise<Handle> {
    const requestId = execution.requestId;
    try {
      await execution.start();
    } catch (err) {
      this.access.forget(requestId);
      const error = toFaveError(err);
      if (error.code !== 'LEASE_HELD') throw err;
      await this.ownership.lostRace(requestId, 'claim');
      const done = ifLost === 'watch' ? this.watch(requestId) : Promise.reject(new FaveFailure(error));
      done.catch(() => undefined);
      return { request_id: requestId, local: false, done, execution: null };
    }
    this.registry.add(execution);
    this.events.emit('started', requestId, how);
    this.warmUp.started(requestId, topLevelState(execution.value), execution.context);
    const policy = this.access.of(requestId).policy;
    execution.done.catch((err: unknown) => {
      if (toFaveError(err).code === 'STORE_ERROR') this.storeFaults.schedule(requestId, policy, this.ownership.ttlMs);
    });
    execution.done
      .finally(() => {
        if (this.registry.remove(execution)) this.access.forget(requestId);
        this.warmUp.stopped(requestId, execution.context);
        this.journals.release(requestId);
      })
      .catch(() => undefined);
    const done = execution.done.then(
      (outcome) => {
        this.events.emit('finished', requestId, outcome.status);
        return outcome;
      },
      async (err: unknown) => {
        // Taken over while running here: the calls have stopped; whoever waits gets the winner's
        // answer (an orphan this process had picked up is left to its new owner).
        if (toFaveError(err).code !== 'LEASE_HELD') throw err;
        await this.ownership.lostRace(requestId, 'renewal');
        if (ifLost === 'leave') throw err;
        return this.watch(requestId);
      },
    );
    done.catch(() => undefined);
    this.registry.joinWith(execution, done);
    // Tracked from the start, so that close() also waits for a finish whose last writes are in
    // flight, and for the journal's removal after it (not for a winner's answer after a loss).
    this.background.add(
      execution.done.then(async (outcome) => {
        if (outcome.status === 'COMPLETED') await this.journals.clear(requestId);
      }),
    );
    return { request_id: requestId, local: true, done, execution };
  }

  /**
   * A request restored from state.json, with an `interrupted` record for every attempt its
   * dispatch journal holds that state.json has no record of: those were sent, and their answer
   * was lost with the process that sent them.
   */
  private async withInterrupted(envelope: StateEnvelope): Promise<StateEnvelope['snapshot']> {
    const markers = await readDispatches(this.options.store, this.options.config.bucket, envelope.request_id);
    if (markers.length === 0) return envelope.snapshot;
    const { context, interrupted, queued } = recordInterrupted(envelope.snapshot.context, markers, envelope.updated_at);
    if (interrupted === 0 && queued === 0) return envelope.snapshot;
    this.options.logger?.info({ request_id: envelope.request_id, event: 'interrupted_attempts', count: interrupted, queued });
    return { ...envelope.snapshot, context };
  }
}
