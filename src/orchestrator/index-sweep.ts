import type { Logger } from 'pino';
import { listingEntryOf, type RequestIndex } from '../persistence/request-index.ts';
import type { StateEnvelope } from '../persistence/state-file.ts';

export interface SweepCandidates {
  /** Ids to look at: every running marker, then what a full scan found without any index entry. */
  ids: string[];
  /** True when this sweep made the full scan. */
  fullScan: boolean;
}

/**
 * What an orphan sweep reads: the running index, and at most once per `fullScanEveryMs` (and at
 * the first sweep) a scan of every request for those the index misses. A finished request has a
 * listing entry, so neither reads its state.json again.
 */
export class IndexedSweep {
  private lastFullScanAt: number | null = null;
  /**
   * Running requests the full scan found without a marker, looked at by every sweep until they
   * have one (taken over here or elsewhere) or are settled: one whose lease had not run out at
   * the scan must not wait for the next scan.
   */
  private readonly unmarked = new Set<string>();

  constructor(
    private readonly index: RequestIndex,
    private readonly options: { fullScanEveryMs: number; logger?: Logger },
  ) {}

  async candidates(): Promise<SweepCandidates> {
    const running = await this.index.runningIds();
    const seen = new Set(running);
    for (const id of this.unmarked) if (seen.has(id)) this.unmarked.delete(id);
    const now = Date.now();
    const fullScan = this.lastFullScanAt === null || now - this.lastFullScanAt >= this.options.fullScanEveryMs;
    if (fullScan) {
      const unindexed = await this.index.unindexed();
      this.lastFullScanAt = now;
      if (unindexed.length > 0) this.options.logger?.info({ event: 'index_full_scan', unindexed: unindexed.length });
      for (const id of unindexed) this.unmarked.add(id);
    }
    return { ids: [...running, ...[...this.unmarked].filter((id) => !seen.has(id))], fullScan };
  }

  /** A candidate taken over (here, or by the replica whose claim landed first): its claim writes its marker. */
  taken(requestId: string): void {
    this.unmarked.delete(requestId);
  }

  /**
   * A candidate whose state.json says it is not running: its marker is dropped (stale after a
   * crash between the last state write and the marker's removal), and a finished one gets its
   * listing entry, which also indexes requests stored before the index existed.
   */
  async settle(requestId: string, stored: StateEnvelope | null): Promise<void> {
    this.unmarked.delete(requestId);
    if (stored && stored.status !== 'RUNNING') {
      await this.index.markFinished(listingEntryOf(stored.snapshot.context, stored.status, stored.updated_at));
      this.options.logger?.info({ request_id: requestId, event: 'index_repaired', status: stored.status });
      return;
    }
    if (!stored) {
      await this.index.dropMarker(requestId);
      this.options.logger?.info({ request_id: requestId, event: 'index_marker_dropped', reason: 'no state.json' });
    }
  }
}
