import type { Logger } from 'pino';
import { toFaveError } from '../domain/errors.ts';
import { listingEntryOf, type RequestIndex } from '../persistence/request-index.ts';
import type { ExecutionOutcome } from './execution.ts';
import { crashPoint } from './fault-points.ts';

/**
 * The index entries of the requests this process runs. A failed write stops nothing: the sweeps'
 * full scan finds a running request without its marker, and repairs a stale one.
 */
export class IndexMarks {
  constructor(
    private readonly index: RequestIndex,
    private readonly owner: string,
    private readonly logger?: Logger,
  ) {}

  /** A claimed request goes in the running index, before its first stage call. */
  async running(requestId: string, startedAt: number, redrive: boolean): Promise<void> {
    crashPoint('index:claimed-before-marker');
    try {
      await this.index.markRunning(requestId, startedAt, this.owner, redrive);
    } catch (err) {
      this.logger?.warn({ request_id: requestId, event: 'index_write_failed', error: toFaveError(err) });
    }
  }

  /** A request that finished here moves from the running index to the listing index. */
  async finished(outcome: ExecutionOutcome): Promise<void> {
    crashPoint('index:finished-before-unmark');
    try {
      await this.index.markFinished(listingEntryOf(outcome.context, outcome.status, Date.now()));
    } catch (err) {
      this.logger?.warn({ request_id: outcome.request_id, event: 'index_write_failed', error: toFaveError(err) });
    }
  }
}
