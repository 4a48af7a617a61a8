import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toFaveError } from '../src/domain/errors.ts';
import { withFileLock } from '../src/persistence/fs-lock.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { until } from './support/until.ts';

let h: Harness | null = null;
let dir: string | null = null;
let mounted: string | null = null;

afterEach(async () => {
  await h?.close().catch(() => undefined);
  if (mounted) execFileSync('umount', [mounted]);
  if (dir) await rm(dir, { recursive: true, force: true });
  h = null;
  dir = null;
  mounted = null;
});

/** A small tmpfs can be filled for real (ENOSPC); mounting one needs root. */
function canMountTmpfs(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || (!existsSync('/usr/bin/mount') && !existsSync('/bin/mount'))) return false;
  const probe = join(tmpdir(), `fave-mount-probe-${process.pid}`);
  try {
    execFileSync('mkdir', ['-p', probe]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    return false;
  } finally {
    execFileSync('rm', ['-rf', probe]);
  }
}

async function walk(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true });
  return entries.map(String);
}

describe.skipIf(!canMountTmpfs())('a store that fills up mid-request', () => {
  it('lets the request go in memory, leaves no .tmp file, and resumes it when space is back', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-enospc-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
    mounted = dir;
    const data = join(dir, 'data');
    const store = new FsStore(data, 'fave-artifacts');
    h = await startHarness({
      store,
      gateway: { clips: 6, framesPerClip: 2, latencyMs: 60, artifacts: 'none' },
      env: { FAVE_DATA_DIR: data, PERSIST_INTERVAL_MS: '0', LEASE_TTL_MS: '1000' },
    });
    const harness = h;
    const handle = await harness.app.orchestrator.submit({ video_uri: harness.videoUri, request_id: 'full-disk' });
    await until(async () => (await harness.readState('full-disk')).state === 'FANOUT', { timeoutMs: 20_000, message: 'the request to reach FANOUT' });

    // Fill the disk: every write from here on fails with ENOSPC.
    const filler = join(dir, 'filler');
    const fd = await open(filler, 'w');
    try {
      for (;;) await fd.write(Buffer.alloc(256 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      await fd.close();
    }
    const error = await handle.done.then(
      () => null,
      (err: unknown) => toFaveError(err),
    );
    expect(error).toMatchObject({ code: 'STORE_ERROR' });
    expect(error!.message).toMatch(/could not be written .*ENOSPC/);
    expect(harness.app.orchestrator.get('full-disk')).toBeUndefined();
    expect((await walk(data)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect((await harness.readState('full-disk')).status).toBe('RUNNING');

    await rm(filler);
    const done = await until(
      async () => {
        const state = await harness.readState('full-disk');
        return state.status === 'RUNNING' ? null : state;
      },
      { timeoutMs: 30_000, message: 'the request to be resumed and finished' },
    );
    expect(done.status).toBe('COMPLETED');
    expect((await harness.readFinal('full-disk')).clips).toHaveLength(6);
    expect((await walk(data)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe("the filesystem store's lock is a lease", () => {
  it('a SIGKILLed holder delays the next taker by at most one lease period', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-lock-'));
    const lock = join(dir, 'state.json.lock');
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'hold-lock.ts'), lock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('locked'), { timeoutMs: 15_000, message: 'the child to take the lock' });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const leaseMs = 2000;
    const started = performance.now();
    await withFileLock(lock, async () => undefined, { leaseMs });
    expect(performance.now() - started).toBeLessThan(leaseMs + 500);
    expect(existsSync(lock)).toBe(false);
  });

  it('a holder elsewhere that stops its heartbeat loses the lock after one lease; a live one keeps it past it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-lock-'));
    const lock = join(dir, 'a.lock');
    await writeFile(lock, JSON.stringify({ host: 'another-host', pid: 1 }));
    const leaseMs = 400;
    const started = performance.now();
    await withFileLock(lock, async () => undefined, { leaseMs });
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThan(leaseMs * 0.8);
    expect(waited).toBeLessThan(leaseMs + 1000);

    // A live holder keeps the lock until the waiter has waited two whole leases (without the
    // heartbeat it would have broken the lock after one); the waiter gets it only after that.
    const order: string[] = [];
    let waitingSince: number | null = null;
    const holder = withFileLock(
      lock,
      async () => {
        await until(() => waitingSince !== null && performance.now() - waitingSince > leaseMs * 2, { message: 'the waiter to wait two leases' });
        order.push('holder done');
      },
      { leaseMs },
    );
    await until(() => existsSync(lock), { timeoutMs: 2000, message: 'the holder to take the lock' });
    // As seen from another host: only the heartbeat (mtime) tells it the holder is alive.
    await writeFile(lock, JSON.stringify({ host: 'another-host', pid: 1 }));
    const now = new Date();
    await utimes(lock, now, now);
    waitingSince = performance.now();
    await withFileLock(lock, async () => void order.push('waiter'), { leaseMs });
    await holder;
    expect(order).toEqual(['holder done', 'waiter']);
  });
});

describe('orphans', () => {
  it('are resumed concurrently, up to ORPHAN_RESUME_CONCURRENCY', async () => {
    h = await startHarness({
      gateway: { clips: 1, framesPerClip: 1, latencyMs: 20 },
      env: { ORPHAN_RESUME_CONCURRENCY: '8', FS_LOCK_LEASE_MS: '1000' },
    });
    const harness = h;
    const ids = ['orphan-1', 'orphan-2', 'orphan-3', 'orphan-4'];
    harness.gateway.addFault({ stage: 'ffmpeg0', kind: 'hang' });
    for (const id of ids) {
      const handle = await harness.app.orchestrator.submit({ video_uri: harness.videoUri, request_id: id });
      await until(() => harness.gateway.callsTo('ffmpeg0').some((c) => c.request_id === id), { timeoutMs: 5000, message: `${id} to call ffmpeg-0` });
      await handle.execution!.abandon();
    }
    harness.gateway.clearFaults();
    // Each state.json is locked by a holder on another host that went silent a moment ago:
    // one lease (1 s) to wait for each, all waited for at once.
    for (const id of ids) {
      const lock = join(harness.dir, 'data', 'fave-artifacts', requestKeys.state(id) + '.lock');
      await writeFile(lock, JSON.stringify({ host: 'another-host', pid: 1 }));
    }
    const started = performance.now();
    const resumed = await harness.app.orchestrator.sweepOrphans();
    const ms = performance.now() - started;
    expect(resumed).toEqual(ids);
    // One at a time this took four leases.
    expect(ms).toBeLessThan(2500);
    for (const id of ids) {
      await until(async () => (await harness.readState(id)).status === 'COMPLETED', { timeoutMs: 10_000, message: `${id} to complete` });
    }
  });
});
