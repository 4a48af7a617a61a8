import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { closeAfterTest } from './support/cleanup.ts';

/**
 * The filesystem store's create-if-absent on its write threads: the same guarantees as through
 * the thread pool (one writer wins, across processes too; the data is whole when the object
 * appears; errors mapped the same), and threads that live only as long as the store.
 */

const BUCKET = 'fave-artifacts';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-fs-create-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

function storeAt(root: string, writeThreads: number): FsStore {
  return closeAfterTest(new FsStore(root, BUCKET, { writeThreads }));
}

describe('FsStore.createIfAbsent on write threads', () => {
  it('lets exactly one writer create each object when its threads race another process and the thread pool of another store', async () => {
    const root = join(dir, 'race');
    const prefix = 'requests/race/callbacks/frame-';
    const count = 60;
    const threaded = storeAt(root, 2);
    const pooled = storeAt(root, 0);
    await threaded.init();
    await threaded.createIfAbsent({ bucket: BUCKET, key: `${prefix}warm.json` }, 'warm');
    expect(threaded.writeThreads).toBeGreaterThan(0);

    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'create-racer.ts'), root, BUCKET, prefix, String(count), '2'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    onTestFinished(() => {
      if (child.exitCode === null) child.kill();
    });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    expect((await lines.next()).value).toBe('ready');

    const keys = Array.from({ length: count }, (_, i) => `${prefix}${i}/r0-a1.json`);
    child.stdin!.write('go\n');
    const [mine, pool] = await Promise.all([
      Promise.all(keys.map((key) => threaded.createIfAbsent({ bucket: BUCKET, key }, `threads ${key}`))),
      Promise.all(keys.map((key) => pooled.createIfAbsent({ bucket: BUCKET, key }, `pool ${key}`))),
    ]);
    const childCreated = new Set(JSON.parse((await lines.next()).value as string) as string[]);

    for (const [i, key] of keys.entries()) {
      const winners = [mine[i] ? 'threads' : null, pool[i] ? 'pool' : null, childCreated.has(key) ? 'child' : null].filter((w) => w !== null);
      expect(winners, key).toHaveLength(1);
      expect((await threaded.get({ bucket: BUCKET, key })).toString()).toBe(`${winners[0]} ${key}`);
    }
    // No temporary file is left behind by the winners or the losers, in either process.
    expect((await filesUnder(join(root, BUCKET))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('fails a write as the store maps filesystem errors, the same with threads and without, naming no server path', async () => {
    const root = join(dir, 'errors');
    const threaded = storeAt(root, 2);
    const pooled = storeAt(root, 0);
    await threaded.init();
    expect(await threaded.createIfAbsent({ bucket: BUCKET, key: 'requests/err/a.json' }, 'a file')).toBe(true);
    // Its folder would have to be a file that exists.
    const loc = { bucket: BUCKET, key: 'requests/err/a.json/r0-a1.json' };
    const onThreads = await threaded.createIfAbsent(loc, 'x').then(
      () => null,
      (err: unknown) => err,
    );
    const onPool = await pooled.createIfAbsent(loc, 'x').then(
      () => null,
      (err: unknown) => err,
    );
    expect(threaded.writeThreads).toBeGreaterThan(0);
    expect(onThreads).toMatchObject({ error: { code: 'STORE_ERROR' } });
    expect(onPool).toMatchObject({ error: { code: 'STORE_ERROR' } });
    const message = (onThreads as { error: { message: string } }).error.message;
    expect(message).toBe((onPool as { error: { message: string } }).error.message);
    expect(message).toContain(`${BUCKET}/${loc.key}`);
    expect(message).not.toContain(root);
    expect((await filesUnder(join(root, BUCKET))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('writes every object of a burst larger than the threads hold, the rest on the calling thread', async () => {
    const store = storeAt(join(dir, 'burst'), 2);
    await store.init();
    const keys = Array.from({ length: 600 }, (_, i) => `requests/burst/callbacks/frame-${i}-1/r0-a1.json`);
    const outcomes = await Promise.all(keys.map((key) => store.createIfAbsent({ bucket: BUCKET, key }, `body ${key}`)));
    expect(outcomes.every(Boolean)).toBe(true);
    for (const key of keys) expect((await store.get({ bucket: BUCKET, key })).toString()).toBe(`body ${key}`);
    expect(await Promise.all(keys.map((key) => store.createIfAbsent({ bucket: BUCKET, key }, 'again')))).toEqual(keys.map(() => false));
  });

  it('starts its threads on first use and stops them with the store; objects after that are written without them', async () => {
    expect(new FsStore(join(dir, 'none'), BUCKET).writeThreads).toBe(0);
    const store = new FsStore(join(dir, 'lifetime'), BUCKET, { writeThreads: 2 });
    await store.init();
    expect(store.writeThreads).toBe(0);
    const writes = await Promise.all([1, 2, 3].map((n) => store.createIfAbsent({ bucket: BUCKET, key: `requests/life/${n}.json` }, `${n}`)));
    expect(writes).toEqual([true, true, true]);
    expect(store.writeThreads).toBeGreaterThan(0);
    // Closing waits for the objects in hand: one written as the store closes is whole and there.
    const late = store.createIfAbsent({ bucket: BUCKET, key: 'requests/life/late.json' }, 'late');
    await store.close();
    expect(await late).toBe(true);
    expect(store.writeThreads).toBe(0);
    expect((await store.get({ bucket: BUCKET, key: 'requests/life/late.json' })).toString()).toBe('late');
    expect(await store.createIfAbsent({ bucket: BUCKET, key: 'requests/life/after.json' }, 'after')).toBe(true);
    expect(store.writeThreads).toBe(0);
    expect((await store.get({ bucket: BUCKET, key: 'requests/life/after.json' })).toString()).toBe('after');
  });
});
