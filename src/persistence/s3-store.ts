import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { mapLimited } from '../lib/limiter.ts';
import {
  bodyBuffer,
  formatS3Uri,
  notFound,
  preconditionFailed,
  MAX_LIST_PAGE,
  type ByteRange,
  type ListPage,
  type ListPageOptions,
  type ObjectInfo,
  type ObjectLocation,
  type PutBody,
  type PutOptions,
  type Store,
  type StoreCapabilities,
} from './store.ts';

export interface S3StoreOptions {
  bucket: string;
  /** null: the AWS endpoint of `region`. */
  endpoint: string | null;
  region: string;
  /** Both null: the SDK's default credential chain (environment, profile, instance role). */
  accessKeyId: string | null;
  secretAccessKey: string | null;
  /** Path-style URLs (`{endpoint}/{bucket}/{key}`), which MinIO and most S3-compatible servers expect. */
  forcePathStyle?: boolean;
  /** SDK attempts per call for throttling, 5xx and network errors. */
  maxAttempts?: number;
  /** Bytes per multipart part in `putStream`; S3 requires at least 5 MiB for all parts but the last. */
  partSize?: number;
  /**
   * The largest source `copy` hands to CopyObject (S3 refuses sources over 5 GiB); a larger one
   * is streamed through this process as a multipart upload.
   */
  maxCopyObjectBytes?: number;
}

const MIB = 1024 * 1024;
const DEFAULT_PART_SIZE = 8 * MIB;
const MIN_PART_SIZE = 5 * MIB;
/** S3's limits: CopyObject takes sources up to 5 GiB, a multipart upload up to 10,000 parts. */
const MAX_COPY_OBJECT_BYTES = 5 * 1024 * MIB;
const MAX_PARTS = 10_000;
/** DeleteObjects takes at most 1,000 keys a call; a few calls at once keep a large request's removal short without a burst. */
const MAX_DELETE_KEYS = 1000;
const DELETE_CALLS_IN_FLIGHT = 4;
const PROBE_PREFIX = '.fave-probe/';
const PROBE_BODY = Buffer.from('fave conditional write probe\n');

