import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3Store } from '../src/persistence/s3-store.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { CallbackInbox, callbackKeys, type CallbackAddress, type StoredCallback } from '../src/transport/callbacks.ts';
import { countingStore } from './support/counting-store.ts';
import { holdingStore } from './support/holding-store.ts';
import { motoSkipReason, startMotoStore } from './support/moto.ts';
import { until } from './support/until.ts';

const BUCKET = 'fave-artifacts';
let dir: string;
let store: FsStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-callback-inbox-'));
  store = new FsStore(dir, BUCKET);
  await store.init();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function callbackOf(address: CallbackAddress, body: string): StoredCallback {
  return {
    format: 'fave-callback',
    ...address,
    received_at: Date.now(),
    call_id: null,
    function_name: 'stage-ffmpeg-2',
    function_status: 200,
    duration_seconds: 0.02,
    function_started_at: null,
    content_type: 'application/json',
    body,
  };
}

/** Keys or paths without the files that records share (`.records/` under their group). */
function withoutSegments(names: string[]): string[] {
  return names.filter((name) => !name.includes('/.records/'));
}

/** Every file under the data directory, temporary ones included. */
async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('FsStore.createIfAbsent', () => {
  it('writes an object once: later and racing writers, from other store instances too, find it there and change nothing', async () => {
    const loc = { bucket: BUCKET, key: 'requests/race/callbacks/frame-0-1/r0-a1.json' };
    const other = new FsStore(dir, BUCKET);
    const group = 'requests/race/callbacks/';
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).createIfAbsent(loc, `writer ${i}`, group)));
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    const winner = outcomes.indexOf(true);
    expect((await store.readRecord(loc, group)).toString()).toBe(`writer ${winner}`);
    expect(await store.createIfAbsent(loc, 'late', group)).toBe(false);
    expect((await store.readRecord(loc, group)).toString()).toBe(`writer ${winner}`);
    // Nothing outside the group's own folder of shared files: no temporary file, no folder or
    // file per record; inside it, the two stores' files and one name for the key.
    const files = (await filesUnder(join(dir, BUCKET, 'requests/race'))).map((f) => f.slice(dir.length));
    expect(withoutSegments(files)).toEqual([]);
    expect(files.filter((f) => f.includes('/.records/keys/'))).toHaveLength(1);
    expect(files.length).toBeLessThanOrEqual(3);
    await other.close();
  });

  it('stores bodies of every size byte-identically, Buffers and strings', async () => {
    const big = 'a'.repeat(1024 * 1024);
    const group = 'requests/sizes/';
    expect(await store.createIfAbsent({ bucket: BUCKET, key: 'requests/sizes/big.json' }, big, group)).toBe(true);
    expect(await store.createIfAbsent({ bucket: BUCKET, key: 'requests/sizes/empty.json' }, '', group)).toBe(true);
    expect(await store.createIfAbsent({ bucket: BUCKET, key: 'requests/sizes/text.json' }, 'é ✓\n{"key":"requests/sizes/big.json"}', group)).toBe(true);
    expect((await store.readRecord({ bucket: BUCKET, key: 'requests/sizes/big.json' }, group)).toString()).toBe(big);
    expect((await store.readRecord({ bucket: BUCKET, key: 'requests/sizes/empty.json' }, group)).length).toBe(0);
    expect((await store.readRecord({ bucket: BUCKET, key: 'requests/sizes/text.json' }, group)).toString()).toBe('é ✓\n{"key":"requests/sizes/big.json"}');
  });

  it('makes the folder again when it was removed (a deleted request)', async () => {
    const loc = { bucket: BUCKET, key: 'requests/gone/callbacks/ffmpeg0/r0-a1.json' };
    const group = 'requests/gone/callbacks/';
    expect(await store.createIfAbsent(loc, 'first', group)).toBe(true);
    // The shared file it was written to goes with the folder, while this store holds it open.
    await rm(join(dir, BUCKET, 'requests/gone'), { recursive: true });
    expect(await store.createIfAbsent(loc, 'second', group)).toBe(true);
    expect((await store.readRecord(loc, group)).toString()).toBe('second');
  });

  it('refuses a key that escapes its bucket', async () => {
    await expect(store.createIfAbsent({ bucket: BUCKET, key: '../outside.json' }, 'x', 'requests/')).rejects.toMatchObject({ error: { code: 'BAD_REQUEST' } });
    await expect(store.createIfAbsent({ bucket: BUCKET, key: 'requests/a/b.json' }, 'x', 'requests/other/')).rejects.toMatchObject({ error: { code: 'BAD_REQUEST' } });
  });
});

