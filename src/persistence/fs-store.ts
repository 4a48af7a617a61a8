import { closeSync, constants, createReadStream, createWriteStream, fstatSync, fsync, open as openFd, read, writev, writeSync } from 'node:fs';
import { copyFile, link, mkdir, open, readFile, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash, randomBytes } from 'node:crypto';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { withFileLock } from './fs-lock.ts';
import { RecordSegments, recordIn, recordPath } from './fs-records.ts';
import {
  isNotFound,
  notFound,
  preconditionFailed,
  MAX_LIST_PAGE,
  type Appender,
  type ListPage,
  type ListPageOptions,
  type ByteRange,
  type ObjectInfo,
  type ObjectLocation,
  type PutBody,
  type PutOptions,
  type Store,
  type StoreCapabilities,
} from './store.ts';

export interface FsStoreOptions {
  lockLeaseMs?: number;
}

/**
 * The embedded store: `s3://{bucket}/{key}` lives at `{root}/{bucket}/{key}`. Every write goes to
 * a temporary file that is renamed into place, so readers never see a torn object. Conditional
 * writes are made atomic across processes with an O_EXCL lock file next to the object. Small
 * records written with `createIfAbsent` are the exception: they share segment files under their
 * group's prefix (see fs-records.ts) and are read with `readRecord`.
 */
export class FsStore implements Store {
  readonly kind = 'fs' as const;
  readonly root: string;

  private readonly lockLeaseMs: number | undefined;
  private readonly tempPrefix = randomBytes(3).toString('hex');
  private tempCount = 0;
  private readonly records = new RecordSegments();
  /** What listed pages left for their next token, briefly (see `listPage`). */
  private readonly continuations = new Map<string, { items: ListedItem[]; until: number }>();

  constructor(
    root: string,
    readonly bucket: string,
    options: FsStoreOptions = {},
  ) {
    this.root = resolve(root);
    this.lockLeaseMs = options.lockLeaseMs;
  }

  async init(): Promise<StoreCapabilities> {
    try {
      await mkdir(join(this.root, this.bucket), { recursive: true });
    } catch (err) {
      throw new FaveFailure(faveError('STORE_ERROR', `FAVE_DATA_DIR ${this.root} is not writable: ${(err as Error).message}`));
    }
    return { conditionalWrites: true };
  }

  path(loc: ObjectLocation): string {
    const full = resolve(this.root, loc.bucket, loc.key);
    const rel = relative(this.root, full);
    if (rel.startsWith('..') || rel.split(sep)[0] !== loc.bucket || loc.key.endsWith('/')) {
      throw new FaveFailure(faveError('BAD_REQUEST', `object key escapes its bucket: ${loc.bucket}/${loc.key}`));
    }
    return full;
  }

  async get(loc: ObjectLocation): Promise<Buffer> {
    try {
      return await readWhole(this.path(loc));
    } catch (err) {
      throw this.mapError(err, loc);
    }
  }

  async getStream(loc: ObjectLocation): Promise<Readable> {
    const path = this.path(loc);
    await this.statOrThrow(loc);
    return createReadStream(path);
  }

  async getRange(loc: ObjectLocation, range: ByteRange): Promise<Readable> {
    const path = this.path(loc);
    await this.statOrThrow(loc);
    return createReadStream(path, { start: range.start, end: range.end });
  }

  /**
   * A file's size divided among its names: the names of records sharing a segment are links to
   * it, and a listing's sizes add up to the bytes on disk rather than to the segment once a name.
   */
  private async shareOfSize(loc: ObjectLocation): Promise<number> {
    try {
      const s = await stat(this.path(loc));
      return Math.round(s.size / Math.max(1, s.nlink));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw this.mapError(err, loc);
    }
  }

