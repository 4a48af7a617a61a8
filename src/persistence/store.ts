import type { Readable } from 'node:stream';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { mapLimited } from '../lib/limiter.ts';

/** Where an object lives: `s3://{bucket}/{key}`. */
export interface ObjectLocation {
  bucket: string;
  key: string;
}

export interface ObjectInfo {
  size: number;
  etag: string;
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface PutOptions {
  contentType?: string;
  /** Write only if the current object has this ETag (optimistic concurrency). */
  ifMatch?: string;
  /** `'*'`: write only if no object exists yet. */
  ifNoneMatch?: '*';
  /**
   * false: the write must survive the process, not a power loss (the filesystem store skips its
   * fsync). For small records written on a hot path whose loss with the machine costs little.
   */
  sync?: boolean;
}

/** One page of a listing: `next` is given back as `token` for the page after it; null on the last. */
export interface ListPage {
  objects: ListedObject[];
  /** With `delimiter`: the "folders" one level under the prefix (`requests/abc/`), in lexical order. */
  prefixes: string[];
  next: string | null;
}

export interface ListedObject {
  key: string;
  /** Bytes; null where the store would need a call per object to say (the filesystem store without `sizes`). */
  size: number | null;
}

export interface ListPageOptions {
  /** At most this many keys and prefixes together (1–1000; default 1000). */
  limit?: number;
  /** Only keys after this one (a position the caller keeps, such as a page cursor). */
  startAfter?: string;
  /** The `next` of the page before. */
  token?: string;
  /** Group keys by their next `/` after the prefix into `prefixes`. */
  delimiter?: boolean;
  /**
   * Give every object's size, even where that costs a call per object. A file under several
   * names (records sharing a segment, see `createIfAbsent`) gives each its share, so that the
   * sizes add up to what is stored.
   */
  sizes?: boolean;
}

export const MAX_LIST_PAGE = 1000;

/**
 * What `put` stores: bytes, UTF-8 text, or bytes in parts stored one after the other. Parts let
 * a large object assembled from pieces (state.json from its per-clip JSON) be written without
 * first copying them all into one buffer, which would exist beside the pieces.
 */
export type PutBody = Buffer | string | readonly Buffer[];

/** The body as one buffer, for a store that sends a single one (S3's PutObject). */
export function bodyBuffer(body: PutBody): Buffer {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.isBuffer(body) ? body : Buffer.concat(body);
}

export interface StoreCapabilities {
  /** True when `ifMatch` / `ifNoneMatch` are enforced atomically by the store. */
  conditionalWrites: boolean;
}

/**
 * The artifact store. Two implementations (filesystem and S3) pass the same contract tests.
 * Missing objects raise a FaveFailure with code NOT_FOUND from `get*`/`copy` (see `isNotFound`),
 * and `head` answers null. A failed precondition raises code PRECONDITION_FAILED (see
 * `isPreconditionFailed`). The store speaks of objects only: what a missing object or a lost
 * write means (no such request, another owner's lease) is for its callers to say.
 */
export interface Store {
  readonly kind: 'fs' | 's3';
  readonly bucket: string;
  /** Probes the store once: bucket reachable, credentials valid, conditional writes honoured. */
  init(): Promise<StoreCapabilities>;
  get(loc: ObjectLocation): Promise<Buffer>;
  getStream(loc: ObjectLocation): Promise<Readable>;
  /** Bytes `start` to `end` inclusive, streamed; the caller keeps the range within the object's size. */
  getRange(loc: ObjectLocation, range: ByteRange): Promise<Readable>;
  head(loc: ObjectLocation): Promise<ObjectInfo | null>;
  put(loc: ObjectLocation, body: PutBody, options?: PutOptions): Promise<ObjectInfo>;
  /** Streams a body of unknown length into the store; the stored bytes equal the stream's. */
  putStream(loc: ObjectLocation, body: Readable, options?: { contentType?: string }): Promise<ObjectInfo>;
  /** Server-side copy where the store can; byte-identical. */
  copy(from: ObjectLocation, to: ObjectLocation): Promise<ObjectInfo>;
  /** Keys under a prefix, in lexical order. */
  list(bucket: string, prefix: string): Promise<string[]>;
  /**
   * One bounded page of the keys under a prefix, in lexical order (S3: one ListObjectsV2 call
   * with its continuation token), so a caller never holds a whole bucket's listing.
   */
  listPage(bucket: string, prefix: string, options?: ListPageOptions): Promise<ListPage>;
  delete(loc: ObjectLocation): Promise<void>;
  /**
   * Where the store can remove many objects in one call (S3's DeleteObjects, up to 1,000 keys a
   * call): deletes every key in `bucket`, as `delete` would one by one. Resolves once every key is
   * gone; keys that do not exist are not an error. Otherwise rejects with a STORE_ERROR naming a
   * key that could not be deleted (others, in this or other calls, may be gone already: calling
   * again with the same keys is safe). No order among the keys is promised.
   */
  deleteMany?(bucket: string, keys: readonly string[]): Promise<void>;
  /** Where a store keeps folders (the filesystem), removes the empty ones under `prefix`, itself included. */
  pruneEmpty?(bucket: string, prefix: string): Promise<void>;
  /**
   * Where the store can add to an object in place (a local file), an appender to it: each append
   * survives the process once it resolves, and one cut short by a crash leaves a torn last line
   * that readers skip. Stores without it (S3) write one object per record instead.
   */
  openAppender?(loc: ObjectLocation): Promise<Appender>;
  /**
   * Where the store can do it more cheaply than `put` (a local one): writes a small record unless
   * one exists under its key, durably, as `put` with `ifNoneMatch: '*'` does. True when this call
   * wrote it, false when a record or object was there already (which is kept as it is). The
   * records of one `group`, a prefix of their keys, share storage under that prefix: such a
   * record is read back with `readRecord` (not `get`), and goes when the prefix is deleted.
   */
  createIfAbsent?(loc: ObjectLocation, body: string, group: string): Promise<boolean>;
  /** With `createIfAbsent`: the record of a key, or the object put under it if there is one. */
  readRecord?(loc: ObjectLocation, group: string): Promise<Buffer>;
  /**
   * Where the store has folders (a local one), removes the object's folder if nothing is left in
   * it: for a folder one writer owned alone (an upload's), once its object is deleted.
   */
  pruneFolder?(loc: ObjectLocation): Promise<void>;
  /** When the object was last written (epoch ms); null when there is none. */
  modifiedAt(loc: ObjectLocation): Promise<number | null>;
  close(): Promise<void>;
}

export interface Appender {
  append(text: string): Promise<void>;
  close(): Promise<void>;
}

/** Every page of a listing, one after another. */
export async function* listPages(store: Store, bucket: string, prefix: string, options: Omit<ListPageOptions, 'token'> = {}): AsyncGenerator<ListPage> {
  let token: string | undefined;
  do {
    const page = await store.listPage(bucket, prefix, { ...options, ...(token ? { token } : {}) });
    yield page;
    token = page.next ?? undefined;
  } while (token);
}

export function formatS3Uri(loc: ObjectLocation): string {
  return `s3://${loc.bucket}/${loc.key}`;
}

/** Parses `s3://bucket/key`; anything else is a BAD_REQUEST naming the URI. */
export function parseS3Uri(uri: string): ObjectLocation {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) throw new FaveFailure(faveError('BAD_REQUEST', `not an s3:// URI with a bucket and key: ${uri}`));
  const key = match[2]!;
  if (key.split('/').some((part) => part === '..' || part === '.')) {
    throw new FaveFailure(faveError('BAD_REQUEST', `s3 key must not contain "." or ".." segments: ${uri}`));
  }
  return { bucket: match[1]!, key };
}

