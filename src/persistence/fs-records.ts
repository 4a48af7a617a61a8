import { randomBytes } from 'node:crypto';
import { closeSync, constants, fdatasync, open as openFd, writeSync } from 'node:fs';
import { link, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * Small records written durably and each named by a key of its own, created only if absent, for
 * a fraction of what a file apiece costs: on a local file system a new file or folder is an inode
 * to allocate, the bulk of a small write's cost, and on some file systems (ext4 without a
 * journal, whose allocator steps over every recently deleted inode) several hundred µs of CPU.
 *
 * The records of one group (a folder, such as a request's callbacks) are appended, as JSON lines,
 * to a segment file of this process's in `.records/` under that folder. Those arriving while the
 * group's previous flush ran share one write and one flush to disk; once their data is on disk,
 * each record's name (`recordPath`: its key, made one file name, in `.records/keys/`) is made a
 * hard link to its segment, which allocates nothing. `link()` fails when the name exists, so the
 * first record of a key wins across processes too, and a name never points at a record whose
 * data is not on disk. A reader opens the name (the whole segment) and takes the first line of
 * that key (`recordIn`). A segment holds at most `SEGMENT_MAX_RECORDS` records or about
 * `SEGMENT_MAX_BYTES`, which bounds what reading one key reads.
 */

/** The first line of every segment: what tells a segment from an object of one record. */
const SEGMENT_HEADER = Buffer.from('{"format":"fave-records","version":1}\n', 'utf8');
export const SEGMENT_MAX_RECORDS = 64;
const SEGMENT_MAX_BYTES = 256 * 1024;
/** A group's segment is closed after this long without a record; the next record opens another. */
const SEGMENT_IDLE_MS = 5_000;
/**
 * Segments a store keeps open: past it, the least recently written idle ones are closed (groups
 * flushing all at once may hold more for the moment).
 */
const MAX_OPEN_SEGMENTS = 128;
export const SEGMENTS_FOLDER = '.records';
/** Where the keys are, in the segments' folder: one name per record, each a link to its segment. */
const KEYS_FOLDER = 'keys';

/** The file that names a record: its key below the group, made one file name. */
export function recordPath(folder: string, keyInGroup: string): string {
  return join(folder, SEGMENTS_FOLDER, KEYS_FOLDER, encodeURIComponent(keyInGroup));
}

interface Segment {
  path: string;
  fd: number;
  records: number;
  bytes: number;
  /** Flushes under way on its descriptor: it is closed once none is. */
  flushing: number;
  retired: boolean;
}

interface Pending {
  key: string;
  path: string;
  line: Buffer;
  /** Written once more after its segment was removed before its key named it. */
  retried?: boolean;
  resolve(created: boolean): void;
  reject(err: unknown): void;
}

interface Group {
  folder: string;
  segment: Segment | null;
  pending: Pending[];
  /** A flush is scheduled or under way: records arriving meanwhile wait for the next, together. */
  busy: boolean;
  idle: NodeJS.Timeout | null;
}

export class RecordSegments {
  private readonly groups = new Map<string, Group>();
  /** Segments being opened: counted as open, so that groups opening at once keep to the bound. */
  private opening = 0;
  private readonly inFlight = new Set<Promise<void>>();

  /**
   * Writes `body` as the record of `key` (at `path`, in the group folder `folder`) unless the
   * key exists: true when this call created it, false when a record or object was there already
   * (kept as it is). Resolves once the record's data is on disk and its key names it.
   */
  create(folder: string, key: string, path: string, body: string): Promise<boolean> {
    const line = Buffer.from(`${JSON.stringify({ key, body })}\n`, 'utf8');
    let group = this.groups.get(folder);
    if (!group) {
      group = { folder, segment: null, pending: [], busy: false, idle: null };
      this.groups.set(folder, group);
    }
    const target = group;
    return new Promise<boolean>((resolve, reject) => {
      target.pending.push({ key, path, line, resolve, reject });
      if (target.busy) return;
      target.busy = true;
      setImmediate(() => this.track(this.flushAll(target)));
    });
  }

  /** Waits for every write under way, then closes every segment. */
  async close(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    for (const group of this.groups.values()) {
      if (group.idle) clearTimeout(group.idle);
      if (group.segment) retire(group.segment);
    }
    this.groups.clear();
  }

  private track(flushing: Promise<void>): void {
    this.inFlight.add(flushing);
    void flushing.finally(() => this.inFlight.delete(flushing));
  }

  /**
   * One flush after another, each taking every record that arrived while the one before waited
   * for the disk: the busier the group, the more records share a flush.
   */
  private async flushAll(group: Group): Promise<void> {
    if (group.idle) clearTimeout(group.idle);
    // Map order is recency of writing: the first idle groups are the ones to close first.
    this.groups.delete(group.folder);
    this.groups.set(group.folder, group);
    while (group.pending.length > 0) {
      const batch = group.pending;
      group.pending = [];
      await this.flush(group, batch);
    }
    group.busy = false;
    this.idleLater(group);
  }

  /** Appends a batch, flushes each segment written to once, then names every record by its key. */
  private async flush(group: Group, batch: Pending[]): Promise<void> {
    const placed: Array<{ record: Pending; segment: Segment }> = [];
    const written = new Set<Segment>();
    // Filled segments stay open until the batch's flush is done with them.
    const filled: Segment[] = [];
    try {
      // Appended in this turn, each a write into the page cache of a few µs, as the dispatch
      // journal's lines are; only the flush waits for the disk, in the thread pool.
      let parts: Buffer[] = [];
      for (const record of batch) {
        if (!group.segment || full(group.segment)) {
          if (group.segment && parts.length > 0) writeAll(group.segment.fd, parts);
          parts = [];
          if (group.segment) filled.push(group.segment);
          group.segment = null;
          this.closeIdleBeyond(MAX_OPEN_SEGMENTS - 1, group);
          this.opening++;
          try {
            group.segment = await openSegment(group.folder);
          } finally {
            this.opening--;
          }
        }
        const segment = group.segment;
        parts.push(record.line);
        segment.records++;
        segment.bytes += record.line.length;
        placed.push({ record, segment });
        written.add(segment);
      }
      if (group.segment && parts.length > 0) writeAll(group.segment.fd, parts);
      await Promise.all([...written].map(flushToDisk));
    } catch (err) {
      // Whatever this segment holds beyond its last flush is named by no key: it is left as it
      // is, and the next record opens a new segment.
      if (group.segment) retire(group.segment);
      group.segment = null;
      for (const record of batch) record.reject(err);
      return;
    } finally {
      for (const segment of filled) retire(segment);
    }
    // One link per key, its first record's: a reader takes a key's first line in its segment, so
    // that is the line its key must name. Later records of a key in the batch find it taken.
    const firsts = new Map<string, { record: Pending; segment: Segment; later: Pending[] }>();
    for (const { record, segment } of placed) {
      const first = firsts.get(record.key);
      if (first) first.later.push(record);
      else firsts.set(record.key, { record, segment, later: [] });
    }
    const named = await Promise.all(
      [...firsts.values()].map((first) =>
        nameRecord(first.segment.path, first.record.path).then(
          (outcome) => ({ ...first, outcome }),
          (err: unknown) => ({ ...first, outcome: err }),
        ),
      ),
    );
    for (const { record, segment, later, outcome } of named) {
      if (typeof outcome === 'boolean') {
        record.resolve(outcome);
        for (const other of later) other.resolve(false);
      } else if (outcome instanceof SegmentGone && !record.retried) {
        // The group's folder was removed under the segment (a deleted request): its records go
        // again, into a new segment in a new folder.
        if (group.segment === segment) group.segment = null;
        retire(segment);
        for (const again of [record, ...later]) {
          again.retried = true;
          group.pending.push(again);
        }
      } else {
        const err = outcome instanceof SegmentGone ? outcome.cause : outcome;
        for (const failed of [record, ...later]) failed.reject(err);
      }
    }
  }

  /** Closes the segments of idle groups, least recently written first, until at most `keep` stay open. */
  private closeIdleBeyond(keep: number, current: Group): void {
    let open = this.opening;
    for (const group of this.groups.values()) if (group.segment) open++;
    for (const group of this.groups.values()) {
      if (open <= keep) return;
      if (group === current || group.busy || !group.segment) continue;
      retire(group.segment);
      group.segment = null;
      open--;
    }
  }

  private idleLater(group: Group): void {
    if (group.idle) clearTimeout(group.idle);
    group.idle = setTimeout(() => {
      if (group.busy) return;
      if (group.segment) retire(group.segment);
      this.groups.delete(group.folder);
    }, SEGMENT_IDLE_MS);
    group.idle.unref();
  }
}

/**
 * The record of `key` in what reading its key gave: the first line of that key in a segment, or
 * the bytes themselves when they are an object of one record (one written before segments, or by
 * a store without them). Null when a segment holds no whole line of the key.
 */
export function recordIn(bytes: Buffer, key: string): Buffer | null {
  if (!bytes.subarray(0, SEGMENT_HEADER.length).equals(SEGMENT_HEADER)) return bytes;
  const start = Buffer.from(`{"key":${JSON.stringify(key)},"body":`, 'utf8');
  let at = SEGMENT_HEADER.length;
  while (at < bytes.length) {
    const end = bytes.indexOf(0x0a, at);
    // A line without its newline was cut short by a crash: never flushed, so never named.
    if (end === -1) return null;
    if (bytes.subarray(at, at + start.length).equals(start)) {
      const parsed = parseLine(bytes.subarray(at, end).toString('utf8'));
      if (parsed?.key === key) return Buffer.from(parsed.body, 'utf8');
    }
    at = end + 1;
  }
  return null;
}

const RecordLineSchema = z.object({ key: z.string(), body: z.string() });

function parseLine(text: string): { key: string; body: string } | null {
  try {
    const parsed = RecordLineSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function full(segment: Segment): boolean {
  return segment.records >= SEGMENT_MAX_RECORDS || segment.bytes >= SEGMENT_MAX_BYTES;
}

/** A new segment of this process's in the group folder; its name is random, and O_EXCL refuses one taken. */
async function openSegment(folder: string): Promise<Segment> {
  const dir = join(folder, SEGMENTS_FOLDER);
  // The keys' folder too, once per segment rather than once per record.
  await mkdir(join(dir, KEYS_FOLDER), { recursive: true });
  const path = join(dir, `${randomBytes(8).toString('hex')}.jsonl`);
  const fd = await new Promise<number>((resolve, reject) =>
    openFd(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND, 0o666, (err, opened) => (err ? reject(err) : resolve(opened))),
  );
  const segment: Segment = { path, fd, records: 0, bytes: SEGMENT_HEADER.length, flushing: 0, retired: false };
  try {
    writeAll(fd, [SEGMENT_HEADER]);
  } catch (err) {
    retire(segment);
    throw err;
  }
  return segment;
}

function writeAll(fd: number, parts: Buffer[]): void {
  const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  for (let offset = 0; offset < bytes.length;) offset += writeSync(fd, bytes, offset);
}

async function flushToDisk(segment: Segment): Promise<void> {
  segment.flushing++;
  try {
    await new Promise<void>((resolve, reject) => fdatasync(segment.fd, (err) => (err ? reject(err) : resolve())));
  } finally {
    segment.flushing--;
    if (segment.retired && segment.flushing === 0) closeSync(segment.fd);
  }
}

/** No more records go into it; its descriptor is closed once no flush uses it. */
function retire(segment: Segment): void {
  if (segment.retired) return;
  segment.retired = true;
  if (segment.flushing === 0) closeSync(segment.fd);
}

class SegmentGone extends Error {}

/**
 * Names a flushed record by its key: false when the key exists (the first one stays). A segment
 * or folder that is no longer there rejects with `SegmentGone`.
 */
async function nameRecord(segmentPath: string, path: string): Promise<boolean> {
  try {
    await link(segmentPath, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'ENOENT') throw new SegmentGone('the record segment was removed', { cause: err });
    throw err;
  }
}