  async head(loc: ObjectLocation): Promise<ObjectInfo | null> {
    try {
      return infoOf(await stat(this.path(loc), { bigint: true }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw this.mapError(err, loc);
    }
  }

  async modifiedAt(loc: ObjectLocation): Promise<number | null> {
    try {
      return (await stat(this.path(loc))).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw this.mapError(err, loc);
    }
  }

  async put(loc: ObjectLocation, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
    const path = this.path(loc);
    let written: { tmp: string; info: ObjectInfo };
    try {
      written = await this.writeTemp(path, body, options.sync ?? true);
    } catch (err) {
      throw this.mapError(err, loc);
    }
    // The info is the temporary file's: a link or a rename changes none of what its etag is made of.
    const { tmp, info } = written;
    try {
      if (options.ifNoneMatch === '*') {
        // link() fails with EEXIST when the target exists: an atomic create-if-absent.
        try {
          await link(tmp, path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw preconditionFailed(loc);
          throw err;
        }
        await unlink(tmp);
        return info;
      }
      if (options.ifMatch !== undefined) {
        const ifMatch = options.ifMatch;
        return await this.withLock(path, async () => {
          const current = await this.head(loc);
          if (!current || current.etag !== ifMatch) throw preconditionFailed(loc);
          await rename(tmp, path);
          return info;
        });
      }
      await rename(tmp, path);
      return info;
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw this.mapError(err, loc);
    }
  }

  async openAppender(loc: ObjectLocation): Promise<Appender> {
    const path = this.path(loc);
    let handle: FileHandle;
    try {
      await mkdir(dirname(path), { recursive: true });
      handle = await open(path, 'a');
    } catch (err) {
      throw this.mapError(err, loc);
    }
    return {
      // Written in the calling turn: a line of a few hundred bytes lands in the page cache at
      // once, where it outlives the process just as an asynchronous write would, without the
      // trip through the thread pool (with one line per dispatch batch, that trip cost more CPU
      // than the write itself and held the dispatch back a turn of the event loop).
      append: async (text) => {
        const bytes = Buffer.from(text, 'utf8');
        try {
          for (let offset = 0; offset < bytes.length;) offset += writeSync(handle.fd, bytes, offset);
        } catch (err) {
          throw this.mapError(err, loc);
        }
      },
      close: () => handle.close(),
    };
  }

  /**
   * The same guarantees as `put` with `ifNoneMatch: '*'` (the data is on disk before the key
   * names it; link() decides between racing writers, across processes too), for the small records
   * of a hot path such as callbacks, without a file each: the records of one `group` (a prefix of
   * their keys) share segment files (see fs-records.ts), and one flush to disk serves every record
   * that arrived while the one before it ran. Read them with `readRecord`.
   */
  async createIfAbsent(loc: ObjectLocation, body: string, group: string): Promise<boolean> {
    const { folder, path } = this.recordPlace(loc, group);
    try {
      return await this.records.create(folder, loc.key, path, body);
    } catch (err) {
      throw this.mapError(err, loc);
    }
  }

  /**
   * An object put under the key itself (a callback stored before records shared files) was
   * written first, so it is the record; otherwise the one `createIfAbsent` named.
   */
  async readRecord(loc: ObjectLocation, group: string): Promise<Buffer> {
    const { path } = this.recordPlace(loc, group);
    try {
      return await this.get(loc);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    let bytes: Buffer;
    try {
      bytes = await readWhole(path);
    } catch (err) {
      throw this.mapError(err, loc);
    }
    const record = recordIn(bytes, loc.key);
    if (record === null) throw notFound(loc);
    return record;
  }

  private recordPlace(loc: ObjectLocation, group: string): { folder: string; path: string } {
    this.path(loc);
    if (!group.endsWith('/') || !loc.key.startsWith(group)) {
      throw new FaveFailure(faveError('BAD_REQUEST', `record ${loc.bucket}/${loc.key} is not under its group ${group}`));
    }
    const folder = join(this.root, loc.bucket, ...group.split('/').filter(Boolean));
    return { folder, path: recordPath(folder, loc.key.slice(group.length)) };
  }

  /**
   * The temporary file beside `path` that a write fills before it is moved or linked into place:
   * 12 hex digits, as the debris sweep knows them, random per store and then a count, instead of
   * random bytes drawn per object on a hot path. O_EXCL still refuses a name some other writer holds.
   */
  private tempPath(path: string): string {
    this.tempCount = (this.tempCount + 1) % 0x1000000;
    return `${path}.${this.tempPrefix}${this.tempCount.toString(16).padStart(6, '0')}.tmp`;
  }

  async putStream(loc: ObjectLocation, body: Readable): Promise<ObjectInfo> {
    const path = this.path(loc);
    const tmp = this.tempPath(path);
    try {
      await mkdir(dirname(path), { recursive: true });
      // 'wx' (O_EXCL), as every temporary file here: a name another writer holds is refused.
      await pipeline(body, createWriteStream(tmp, { flags: 'wx' }));
      await rename(tmp, path);
      return infoOf(await stat(path, { bigint: true }));
    } catch (err) {
      await removeOwnTemp(tmp, err);
      throw this.mapError(err, loc);
    }
  }

  async copy(from: ObjectLocation, to: ObjectLocation): Promise<ObjectInfo> {
    const src = this.path(from);
    await this.statOrThrow(from);
    const dst = this.path(to);
    const tmp = this.tempPath(dst);
    try {
      await mkdir(dirname(dst), { recursive: true });
      await copyFile(src, tmp, constants.COPYFILE_EXCL);
      await rename(tmp, dst);
      return infoOf(await stat(dst, { bigint: true }));
    } catch (err) {
      await removeOwnTemp(tmp, err);
      throw this.mapError(err, to);
    }
  }

  async list(bucket: string, prefix: string): Promise<string[]> {
    const base = join(this.root, bucket);
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.mapError(err, { bucket, key: `${relative(base, dir).split(sep).join('/')}/` });
      }
      for (const entry of entries) {
        const full = join(dir, entry.name);
        const key = relative(base, full).split(sep).join('/');
        if (entry.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(full);
        } else if (key.startsWith(prefix) && listable(entry.name)) {
          keys.push(key);
        }
      }
    };
    await walk(base);
    return keys.sort();
  }

  /**
   * The token is the last key or prefix of the page before. A folder is read whole (readdir has
   * no pages), so what a page leaves is kept a few seconds for the next token, as S3 keeps a
   * listing's continuation: a scan through every page reads each folder once.
   */
  async listPage(bucket: string, prefix: string, options: ListPageOptions = {}): Promise<ListPage> {
    const limit = Math.max(1, Math.min(MAX_LIST_PAGE, options.limit ?? MAX_LIST_PAGE));
    const after = options.token ?? options.startAfter ?? '';
    const cacheKey = `${bucket}\n${prefix}\n${options.delimiter ? '/' : ''}\n${after}`;
    const cached = options.token ? this.continuations.get(cacheKey) : undefined;
    this.continuations.delete(cacheKey);
    let items: ListedItem[];
    if (cached && cached.until > Date.now()) {
      items = cached.items;
    } else if (options.delimiter) {
      // One directory read: the "folders" under the prefix without walking into them.
      const cut = prefix.lastIndexOf('/') + 1;
      const dirKey = prefix.slice(0, cut);
      const dir = join(this.root, bucket, ...dirKey.split('/').filter(Boolean));
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      });
      items = [];
      for (const entry of entries) {
        const key = `${dirKey}${entry.name}`;
        if (!key.startsWith(prefix)) continue;
        if (entry.isDirectory()) items.push({ key: `${key}/`, folder: true });
        else if (listable(entry.name)) items.push({ key, folder: false });
      }
      items = items.filter((item) => item.key > after).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    } else {
      items = (await this.walkSorted(bucket, prefix, after, Number.POSITIVE_INFINITY)).map((key) => ({ key, folder: false }));
    }
    const page = items.slice(0, limit);
    const next = items.length > limit ? page.at(-1)!.key : null;
    if (next !== null) {
      if (this.continuations.size >= 16) this.continuations.delete(this.continuations.keys().next().value!);
      this.continuations.set(`${bucket}\n${prefix}\n${options.delimiter ? '/' : ''}\n${next}`, { items: items.slice(limit), until: Date.now() + 10_000 });
    }
    const prefixes = page.filter((item) => item.folder).map((item) => item.key);
    const objects = await Promise.all(page.filter((item) => !item.folder).map(async ({ key }) => ({ key, size: options.sizes ? await this.shareOfSize({ bucket, key }) : null })));
    return { objects, prefixes, next };
  }

