import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import { describeProfile, type Config } from '../config/config.ts';
import { FaveFailure, toFaveError } from '../domain/errors.ts';
import { assertRequestId, parsePipelineRequest, RequestIdSchema, type PipelineRequest } from '../domain/request.ts';
import { pipelineMachine, type PipelineMachine } from '../machine/pipeline.machine.ts';
import { createActors } from './actors.ts';
import { buildFinalResult } from '../domain/answer.ts';
import pLimit from 'p-limit';
import { createLimiter, type Limiter } from '../lib/limiter.ts';
import type { StageTransport } from '../transport/transport.ts';
import type { AsyncStageCaller } from '../transport/async-transport.ts';
import type { CallbackInbox } from '../transport/callbacks.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import type { StateEnvelope } from '../persistence/state-file.ts';
import { RequestRepository } from '../persistence/request-repository.ts';
import type { PrivateNetworkAccess, SourceAccess, SourcePolicy } from '../input/import.ts';
import { redactUrl } from '../lib/redact.ts';
import { StateWriter } from '../persistence/state-writer.ts';
import { DispatchJournal, clearDispatches, readDispatches } from '../persistence/dispatch-journal.ts';
import { recordInterrupted } from '../machine/plan.ts';
import { requestKeys, type Store, type StoreCapabilities } from '../persistence/store.ts';
import type { PipelineContext } from '../domain/context.ts';
import { Execution, type ExecutionOptions, type ExecutionOutcome } from './execution.ts';
import { RequestIndex, listingEntryOf } from '../persistence/request-index.ts';
import { IndexedSweep } from './index-sweep.ts';
import { crashPoint } from './fault-points.ts';
import { resolveSettings } from './settings.ts';
import { LeaseFences, type FenceReason } from './lease-fence.ts';
import type { PrewarmAction, Prewarmer } from './prewarm.ts';
import { topLevelState } from '../domain/progress.ts';
import { STAGE_KEYS } from '../domain/stage.ts';

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

/** Where a lost race was lost: claiming a request, or holding it (a renewal or any state write). */
export type LostRacePhase = 'claim' | 'renewal';

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
 * What the caller's surface allows for this start or resume. Never stored: a resumed request
 * gets the permissions of the process and surface that resume it, whatever state.json says.
 */
export interface SubmitOptions {
  /** Accept a local path as video_uri (the CLI; never a network-facing surface). Default no. */
  allowLocalPath?: boolean;
  /**
   * Fetch http(s) inputs from loopback/private/link-local addresses (`except-link-local`: not
   * from link-local or cloud metadata ones). Default `ALLOW_PRIVATE_SOURCES`.
   */
  allowPrivateNetwork?: PrivateNetworkAccess;
}

/** A request this process runs, or one it waits on while another owner runs it. */
export interface Handle {
  request_id: string;
  /** True when this process runs it; false when it waits on another owner or it had finished. */
  local: boolean;
  done: Promise<ExecutionOutcome>;
  execution: Execution | null;
}

/**
 * Starts, joins, resumes and cancels requests. Owns the process-wide concurrency cap and the
 * registry that makes a second submission of a running id join the running execution.
 */
export class Orchestrator {
  readonly owner: string;
  readonly limiter: Limiter;
  readonly events = new EventEmitter<OrchestratorEvents>();
  /** The requests of the bucket, and the one view of each: live when it runs here, else as stored. */
  readonly requests: RequestRepository;
  /** The running and listing indexes: what sweeps and the request list read instead of every state.json. */
  readonly index: RequestIndex;
  private readonly indexSweep: IndexedSweep;
  private readonly machine: PipelineMachine;
  private readonly executions = new Map<string, Execution>();
  /** What a caller joining a local execution awaits: its outcome, or the winner's if it is taken over. */
  private readonly outcomes = new WeakMap<Execution, Promise<ExecutionOutcome>>();
  private readonly starting = new Map<string, Promise<Handle>>();
  private capabilities: StoreCapabilities | null = null;
  private readonly leaseTtlMs: number;
  private readonly pollMs: number;
  private stateBytesWritten = 0;
  /** Per request this process starts: the source as submitted (signature included) and the policy. */
  private readonly access = new Map<string, SourceAccess>();
  /** Requests let go after a store fault, with the timer of their next try. */
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private closed = false;
  private dispatchBytesWritten = 0;
  private readonly now: () => number;
  /** Earliest expiry of another owner's lease seen by the last orphan sweep (lease clock). */
  private nextForeignExpiry: number | null = null;
  /** Expiry of other owners' leases seen by sweeps: such a request is not read again before then. */
  private readonly foreignLeases = new Map<string, number>();
  private readonly journals = new Map<string, DispatchJournal>();
  private readonly background = new Set<Promise<void>>();
  private readonly fences: LeaseFences;
  /** Requests running here whose local stages have been asked to warm up. */
  private readonly warmed = new Set<string>();

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