describe('CallbackInbox over the filesystem store', () => {
  const address: CallbackAddress = { request_id: 'inbox-req', task_id: 'clip-1/ffmpeg2', run: 0, attempt: 1 };

  it('stores the first callback of an address, wakes its waiter with it, and calls the rest duplicates', async () => {
    const inbox = new CallbackInbox({ store, bucket: BUCKET, pollMs: 60_000 });
    try {
      const waiter = inbox.expect(address);
      const outcomes = await Promise.all([inbox.accept(callbackOf(address, 'first')), inbox.accept(callbackOf(address, 'second'))]);
      expect(outcomes.sort()).toEqual(['duplicate', 'stored']);
      const received = await waiter.received;
      const stored = await inbox.read(address);
      expect(stored?.body).toBe(received.body);
      expect(await inbox.accept(callbackOf(address, 'third'))).toBe('duplicate');
      expect((await inbox.read(address))?.body).toBe(received.body);
      // One name for the address, beside the file the callbacks share.
      const listed = await store.list(BUCKET, callbackKeys.prefix(address.request_id));
      expect(withoutSegments(listed)).toEqual([]);
      expect(listed.filter((key) => key.includes('/.records/keys/'))).toHaveLength(1);
    } finally {
      inbox.close();
    }
  });

  it('tells the waiter its callback came before storing it, and hands the callback over only once stored', async () => {
    const held = { ...address, request_id: 'inbox-held', task_id: 'frame-1-2' };
    const { store: slow, hold } = holdingStore(store, (key) => key.startsWith(callbackKeys.prefix(held.request_id)));
    const inbox = new CallbackInbox({ store: slow, bucket: BUCKET, pollMs: 60_000 });
    try {
      let arrived = 0;
      let handed = false;
      const waiter = inbox.expect(held, () => arrived++);
      void waiter.received.then(() => (handed = true));
      const accepting = inbox.accept(callbackOf(held, 'answer'));
      expect(arrived).toBe(1);
      await until(() => hold.waiting === 1, { message: 'the callback held on its way into the store' });
      expect(handed).toBe(false);
      expect(await inbox.read(held)).toBeNull();
      hold.release();
      expect(await accepting).toBe('stored');
      expect((await waiter.received).body).toBe('answer');
      expect((await inbox.read(held))?.body).toBe('answer');
      // A duplicate tells nobody: the waiter is gone.
      expect(await inbox.accept(callbackOf(held, 'again'))).toBe('duplicate');
      expect(arrived).toBe(1);
    } finally {
      inbox.close();
    }
  });

  it('a callback stored by another replica reaches the waiter at its poll', async () => {
    const elsewhere = { ...address, task_id: 'frame-1-2' };
    const owner = new CallbackInbox({ store, bucket: BUCKET, pollMs: 20 });
    const replica = new CallbackInbox({ store: new FsStore(dir, BUCKET), bucket: BUCKET, pollMs: 60_000 });
    try {
      const waiter = owner.expect(elsewhere);
      let received: StoredCallback | null = null;
      void waiter.received.then((c) => (received = c));
      expect(await replica.accept(callbackOf(elsewhere, 'from the replica'))).toBe('stored');
      await until(() => received !== null, { message: 'the owner polls the callback in' });
      expect(received!.body).toBe('from the replica');
    } finally {
      owner.close();
      replica.close();
    }
  });
});

describe.skipIf(motoSkipReason())('CallbackInbox on an S3 endpoint that enforces If-None-Match', () => {
  let s3: { store: S3Store; stop(): Promise<void> };

  beforeAll(async () => {
    s3 = await startMotoStore();
    expect(await s3.store.init()).toEqual({ conditionalWrites: true });
  });

  afterAll(async () => {
    await s3?.stop();
  });

  const address = (task: string): CallbackAddress => ({ request_id: 'conditional', task_id: task, run: 0, attempt: 1 });

  it('looks before it writes until told the store honours conditional writes, then writes alone; a duplicate never replaces the first', async () => {
    const { store: counted, counts } = countingStore(s3.store);
    const inbox = new CallbackInbox({ store: counted, bucket: s3.store.bucket, pollMs: 60_000 });
    try {
      expect(await inbox.accept(callbackOf(address('ffmpeg0'), 'first'))).toBe('stored');
      expect(counts.calls.get('head')).toBe(1);
      expect(counts.calls.get('put')).toBe(1);

      inbox.useConditionalWrites(true);
      counts.reset();
      expect(await inbox.accept(callbackOf(address('librosa'), 'first'))).toBe('stored');
      expect(await inbox.accept(callbackOf(address('librosa'), 'second'))).toBe('duplicate');
      expect(await inbox.accept(callbackOf(address('ffmpeg0'), 'second'))).toBe('duplicate');
      expect(counts.calls.get('head') ?? 0).toBe(0);
      expect(counts.calls.get('put')).toBe(3);
      expect((await inbox.read(address('librosa')))?.body).toBe('first');
      expect((await inbox.read(address('ffmpeg0')))?.body).toBe('first');
    } finally {
      inbox.close();
    }
  });
});