const NOT_FOUND_NAMES = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket']);
const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'SlowDown',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'InternalError',
  'ServiceUnavailable',
]);
const CREDENTIAL_NAMES = new Set(['AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'CredentialsProviderError']);

/**
 * The S3 store (AWS, MinIO, other S3-compatible servers).
 *
 * Bodies are always sent as Buffers with a Content-Length and the SDK's flexible checksums are
 * only computed where an operation requires them: otherwise a streamed body goes out
 * `aws-chunked`, and some S3-compatible servers store that framing as object data.
 *
 * Conditional writes are passed through as `If-Match` / `If-None-Match`; whether the server
 * enforces them is what `init()` reports, and callers must not rely on them when it says no.
 */
export class S3Store implements Store {
  readonly kind = 's3' as const;
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly where: string;
  private readonly region: string;
  private readonly partSize: number;
  private readonly maxCopyObjectBytes: number;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.region = options.region;
    this.where = options.endpoint ?? `AWS S3 (${options.region})`;
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    this.maxCopyObjectBytes = options.maxCopyObjectBytes ?? MAX_COPY_OBJECT_BYTES;
    if (this.partSize < MIN_PART_SIZE) {
      throw new FaveFailure(faveError('BAD_CONFIG', `S3 multipart part size must be at least ${MIN_PART_SIZE} bytes, got ${this.partSize}`));
    }
    if ((options.accessKeyId === null) !== (options.secretAccessKey === null)) {
      throw new FaveFailure(faveError('BAD_CONFIG', 'ARTIFACT_ACCESS_KEY and ARTIFACT_SECRET_KEY must be set together'));
    }
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? true,
      ...(options.accessKeyId !== null && options.secretAccessKey !== null ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } } : {}),
      maxAttempts: options.maxAttempts ?? 3,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // An unreachable endpoint must fail, not hang the request that waits on it.
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 300_000 },
    });
  }

  async init(): Promise<StoreCapabilities> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw this.initFailure(err);
    }
    return { conditionalWrites: await this.probeConditionalWrites() };
  }

  async get(loc: ObjectLocation): Promise<Buffer> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      if (!out.Body) return Buffer.alloc(0);
      const bytes = await out.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      throw this.readFailure('GetObject', loc, err);
    }
  }

  async getStream(loc: ObjectLocation): Promise<Readable> {
    return this.bodyStream(loc);
  }

  /** A ranged GetObject: only the asked bytes cross the network. */
  async getRange(loc: ObjectLocation, range: ByteRange): Promise<Readable> {
    return this.bodyStream(loc, `bytes=${range.start}-${range.end}`);
  }

  private async bodyStream(loc: ObjectLocation, range?: string): Promise<Readable> {
    let body: unknown;
    try {
      body = (await this.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key, ...(range ? { Range: range } : {}) }))).Body;
    } catch (err) {
      throw this.readFailure('GetObject', loc, err);
    }
    if (body === undefined) return Readable.from([]);
    if (!(body instanceof Readable)) {
      throw new FaveFailure(faveError('INTERNAL', `S3 GetObject ${formatS3Uri(loc)} did not answer a Node stream`));
    }
    return body;
  }

  async head(loc: ObjectLocation): Promise<ObjectInfo | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      return { size: out.ContentLength ?? 0, etag: this.etagOf(out.ETag, 'HeadObject', loc) };
    } catch (err) {
      if (isS3NotFound(err)) return null;
      throw this.failure('HeadObject', formatS3Uri(loc), err);
    }
  }

  async modifiedAt(loc: ObjectLocation): Promise<number | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      return out.LastModified?.getTime() ?? null;
    } catch (err) {
      if (isS3NotFound(err)) return null;
      throw this.failure('HeadObject', formatS3Uri(loc), err);
    }
  }

  async put(loc: ObjectLocation, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
    const bytes = bodyBuffer(body);
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: loc.bucket,
          Key: loc.key,
          Body: bytes,
          ContentLength: bytes.length,
          ...(options.contentType ? { ContentType: options.contentType } : {}),
          ...(options.ifMatch !== undefined ? { IfMatch: options.ifMatch } : {}),
          ...(options.ifNoneMatch ? { IfNoneMatch: options.ifNoneMatch } : {}),
        }),
      );
      return { size: bytes.length, etag: this.etagOf(out.ETag, 'PutObject', loc) };
    } catch (err) {
      if (isConditionFailure(err)) throw preconditionFailed(loc);
      // AWS S3 (and moto) answer an If-Match on a key that no longer exists with 404 NoSuchKey:
      // the object expected is gone, which is a failed precondition too.
      if (options.ifMatch !== undefined && isS3NotFound(err) && errorName(err) !== 'NoSuchBucket') throw preconditionFailed(loc);
      throw this.failure('PutObject', formatS3Uri(loc), err);
    }
  }

  /**
   * Holds at most one part in memory: a body shorter than one part is a single PutObject, a
   * longer one a multipart upload of `partSize` parts sent one after the other. With the body's
   * size known in advance (`size`), parts grow as needed to stay within S3's 10,000.
   */
  async putStream(loc: ObjectLocation, body: Readable, options: { contentType?: string; size?: number } = {}): Promise<ObjectInfo> {
    const partSize = options.size === undefined ? this.partSize : Math.max(this.partSize, Math.ceil(options.size / MAX_PARTS / MIB) * MIB);
    let uploadId: string | null = null;
    const parts: CompletedPart[] = [];
    let chunks: Buffer[] = [];
    let buffered = 0;
    let size = 0;

    const uploadPart = async (data: Buffer): Promise<void> => {
      if (uploadId === null) {
        const created = await this.client.send(
          new CreateMultipartUploadCommand({
            Bucket: loc.bucket,
            Key: loc.key,
            ...(options.contentType ? { ContentType: options.contentType } : {}),
          }),
        );
        if (!created.UploadId) throw new Error('CreateMultipartUpload answered no UploadId');
        uploadId = created.UploadId;
      }
      const partNumber = parts.length + 1;
      const out = await this.client.send(
        new UploadPartCommand({ Bucket: loc.bucket, Key: loc.key, UploadId: uploadId, PartNumber: partNumber, Body: data, ContentLength: data.length }),
      );
      parts.push({ PartNumber: partNumber, ETag: this.etagOf(out.ETag, 'UploadPart', loc) });
    };

    try {
      for await (const chunk of body) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        chunks.push(buf);
        buffered += buf.length;
        size += buf.length;
        while (buffered >= partSize) {
          const all = Buffer.concat(chunks, buffered);
          await uploadPart(all.subarray(0, partSize));
          const rest = all.subarray(partSize);
          chunks = rest.length > 0 ? [rest] : [];
          buffered = rest.length;
        }
      }
      const tail = Buffer.concat(chunks, buffered);
      chunks = [];
      if (uploadId === null) {
        return await this.put(loc, tail, options.contentType ? { contentType: options.contentType } : {});
      }
      if (tail.length > 0) await uploadPart(tail);
      const done = await this.client.send(new CompleteMultipartUploadCommand({ Bucket: loc.bucket, Key: loc.key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
      return { size, etag: this.etagOf(done.ETag, 'CompleteMultipartUpload', loc) };
    } catch (err) {
      body.destroy();
      if (uploadId !== null) {
        // Best effort: an abandoned upload only costs storage until a lifecycle rule removes it.
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: loc.bucket, Key: loc.key, UploadId: uploadId })).catch(() => undefined);
      }
      if (err instanceof FaveFailure) throw err;
      throw this.failure('multipart upload to', formatS3Uri(loc), err);
    }
  }

  async copy(from: ObjectLocation, to: ObjectLocation): Promise<ObjectInfo> {
    const source = await this.head(from);
    if (!source) throw notFound(from);
    if (source.size > this.maxCopyObjectBytes) {
      // Past CopyObject's limit the bytes pass through here, one part at a time.
      return this.putStream(to, await this.getStream(from), { size: source.size });
    }
    try {
      await this.client.send(new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: `${from.bucket}/${encodeKey(from.key)}` }));
    } catch (err) {
      const missingBucket = typeof err === 'object' && err !== null ? (err as { BucketName?: unknown }).BucketName : undefined;
      const destinationMissing = errorName(err) === 'NoSuchBucket' && missingBucket === to.bucket && to.bucket !== from.bucket;
      if (isS3NotFound(err) && !destinationMissing) throw notFound(from);
      throw this.failure('CopyObject', `${formatS3Uri(from)} -> ${formatS3Uri(to)}`, err);
    }
    const info = await this.head(to);
    if (!info) throw new FaveFailure(faveError('STORE_ERROR', `S3 CopyObject to ${formatS3Uri(to)} succeeded but the copy is not visible`, { transient: true }));
    return info;
  }

  async list(bucket: string, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
        for (const entry of page.Contents ?? []) if (entry.Key !== undefined) keys.push(entry.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      if (errorName(err) === 'NoSuchBucket') return [];
      throw this.failure('ListObjectsV2', `s3://${bucket}/${prefix}`, err);
    }
    // S3 orders by UTF-8 bytes; sort like the filesystem store so both list identically.
    return keys.sort();
  }

  async listPage(bucket: string, prefix: string, options: ListPageOptions = {}): Promise<ListPage> {
    const limit = Math.max(1, Math.min(MAX_LIST_PAGE, options.limit ?? MAX_LIST_PAGE));
    try {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          MaxKeys: limit,
          ...(options.delimiter ? { Delimiter: '/' } : {}),
          ...(options.token ? { ContinuationToken: options.token } : options.startAfter ? { StartAfter: options.startAfter } : {}),
        }),
      );
      const objects = (page.Contents ?? []).flatMap((entry) => (entry.Key === undefined ? [] : [{ key: entry.Key, size: entry.Size ?? 0 }]));
      const prefixes = (page.CommonPrefixes ?? []).flatMap((entry) => (entry.Prefix === undefined ? [] : [entry.Prefix]));
      return { objects, prefixes, next: page.IsTruncated ? (page.NextContinuationToken ?? null) : null };
    } catch (err) {
      if (errorName(err) === 'NoSuchBucket') return { objects: [], prefixes: [], next: null };
      throw this.failure('ListObjectsV2', `s3://${bucket}/${prefix}`, err);
    }
  }

  async delete(loc: ObjectLocation): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
    } catch (err) {
      if (isS3NotFound(err)) return;
      throw this.failure('DeleteObject', formatS3Uri(loc), err);
    }
  }

  /**
   * DeleteObjects in calls of at most 1,000 keys, a few in flight. S3 answers 200 even when some
   * keys could not be deleted and lists those in `Errors`: the first becomes the failure.
   */
  async deleteMany(bucket: string, keys: readonly string[]): Promise<void> {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += MAX_DELETE_KEYS) batches.push(keys.slice(i, i + MAX_DELETE_KEYS));
    await mapLimited(batches, DELETE_CALLS_IN_FLIGHT, (batch) => this.deleteBatch(bucket, batch));
  }

  private async deleteBatch(bucket: string, keys: readonly string[]): Promise<void> {
    let errors;
    try {
      const out = await this.client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((key) => ({ Key: key })), Quiet: true } }));
      errors = out.Errors ?? [];
    } catch (err) {
      // As with `delete`: objects in a bucket that does not exist are gone already.
      if (errorName(err) === 'NoSuchBucket') return;
      // Some S3-compatible services have no DeleteObjects: the keys go one call each, as before it.
      if (httpStatus(err) === 501 || errorName(err) === 'NotImplemented') {
        for (const key of keys) await this.delete({ bucket, key });
        return;
      }
      throw this.failure('DeleteObjects', `s3://${bucket}/${keys[0] ?? ''} (and ${keys.length - 1} more keys)`, err);
    }
    const failed = errors.filter((e) => e.Code !== 'NoSuchKey');
    const first = failed[0];
    if (!first) return;
    const code = first.Code ?? 'UnknownError';
    const others = failed.length > 1 ? ` (${failed.length - 1} more keys of this call failed too)` : '';
    throw new FaveFailure(
      faveError(
        'STORE_ERROR',
        `S3 DeleteObjects ${formatS3Uri({ bucket, key: first.Key ?? '?' })} at ${this.where} failed: ${code}${first.Message ? `: ${first.Message}` : ''}${others}`,
        TRANSIENT_NAMES.has(code) ? { transient: true } : {},
      ),
    );
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /**
   * Some S3-compatible servers accept `If-None-Match` / `If-Match` and ignore them. Writing the
   * same probe key twice with `If-None-Match: *`, then once with a wrong `If-Match`, tells them apart.
   */
  private async probeConditionalWrites(): Promise<boolean> {
    const probe: ObjectLocation = { bucket: this.bucket, key: `${PROBE_PREFIX}${randomBytes(8).toString('hex')}` };
    const uri = formatS3Uri(probe);
    try {
      const first = await this.probePut(probe, { IfNoneMatch: '*' });
      if (first !== 'written') return false;
      const again = await this.probePut(probe, { IfNoneMatch: '*' });
      if (again !== 'refused') return false;
      return (await this.probePut(probe, { IfMatch: '"fave-probe-mismatch"' })) === 'refused';
    } catch (err) {
      const name = errorName(err);
      if (httpStatus(err) === 403 || CREDENTIAL_NAMES.has(name)) {
        throw new FaveFailure(
          faveError(
            'STORE_ERROR',
            `cannot write ${uri} at ${this.where} (${describe(name, httpStatus(err))}): check that ARTIFACT_ACCESS_KEY / ARTIFACT_SECRET_KEY may write to bucket ${this.bucket}`,
          ),
        );
      }
      throw this.failure('PutObject (conditional write probe)', uri, err);
    } finally {
      await this.delete(probe).catch(() => undefined);
    }
  }

  private async probePut(probe: ObjectLocation, condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<'written' | 'refused' | 'unsupported'> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: probe.bucket, Key: probe.key, Body: PROBE_BODY, ContentLength: PROBE_BODY.length, ...condition }));
      return 'written';
    } catch (err) {
      if (isConditionFailure(err)) return 'refused';
      if (httpStatus(err) === 501 || errorName(err) === 'NotImplemented') return 'unsupported';
      throw err;
    }
  }

  private initFailure(err: unknown): FaveFailure {
    const name = errorName(err);
    const status = httpStatus(err);
    if (name === 'NoSuchBucket' || name === 'NotFound' || status === 404) {
      return new FaveFailure(faveError('STORE_ERROR', `bucket ${this.bucket} does not exist at ${this.where}`));
    }
    if (name === 'CredentialsProviderError') {
      return new FaveFailure(faveError('STORE_ERROR', `no S3 credentials found for ${this.where}: set ARTIFACT_ACCESS_KEY and ARTIFACT_SECRET_KEY (${errorMessage(err)})`));
    }
    if (status === 401 || status === 403 || CREDENTIAL_NAMES.has(name)) {
      return new FaveFailure(
        faveError('STORE_ERROR', `access to bucket ${this.bucket} at ${this.where} was refused (${describe(name, status)}): check ARTIFACT_ACCESS_KEY / ARTIFACT_SECRET_KEY`, {
          http_status: status ?? 403,
        }),
      );
    }
    if (status === 301 || name === 'PermanentRedirect') {
      return new FaveFailure(faveError('STORE_ERROR', `bucket ${this.bucket} at ${this.where} is not in region ${this.region}: check ARTIFACT_REGION`, { http_status: 301 }));
    }
    return this.failure('HeadBucket', `s3://${this.bucket}`, err);
  }

  /** Reads map every 404 (missing key or missing bucket) to NOT_FOUND, as the filesystem store does. */
  private readFailure(op: string, loc: ObjectLocation, err: unknown): FaveFailure {
    if (isS3NotFound(err)) return notFound(loc);
    return this.failure(op, formatS3Uri(loc), err);
  }

  private failure(op: string, target: string, err: unknown): FaveFailure {
    if (err instanceof FaveFailure) return err;
    const name = errorName(err);
    const status = httpStatus(err);
    const message = errorMessage(err);
    const detail = `${describe(name, status)}${message && message !== name && message !== 'UnknownError' ? `: ${message}` : ''}`;
    return new FaveFailure(
      faveError('STORE_ERROR', `S3 ${op} ${target} at ${this.where} failed: ${detail}`, {
        ...(status !== undefined ? { http_status: status } : {}),
        ...(isTransient(err) ? { transient: true } : {}),
      }),
    );
  }

  /** ETags are opaque; kept in their quoted form so `put`, `head` and `ifMatch` agree. */
  private etagOf(etag: string | undefined, op: string, loc: ObjectLocation): string {
    if (!etag) throw new FaveFailure(faveError('STORE_ERROR', `S3 ${op} ${formatS3Uri(loc)} answered no ETag`));
    return etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
  }
}