  /**
   * Up to `max` keys under `prefix` after `after`, in lexical order, reading only the folders
   * that can hold such keys: a page costs about its own size, not the whole listing's.
   */
  private async walkSorted(bucket: string, prefix: string, after: string, max: number): Promise<string[]> {
    const base = join(this.root, bucket);
    const keys: string[] = [];
    const walk = async (dir: string, dirKey: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      // A folder's keys all start with `name/`: ordered by that, the walk yields keys in order.
      const ordered = entries
        .map((entry) => ({ entry, sortKey: `${dirKey}${entry.name}${entry.isDirectory() ? '/' : ''}` }))
        .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
      for (const { entry, sortKey } of ordered) {
        if (keys.length >= max) return;
        if (entry.isDirectory()) {
          const inPrefix = sortKey.startsWith(prefix) || prefix.startsWith(sortKey);
          // Every key in it sorts before `after` when `after` is past the folder and not inside it.
          const passed = after !== '' && sortKey < after && !after.startsWith(sortKey);
          if (inPrefix && !passed) await walk(join(dir, entry.name), sortKey);
        } else if (sortKey.startsWith(prefix) && sortKey > after && listable(entry.name)) {
          keys.push(sortKey);
        }
      }
    };
    await walk(base, '');
    return keys;
  }

