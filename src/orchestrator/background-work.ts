/**
 * Work on the store that no caller waits for (a journal's removal, the last writes of a finish),
 * tracked so that closing the process lets it end first.
 */
export class BackgroundWork {
  private readonly pending = new Set<Promise<void>>();

  add(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  /** Resolves once everything added so far has settled; never rejects. */
  async drain(): Promise<void> {
    await Promise.all(this.pending);
  }
}
