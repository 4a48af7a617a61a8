import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import type { InvocationRecord } from '../domain/invocations.ts';

/**
 * Invocation records as the orchestrator reports them, per running request. A clip's records
 * reach the pipeline context only when the whole clip settles; this feed lets a live view show
 * each attempt as soon as it ends. Dropped when the request finishes: by then its state holds
 * every record.
 */
export class LiveFeed {
  private readonly byRequest = new Map<string, InvocationRecord[]>();

  constructor(
    orchestrator: Orchestrator,
    private readonly maxPerRequest = 50_000,
  ) {
    orchestrator.events.on('invocation', (requestId, record) => {
      const list = this.byRequest.get(requestId) ?? [];
      if (list.length < this.maxPerRequest) list.push(record);
      this.byRequest.set(requestId, list);
    });
    orchestrator.events.on('finished', (requestId) => this.byRequest.delete(requestId));
  }

  records(requestId: string): readonly InvocationRecord[] {
    return this.byRequest.get(requestId) ?? [];
  }
}

const feeds = new WeakMap<Orchestrator, LiveFeed>();

/**
 * The feed of an orchestrator, started on first use. Calling it when the server starts makes
 * live views complete from the first invocation; otherwise they are from the first UI request on.
 */
export function liveFeedOf(orchestrator: Orchestrator): LiveFeed {
  let feed = feeds.get(orchestrator);
  if (!feed) {
    feed = new LiveFeed(orchestrator);
    feeds.set(orchestrator, feed);
  }
  return feed;
}
