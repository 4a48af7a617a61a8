import { DispatchJournal, clearDispatches } from '../persistence/dispatch-journal.ts';
import type { Store } from '../persistence/store.ts';
import type { BackgroundWork } from './background-work.ts';

/**
 * The dispatch journal of every request this process drives, made at its first stage call and
 * closed when the request stops here, and the bytes they have written together (the other half
 * of the write-amplification figures, beside state.json's).
 */
export class DispatchJournals {
  private readonly journals = new Map<string, DispatchJournal>();
  private written = 0;

  constructor(
    private readonly store: Store,
    private readonly bucket: string,
    private readonly background: BackgroundWork,
  ) {}

  get bytes(): number {
    return this.written;
  }

  of(requestId: string): DispatchJournal {
    let journal = this.journals.get(requestId);
    if (!journal) {
      journal = new DispatchJournal(this.store, this.bucket, requestId, (bytes) => {
        this.written += bytes;
      });
      this.journals.set(requestId, journal);
    }
    return journal;
  }

  /** The request stopped running here: its journal's pending writes end in the background. */
  release(requestId: string): void {
    const journal = this.journals.get(requestId);
    this.journals.delete(requestId);
    if (journal) this.background.add(journal.close());
  }

  /** Every attempt in the journal has its record in the final state.json now: the journal goes. */
  async clear(requestId: string): Promise<void> {
    await clearDispatches(this.store, this.bucket, requestId);
  }
}
