import type { Logger } from 'pino';
import { toFaveError } from '../domain/errors.ts';
import type { SourcePolicy } from '../input/import.ts';
import type { Handle } from './execution-registry.ts';

/**
 * Takes a request let go after a store fault back once the store may take writes again: after
 * a lease period, then backing off up to a minute. Another replica's sweep may take it first;
 * then this one finds it owned and leaves it.
 */
export class StoreFaultRetries {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly options: {
      resume: (requestId: string, policy: SourcePolicy) => Promise<Handle>;
      /** True when the request runs here again (nothing to retry). */
      running: (requestId: string) => boolean;
      logger?: Logger;
    },
  ) {}

  schedule(requestId: string, policy: SourcePolicy, delayMs: number): void {
    if (this.closed || this.timers.has(requestId)) return;
    const { logger } = this.options;
    const timer = setTimeout(() => {
      this.timers.delete(requestId);
      if (this.closed || this.options.running(requestId)) return;
      this.options.resume(requestId, policy).then(
        (handle) => logger?.info({ request_id: requestId, event: 'resumed_after_store_fault', local: handle.local }),
        (err: unknown) => {
          const error = toFaveError(err);
          logger?.warn({ request_id: requestId, event: 'resume_after_store_fault_failed', error });
          if (error.code === 'STORE_ERROR') this.schedule(requestId, policy, Math.min(delayMs * 2, 60_000));
        },
      );
    }, delayMs);
    timer.unref();
    this.timers.set(requestId, timer);
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
