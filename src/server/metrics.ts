import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LostRacePhase, Orchestrator } from '../orchestrator/orchestrator.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import type { FenceReason } from '../orchestrator/lease-fence.ts';
import type { PrewarmAction } from '../orchestrator/prewarm.ts';

export interface FaveMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<string>;
  /** Stops listening to the orchestrator. */
  close(): void;
}

export interface MetricsOptions {
  /** Adds prom-client's process metrics (RSS, CPU, event-loop lag, GC); once per process. */
  processMetrics?: boolean;
}

/** Stage calls take from milliseconds (scripted, warm) to many minutes (a long clip, cold). */
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * Prometheus metrics fed from the orchestrator's events, in a registry of their own so that two
 * orchestrators in one process (tests, embedded use) never share or clash over counters.
 */
export function createMetrics(orchestrator: Orchestrator, options: MetricsOptions = {}): FaveMetrics {
  const registry = new Registry();
  const registers = [registry];
  const invocations = new Counter({
    name: 'fave_invocations_total',
    help: 'Stage function calls (every attempt), by stage and outcome',
    labelNames: ['stage', 'outcome'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'fave_invocation_duration_seconds',
    help: 'Latency of stage function calls as seen by the orchestrator',
    labelNames: ['stage'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const queueDelay = new Histogram({
    name: 'fave_queue_delay_seconds',
    help: 'Async stage calls: time from dispatch to the function starting (X-Start-Time), spent in the gateway queue',
    labelNames: ['stage'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const retries = new Counter({ name: 'fave_retries_total', help: 'Stage call attempts after the first', labelNames: ['stage'] as const, registers });
  const coldStarts = new Counter({ name: 'fave_cold_starts_total', help: 'Stage calls that reported a cold start', labelNames: ['stage'] as const, registers });
  const prewarmScales = new Counter({
    name: 'fave_prewarm_scale_total',
    help: 'Scale calls made to pre-warm a stage or give its replicas back, by stage and whether the gateway accepted them',
    labelNames: ['stage', 'kind', 'ok'] as const,
    registers,
  });
  new Gauge({
    name: 'fave_requests_in_flight',
    help: 'Requests this process is running now',
    registers,
    collect() {
      this.set(orchestrator.running().length);
    },
  });
  const requests = new Counter({ name: 'fave_requests_total', help: 'Requests finished by this process, by status', labelNames: ['status'] as const, registers });
  const stateWrites = new Counter({ name: 'fave_state_writes_total', help: 'Writes of metadata/state.json', registers });
  const stateBytes = new Counter({ name: 'fave_state_write_bytes_total', help: 'Bytes written to metadata/state.json', registers });
  const leasesLost = new Counter({
    name: 'fave_lease_lost_total',
    help: 'Races for a request lost to another owner: claim (it was taken first) or renewal (it was taken over while running here)',
    labelNames: ['phase'] as const,
    registers,
  });
  leasesLost.inc({ phase: 'claim' }, 0);
  leasesLost.inc({ phase: 'renewal' }, 0);
  const fenceRefusals = new Counter({
    name: 'fave_lease_fence_refusals_total',
    help: 'Stage calls held back at the send because this process may no longer hold the lease: its local deadline passed (deadline), the process stalled (stall), or the request stopped running here on the way to the send (lost)',
    labelNames: ['reason'] as const,
    registers,
  });
  fenceRefusals.inc({ reason: 'deadline' }, 0);
  fenceRefusals.inc({ reason: 'stall' }, 0);
  fenceRefusals.inc({ reason: 'lost' }, 0);
  if (options.processMetrics) collectDefaultMetrics({ register: registry });

  const onInvocation = (_requestId: string, record: InvocationRecord) => {
    invocations.inc({ stage: record.stage, outcome: record.outcome === 'error' ? (record.error?.code ?? 'error') : record.outcome });
    duration.observe({ stage: record.stage }, Math.max(0, record.latency_ms) / 1000);
    if (record.attempt > 1) retries.inc({ stage: record.stage });
    if (typeof record.queue_delay_ms === 'number') queueDelay.observe({ stage: record.stage }, Math.max(0, record.queue_delay_ms) / 1000);
    if (record.cold_start === true) coldStarts.inc({ stage: record.stage });
  };
  const onStateWrite = (_requestId: string, bytes: number) => {
    stateWrites.inc();
    stateBytes.inc(bytes);
  };
  const onFinished = (_requestId: string, status: 'COMPLETED' | 'FAILED') => requests.inc({ status });
  const onLeaseLost = (_requestId: string, phase: LostRacePhase) => leasesLost.inc({ phase });
  const onFenced = (_requestId: string, reason: FenceReason) => fenceRefusals.inc({ reason });
  const onPrewarm = (action: PrewarmAction) => prewarmScales.inc({ stage: action.function_name, kind: action.kind, ok: String(action.ok) });
  orchestrator.events.on('prewarm', onPrewarm);
  orchestrator.events.on('invocation', onInvocation);
  orchestrator.events.on('state_write', onStateWrite);
  orchestrator.events.on('finished', onFinished);
  orchestrator.events.on('lease_lost', onLeaseLost);
  orchestrator.events.on('lease_fenced', onFenced);

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    close() {
      orchestrator.events.off('invocation', onInvocation);
      orchestrator.events.off('state_write', onStateWrite);
      orchestrator.events.off('finished', onFinished);
      orchestrator.events.off('lease_lost', onLeaseLost);
      orchestrator.events.off('lease_fenced', onFenced);
      orchestrator.events.off('prewarm', onPrewarm);
    },
  };
}
