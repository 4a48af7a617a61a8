import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Orchestrator } from '../../src/orchestrator/orchestrator.ts';
import { mapLimited } from '../../src/lib/limiter.ts';
import { indexKeys, ListingEntrySchema } from '../../src/persistence/request-index.ts';
import { requestKeys } from '../../src/persistence/store.ts';
import { countingStore } from '../../test/support/counting-store.ts';
import { BUCKET, benchEnv, openApp, timeRequest } from '../workspace.ts';
import { openGateway, type BenchContext } from './context.ts';

export interface SweepFigures {
  finished: number;
  running: number;
  /** Writing the stored requests straight into the store (not part of any figure). */
  setup_ms: number;
  /** The first sweep of a fresh replica: the full scan, and one read per running request. */
  first: SweepMeasure;
  /** Later sweeps with the running requests' leases known. */
  steady: SweepMeasure;
  /** Sweeps once nothing runs. */
  idle: SweepMeasure;
  /** The worst sweep of all, with `running` running. */
  sweep_ms: number;
  /** The most state.json reads of one sweep with `running` running. */
  sweep_state_reads: number;
  /** The request list's first page (50) and a later one: store calls and time. */
  list_first_page: { ms: number; calls: number; state_reads: number };
}

export interface SweepMeasure {
  ms: number;
  state_reads: number;
  lists: number;
  calls: number;
}

const OTHER_OWNER = 'bench-other-replica';

/**
 * An idle replica's orphan sweeps over a filesystem store holding `finished` finished requests
 * and `running` running ones whose owner (another replica) is alive. The stored requests are
 * copies of one real finished request, written straight into the store with their index entries
 * as the orchestrator leaves them; the running ones are its copies marked RUNNING with a live
 * lease of another owner and a running marker. What is counted: store calls made by the
 * sweeping replica, through a counting wrapper around its real store.
 */
export async function measureSweep(ctx: BenchContext): Promise<SweepFigures> {
  const { finished, running } = ctx.sizes.sweep;
  const gateway = await openGateway(ctx, { clips: 1, framesPerClip: 1, latencyMs: 0 });
  const app = await openApp(benchEnv({ gatewayUrl: gateway.url, dataDir: ctx.workspace.dataDir, concurrency: 4 }));
  const store = ctx.workspace.store;
  try {
    await timeRequest(app, 'sweep-template', ctx.workspace.videoUri);
    await app.orchestrator.close();
    const stateText = (await store.get({ bucket: BUCKET, key: requestKeys.state('sweep-template') })).toString('utf8');
    const [listedKey] = await store.list(BUCKET, indexKeys.listedPrefix);
    const entry = ListingEntrySchema.parse(JSON.parse((await store.get({ bucket: BUCKET, key: listedKey! })).toString('utf8')));

    const setupStart = performance.now();
    const write = async (key: string, body: string) => {
      const path = store.path({ bucket: BUCKET, key });
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, body);
    };
    const now = Date.now();
    const ids = Array.from({ length: finished }, (_, i) => `done-${String(i).padStart(6, '0')}`);
    await mapLimited(ids, 32, async (id) => {
      const startedAt = now - 86_400_000 - Number(id.slice(5)) * 1000;
      await write(requestKeys.state(id), stateText.replaceAll('sweep-template', id));
      await write(indexKeys.listed(startedAt, id), JSON.stringify({ ...entry, request_id: id, started_at: startedAt }));
    });
    const lease = { owner: OTHER_OWNER, acquired_at: now, expires_at: now + 3_600_000 };
    for (let i = 0; i < running; i++) {
      const id = `running-${i}`;
      const envelope = JSON.parse(stateText.replaceAll('sweep-template', id)) as Record<string, unknown>;
      await write(requestKeys.state(id), JSON.stringify({ ...envelope, status: 'RUNNING', lease }));
      await write(indexKeys.running(id), JSON.stringify({ request_id: id, started_at: now, owner: OTHER_OWNER }));
    }
    const setupMs = performance.now() - setupStart;
    ctx.log(`  ${finished} finished and ${running} running requests written in ${setupMs.toFixed(0)} ms`);

    const counted = countingStore(store);
    const replica = new Orchestrator({ config: app.config, store: counted.store, transport: app.transport, owner: 'bench-sweeper' });
    const sweep = async (): Promise<SweepMeasure> => {
      counted.counts.reset();
      const started = performance.now();
      const taken = await replica.sweepOrphans();
      const ms = performance.now() - started;
      if (taken.length > 0) throw new Error(`the sweep took over ${taken.join(', ')}: their owner is alive`);
      const calls = [...counted.counts.calls.values()].reduce((a, b) => a + b, 0);
      return { ms, state_reads: counted.counts.stateReads, lists: counted.counts.calls.get('listPage') ?? 0, calls };
    };
    const worst = (all: SweepMeasure[]): SweepMeasure =>
      all.reduce((a, b) => ({
        ms: Math.max(a.ms, b.ms),
        state_reads: Math.max(a.state_reads, b.state_reads),
        lists: Math.max(a.lists, b.lists),
        calls: Math.max(a.calls, b.calls),
      }));
    const first = await sweep();
    const steady = worst([await sweep(), await sweep(), await sweep()]);

    const { listRequestSummaries } = await import('../../src/ui/view.ts');
    counted.counts.reset();
    const listStart = performance.now();
    const page = await listRequestSummaries(replica, { limit: 50 });
    const list_first_page = { ms: performance.now() - listStart, calls: [...counted.counts.calls.values()].reduce((a, b) => a + b, 0), state_reads: counted.counts.stateReads };
    if (page.requests.length !== Math.min(50, running) + 50) throw new Error(`the list's first page has ${page.requests.length} rows`);

    // Their owner finishes them: the markers go, and the states say so.
    for (let i = 0; i < running; i++) {
      const id = `running-${i}`;
      await write(requestKeys.state(id), stateText.replaceAll('sweep-template', id));
      // As a finishing owner does: listed first, then the marker goes (src/persistence/request-index.ts).
      await write(indexKeys.listed(now, id), JSON.stringify({ ...entry, request_id: id, started_at: now }));
      await store.delete({ bucket: BUCKET, key: indexKeys.running(id) });
    }
    const idle = worst([await sweep(), await sweep(), await sweep()]);
    await replica.close();
    const sweep_ms = Math.max(first.ms, steady.ms);
    ctx.log(
      `  sweeps: first ${first.ms.toFixed(0)} ms / ${first.state_reads} reads, steady ${steady.ms.toFixed(1)} ms / ${steady.state_reads}, idle ${idle.ms.toFixed(1)} ms / ${idle.state_reads}`,
    );
    return { finished, running, setup_ms: setupMs, first, steady, idle, sweep_ms, sweep_state_reads: Math.max(first.state_reads, steady.state_reads), list_first_page };
  } finally {
    await app.close();
    await gateway.stop();
  }
}
