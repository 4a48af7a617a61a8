import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { closeAfterTest } from './support/cleanup.ts';

/**
 * The filesystem store's create-if-absent, as callbacks use it: one writer wins, across
 * processes too; the data is whole when the object appears; errors name the object, not the
 * server's paths; nothing temporary is left behind.
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

function storeAt(root: string): FsStore {
  return closeAfterTest(new FsStore(root, BUCKET));
}

describe('FsStore.createIfAbsent', () => {
  it('lets exactly one writer create each object when two stores of this process race another process', async () => {
    const root = join(dir, 'race');
    const prefix = 'requests/race/callbacks/frame-';
    const count = 60;
    const first = storeAt(root);
    const second = storeAt(root);
    await first.init();
    await first.createIfAbsent({ bucket: BUCKET, key: `${prefix}warm.json` }, 'warm');

    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'create-racer.ts'), root, BUCKET, prefix, String(count)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    onTestFinished(() => {
      if (child.exitCode === null) child.kill();
    });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    expect((await lines.next()).value).toBe('ready');

    const keys = Array.from({ length: count }, (_, i) => `${prefix}${i}/r0-a1.json`);
    child.stdin!.write('go\n');
    const [mine, other] = await Promise.all([
      Promise.all(keys.map((key) => first.createIfAbsent({ bucket: BUCKET, key }, `first ${key}`))),
      Promise.all(keys.map((key) => second.createIfAbsent({ bucket: BUCKET, key }, `second ${key}`))),
    ]);
    const childCreated = new Set(JSON.parse((await lines.next()).value as string) as string[]);

    for (const [i, key] of keys.entries()) {
      const winners = [mine[i] ? 'first' : null, other[i] ? 'second' : null, childCreated.has(key) ? 'child' : null].filter((w) => w !== null);
      expect(winners, key).toHaveLength(1);
      expect((await first.get({ bucket: BUCKET, key })).toString()).toBe(`${winners[0]} ${key}`);
    }
    // No temporary file is left behind by the winners or the losers, in either process.
    expect((await filesUnder(join(root, BUCKET))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('fails a write with a store error that names the object and no server path', async () => {
    const root = join(dir, 'errors');
    const store = storeAt(root);
    await store.init();
    expect(await store.createIfAbsent({ bucket: BUCKET, key: 'requests/err/a.json' }, 'a file')).toBe(true);
    // Its folder would have to be a file that exists.
    const loc = { bucket: BUCKET, key: 'requests/err/a.json/r0-a1.json' };
    const failure = await store.createIfAbsent(loc, 'x').then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ error: { code: 'STORE_ERROR' } });
    const message = (failure as { error: { message: string } }).error.message;
    expect(message).toContain(`${BUCKET}/${loc.key}`);
    expect(message).not.toContain(root);
    expect((await filesUnder(join(root, BUCKET))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('writes every object of a burst, and keeps each when it is written again', async () => {
    const store = storeAt(join(dir, 'burst'));
    await store.init();
    const keys = Array.from({ length: 600 }, (_, i) => `requests/burst/callbacks/frame-${i}-1/r0-a1.json`);
    const outcomes = await Promise.all(keys.map((key) => store.createIfAbsent({ bucket: BUCKET, key }, `body ${key}`)));
    expect(outcomes.every(Boolean)).toBe(true);
    for (const key of keys) expect((await store.get({ bucket: BUCKET, key })).toString()).toBe(`body ${key}`);
    expect(await Promise.all(keys.map((key) => store.createIfAbsent({ bucket: BUCKET, key }, 'again')))).toEqual(keys.map(() => false));
  });
});