  async delete(loc: ObjectLocation): Promise<void> {
    try {
      await rm(this.path(loc), { force: true });
    } catch (err) {
      throw this.mapError(err, loc);
    }
  }

  async pruneFolder(loc: ObjectLocation): Promise<void> {
    const folder = dirname(this.path(loc));
    if (folder === join(this.root, loc.bucket)) return;
    // Refused unless empty: whatever else is there stays.
    await rmdir(folder).catch(() => undefined);
  }

  async pruneEmpty(bucket: string, prefix: string): Promise<void> {
    const top = this.path({ bucket, key: prefix.replace(/\/+$/, '') });
    const prune = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) if (entry.isDirectory()) await prune(join(dir, entry.name));
      // Not empty (a file, or a folder just made by a writer) is left as it is.
      await rmdir(dir).catch(() => undefined);
    };
    await prune(top);
  }

  async close(): Promise<void> {
    await this.records.close();
  }

  /**
   * Writes `body` to a new temporary file beside `path` (synced to disk unless `sync` is false)
   * and answers its name and info. Four trips through the thread pool with the rename that
   * follows, where a FileHandle's open, write, sync and close, a folder made first and a stat after
   * were seven: the folder is made only when the open finds it missing, and the info and the close
   * are done in the calling turn on the descriptor at hand.
   */
  private async writeTemp(path: string, body: PutBody, sync = true): Promise<{ tmp: string; info: ObjectInfo }> {
    const tmp = this.tempPath(path);
    let fd: number;
    try {
      fd = await fdOpenNew(tmp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(dirname(path), { recursive: true });
      fd = await fdOpenNew(tmp);
    }
    let info: ObjectInfo;
    try {
      await fdWriteAll(fd, typeof body === 'string' ? [Buffer.from(body, 'utf8')] : Buffer.isBuffer(body) ? [body] : body);
      if (sync) await fdSync(fd);
      info = infoOf(fstatSync(fd, { bigint: true }));
    } catch (err) {
      // A full or failing disk must not leave half-written temp files behind.
      try {
        closeSync(fd);
      } catch {
        // The file goes all the same.
      }
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    closeSync(fd);
    return { tmp, info };
  }

  private withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(`${path}.lock`, fn, this.lockLeaseMs === undefined ? {} : { leaseMs: this.lockLeaseMs });
  }

  private async statOrThrow(loc: ObjectLocation): Promise<void> {
    if (!(await this.head(loc))) throw notFound(loc);
  }

  private mapError(err: unknown, loc: ObjectLocation): unknown {
    if (err instanceof FaveFailure) return err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return notFound(loc);
    if (code === 'EISDIR') return notFound(loc);
    return new FaveFailure(faveError('STORE_ERROR', `filesystem store failed on ${loc.bucket}/${loc.key}: ${this.withoutPaths(err)}`));
  }

  /**
   * An fs error's text without the server's paths (`ENOSPC: no space left on device, copyfile
   * '/data/…' -> '/data/…'`): the key above already says which object, and answers and
   * state.json must not show where the data directory is.
   */
  private withoutPaths(err: unknown): string {
    const text = err instanceof Error ? err.message : String(err);
    return text
      .replace(/\s*'[^']*'(?:\s*->\s*'[^']*')?/g, '')
      .split(this.root)
      .join('…');
  }
}

