import type { Logger } from 'pino';
import { StallDetector, systemClock, type Stall, type StallClock } from '../lib/stall-detector.ts';
import type { SendGate } from '../transport/stage-call.ts';

/**
 * The lease fence: before any stage call is sent, this process checks synchronously that it
 * still holds the request's lease. The stages cannot check a fencing token (they take any call
 * that reaches them), so the only place a call can be stopped is here, in the sender, at the
 * instant it would go out.
 *
 * The local deadline is on the monotonic clock, measured from when the state write carrying the
 * lease was built to be sent (never later than it was sent: the lease it carries was written for
 * that moment), minus a safety margin. Another replica may take the request over once the stored
 * lease has run out on its own clock; the margin leaves room for the pause between this check and
 * the bytes leaving, and for a renewal's write in flight. docs/operations.md states the guarantee.
 */

/**
 * Why a call was held back: the local deadline passed, the process stalled, or the request no
 * longer runs here (its lease was lost or given up while the call was on its way to the send).
 */
export type FenceReason = 'deadline' | 'stall' | 'lost';

/** The safety margin of a lease: a third of it, at most a second. */
export function leaseMarginMs(ttlMs: number): number {
  return Math.min(1000, Math.floor(ttlMs / 3));
}

export interface LeaseFenceOptions {
  requestId: string;
  ttlMs: number;
  /** Monotonic milliseconds. */
  clock?: () => number;
  /** Asks for a state write now (a conditional write that, landing, renews the lease). */
  renew: () => void;
  /** Told of every call held back. */
  onRefusal?: (reason: FenceReason) => void;
  /** Looks for a stall that just ended, before the way is judged open (it may call `suspect`). */
  checkStall?: () => void;
  onClose?: () => void;
  logger?: Logger;
}

export class LeaseFence implements SendGate {
  readonly requestId: string;
  readonly marginMs: number;
  private readonly ttlMs: number;
  private readonly clock: () => number;
  /** Monotonic time after which no call is sent without a renewal (none before the first write lands). */
  private deadline = Number.NEGATIVE_INFINITY;
  /** Set by a stall: only a write built after it proves the lease is still this process's. */
  private suspectSince: number | null = null;
  /** Held back since the way last closed: logged once per such episode. */
  private fenced = false;
  private closed = false;
  private waiters = new Set<() => void>();

  constructor(private readonly options: LeaseFenceOptions) {
    this.requestId = options.requestId;
    this.ttlMs = options.ttlMs;
    this.marginMs = leaseMarginMs(options.ttlMs);
    this.clock = options.clock ?? systemClock.monotonic;
  }

  /** Monotonic now, for stamping a state write as it is built. */
  now(): number {
    return this.clock();
  }

  /** The local deadline (monotonic ms); -Infinity before the first write lands. */
  get deadlineAt(): number {
    return this.deadline;
  }

  /**
   * A state write carrying the lease landed (a conditional write: nobody wrote in between); it
   * was built at `builtAt` (monotonic). Moves the deadline, clears a suspicion raised before it,
   * and lets the calls waiting go.
   */
  renewed(builtAt: number): void {
    if (this.closed) return;
    this.deadline = Math.max(this.deadline, builtAt + this.ttlMs - this.marginMs);
    if (this.suspectSince !== null && builtAt >= this.suspectSince) this.suspectSince = null;
    if (this.openNow()) this.release();
  }

  /** The event loop stalled: the lease may have run out meanwhile, whatever the clocks say. */
  suspect(stall: Stall): void {
    if (this.closed) return;
    this.suspectSince = Math.max(this.suspectSince ?? Number.NEGATIVE_INFINITY, stall.noticedAt);
    this.options.renew();
  }

  /** Synchronous: may a call for this request be sent at this very instant? */
  clear(): boolean {
    if (this.closed) {
      // Its loss is logged where it was learnt (lease_lost, lease_expired); this only counts.
      this.options.onRefusal?.('lost');
      return false;
    }
    this.options.checkStall?.();
    if (this.openNow()) return true;
    const reason: FenceReason = this.suspectSince !== null ? 'stall' : 'deadline';
    this.options.onRefusal?.(reason);
    if (!this.fenced) {
      this.fenced = true;
      this.options.logger?.warn({
        request_id: this.requestId,
        event: 'lease_fenced',
        reason,
        message:
          reason === 'stall'
            ? 'the process stalled: no stage call is sent until a conditional write of state.json lands'
            : 'the local lease deadline passed before a renewal landed: no stage call is sent until one does',
      });
    }
    this.options.renew();
    return false;
  }

  /**
   * Waits for a renewal to land (true), or answers false once it never will: the fence closed
   * (the request stopped running here) or `signal` aborted.
   */
  opened(signal: AbortSignal): Promise<boolean> {
    if (this.closed || signal.aborted) return Promise.resolve(false);
    if (this.openNow()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve(!this.closed && !signal.aborted);
      };
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** The request no longer runs here: nothing is sent for it any more. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
    this.options.onClose?.();
  }

  private openNow(): boolean {
    return this.suspectSince === null && this.clock() < this.deadline;
  }

  private release(): void {
    this.fenced = false;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter();
  }
}

export interface LeaseFencesOptions {
  ttlMs: number;
  clock?: StallClock;
  /** Arms the stall detector's timer (tests drive it by hand). Default true. */
  stallTimer?: boolean;
  onRefusal?: (requestId: string, reason: FenceReason) => void;
  logger?: Logger;
}

/**
 * The fences of the requests this process runs, and the one stall detector they share: a stall
 * longer than the margin makes every lease suspect at once.
 */
export class LeaseFences {
  private readonly fences = new Map<string, LeaseFence>();
  private detector: StallDetector | null = null;
  private readonly clock: StallClock;

  constructor(private readonly options: LeaseFencesOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** The gate of a request's calls: its fence while it runs here fenced, else null (no fence). */
  gate(requestId: string): LeaseFence | null {
    return this.fences.get(requestId) ?? null;
  }

  /** A fence for a request about to run here; closed (and dropped) with `close()`. */
  open(requestId: string, renew: () => void): LeaseFence {
    this.fences.get(requestId)?.close();
    const fence = new LeaseFence({
      requestId,
      ttlMs: this.options.ttlMs,
      clock: () => this.clock.monotonic(),
      renew,
      onRefusal: (reason) => this.options.onRefusal?.(requestId, reason),
      checkStall: () => this.detector?.check(),
      onClose: () => {
        if (this.fences.get(requestId) === fence) this.fences.delete(requestId);
        if (this.fences.size > 0) return;
        this.detector?.close();
        this.detector = null;
      },
      ...(this.options.logger ? { logger: this.options.logger } : {}),
    });
    this.fences.set(requestId, fence);
    this.detector ??= this.startDetector(fence.marginMs);
    return fence;
  }

  /** The shared detector, while any fence is open (tests drive its ticks). */
  get stallDetector(): StallDetector | null {
    return this.detector;
  }

  private startDetector(thresholdMs: number): StallDetector {
    const detector = new StallDetector({ thresholdMs, clock: this.clock, timer: this.options.stallTimer !== false });
    detector.onStall((stall) => {
      this.options.logger?.warn({ event: 'event_loop_stall', stall_ms: stall.ms, requests: this.fences.size });
      for (const fence of this.fences.values()) fence.suspect(stall);
    });
    return detector;
  }
}
