import type { Logger } from 'pino';
import { buildFinalResult } from '../domain/answer.ts';
import { RequestRepository } from '../persistence/request-repository.ts';
import type { StateEnvelope } from '../persistence/state-file.ts';
import type { ExecutionOutcome } from './execution.ts';

/** Where a lost race was lost: claiming a request, or holding it (a renewal or any state write). */
export type LostRacePhase = 'claim' | 'renewal';

export interface OwnershipOptions {
  owner: string;
  ttlMs: number;
  /** The clock leases are written and judged by. */
  now: () => number;
  /** How often a watcher polls a request that another process owns. */
  pollMs: number;
  requests: RequestRepository;
  /** Told who won a lost race (null: the winner could not be read). */
  onLost: (requestId: string, phase: LostRacePhase, winner: string | null) => void;
  logger?: Logger;
}

/**
 * This process's leases: who it is, whether another owner's lease keeps it off a request, who
 * won a race it lost, and waiting on a request another owner runs until it ends or is orphaned.
 */
export class Ownership {
  readonly owner: string;
  readonly ttlMs: number;
  readonly now: () => number;

  constructor(private readonly options: OwnershipOptions) {
    this.owner = options.owner;
    this.ttlMs = options.ttlMs;
    this.now = options.now;
  }

  /** The lease policy: another owner's lease that has not run out keeps this process off the request. */
  heldElsewhere(lease: { owner: string; expires_at: number }): boolean {
    return lease.owner !== this.owner && lease.expires_at > this.now();
  }

  /** Says who won (the owner in the lease now stored) and counts it; never fails. */
  async lostRace(requestId: string, phase: LostRacePhase): Promise<void> {
    const winner = await this.options.requests.readState(requestId).then(
      (state) => state?.envelope.lease?.owner ?? null,
      () => null,
    );
    if (phase === 'renewal' && (winner === null || winner === this.owner)) {
      // Stopped because the lease could not be renewed in time, and nobody has taken it since.
      this.options.logger?.warn({ request_id: requestId, event: 'lease_expired', owner: this.owner });
      return;
    }
    this.options.logger?.info({ request_id: requestId, event: 'lease_lost', phase, owner: this.owner, winner });
    this.options.onLost(requestId, phase, winner);
  }

  /**
   * Waits on a request another process owns; once that owner's lease runs out, `takeOver` runs
   * it here and its outcome is the answer.
   */
  async watch(requestId: string, takeOver: (envelope: StateEnvelope, etag: string) => Promise<ExecutionOutcome>): Promise<ExecutionOutcome> {
    for (;;) {
      await new Promise((r) => setTimeout(r, this.options.pollMs));
      const state = await this.options.requests.readState(requestId);
      if (!state) throw RequestRepository.missing(requestId, 'it disappeared from the store');
      const { envelope, etag } = state;
      if (envelope.status !== 'RUNNING') return this.outcomeOf(envelope);
      const lease = envelope.lease;
      if (!lease || !this.heldElsewhere(lease)) return takeOver(envelope, etag);
    }
  }

  /** The answer of a request stored as finished: its final.json, else built from its state.json. */
  async outcomeOf(envelope: StateEnvelope): Promise<ExecutionOutcome> {
    const status = envelope.status === 'COMPLETED' ? 'COMPLETED' : 'FAILED';
    const stored = await this.options.requests.readResult(envelope.request_id).catch(() => null);
    const context = envelope.snapshot.context;
    const result = stored ?? buildFinalResult(context, status, context.finished_at ?? envelope.updated_at);
    return { request_id: envelope.request_id, status, result, context };
  }
}