/** CopySource is `bucket/key` URL-encoded; slashes between key segments stay literal. */
function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

function errorName(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const { name, code } = err as { name?: unknown; code?: unknown };
    if (typeof code === 'string' && (name === 'Error' || name === 'AggregateError' || typeof name !== 'string')) return code;
    if (typeof name === 'string') return name;
  }
  return 'Error';
}

/** "NoSuchKey (HTTP 404)"; bodiless answers (HEAD) carry no error code, only the status. */
function describe(name: string, status: number | undefined): string {
  const known = name !== 'Unknown' && name !== 'UnknownError';
  if (status === undefined) return name;
  return known ? `${name} (HTTP ${status})` : `HTTP ${status}`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const status = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function isS3NotFound(err: unknown): boolean {
  return NOT_FOUND_NAMES.has(errorName(err)) || httpStatus(err) === 404;
}

function isConditionFailure(err: unknown): boolean {
  const name = errorName(err);
  return httpStatus(err) === 412 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict';
}

/** Throttling, 5xx and network errors: the SDK already retried them, a later attempt may succeed. */
function isTransient(err: unknown): boolean {
  const status = httpStatus(err);
  if (status !== undefined) return status === 408 || status === 429 || status >= 500 || TRANSIENT_NAMES.has(errorName(err));
  if (TRANSIENT_NAMES.has(errorName(err))) return true;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^E[A-Z]+/.test(code);
}
