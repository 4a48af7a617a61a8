import { appendFile, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DispatchJournal, clearDispatches, dispatchPrefix, readDispatches } from '../src/persistence/dispatch-journal.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import type { Store } from '../src/persistence/store.ts';
import { startS3rverStore } from './support/s3rver.ts';
import { type DispatchMarker } from '../src/domain/invocations.ts';

const BUCKET = 'fave-artifacts';
const marker = (n: number): DispatchMarker => ({
  id: `d${n}`,
  task_id: `clip-${n}/ffmpeg2`,
  stage: 'stage-ffmpeg-2',
  clip_index: n,
  frame_index: null,
  attempt: 1,
  at: 1_700_000_000_000 + n,
});

let dir: string | null = null;
let s3: { stop(): Promise<void> } | null = null;
afterEach(async () => {
  await s3?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = null;
  s3 = null;
});

async function writeAndRead(store: Store): Promise<DispatchMarker[]> {
  const journal = new DispatchJournal(store, BUCKET, 'req');
  // Two turns of the event loop: two writes, the first with two markers.
  await Promise.all([journal.record(marker(1)), journal.record(marker(2))]);
  await journal.record(marker(3));
  await journal.record({ id: 'd3', unsent: true });
  await journal.close();
  return readDispatches(store, BUCKET, 'req');
}

describe('dispatch journal', () => {
  it('appends one line per write to one file on the filesystem store, and a torn last line is skipped', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-journal-'));
    const store = new FsStore(dir, BUCKET);
    expect((await writeAndRead(store)).map((m) => m.id)).toEqual(['d1', 'd2']);
    const files = await readdir(join(dir, BUCKET, dispatchPrefix('req')));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/\.jsonl$/);
    // What a SIGKILL in the middle of an append leaves behind.
    await appendFile(join(dir, BUCKET, dispatchPrefix('req'), files[0]!), '[{"id":"d4","task_id":"clip-4/ff');
    expect((await readDispatches(store, BUCKET, 'req')).map((m) => m.id)).toEqual(['d1', 'd2']);
    await clearDispatches(store, BUCKET, 'req');
    expect(await store.list(BUCKET, dispatchPrefix('req'))).toEqual([]);
  });

  it('shares a line among the markers of one turn, at most four before the first is written, each written before it resolves', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-journal-'));
    const root = dir;
    const store = new FsStore(root, BUCKET);
    const journal = new DispatchJournal(store, BUCKET, 'req');
    const lines = async () => {
      const [file] = await readdir(join(root, BUCKET, dispatchPrefix('req'))).catch(() => []);
      if (file === undefined) return [];
      const text = await readFile(join(root, BUCKET, dispatchPrefix('req'), file), 'utf8');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as DispatchMarker[]).map((m) => m.id));
    };
    // Six answers handled in one turn of the event loop, each dispatching one attempt, as
    // separate callbacks (microtasks run after each) would.
    const onDisk: string[][][] = [];
    const recorded = await new Promise<Array<Promise<void>>>((resolve) => {
      const made: Array<Promise<void>> = [];
      for (let n = 1; n <= 6; n++) {
        setImmediate(() => {
          made.push(
            journal.record(marker(n)).then(async () => {
              onDisk[n] = await lines();
            }),
          );
          if (n === 6) resolve(made);
        });
      }
    });
    await Promise.all(recorded);
    expect(await lines()).toEqual([
      ['d1', 'd2', 'd3', 'd4'],
      ['d5', 'd6'],
    ]);
    // Each marker was in the file when its attempt could be sent.
    for (let n = 1; n <= 6; n++) expect(onDisk[n]!.flat()).toContain(`d${n}`);
    await journal.close();
  });

  it('writes one object per write on S3, which cannot append', async () => {
    const started = await startS3rverStore();
    s3 = started;
    const store: Store = started.store;
    expect(store.openAppender).toBeUndefined();
    expect((await writeAndRead(store)).map((m) => m.id)).toEqual(['d1', 'd2']);
    expect(await store.list(BUCKET, dispatchPrefix('req'))).toHaveLength(3);
  });
});
