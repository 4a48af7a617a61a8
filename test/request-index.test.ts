import { describe, expect, it } from 'vitest';
import { Orchestrator } from '../src/orchestrator/orchestrator.ts';
import { indexKeys, parseListedKey } from '../src/persistence/request-index.ts';
import type { Store } from '../src/persistence/store.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { runFave } from './support/child.ts';
import { countingStore } from './support/counting-store.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { routerCall } from './support/router.ts';
import { until } from './support/until.ts';

/**
 * The running index and the listing index: a replica's sweeps read what runs, and a crash
 * between a state.json write and an index write, in either order, is repaired: the request is
 * resumed once, a stale marker is dropped.
 */

const BUCKET = 'fave-artifacts';

async function exists(store: Store, key: string): Promise<boolean> {
  return (await store.head({ bucket: BUCKET, key })) !== null;
}

async function listedIds(store: Store): Promise<string[]> {
  const keys = await store.list(BUCKET, indexKeys.listedPrefix);
  return keys.map((k) => parseListedKey(k)?.request_id ?? '?');
}

/** A second replica over the same store, every call it makes counted. */
function replica(h: Harness) {
  const { store, counts } = countingStore(h.store);
  const orchestrator = new Orchestrator({ config: h.app.config, store, transport: h.app.transport, owner: 'other-replica', leaseTtlMs: 1000 });
  closeAfterTest(orchestrator);
  return { orchestrator, counts };
}

async function harness(env: Record<string, string> = {}) {
  return closeAfterTest(await startHarness({ gateway: { clips: 2, framesPerClip: 1 }, env: { LEASE_TTL_MS: '1000', PERSIST_INTERVAL_MS: '0', ...env } }));
}

describe('the running index', () => {
  it('marks a request while it runs and lists it once finished; sweeps then read no state at all', async () => {
    const h = await harness();
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'indexed' });
    await until(() => exists(h.store, indexKeys.running('indexed')), { message: 'the running marker' });
    expect((await handle.done).status).toBe('COMPLETED');
    await until(async () => !(await exists(h.store, indexKeys.running('indexed'))), { message: 'the marker removed' });
    expect(await listedIds(h.store)).toEqual(['indexed']);

    const other = replica(h);
    expect(await other.orchestrator.sweepOrphans()).toEqual([]);
    expect(other.counts.stateReads).toBe(0);
    other.counts.reset();
    expect(await other.orchestrator.sweepOrphans()).toEqual([]);
    expect(other.counts.stateReads).toBe(0);
    // One listing of the running prefix; the full scan is not due again.
    expect(other.counts.calls.get('listPage')).toBe(1);
  });

  it('SIGKILL after the claim, before the marker: the full scan finds the request and it is resumed once', async () => {
    const h = await harness();
    const run = runFave(['run', h.videoUri, '--request-id', 'killed-at-claim', '--json'], {
      ...h.env,
      NODE_ENV: 'test',
      FAVE_TEST_CRASH_AT: 'index:claimed-before-marker',
    });
    const exit = await run.exit;
    expect(exit.signal).toBe('SIGKILL');
    expect((await h.readState('killed-at-claim')).status).toBe('RUNNING');
    expect(await exists(h.store, indexKeys.running('killed-at-claim'))).toBe(false);
    expect(h.gateway.calls).toHaveLength(0);

    const other = replica(h);
    const starts: string[] = [];
    other.orchestrator.events.on('started', (id, how) => starts.push(`${id}:${how}`));
    // The dead owner's lease runs out within LEASE_TTL_MS; until then the request is left alone.
    await until(async () => (await other.orchestrator.sweepOrphans()).includes('killed-at-claim'), { everyMs: 100, message: 'the orphan taken over' });
    const execution = other.orchestrator.get('killed-at-claim');
    expect((await execution!.done).status).toBe('COMPLETED');
    expect(starts).toEqual(['killed-at-claim:resume']);
    expect(h.gateway.callsTo('stage-ffmpeg-0')).toHaveLength(1);
    await until(async () => (await listedIds(h.store)).includes('killed-at-claim') && !(await exists(h.store, indexKeys.running('killed-at-claim'))), {
      message: 'listed, marker removed',
    });
    other.counts.reset();
    expect(await other.orchestrator.sweepOrphans()).toEqual([]);
    expect(other.counts.stateReads).toBe(0);
  });

  it('SIGKILL after the final state write, before the marker goes: the stale marker is dropped and nothing runs again', async () => {
    const h = await harness();
    const run = runFave(['run', h.videoUri, '--request-id', 'killed-at-finish', '--json'], {
      ...h.env,
      NODE_ENV: 'test',
      FAVE_TEST_CRASH_AT: 'index:finished-before-unmark',
    });
    const exit = await run.exit;
    expect(exit.signal).toBe('SIGKILL');
    expect((await h.readState('killed-at-finish')).status).toBe('COMPLETED');
    expect(await exists(h.store, indexKeys.running('killed-at-finish'))).toBe(true);
    expect(await listedIds(h.store)).toEqual([]);
    const calls = h.gateway.calls.length;

    const other = replica(h);
    expect(await other.orchestrator.sweepOrphans()).toEqual([]);
    expect(other.counts.stateReads).toBe(1);
    expect(await exists(h.store, indexKeys.running('killed-at-finish'))).toBe(false);
    expect(await listedIds(h.store)).toEqual(['killed-at-finish']);
    other.counts.reset();
    expect(await other.orchestrator.sweepOrphans()).toEqual([]);
    expect(other.counts.stateReads).toBe(0);
    expect(h.gateway.calls).toHaveLength(calls);
  });

  it('indexes the finished requests of a bucket written before the index, once', async () => {
    const h = await harness();
    for (const id of ['old-1', 'old-2']) expect((await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: id })).done).status).toBe('COMPLETED');
    await until(async () => (await listedIds(h.store)).length === 2, { message: 'both listed' });
    // As a bucket from before the index: no listing entries.
    for (const key of await h.store.list(BUCKET, 'index/')) await h.store.delete({ bucket: BUCKET, key });

    const other = replica(h);
    expect(await other.orchestrator.sweepOrphans()).toEqual([]);
    expect(other.counts.stateReads).toBe(2);
    expect((await listedIds(h.store)).sort()).toEqual(['old-1', 'old-2']);
    // A new replica's first sweep makes the full scan again, and reads nothing now.
    const fresh = replica(h);
    expect(await fresh.orchestrator.sweepOrphans()).toEqual([]);
    expect(fresh.counts.stateReads).toBe(0);
  });
});