  /** True when pre-warming has no scale call waiting or in flight (always, without pre-warming). */
  get prewarmIdle(): boolean {
    return this.options.prewarm?.idle ?? true;
  }

  /** The pre-warm actions made for a request this process ran (for its timeline); empty without pre-warming. */
  prewarmActions(requestId: string): PrewarmAction[] {
    return this.options.prewarm?.actionsOf(requestId) ?? [];
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

  constructor(private readonly options: OrchestratorOptions) {
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.limiter = options.limiter ?? createLimiter(options.config.processMaxConcurrency);
    this.leaseTtlMs = options.leaseTtlMs ?? options.config.leaseTtlMs;
    this.pollMs = options.pollMs ?? 250;
    const offset = options.config.leaseClockOffsetMs;
    this.now = options.now ?? (offset === 0 ? Date.now : () => Date.now() + offset);
    options.prewarm?.onAction((action) => this.events.emit('prewarm', action));
    this.requests = new RequestRepository(options.store, options.config.bucket, {
      get: (requestId) => this.executions.get(requestId)?.live() ?? null,
      ids: () => [...this.executions.keys()],
    });
    this.index = new RequestIndex(options.store, options.config.bucket);
    this.indexSweep = new IndexedSweep(this.index, {
      fullScanEveryMs: options.config.indexFullScanIntervalMs,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.fences = new LeaseFences({
      ttlMs: this.leaseTtlMs,
      onRefusal: (requestId, reason) => this.events.emit('lease_fenced', requestId, reason),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.machine = pipelineMachine.provide({
      actors: createActors({
        transport: options.transport,
        store: options.store,
        limiter: this.limiter,
        asyncCalls: options.callbacks?.caller ?? null,
        onInvocation: (requestId, record) => {
          this.options.prewarm?.learn(record, options.config.stageNames);
          this.events.emit('invocation', requestId, record);
        },
        sourceAccess: (requestId) => this.access.get(requestId) ?? { source: null, policy: this.policy({}) },
        dispatches: {
          record: (requestId, marker) => this.journalFor(requestId).record(marker),
          unsent: (requestId, id) => this.journalFor(requestId).record({ id, unsent: true }),
        },
        leaseGate: (requestId) => this.fences.gate(requestId),
        ...(options.logger ? { logger: options.logger } : {}),
      }),
    });
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
    return this.stateBytesWritten;
  }

  /** Bytes this process has written to dispatch journals, the other half of those figures. */
  get dispatchBytes(): number {
    return this.dispatchBytesWritten;
  }

  /** Probes the store once; a missing bucket or bad credentials fail here, not mid-request. */
  async init(): Promise<StoreCapabilities> {
    if (!this.capabilities) {
      this.capabilities = await this.options.store.init();
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
    return [...this.executions.values()];
  }

  get(requestId: string): Execution | undefined {
    return this.executions.get(requestId);
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
      this.access.set(requestId, { source: existing && known !== shown ? null : request.video_uri, policy: this.policy(options) });
      if (existing) return this.adopt(existing.envelope, existing.etag);
      return this.create({ ...request, video_uri: shown }, requestId, settings, now);
    });
  }

  /** The policy of this process, narrowed or widened by what the calling surface allows. */
  private policy(options: SubmitOptions): SourcePolicy {
    const { config } = this.options;
    return {
      allowLocalPath: options.allowLocalPath ?? false,
      allowPrivateNetwork: options.allowPrivateNetwork ?? config.allowPrivateSources,
      s3: { artifactBucket: config.bucket, rules: config.inputS3Rules },
      maxBytes: config.maxInputBytes,
    };
  }

  /** Resumes a request from its state.json: continues a RUNNING one, redrives a FAILED one. */
  async resume(requestId: string, options: SubmitOptions = {}): Promise<Handle> {
    return this.resumeUnder(requestId, this.policy(options));
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

  /**
   * Joins a running execution of `requestId`, or a start of it already under way, else runs
   * `start`: within one process a request id is never started twice at once.
   */
  private async once(requestId: string, start: () => Promise<Handle>): Promise<Handle> {
    const joined = this.executions.get(requestId);
    if (joined) return { request_id: requestId, local: true, done: this.outcomes.get(joined) ?? joined.done, execution: joined };
    const starting = this.starting.get(requestId);
    if (starting) return starting;
    const promise = start();
    this.starting.set(requestId, promise);
    try {
      const handle = await promise;
      if (!this.executions.has(requestId)) this.access.delete(requestId);
      return handle;
    } catch (err) {
      this.access.delete(requestId);
      throw err;
    } finally {
      this.starting.delete(requestId);
    }
  }

  /**
   * Resumes every unfinished request whose owner is gone (lease expired or absent), e.g. at
   * server start and then periodically (`startOrphanSweeps`). Returns the ids it took over.
   */
  async sweepOrphans(): Promise<string[]> {
    if (this.closed) return [];
    await this.init();
    const { ids } = await this.indexSweep.candidates();
    const resumed: string[] = [];
    let nextExpiry: number | null = null;
    const listed = new Set(ids);
    for (const id of this.foreignLeases.keys()) if (!listed.has(id)) this.foreignLeases.delete(id);
    const foreign = (expiresAt: number): void => {
      nextExpiry = Math.min(nextExpiry ?? expiresAt, expiresAt);
    };
    // Several at once: one slow store operation (a lock, a large state.json) must not hold up the rest.
    const limit = pLimit(this.options.config.orphanResumeConcurrency);
    await Promise.all(
      ids.map((id) =>
        limit(async () => {
          if (this.closed || this.executions.has(id) || this.starting.has(id) || !RequestIdSchema.safeParse(id).success) return;
          const known = this.foreignLeases.get(id);
          if (known !== undefined && known > this.now()) return foreign(known);
          this.foreignLeases.delete(id);
          try {
            const state = await this.requests.readState(id);
            if (!state || state.envelope.status !== 'RUNNING') return await this.indexSweep.settle(id, state?.envelope ?? null);
            const lease = state.envelope.lease;
            if (lease && this.heldElsewhere(lease)) {
              this.foreignLeases.set(id, lease.expires_at);
              return foreign(lease.expires_at);
            }
            // Several replicas sweep at once: the one whose claim lands runs it, the others leave it.
            const handle = await this.once(id, () => this.launch(state.envelope, state.etag, false, 'leave'));
            this.indexSweep.taken(id);
            if (handle.local) resumed.push(id);
          } catch (err) {
            this.options.logger?.error({ request_id: id, event: 'resume_failed', error: toFaveError(err) });
          }
        }),
      ),
    );
    this.nextForeignExpiry = nextExpiry;
    return resumed.sort();
  }

  /**
   * How long until the next sweep for orphans is worth making: until the earliest lease of
   * another owner seen by the last sweep runs out (so a dead owner's requests are taken over as
   * soon as its lease lets them be), at most `maxMs`.
   */
  orphanSweepDueInMs(maxMs: number): number {
    if (this.nextForeignExpiry === null) return maxMs;
    // Leases run out one by one; a tenth of the period apart, sweeps take several at a time.
    return Math.max(Math.floor(maxMs / 10), Math.min(maxMs, this.nextForeignExpiry - this.now() + 1));
  }

  cancel(requestId: string, reason?: string): boolean {
    const execution = this.executions.get(requestId);
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
    this.closed = true;
    for (const timer of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
    await Promise.all([...this.executions.values()].map((e) => e.abandon()));
    this.executions.clear();
    await Promise.all(this.background);
    await this.options.prewarm?.close();
  }

  /** The lease policy: another owner's lease that has not run out keeps this process off the request. */
  private heldElsewhere(lease: { owner: string; expires_at: number }): boolean {
    return lease.owner !== this.owner && lease.expires_at > this.now();
  }

  /** Work on the store that no caller waits for, but that `close()` lets finish. */
  private inBackground(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.background.add(settled);
    void settled.then(() => this.background.delete(settled));
  }

  private async create(request: PipelineRequest, requestId: string, settings: PipelineContext['settings'], now: number): Promise<Handle> {
    const input = { request_id: requestId, video_uri: request.video_uri, query: request.query, settings, started_at: now };
    return this.register(this.execution(requestId, { input }, null), 'new');
  }

  /** A known id: finished ones answer from the store, live ones are joined, orphans resumed. */
  private async adopt(envelope: StateEnvelope, etag: string): Promise<Handle> {
    const requestId = envelope.request_id;
    if (envelope.status !== 'RUNNING') {
      return { request_id: requestId, local: false, done: Promise.resolve(await this.outcomeOf(envelope)), execution: null };
    }
    const lease = envelope.lease;
    if (lease && this.heldElsewhere(lease)) {
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

  /** An execution of a request, new (`etag` null) or restored from the state.json of that ETag. */
  private execution(requestId: string, start: ExecutionOptions['start'], etag: string | null): Execution {
    return new Execution({
      machine: this.machine,
      start,
      writer: this.writer(requestId, etag),
      owner: this.owner,
      leaseTtlMs: this.leaseTtlMs,
      now: this.now,
      fenced: this.capabilities?.conditionalWrites ?? false,
      fences: this.fences,
      storedEtag: () => this.requests.stateEtag(requestId),
      ...(this.options.logger ? { logger: this.options.logger } : {}),
      ...(this.options.inspect ? { inspect: this.options.inspect } : {}),
      cancelRequested: (since) => this.requests.takeCancelMarker(requestId, since),
      onClaimed: () => this.markRunning(requestId, 'input' in start ? start.input.started_at : start.created_at, 'snapshot' in start && start.redrive),
      // Before anyone is answered: a list read after the answer shows the request finished.
      onFinished: (outcome) => this.markFinished(outcome),
      onSnapshot: (top, context) => {
        this.options.prewarm?.observe(requestId, top, context);
        if (top === 'FANOUT') this.warmLocalStages(requestId, context);
      },
    });
  }

  /**
   * Puts a claimed request in the running index, before its first stage call. A failed write
   * does not stop it: the sweeps' full scan finds a running request without its marker.
   */
  private async markRunning(requestId: string, startedAt: number, redrive: boolean): Promise<void> {
    crashPoint('index:claimed-before-marker');
    try {
      await this.index.markRunning(requestId, startedAt, this.owner, redrive);
    } catch (err) {
      this.options.logger?.warn({ request_id: requestId, event: 'index_write_failed', error: toFaveError(err) });
    }
  }

  /** Moves a request that finished here from the running index to the listing index. */
  private async markFinished(outcome: ExecutionOutcome): Promise<void> {
    crashPoint('index:finished-before-unmark');
    try {
      await this.index.markFinished(listingEntryOf(outcome.context, outcome.status, Date.now()));
    } catch (err) {
      this.options.logger?.warn({ request_id: outcome.request_id, event: 'index_write_failed', error: toFaveError(err) });
    }
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
      this.access.delete(requestId);
      const error = toFaveError(err);
      if (error.code !== 'LEASE_HELD') throw err;
      await this.lostRace(requestId, 'claim');
      const done = ifLost === 'watch' ? this.watch(requestId) : Promise.reject(new FaveFailure(error));
      done.catch(() => undefined);
      return { request_id: requestId, local: false, done, execution: null };
    }
    this.executions.set(requestId, execution);
    this.events.emit('started', requestId, how);
    this.warmUp(execution);
    const policy = this.access.get(requestId)?.policy ?? this.policy({});
    execution.done.catch((err: unknown) => {
      if (toFaveError(err).code === 'STORE_ERROR') this.retryAfterStoreFault(requestId, policy, this.leaseTtlMs);
    });
    // Out of the registry as soon as it stops here, so status and sweeps read the store again.
    execution.done
      .finally(() => {
        if (this.executions.get(requestId) === execution) {
          this.executions.delete(requestId);
          this.access.delete(requestId);
        }
        this.warmed.delete(requestId);
        const prewarm = this.options.prewarm;
        if (prewarm) {
          prewarm.learnWidths(execution.context);
          prewarm.release(requestId);
        }
        const journal = this.journals.get(requestId);
        this.journals.delete(requestId);
        if (journal) this.inBackground(journal.close());
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
        await this.lostRace(requestId, 'renewal');
        if (ifLost === 'leave') throw err;
        return this.watch(requestId);
      },
    );
    done.catch(() => undefined);
    this.outcomes.set(execution, done);
    // Tracked from the start, so that close() also waits for a finish whose last writes are in
    // flight, and for the journal's removal after it (not for a winner's answer after a loss).
    this.inBackground(
      execution.done.then(async (outcome) => {
        // Every attempt in the journal has its record in the final state.json now.
        if (outcome.status === 'COMPLETED') await clearDispatches(this.options.store, this.options.config.bucket, requestId);
      }),
    );
    return { request_id: requestId, local: true, done, execution };
  }

  /**
   * Gets the stages ahead ready while the earlier ones run: replicas through the gateway's system
   * API, or, for the local stages, the model and speech engine loading in this process.
   */
  private warmUp(execution: Execution): void {
    const context = execution.context;
    const top = topLevelState(execution.value);
    this.options.prewarm?.track(execution.requestId, top, context);
    if (top === 'FANOUT') this.warmLocalStages(execution.requestId, context);
  }

  /**
   * In-process stages: the detector's model starts loading once the request has clips, while
   * their chains run; not earlier, so an input that is no video (ffmpeg-1 is the first to refuse
   * it) loads nothing. Once per request and process.
   */
  private warmLocalStages(requestId: string, context: PipelineContext): void {
    const transport = this.options.transport;
    if (!transport.warmUp || this.warmed.has(requestId) || context.clips.length === 0) return;
    const profile = this.options.config.profiles[context.settings.profile];
    if (profile?.prewarm === 'off') return;
    this.warmed.add(requestId);
    transport.warmUp(STAGE_KEYS.filter((k) => k !== 'detector' || context.settings.detector_enabled));
  }

  /** Says who won (the owner in the lease now stored) and counts it; never fails. */
  private async lostRace(requestId: string, phase: LostRacePhase): Promise<void> {
    const winner = await this.requests.readState(requestId).then(
      (state) => state?.envelope.lease?.owner ?? null,
      () => null,
    );
    if (phase === 'renewal' && (winner === null || winner === this.owner)) {
      // Stopped because the lease could not be renewed in time, and nobody has taken it since.
      this.options.logger?.warn({ request_id: requestId, event: 'lease_expired', owner: this.owner });
      return;
    }
    this.options.logger?.info({ request_id: requestId, event: 'lease_lost', phase, owner: this.owner, winner });
    this.events.emit('lease_lost', requestId, phase, winner);
  }

  /**
   * Takes a request let go after a store fault back once the store may take writes again: after
   * a lease period, then backing off. Another replica's sweep may take it first; then this one
   * finds it owned and leaves it.
   */
  private retryAfterStoreFault(requestId: string, policy: SourcePolicy, delayMs: number): void {
    if (this.closed || this.retries.has(requestId)) return;
    const timer = setTimeout(() => {
      this.retries.delete(requestId);
      if (this.closed || this.executions.has(requestId)) return;
      this.resumeUnder(requestId, policy).then(
        (handle) => this.options.logger?.info({ request_id: requestId, event: 'resumed_after_store_fault', local: handle.local }),
        (err: unknown) => {
          const error = toFaveError(err);
          this.options.logger?.warn({ request_id: requestId, event: 'resume_after_store_fault_failed', error });
          if (error.code === 'STORE_ERROR') this.retryAfterStoreFault(requestId, policy, Math.min(delayMs * 2, 60_000));
        },
      );
    }, delayMs);
    timer.unref();
    this.retries.set(requestId, timer);
  }

  /** The dispatch journal of a request this process drives, made at its first stage call. */
  private journalFor(requestId: string): DispatchJournal {
    let journal = this.journals.get(requestId);
    if (!journal) {
      journal = new DispatchJournal(this.options.store, this.options.config.bucket, requestId, (bytes) => {
        this.dispatchBytesWritten += bytes;
      });
      this.journals.set(requestId, journal);
    }
    return journal;
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

  private writer(requestId: string, etag: string | null): StateWriter {
    return new StateWriter({
      store: this.options.store,
      location: { bucket: this.options.config.bucket, key: requestKeys.state(requestId) },
      intervalMs: this.options.config.persistIntervalMs,
      conditional: this.capabilities?.conditionalWrites ?? false,
      etag,
      onWrite: (bytes) => {
        this.stateBytesWritten += bytes;
        this.events.emit('state_write', requestId, bytes);
      },
    });
  }

  /** Waits on a request another process owns; takes it over if that owner's lease runs out. */
  private async watch(requestId: string): Promise<ExecutionOutcome> {
    for (;;) {
      await new Promise((r) => setTimeout(r, this.pollMs));
      const state = await this.requests.readState(requestId);
      if (!state) throw RequestRepository.missing(requestId, 'it disappeared from the store');
      const { envelope, etag } = state;
      if (envelope.status !== 'RUNNING') return this.outcomeOf(envelope);
      const lease = envelope.lease;
      if (!lease || !this.heldElsewhere(lease)) {
        const handle = await this.launch(envelope, etag, false);
        return handle.done;
      }
    }
  }

  private async outcomeOf(envelope: StateEnvelope): Promise<ExecutionOutcome> {
    const status = envelope.status === 'COMPLETED' ? 'COMPLETED' : 'FAILED';
    const stored = await this.requests.readResult(envelope.request_id).catch(() => null);
    const context = envelope.snapshot.context;
    const result = stored ?? buildFinalResult(context, status, context.finished_at ?? envelope.updated_at);
    return { request_id: envelope.request_id, status, result, context };
  }
}
