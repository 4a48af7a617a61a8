import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { recordIn, SEGMENT_MAX_RECORDS, SEGMENTS_FOLDER } from '../src/persistence/fs-records.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { listPages } from '../src/persistence/store.ts';
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
    const group = 'requests/race/callbacks/';
    await first.createIfAbsent({ bucket: BUCKET, key: `${prefix}warm.json` }, 'warm', group);

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
      Promise.all(keys.map((key) => first.createIfAbsent({ bucket: BUCKET, key }, `first ${key}`, group))),
      Promise.all(keys.map((key) => second.createIfAbsent({ bucket: BUCKET, key }, `second ${key}`, group))),
    ]);
    const childCreated = new Set(JSON.parse((await lines.next()).value as string) as string[]);

    for (const [i, key] of keys.entries()) {
      const winners = [mine[i] ? 'first' : null, other[i] ? 'second' : null, childCreated.has(key) ? 'child' : null].filter((w) => w !== null);
      expect(winners, key).toHaveLength(1);
      expect((await first.readRecord({ bucket: BUCKET, key }, group)).toString()).toBe(`${winners[0]} ${key}`);
    }
    // No temporary file is left behind by the winners or the losers, in either process.
    expect((await filesUnder(join(root, BUCKET))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('fails a write with a store error that names the object and no server path', async () => {
    const root = join(dir, 'errors');
    const store = storeAt(root);
    await store.init();
    // The folder its group's records go to would have to be a file that exists.
    await store.put({ bucket: BUCKET, key: `requests/err/callbacks/${SEGMENTS_FOLDER}` }, 'a file');
    const loc = { bucket: BUCKET, key: 'requests/err/callbacks/ffmpeg0/r0-a1.json' };
    const failure = await store.createIfAbsent(loc, 'x', 'requests/err/callbacks/').then(
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
    const group = 'requests/burst/callbacks/';
    const outcomes = await Promise.all(keys.map((key) => store.createIfAbsent({ bucket: BUCKET, key }, `body ${key}`, group)));
    expect(outcomes.every(Boolean)).toBe(true);
    for (const key of keys) expect((await store.readRecord({ bucket: BUCKET, key }, group)).toString()).toBe(`body ${key}`);
    expect(await Promise.all(keys.map((key) => store.createIfAbsent({ bucket: BUCKET, key }, 'again', group)))).toEqual(keys.map(() => false));
    // Records share files, a bounded number each, so that reading one key reads little.
    const shared = (await readdir(join(dir, 'burst', BUCKET, group, SEGMENTS_FOLDER), { withFileTypes: true })).filter((e) => e.isFile()).length;
    expect(shared).toBeGreaterThanOrEqual(Math.ceil((2 * keys.length) / SEGMENT_MAX_RECORDS));
    expect(shared).toBeLessThan(keys.length / 4);
    // A listing's sizes add up to the bytes stored, not to a segment once a name.
    let listed = 0;
    for await (const page of listPages(store, BUCKET, group, { sizes: true })) for (const o of page.objects) listed += o.size ?? 0;
    let stored = 0;
    for (const entry of await readdir(join(dir, 'burst', BUCKET, group, SEGMENTS_FOLDER), { withFileTypes: true })) {
      if (entry.isFile()) stored += (await stat(join(entry.parentPath, entry.name))).size;
    }
    expect(Math.abs(listed - stored)).toBeLessThan(stored * 0.01);
  });

  it('keeps a bounded number of shared files open however many groups it writes to', async () => {
    const store = storeAt(join(dir, 'groups'));
    await store.init();
    const openSegments = async () => {
      const fds = await readdir('/proc/self/fd');
      const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
      return targets.filter((t) => t.startsWith(join(dir, 'groups')) && t.includes(`/${SEGMENTS_FOLDER}/`)).length;
    };
    for (let round = 0; round < 3; round++) {
      const writes = Array.from({ length: 100 }, (_, i) => {
        const group = `requests/group-${round}-${i}/callbacks/`;
        return store.createIfAbsent({ bucket: BUCKET, key: `${group}ffmpeg0/r0-a1.json` }, `round ${round}`, group);
      });
      expect((await Promise.all(writes)).every(Boolean)).toBe(true);
    }
    expect(await openSegments()).toBeLessThanOrEqual(128);
    const group = 'requests/group-0-7/callbacks/';
    expect((await store.readRecord({ bucket: BUCKET, key: `${group}ffmpeg0/r0-a1.json` }, group)).toString()).toBe('round 0');
    await store.close();
    expect(await openSegments()).toBe(0);
  });

  it('keeps every acknowledged record through a SIGKILL, and no name shows a record cut short', async () => {
    const root = join(dir, 'killed');
    const group = 'requests/killed/callbacks/';
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'record-writer.ts'), root, BUCKET, group], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const acknowledged: string[] = [];
    const lines = createInterface({ input: child.stdout! });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    for await (const line of lines) {
      acknowledged.push(...(JSON.parse(line) as string[]));
      // Killed in the middle of its writing: batches follow one another without a pause.
      if (acknowledged.length >= 20 * 32) child.kill('SIGKILL');
    }
    expect(await exited).toBe('SIGKILL');

    const store = storeAt(root);
    await store.init();
    for (const key of acknowledged) expect((await store.readRecord({ bucket: BUCKET, key }, group)).toString()).toBe(`record of ${key} ${'x'.repeat(200)}`);
    // Names made after the last acknowledged batch read whole too; the rest can be written now.
    const names = await readdir(join(root, BUCKET, group, SEGMENTS_FOLDER, 'keys'));
    expect(names.length).toBeGreaterThanOrEqual(acknowledged.length);
    for (const name of names) {
      const key = `${group}${decodeURIComponent(name)}`;
      expect((await store.readRecord({ bucket: BUCKET, key }, group)).toString()).toBe(`record of ${key} ${'x'.repeat(200)}`);
    }
    const next = `${group}frame-0-0/r0-a1.json`;
    expect(await store.createIfAbsent({ bucket: BUCKET, key: next }, 'again', group)).toBe(false);
    const unwritten = `${group}frame-999999-0/r0-a1.json`;
    expect(await store.createIfAbsent({ bucket: BUCKET, key: unwritten }, 'after the kill', group)).toBe(true);
    expect((await store.readRecord({ bucket: BUCKET, key: unwritten }, group)).toString()).toBe('after the kill');
  });

  it('reads the first whole line of a key in a segment, and never a line a crash cut short', () => {
    const header = '{"format":"fave-records","version":1}\n';
    const line = (key: string, body: string) => `${JSON.stringify({ key, body })}\n`;
    const segment = Buffer.from(header + line('k/a', 'first a') + line('k/b', 'b') + line('k/a', 'second a') + line('k/c', 'cut').slice(0, 12), 'utf8');
    expect(recordIn(segment, 'k/a')?.toString()).toBe('first a');
    expect(recordIn(segment, 'k/b')?.toString()).toBe('b');
    expect(recordIn(segment, 'k/c')).toBeNull();
    expect(recordIn(segment, 'k/none')).toBeNull();
    // Not a segment: an object of one record, as it is.
    expect(recordIn(Buffer.from('{"key":"k/a"}'), 'k/a')?.toString()).toBe('{"key":"k/a"}');
  });

  it('reads an object put under a key the plain way as its record (one written before records shared files)', async () => {
    const store = storeAt(join(dir, 'plain'));
    await store.init();
    const loc = { bucket: BUCKET, key: 'requests/plain/callbacks/ffmpeg0/r0-a1.json' };
    const group = 'requests/plain/callbacks/';
    await store.put(loc, '{"format":"fave-callback"}');
    expect((await store.readRecord(loc, group)).toString()).toBe('{"format":"fave-callback"}');
    // A later record of the key does not replace it.
    await store.createIfAbsent(loc, 'later', group);
    expect((await store.readRecord(loc, group)).toString()).toBe('{"format":"fave-callback"}');
    await expect(store.readRecord({ bucket: BUCKET, key: 'requests/plain/callbacks/none.json' }, group)).rejects.toMatchObject({ error: { code: 'NOT_FOUND' } });
  });
});
