/**
 * Replicas of gateway functions as OpenFaaS runs them: a replica that is asked for (by a call that
 * finds none free, or by a scale call) becomes ready after a cold start; a ready replica serves at
 * most `maxInflight` calls at once; idle replicas above the minimum go away after `idleMs`. A call
 * that had to wait for a replica to start is a cold call (it answers `metrics.cold_start: true`).
 */

export interface ReplicaModelOptions {
  /** How long a new replica takes to become ready. */
  coldStartMs: number;
  /** Calls one ready replica serves at once (the watchdog's `max_inflight`). */
  maxInflight: number;
  /** Replicas the idler never goes below (`com.openfaas.scale.min`). */
  minReplicas: number;
  /** Replicas a function never exceeds, whoever asks (`com.openfaas.scale.max`). */
  maxReplicas: number;
  /** Replicas each function has, ready, when the gateway starts. */
  initialReplicas: number;
  /** An idle replica above `minReplicas` is removed after this long; 0 keeps idle replicas. */
  idleMs: number;
}

export const REPLICA_MODEL_DEFAULTS: ReplicaModelOptions = {
  coldStartMs: 3000,
  maxInflight: 1,
  minReplicas: 0,
  maxReplicas: 10,
  initialReplicas: 0,
  idleMs: 0,
};

/** One function's replicas as `GET /system/function/{name}` reports them. */
export interface ReplicaStatus {
  replicas: number;
  availableReplicas: number;
  invocationCount: number;
}

/** Where replica time went: what a function's replicas cost, and how much of it served nothing. */
export interface ReplicaUsage {
  /** Replica-seconds alive (starting or ready). */
  replicaSeconds: number;
  /** Replica-seconds ready with no call in flight: paid for, serving nothing. */
  idleSeconds: number;
  /** Replicas started (each one cold start). */
  started: number;
  coldCalls: number;
}

/** A slot on a replica; `cold` says the call waited for that replica to start. */
export interface ReplicaLease {
  cold: boolean;
  release(): void;
}

interface Replica {
  ready: boolean;
  readyAt: number;
  inflight: number;
  /** Asked to go (a scale-down) while busy: takes no new call and leaves when idle. */
  retiring: boolean;
  bornAt: number;
  /** Since when it has been ready and idle (accumulates idle time). */
  idleSince: number | null;
  startTimer: NodeJS.Timeout | null;
  idleTimer: NodeJS.Timeout | null;
}

interface Waiter {
  since: number;
  grant: (lease: ReplicaLease) => void;
  fail: (err: Error) => void;
}

const now = () => performance.now();

class FunctionReplicas {
  private readonly replicas = new Set<Replica>();
  private readonly waiting: Waiter[] = [];
  private invocations = 0;
  private deadSeconds = 0;
  private deadIdleSeconds = 0;
  private started = 0;
  private coldCalls = 0;
  private closed = false;

  constructor(private readonly options: ReplicaModelOptions) {
    for (let i = 0; i < Math.min(options.initialReplicas, options.maxReplicas); i++) this.add(true);
  }

