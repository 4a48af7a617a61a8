import type { App } from '../../src/app.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { createRouter } from '../../src/server/router.ts';
import type { HttpResponseLike } from '../../src/server/types.ts';

export type RouterCall = (method: string, path: string, options?: { headers?: Record<string, string>; body?: string }) => Promise<HttpResponseLike>;

/** The app's one router, called in process (no socket): every route, API and UI, as a server would. */
export function routerCall(app: App): RouterCall {
  const router = createRouter({ orchestrator: app.orchestrator, logger: app.logger, metrics: createMetrics(app.orchestrator, { processMetrics: false }), config: app.config });
  // The Host a client on loopback sends: callers without a token are refused under any other.
  return (method, target, options = {}) => {
    // A query string in the target is parsed as the server would.
    const [path = target, search = ''] = target.split('?', 2);
    const query = Object.fromEntries(new URLSearchParams(search));
    return router({ method, path, query, headers: { host: 'localhost', ...options.headers }, body: options.body });
  };
}
