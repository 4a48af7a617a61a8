import type { App } from '../app.ts';
import type { RequestView } from '../domain/request-view.ts';

/** Whole seconds, rounded towards what a person would say: "renewed 0 s ago", "expires in 1 s". */
const secondsSince = (ms: number) => Math.max(0, Math.floor(ms / 1000));
const secondsUntil = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * Who runs a RUNNING request, from its state.json: the lease's owner, when it last renewed it and
 * when the lease runs out. Owners renew every third of their lease, so one that has not for two
 * thirds of it has missed a renewal and is likely gone.
 */
export function describeOwner(view: Pick<RequestView, 'request_id' | 'lease' | 'updated_at' | 'observed_at'>, now: number): string {
  const { lease } = view;
  if (!lease) return `no owner (released; \`fave resume ${view.request_id}\` continues it)`;
  // A live view is this process's own: its lease was renewed as it was read.
  const updatedAt = view.updated_at ?? view.observed_at;
  const renewedAgo = now - updatedAt;
  const ttl = lease.expires_at - updatedAt;
  const renewal = renewedAgo > (2 * ttl) / 3 ? `not renewed for ${secondsSince(renewedAgo)} s` : `renewed ${secondsSince(renewedAgo)} s ago`;
  const expiry =
    lease.expires_at > now
      ? `lease expires in ${secondsUntil(lease.expires_at - now)} s`
      : `lease expired ${secondsSince(now - lease.expires_at)} s ago; \`fave resume ${view.request_id}\` takes it over`;
  return `owner ${lease.owner} ${renewal} (${expiry})`;
}

/**
 * While this process waits on a request another owner runs: says whose lease blocks it and counts
 * down to its expiry, when this process takes the request over. On a terminal the line is
 * rewritten every second; otherwise a line is printed every 10 s and each second of the last 5.
 * Returns the function that stops it.
 */
export function reportOwnerWhileWaiting(app: App, requestId: string, tty: boolean): () => void {
  let stopped = false;
  let lastPrinted: string | null = null;
  let lastPrintedAt = 0;
  const tick = async () => {
    const view = await app.orchestrator.requests.view(requestId).catch(() => null);
    if (stopped || !view || view.status !== 'RUNNING' || view.local) return;
    const now = Date.now();
    if (view.lease?.owner === app.orchestrator.owner) return;
    const line = `request ${requestId} is run by another process: ${describeOwner(view, now)}; waiting for its answer, or for the lease to run out to resume it here`;
    if (tty) {
      process.stderr.write(`\r\x1b[2K${line}`);
      return;
    }
    const remaining = view.lease ? view.lease.expires_at - now : 0;
    if (line !== lastPrinted && (lastPrinted === null || now - lastPrintedAt >= 10_000 || remaining <= 5_000)) {
      process.stderr.write(`${line}\n`);
      lastPrinted = line;
      lastPrintedAt = now;
    }
  };
  // The orchestrator's watch takes the request over once the lease has run out.
  const onStarted = (id: string) => {
    if (id !== requestId || stopped) return;
    stopped = true;
    process.stderr.write(`${tty ? '\r\x1b[2K' : ''}request ${requestId}: the lease ran out; resuming it here\n`);
  };
  app.orchestrator.events.on('started', onStarted);
  void tick();
  const timer = setInterval(() => void tick(), 1000);
  timer.unref();
  return () => {
    app.orchestrator.events.off('started', onStarted);
    clearInterval(timer);
    if (tty && !stopped) process.stderr.write('\r\x1b[2K');
    stopped = true;
  };
}
