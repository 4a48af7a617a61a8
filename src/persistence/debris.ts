import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { toFaveError } from '../domain/errors.ts';
import { FsStore } from './fs-store.ts';
import { formatS3Uri, type Store } from './store.ts';
import { startPeriodic, type Periodic } from '../lib/periodic.ts';

/**
 * What a killed process leaves in the store, and uploads nobody came back for. The filesystem
 * store writes every object as `{name}.{12 hex}.tmp` and renames it into place, and a broken
 * lock is moved aside as `{name}.lock.{12 hex}.broken` before it is removed: a crash between
 * the two steps leaves those files, which no reader lists and no later write reuses.
 */

/** The temp names of the filesystem store and its locks (see `fs-store.ts`, `fs-lock.ts`). */
export const TEMP_FILE_PATTERN = /\.[0-9a-f]{12}\.(?:tmp|broken)$/;

/** Where `POST /uploads` stores videos: `uploads/{random}/{name}`. */
export const UPLOADS_PREFIX = 'uploads/';

export interface DebrisOptions {
  /**
   * A temp file untouched for this long is a dead writer's. A live write touches its file with
   * every chunk, and the slowest live writer (an import) gives up after 2 minutes without one.
   */
  staleTempMs: number;
  /** An upload older than this is removed unless `inUse` names it; null keeps uploads. */
  uploadTtlMs: number | null;
  /** `s3://` URIs of the uploads requests running here still read (their import may not have copied them yet). */
  inUse?: () => ReadonlySet<string>;
  now?: () => number;
}

export interface DebrisSwept {
  tempFiles: number;
  tempBytes: number;
  /** Upload folders left empty (a refused or killed upload). */
  emptyFolders: number;
  expiredUploads: number;
}

/** One sweep: stale temp files and empty upload folders (filesystem store), then expired uploads (any store). */
export async function sweepDebris(store: Store, options: DebrisOptions): Promise<DebrisSwept> {
  const now = (options.now ?? Date.now)();
  const swept: DebrisSwept = { tempFiles: 0, tempBytes: 0, emptyFolders: 0, expiredUploads: 0 };
  if (store instanceof FsStore) await sweepFsTemp(store, now, options.staleTempMs, swept);
  if (options.uploadTtlMs !== null) await expireUploads(store, now, options.uploadTtlMs, options.inUse?.() ?? new Set(), swept);
  if (store instanceof FsStore) await sweepEmptyUploadFolders(store, now, options.staleTempMs, swept);
  return swept;
}

async function sweepFsTemp(store: FsStore, now: number, staleMs: number, swept: DebrisSwept): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && TEMP_FILE_PATTERN.test(entry.name)) {
        const info = await stat(full).catch(() => null);
        if (!info || now - info.mtimeMs < staleMs) continue;
        await rm(full, { force: true });
        swept.tempFiles += 1;
        swept.tempBytes += info.size;
      }
    }
  };
  await walk(join(store.root, store.bucket));
}

/** `uploads/{random}/` folders with nothing in them, once untouched for as long as a temp file may be. */
async function sweepEmptyUploadFolders(store: FsStore, now: number, staleMs: number, swept: DebrisSwept): Promise<void> {
  const base = join(store.root, store.bucket, ...UPLOADS_PREFIX.split('/').filter(Boolean));
  const entries = await readdir(base, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const full = join(base, entry.name);
    const info = await stat(full).catch(() => null);
    if (!info || now - info.mtimeMs < staleMs) continue;
    // rmdir refuses a folder that is not empty: a live upload keeps its folder.
    if (
      await rmdir(full).then(
        () => true,
        () => false,
      )
    )
      swept.emptyFolders += 1;
  }
}

async function expireUploads(store: Store, now: number, ttlMs: number, inUse: ReadonlySet<string>, swept: DebrisSwept): Promise<void> {
  for (const key of await store.list(store.bucket, UPLOADS_PREFIX)) {
    const loc = { bucket: store.bucket, key };
    if (inUse.has(formatS3Uri(loc))) continue;
    const modifiedAt = await store.modifiedAt(loc);
    if (modifiedAt === null || now - modifiedAt < ttlMs) continue;
    await store.delete(loc);
    await store.pruneFolder?.(loc);
    swept.expiredUploads += 1;
  }
}

/** Bytes the stored uploads take together (temp files of uploads in progress not included). */
export async function uploadsStoredBytes(store: Store): Promise<number> {
  let total = 0;
  for (const key of await store.list(store.bucket, UPLOADS_PREFIX)) total += (await store.head({ bucket: store.bucket, key }))?.size ?? 0;
  return total;
}

export type DebrisSweeps = Periodic;

/**
 * Sweeps now, then again every `everyMs` until stopped. Each sweep walks the store's folders,
 * so it runs far less often than the orphan sweeps.
 */
export function startDebrisSweeps(store: Store, options: DebrisOptions & { everyMs: number; logger?: Logger }): DebrisSweeps {
  return startPeriodic(
    async () => {
      const swept = await sweepDebris(store, options);
      if (swept.tempFiles + swept.emptyFolders + swept.expiredUploads > 0) options.logger?.info({ event: 'debris_swept', ...swept });
    },
    () => options.everyMs,
    (err) => options.logger?.error({ event: 'debris_sweep_failed', error: toFaveError(err) }),
  );
}