describe('a redriven request', () => {
  it('leaves the listing while it runs again, and is listed once with its new outcome', async () => {
    const h = await harness();
    h.gateway.addFault({ stage: 'ffmpeg1', kind: 'error', message: 'bad input' });
    expect((await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'redriven' })).done).status).toBe('FAILED');
    const entryKey = (await h.store.list(BUCKET, indexKeys.listedPrefix))[0]!;
    expect(JSON.parse((await h.store.get({ bucket: BUCKET, key: entryKey })).toString('utf8'))).toMatchObject({ request_id: 'redriven', status: 'FAILED' });
    h.gateway.clearFaults();
    h.gateway.addFault({ stage: 'ffmpeg1', kind: 'hang' });
    const again = await h.app.orchestrator.resume('redriven');
    await until(() => h.gateway.callsTo('stage-ffmpeg-1').length === 2, { message: 'the redrive at ffmpeg-1' });
    expect(await listedIds(h.store)).toEqual([]);
    expect(await exists(h.store, indexKeys.running('redriven'))).toBe(true);
    h.gateway.clearFaults();
    h.app.orchestrator.cancel('redriven');
    expect((await again.done).status).toBe('FAILED');
    expect(await listedIds(h.store)).toEqual(['redriven']);
    expect(await h.store.list(BUCKET, indexKeys.listedPrefix)).toEqual([entryKey]);
    expect(await exists(h.store, indexKeys.running('redriven'))).toBe(false);
  });
});

describe('the request list', () => {
  it('pages newest first with a cursor, running requests on the first page, and refuses a bad cursor or limit', async () => {
    const h = await harness();
    for (let i = 0; i < 5; i++) {
      expect((await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: `done-${i}` })).done).status).toBe('COMPLETED');
    }
    await until(async () => (await listedIds(h.store)).length === 5, { message: 'all listed' });
    h.gateway.addFault({ stage: 'ffmpeg0', requestId: 'live', kind: 'hang' });
    const live = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'live' });
    const call = routerCall(h.app);
    const route = (r: { method: string; path: string; query: Record<string, string> }) => call(r.method, `${r.path}?${new URLSearchParams(r.query).toString()}`);

    const first = await route({ method: 'GET', path: '/ui/api/requests', query: { limit: '2' } });
    expect(first.status).toBe(200);
    const page1 = JSON.parse(String(first.body)) as { requests: Array<{ request_id: string; status: string }>; next_cursor: string | null };
    expect(page1.requests.map((r) => r.request_id)).toEqual(['live', 'done-4', 'done-3']);
    expect(page1.requests[0]!.status).toBe('RUNNING');
    const seen = page1.requests.map((r) => r.request_id);
    let cursor = page1.next_cursor;
    while (cursor) {
      const next = await route({ method: 'GET', path: '/ui/api/requests', query: { limit: '2', cursor } });
      const page = JSON.parse(String(next.body)) as { requests: Array<{ request_id: string }>; next_cursor: string | null };
      seen.push(...page.requests.map((r) => r.request_id));
      cursor = page.next_cursor;
    }
    expect(seen).toEqual(['live', 'done-4', 'done-3', 'done-2', 'done-1', 'done-0']);

    const html = await route({ method: 'GET', path: '/ui', query: { limit: '2' } });
    expect(String(html.body)).toContain('older requests');
    for (const query of [{ limit: '0' }, { limit: '1000' }, { cursor: '../x' }] as Array<Record<string, string>>) {
      const bad = await route({ method: 'GET', path: '/ui/api/requests', query });
      expect(bad.status).toBe(400);
      expect(String(bad.body)).toContain(Object.keys(query)[0]!);
    }
    h.app.orchestrator.cancel('live');
    await live.done.catch(() => undefined);
  });
});