// File-descriptor calls without a FileHandle: fewer objects and no close tracking per record.
const fdOpenRead = (path: string) => new Promise<number>((resolve, reject) => openFd(path, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
const fdRead = (fd: number, bytes: Buffer, offset: number) =>
  new Promise<number>((resolve, reject) => read(fd, bytes, offset, bytes.length - offset, offset, (err, n) => (err ? reject(err) : resolve(n))));

/** The most `readFile` reads into one buffer (larger files it refuses, with its own error). */
const MAX_WHOLE_READ = 2 ** 31 - 1;

/**
 * A file's bytes, as `readFile` gives them, in two trips through the thread pool (open, then one
 * read of the whole size) where `readFile` takes one per 512 KiB and three besides: a 6 MB
 * state.json was 16 trips, each a wait for a pool thread and a turn of the event loop on a busy
 * machine. The size is asked of the descriptor just opened in the calling turn (its attributes
 * are at hand), and a read-only close flushes nothing, so neither needs a trip of its own. Like
 * `readFile`, it reads the size the file had when opened. Anything but a
 * regular file with a size (a folder, an empty or special file, one too large) is left to
 * `readFile`, so that every error is the one it gives.
 */
async function readWhole(path: string): Promise<Buffer> {
  const fd = await fdOpenRead(path);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size === 0 || stats.size > MAX_WHOLE_READ) return await readFile(path);
    const bytes = Buffer.allocUnsafeSlow(stats.size);
    let filled = 0;
    while (filled < bytes.length) {
      const n = await fdRead(fd, bytes, filled);
      if (n === 0) return bytes.subarray(0, filled);
      filled += n;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes the temporary file a failed write left, unless the write failed because the name was
 * already taken (EEXIST from O_EXCL): then the file is another writer's.
 */
async function removeOwnTemp(tmp: string, err: unknown): Promise<void> {
  if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
  await rm(tmp, { force: true }).catch(() => undefined);
}

const fdOpenNew = (path: string) =>
  new Promise<number>((resolve, reject) =>
    // 'wx' (O_EXCL), as every temporary file here: a name another writer holds is refused.
    openFd(path, 'wx', 0o666, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
const fdSync = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
const fdWritev = (fd: number, parts: readonly Buffer[]) => new Promise<number>((resolve, reject) => writev(fd, parts, (err, n) => (err ? reject(err) : resolve(n))));

/**
 * The parts in one gathered write (libuv writes them all, IOV_MAX at a time, and resumes after a
 * short write); whatever a short count all the same left out is written after it, so that a torn
 * file is never renamed into place.
 */
async function fdWriteAll(fd: number, parts: readonly Buffer[]): Promise<void> {
  let total = 0;
  for (const part of parts) total += part.length;
  if (total === 0) return;
  let written = await fdWritev(fd, parts);
  if (written === total) return;
  const rest = Buffer.concat(parts).subarray(written);
  for (let offset = 0; offset < rest.length; offset += written) {
    written = await fdWritev(fd, [rest.subarray(offset)]);
    if (written === 0) throw new Error(`wrote ${total - rest.length + offset} of ${total} bytes`);
  }
}

interface ListedItem {
  key: string;
  folder: boolean;
}

/** Temp files, locks and set-aside files are the store's own, never objects. */
function listable(name: string): boolean {
  return !name.endsWith('.tmp') && !name.endsWith('.lock') && !name.endsWith('.broken');
}

/**
 * The ETag is a digest of size, modification time and file identity: shown to clients (artifact
 * answers), it says nothing about the server's disk. The file identity is kept in the digest
 * because every write renames a new file into place, and two writes of the same size within one
 * tick of the file system's clock would otherwise carry the same ETag, letting a conditional
 * write go through over the other.
 */
function infoOf(s: { size: bigint; mtimeNs: bigint; ino: bigint; dev: bigint }): ObjectInfo {
  const etag = createHash('sha256').update(`${s.size}:${s.mtimeNs}:${s.dev}:${s.ino}`).digest('base64url').slice(0, 27);
  return { size: Number(s.size), etag: `"${etag}"` };
}