  acquire(signal: AbortSignal): Promise<ReplicaLease> {
    this.invocations++;
    if (this.closed) return Promise.reject(new Error('gateway is shutting down'));
    const free = this.freeReady();
    if (free) return Promise.resolve(this.take(free, false));
    return new Promise<ReplicaLease>((resolve, reject) => {
      const waiter: Waiter = {
        since: now(),
        grant: (lease) => {
          signal.removeEventListener('abort', onAbort);
          resolve(lease);
        },
        fail: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      // Starting replicas will take as many waiters as they have slots; past those, start another.
      const starting = [...this.replicas].filter((r) => !r.ready && !r.retiring).length;
      if (this.waiting.length > starting * this.options.maxInflight && this.live() < this.options.maxReplicas) this.add(false);
    });
  }

  /** The replicas a scale call asks for, within [0, maxReplicas]: starts new ones or retires idle ones first. */
  scale(target: number): void {
    const wanted = Math.max(0, Math.min(this.options.maxReplicas, Math.floor(target)));
    while (this.live() < wanted) this.add(false);
    let excess = this.live() - wanted;
    const order = [...this.replicas].filter((r) => !r.retiring).sort((a, b) => rank(a) - rank(b));
    for (const replica of order) {
      if (excess <= 0) break;
      excess--;
      if (replica.inflight === 0) this.remove(replica);
      else replica.retiring = true;
    }
  }

  status(): ReplicaStatus {
    const live = [...this.replicas].filter((r) => !r.retiring);
    return { replicas: live.length, availableReplicas: live.filter((r) => r.ready).length, invocationCount: this.invocations };
  }

  usage(): ReplicaUsage {
    const t = now();
    let alive = this.deadSeconds;
    let idle = this.deadIdleSeconds;
    for (const r of this.replicas) {
      alive += (t - r.bornAt) / 1000;
      idle += this.idleOf(r, t);
    }
    return { replicaSeconds: alive, idleSeconds: idle, started: this.started, coldCalls: this.coldCalls };
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.fail(new Error('gateway is shutting down'));
    for (const r of this.replicas) {
      if (r.startTimer) clearTimeout(r.startTimer);
      if (r.idleTimer) clearTimeout(r.idleTimer);
    }
  }

  private idleAccrued = new WeakMap<Replica, number>();

  private idleOf(r: Replica, t: number): number {
    return (this.idleAccrued.get(r) ?? 0) + (r.idleSince !== null ? (t - r.idleSince) / 1000 : 0);
  }

  private live(): number {
    return [...this.replicas].filter((r) => !r.retiring).length;
  }

  private freeReady(): Replica | undefined {
    let best: Replica | undefined;
    for (const r of this.replicas) {
      if (!r.ready || r.retiring || r.inflight >= this.options.maxInflight) continue;
      // The busiest replica with room first, so idle ones stay idle and can be given back.
      if (!best || r.inflight > best.inflight) best = r;
    }
    return best;
  }

  private take(replica: Replica, cold: boolean): ReplicaLease {
    if (replica.idleSince !== null) {
      this.idleAccrued.set(replica, this.idleOf(replica, now()));
      replica.idleSince = null;
    }
    if (replica.idleTimer) clearTimeout(replica.idleTimer);
    replica.idleTimer = null;
    replica.inflight++;
    if (cold) this.coldCalls++;
    let released = false;
    return {
      cold,
      release: () => {
        if (released) return;
        released = true;
        replica.inflight--;
        if (replica.inflight === 0) {
          if (replica.retiring) return this.remove(replica);
          this.becameIdle(replica);
        }
        this.dispatch();
      },
    };
  }

  private add(ready: boolean): void {
    const t = now();
    const replica: Replica = { ready, readyAt: t, inflight: 0, retiring: false, bornAt: t, idleSince: null, startTimer: null, idleTimer: null };
    this.replicas.add(replica);
    if (ready) {
      this.becameIdle(replica);
      return;
    }
    this.started++;
    replica.startTimer = setTimeout(() => {
      replica.startTimer = null;
      replica.ready = true;
      replica.readyAt = now();
      this.becameIdle(replica);
      this.dispatch();
    }, this.options.coldStartMs);
  }

  private becameIdle(replica: Replica): void {
    replica.idleSince = now();
    if (this.options.idleMs <= 0 || this.closed) return;
    replica.idleTimer = setTimeout(() => {
      replica.idleTimer = null;
      if (replica.inflight === 0 && this.live() > this.options.minReplicas) this.remove(replica);
    }, this.options.idleMs);
    replica.idleTimer.unref();
  }

  private remove(replica: Replica): void {
    const t = now();
    if (replica.startTimer) clearTimeout(replica.startTimer);
    if (replica.idleTimer) clearTimeout(replica.idleTimer);
    this.deadSeconds += (t - replica.bornAt) / 1000;
    this.deadIdleSeconds += this.idleOf(replica, t);
    this.replicas.delete(replica);
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const replica = this.freeReady();
      if (!replica) break;
      const waiter = this.waiting.shift()!;
      // Cold when the replica that serves it was not ready yet when the call arrived.
      waiter.grant(this.take(replica, replica.readyAt > waiter.since));
    }
    // Callers still waiting with no replica starting for them (one was retired): start one.
    const starting = [...this.replicas].filter((r) => !r.ready && !r.retiring).length;
    if (this.waiting.length > starting * this.options.maxInflight && this.live() < this.options.maxReplicas) this.add(false);
  }
}

/** Idle ready replicas go first, then starting ones, then busy ones. */
function rank(r: Replica): number {
  if (!r.ready) return 1;
  return r.inflight === 0 ? 0 : 2;
}

/** The replicas of every function a gateway serves. */
export class ReplicaModel {
  private readonly functions = new Map<string, FunctionReplicas>();
  readonly options: ReplicaModelOptions;

  constructor(names: string[], options: Partial<ReplicaModelOptions> = {}) {
    this.options = { ...REPLICA_MODEL_DEFAULTS, ...options };
    const o = this.options;
    if (!(o.coldStartMs >= 0 && o.maxInflight >= 1 && o.minReplicas >= 0 && o.maxReplicas >= 1 && o.initialReplicas >= 0 && o.idleMs >= 0)) {
      throw new RangeError(`replica model: invalid options ${JSON.stringify(o)}`);
    }
    for (const name of names) this.functions.set(name, new FunctionReplicas(this.options));
  }

  has(name: string): boolean {
    return this.functions.has(name);
  }

  /** Waits for a free ready replica of `name`, starting one when none is free. */
  acquire(name: string, signal: AbortSignal): Promise<ReplicaLease> {
    return this.of(name).acquire(signal);
  }

  scale(name: string, replicas: number): void {
    this.of(name).scale(replicas);
  }

  status(name: string): ReplicaStatus {
    return this.of(name).status();
  }

  usage(name: string): ReplicaUsage {
    return this.of(name).usage();
  }

  names(): string[] {
    return [...this.functions.keys()];
  }

  close(): void {
    for (const f of this.functions.values()) f.close();
  }

  private of(name: string): FunctionReplicas {
    const f = this.functions.get(name);
    if (!f) throw new Error(`replica model: no function ${name}`);
    return f;
  }
}
