import type { Logger } from 'pino';
import { toFaveError } from '../domain/errors.ts';
import type { Orchestrator } from './orchestrator.ts';

export interface OrphanSweeps {
  /** No sweep starts after this; resolves once one under way has ended. */
  stop(): Promise<void>;
}

/**
 * Takes over requests whose owner is gone (a replica killed, a pod evicted): one sweep now, then
 * the next as soon as the earliest lease of another owner could have run out, at least once per
 * `everyMs`, so a dead owner's requests move within about one lease period.
 */
export function startOrphanSweeps(orchestrator: Orchestrator, options: { everyMs: number; logger?: Logger }): OrphanSweeps {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    timer = null;
    running = orchestrator
      .sweepOrphans()
      .then((ids) => {
        if (ids.length > 0) options.logger?.info({ event: 'resumed_orphans', request_ids: ids });
      })
      .catch((err: unknown) => options.logger?.error({ event: 'resume_orphans_failed', error: toFaveError(err) }))
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(sweep, orchestrator.orphanSweepDueInMs(options.everyMs));
        timer.unref();
      });
  };
  sweep();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
