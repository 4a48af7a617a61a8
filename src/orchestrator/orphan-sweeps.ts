import type { Logger } from 'pino';
import pLimit from 'p-limit';
import { toFaveError } from '../domain/errors.ts';
import { RequestIdSchema } from '../domain/request.ts';
import type { RequestIndex } from '../persistence/request-index.ts';
import type { RequestRepository } from '../persistence/request-repository.ts';
import type { StateEnvelope } from '../persistence/state-file.ts';
import type { ExecutionRegistry, Handle } from './execution-registry.ts';
import { IndexedSweep } from './index-sweep.ts';
import type { Ownership } from './ownership.ts';
import { startPeriodic, type Periodic } from '../lib/periodic.ts';

export type OrphanSweeps = Periodic;

export interface OrphanSweeperOptions {
  requests: RequestRepository;
  index: RequestIndex;
  registry: ExecutionRegistry;
  ownership: Ownership;
  /** How many orphans one sweep resumes at once. */
  concurrency: number;
  fullScanEveryMs: number;
  /** Probes the store before the first sweep. */
  ready: () => Promise<unknown>;
  /** Runs an orphan here, unless another replica's claim lands first (then it is left to that one). */
  takeOver: (envelope: StateEnvelope, etag: string) => Promise<Handle>;
  logger?: Logger;
}

/**
 * Takes over requests whose owner is gone (a replica killed, a pod evicted), and remembers the
 * leases of other owners it saw, so a request is not read again before its owner's lease could
 * have run out.
 */
export class OrphanSweeper {
  private readonly indexSweep: IndexedSweep;
  /** Earliest expiry of another owner's lease seen by the last sweep (lease clock). */
  private nextForeignExpiry: number | null = null;
  /** Expiry of other owners' leases seen by sweeps: such a request is not read again before then. */
  private readonly foreignLeases = new Map<string, number>();
  private closed = false;

  constructor(private readonly options: OrphanSweeperOptions) {
    this.indexSweep = new IndexedSweep(options.index, {
      fullScanEveryMs: options.fullScanEveryMs,
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }

  /**
   * Resumes every unfinished request whose owner is gone (lease expired or absent), e.g. at
   * server start and then periodically (`start`). Returns the ids it took over.
   */
  async sweep(): Promise<string[]> {
    if (this.closed) return [];
    const { registry, ownership, requests, logger } = this.options;
    await this.options.ready();
    const { ids } = await this.indexSweep.candidates();
    const resumed: string[] = [];
    let nextExpiry: number | null = null;
    const listed = new Set(ids);
    for (const id of this.foreignLeases.keys()) if (!listed.has(id)) this.foreignLeases.delete(id);
    const foreign = (expiresAt: number): void => {
      nextExpiry = Math.min(nextExpiry ?? expiresAt, expiresAt);
    };
    // Several at once: one slow store operation (a lock, a large state.json) must not hold up the rest.
    const limit = pLimit(this.options.concurrency);
    await Promise.all(
      ids.map((id) =>
        limit(async () => {
          if (this.closed || registry.busy(id) || !RequestIdSchema.safeParse(id).success) return;
          const known = this.foreignLeases.get(id);
          if (known !== undefined && known > ownership.now()) return foreign(known);
          this.foreignLeases.delete(id);
          try {
            const state = await requests.readState(id);
            if (!state || state.envelope.status !== 'RUNNING') return await this.indexSweep.settle(id, state?.envelope ?? null);
            const lease = state.envelope.lease;
            if (lease && ownership.heldElsewhere(lease)) {
              this.foreignLeases.set(id, lease.expires_at);
              return foreign(lease.expires_at);
            }
            // Several replicas sweep at once: the one whose claim lands runs it, the others leave it.
            const handle = await this.options.takeOver(state.envelope, state.etag);
            this.indexSweep.taken(id);
            if (handle.local) resumed.push(id);
          } catch (err) {
            logger?.error({ request_id: id, event: 'resume_failed', error: toFaveError(err) });
          }
        }),
      ),
    );
    this.nextForeignExpiry = nextExpiry;
    return resumed.sort();
  }

  /**
   * How long until the next sweep is worth making: until the earliest lease of another owner
   * seen by the last sweep runs out (so a dead owner's requests are taken over as soon as its
   * lease lets them be), at most `maxMs`.
   */
  dueInMs(maxMs: number): number {
    if (this.nextForeignExpiry === null) return maxMs;
    // Leases run out one by one; a tenth of the period apart, sweeps take several at a time.
    return Math.max(Math.floor(maxMs / 10), Math.min(maxMs, this.nextForeignExpiry - this.options.ownership.now() + 1));
  }

  /**
   * One sweep now, then the next as soon as the earliest lease of another owner could have run
   * out, at least once per `everyMs`, so a dead owner's requests move within about one lease period.
   */
  start(everyMs: number): OrphanSweeps {
    const { logger } = this.options;
    return startPeriodic(
      async () => {
        const ids = await this.sweep();
        if (ids.length > 0) logger?.info({ event: 'resumed_orphans', request_ids: ids });
      },
      () => this.dueInMs(everyMs),
      (err) => logger?.error({ event: 'resume_orphans_failed', error: toFaveError(err) }),
    );
  }

  /** No sweep resumes anything after this. */
  close(): void {
    this.closed = true;
  }
}