export function preconditionFailed(loc: ObjectLocation): FaveFailure {
  return new FaveFailure(faveError('PRECONDITION_FAILED', `precondition failed writing ${formatS3Uri(loc)}: another writer changed it`));
}

export function isPreconditionFailed(error: unknown): boolean {
  return error instanceof FaveFailure && error.error.code === 'PRECONDITION_FAILED';
}

export function notFound(loc: ObjectLocation): FaveFailure {
  return new FaveFailure(faveError('NOT_FOUND', `no object at ${formatS3Uri(loc)}`));
}

export function isNotFound(error: unknown): boolean {
  return error instanceof FaveFailure && error.error.code === 'NOT_FOUND';
}

/**
 * Keys of one request, all under `requests/{id}/`: its input, its metadata (state, answer, a cancel
 * asked for) and one folder per stage for what the stage writes. `requestId` must already match
 * REQUEST_ID_PATTERN.
 */
export const requestKeys = {
  prefix: (requestId: string) => `requests/${requestId}/`,
  input: (requestId: string, ext: string) => `requests/${requestId}/input/original${ext}`,
  state: (requestId: string) => `requests/${requestId}/metadata/state.json`,
  final: (requestId: string) => `requests/${requestId}/metadata/final.json`,
  /** A cancel asked for where the request does not run; its owner acts on it. */
  cancel: (requestId: string) => `requests/${requestId}/metadata/cancel.json`,
  stageDir: (requestId: string, stage: string) => `requests/${requestId}/${stage}/`,
};

/** Deletes made at once by `deleteKeys` on a store that deletes one object a call. */
const DELETES_IN_FLIGHT = 8;

/**
 * Deletes every key in `bucket`: in batches where the store deletes many objects a call
 * (`deleteMany`, S3), else one object a call, a few at once.
 */
export async function deleteKeys(store: Store, bucket: string, keys: readonly string[]): Promise<void> {
  if (store.deleteMany) await store.deleteMany(bucket, keys);
  else await mapLimited(keys, DELETES_IN_FLIGHT, (key) => store.delete({ bucket, key }));
}
