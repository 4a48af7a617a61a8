import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RequestView } from '../src/domain/request-view.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { RequestRepository } from '../src/persistence/request-repository.ts';
import { StateWriter } from '../src/persistence/state-writer.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { failureOf } from './support/fixtures.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { until } from './support/until.ts';

const BUCKET = 'fave-artifacts';

let h: Harness | null = null;
let dir: string | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = null;
});

/** What a view says of the request, without when and by whom it was taken. */
function substance(view: RequestView): Omit<RequestView, 'local' | 'observed_at' | 'updated_at' | 'lease' | 'wall_ms'> {
  const { local: _local, observed_at: _observed, updated_at: _updated, lease: _lease, wall_ms: _wall, ...rest } = view;
  return rest;
}

describe('the request repository', () => {
  it('gives one view of a request, live while it runs here and from state.json elsewhere, the same once it has finished', async () => {
    h = await startHarness({ gateway: { clips: 2, framesPerClip: 1, latencyMs: 100 } });
    const elsewhere = new RequestRepository(h.store, BUCKET);
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'seen' });

    const live = await until(() => h!.app.orchestrator.requests.view('seen'), { message: 'a live view' });
    expect(live).toMatchObject({ request_id: 'seen', status: 'RUNNING', local: true, updated_at: null });
    expect(live.lease?.owner).toBe(h.app.orchestrator.owner);
    const stored = await until(() => elsewhere.view('seen'), { message: 'a stored view' });
    expect(stored).toMatchObject({ request_id: 'seen', status: 'RUNNING', local: false });
    expect(stored.lease?.owner).toBe(h.app.orchestrator.owner);
    expect(stored.updated_at).toEqual(expect.any(Number));

    const outcome = await handle.done;
    expect(outcome.status).toBe('COMPLETED');
    const here = await h.app.orchestrator.requests.view('seen');
    const there = await elsewhere.view('seen');
    expect(here!.local).toBe(false);
    expect(substance(there!)).toEqual(substance(here!));
    expect(there).toMatchObject({ status: 'COMPLETED', state: 'COMPLETED', value: 'COMPLETED', lease: null, error: null });
    expect(there!.progress).toMatchObject({ clips_total: 2, clips_done: 2 });
    // A finished request's wall time is its run, whenever it is looked at.
    expect(there!.wall_ms).toBe(outcome.result.metrics.wall_ms);
    expect(await elsewhere.ids()).toEqual(['seen']);
    expect((await elsewhere.readResult('seen'))?.status).toBe('COMPLETED');
  });

  it('answers null for a request nobody knows; resuming one is REQUEST_NOT_FOUND', async () => {
    h = await startHarness({ gateway: { clips: 1, framesPerClip: 1 } });
    expect(await h.app.orchestrator.requests.view('nobody')).toBeNull();
    expect(await h.app.orchestrator.requests.readState('nobody')).toBeNull();
    expect(await h.app.orchestrator.requests.readResult('nobody')).toBeNull();
    const failure = await failureOf(h.app.orchestrator.resume('nobody'));
    expect(failure.error).toMatchObject({ code: 'REQUEST_NOT_FOUND', message: expect.stringContaining('no request nobody') });
    expect((await failureOf(h.app.orchestrator.requests.view('../x'))).error.code).toBe('BAD_REQUEST');
  });

  it('a state write that loses its precondition is LEASE_HELD for the request, and the stored state stays as it was', async () => {
    h = await startHarness({ gateway: { clips: 1, framesPerClip: 1 } });
    await (
      await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'taken' })
    ).done;
    const { envelope } = (await h.app.orchestrator.requests.readState('taken'))!;
    const location = { bucket: BUCKET, key: requestKeys.state('taken') };
    const before = await h.store.get(location);
    const next = { ...envelope, seq: envelope.seq + 1 };
    for (const etag of ['"not-the-stored-one"', null]) {
      const writer = new StateWriter({ store: h.store, location, intervalMs: 0, conditional: true, etag });
      const failure = await failureOf(writer.acquire(next));
      expect(failure.error).toMatchObject({ code: 'LEASE_HELD', message: expect.stringContaining('changed by another owner') });
      expect(writer.lost?.error.code).toBe('LEASE_HELD');
    }
    expect(await h.store.get(location)).toEqual(before);
  });

  it('keeps cancel markers: one newer than the run is taken once, an older or unreadable one is dropped', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-repo-'));
    const store = new FsStore(join(dir, 'data'), BUCKET);
    await store.init();
    const requests = new RequestRepository(store, BUCKET);
    const marker = { bucket: BUCKET, key: requestKeys.cancel('r1') };

    const before = Date.now();
    await requests.putCancelMarker('r1', 'asked elsewhere', 'host:1');
    expect(await requests.takeCancelMarker('r1', before)).toBe('asked elsewhere');
    expect(await store.head(marker)).toBeNull();
    expect(await requests.takeCancelMarker('r1', before)).toBeNull();

    await requests.putCancelMarker('r1', 'for an earlier run', 'host:1');
    expect(await requests.takeCancelMarker('r1', Date.now() + 60_000)).toBeNull();
    expect(await store.head(marker)).toBeNull();

    await store.put(marker, '{not json');
    expect(await requests.takeCancelMarker('r1', before)).toBeNull();
    expect(await store.head(marker)).toBeNull();
    await store.close();
  });
});
