import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { addAbortSignal, Transform, type Readable, type TransformCallback } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector, interceptors, request } from 'undici';
import { classifyAddress, linkLocalOrMetadata } from './addresses.ts';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { redactUrl } from '../lib/redact.ts';
import { s3InputRefusal, type S3InputPolicy } from './s3-input-rules.ts';
import { formatS3Uri, isNotFound, parseS3Uri, type ObjectLocation, type Store } from '../persistence/store.ts';

export interface ImportedInput {
  size: number;
  /**
   * Hex SHA-256 of the stored bytes, computed while they stream through. Null for an `s3://`
   * source: that is a server-side copy whose bytes never pass through this process, and reading
   * a whole video back only to hash it would double the import's traffic.
   */
  sha256: string | null;
  /** As announced by the source (HTTP Content-Type, or guessed from a local file's extension). */
  contentType: string | null;
}

export interface ImportOptions {
  /** Accept a local path or `file://` URL (the CLI does; a network-facing server must not). */
  allowLocalPath?: boolean;
  /**
   * Connect to loopback, private, link-local or metadata addresses (default false: a caller
   * that forgets to say must not open the internal network). When false, every connection is
   * checked as it is made, redirects included, so neither a redirect nor a DNS answer that
   * changed since the request was validated can reach them. `except-link-local` (the CLI's)
   * allows loopback and private addresses but refuses link-local and cloud metadata ones,
   * checked the same way.
   */
  allowPrivateNetwork?: PrivateNetworkAccess;
  /** Which `s3://` objects may be copied (none refused when absent). */
  s3?: S3InputPolicy;
  /** The largest input stored; past it the download stops and its partial copy is removed. */
  maxBytes?: number;
  /**
   * Epoch ms the whole import must end by, connect, headers and body included (the request
   * deadline): past it, DEADLINE_EXCEEDED.
   */
  deadlineAt?: number;
  signal?: AbortSignal;
}

/** What the running process allows a request's input to be fetched from. */
/** Which non-public addresses an http(s) input may come from. */
export type PrivateNetworkAccess = boolean | 'except-link-local';

export interface SourcePolicy {
  allowLocalPath: boolean;
  allowPrivateNetwork: PrivateNetworkAccess;
  s3: S3InputPolicy;
  /** `MAX_INPUT_BYTES`. */
  maxBytes: number;
}

export const DEFAULT_MAX_INPUT_BYTES = 20 * 1024 ** 3;

/**
 * How one request's input is fetched: the policy of the process running it, and the source as
 * submitted, signature and credentials included. That source lives in memory only; after a
 * restart it is null and the stored (redacted) URI is all there is.
 */
export interface SourceAccess {
  source: string | null;
  policy: SourcePolicy;
}

/** Every refusal of the source names the request field it came in. */
const VIDEO_URI = { field: 'video_uri' };
const MAX_REDIRECTIONS = 5;
const DEFAULT_EXTENSION = '.mp4';

const downloads = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 60_000, bodyTimeout: 120_000 }).compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));

/** Refuses to resolve a host to an address `judge` refuses. */
const lookupRefusing =
  (judge: (address: string) => string | null): LookupFunction =>
  (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const blocked = addresses.map((a) => [a, judge(a.address)] as const).find(([, reason]) => reason !== null);
      if (blocked) {
        const [address, reason] = blocked;
        return callback(privateAddress(hostname, address.address, reason!), '', 0);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      return callback(null, first.address, first.family);
    });
  };

function privateAddress(host: string, address: string, reason: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${host} is a ${reason} address (${address}); fetching from it is not allowed (ALLOW_PRIVATE_SOURCES)`), {
    code: 'EPRIVATEADDRESS',
  });
}

/** Downloads whose every connection, redirects included, is to an address `judge` allows. */
function downloadsRefusing(judge: (address: string) => string | null): ReturnType<Agent['compose']> {
  const connect = buildConnector({ timeout: 10_000, lookup: lookupRefusing(judge) });
  return new Agent({
    headersTimeout: 60_000,
    bodyTimeout: 120_000,
    connect: (options, callback) => {
      // An address literal is never looked up, so it is checked here.
      const host = options.hostname.replace(/^\[|\]$/g, '');
      const reason = isIP(host) ? judge(host) : null;
      if (reason) return callback(privateAddress(host, host, reason), null);
      return connect(options, callback);
    },
  }).compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
}

/** Downloads for untrusted callers: public addresses only. */
const publicDownloads = downloadsRefusing(classifyAddress);
/** Downloads for the person at the CLI: their own machine and network, but not the cloud's metadata. */
const localNetworkDownloads = downloadsRefusing(linkLocalOrMetadata);

const VIDEO_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m4v': 'video/x-m4v',
  '.mov': 'video/quicktime',
  '.mkv': 'video/x-matroska',
  '.webm': 'video/webm',
  '.avi': 'video/x-msvideo',
};

/**
 * Copies the request's input video to `dest`, byte for byte and without holding it in memory:
 * `s3://` by a server-side copy, `http(s)://` by a streaming download, a local path (only with
 * `allowLocalPath`) by streaming the file.
 */
export async function importInput(store: Store, source: string, dest: ObjectLocation, options: ImportOptions = {}): Promise<ImportedInput> {
  const deadline = options.deadlineAt === undefined ? null : AbortSignal.timeout(Math.max(0, options.deadlineAt - Date.now()));
  const signal = deadline ? (options.signal ? AbortSignal.any([options.signal, deadline]) : deadline) : options.signal;
  try {
    return await importWithin(store, source, dest, { ...options, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (deadline?.aborted && !options.signal?.aborted) {
      throw new FaveFailure(faveError('DEADLINE_EXCEEDED', `import of ${displayUrl(source)} did not finish before the request deadline`));
    }
    throw err;
  }
}

async function importWithin(store: Store, source: string, dest: ObjectLocation, options: ImportOptions): Promise<ImportedInput> {
  const { signal } = options;
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  if (signal?.aborted) throw cancelled(source);
  if (/^s3:\/\//i.test(source)) {
    const from = parseS3Uri(source);
    const refusal = options.s3 ? s3InputRefusal(from, options.s3) : null;
    if (refusal) throw new FaveFailure(faveError('BAD_REQUEST', `video_uri: ${refusal}`, VIDEO_URI));
    const info = await store.head(from);
    if (info && info.size > maxBytes) throw tooLarge(source, maxBytes, info.size);
    return importFromS3(store, from, dest);
  }
  if (/^https?:\/\//i.test(source)) return importFromHttp(store, source, dest, signal, options.allowPrivateNetwork ?? false, maxBytes);
  const isFileUrl = /^file:\/\//i.test(source);
  if (!isFileUrl && /^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    throw new FaveFailure(faveError('BAD_REQUEST', `video_uri has an unsupported scheme (expected s3://, http:// or https://): ${redactUrl(source)}`, VIDEO_URI));
  }
  if (!options.allowLocalPath) {
    throw new FaveFailure(faveError('BAD_REQUEST', `video_uri must be an s3://, http:// or https:// URI, local paths are not accepted here: ${redactUrl(source)}`, VIDEO_URI));
  }
  return importFromFile(store, isFileUrl ? localPathOf(source) : resolve(source), dest, signal, maxBytes);
}

function localPathOf(fileUrl: string): string {
  try {
    return fileURLToPath(fileUrl);
  } catch (err) {
    throw new FaveFailure(faveError('BAD_REQUEST', `video_uri is not a usable file:// URL (${describeError(err)}): ${fileUrl}`, VIDEO_URI));
  }
}

/** `.mp4` for `…/clip.MP4?x=1`; the default `.mp4` when the name has no plausible extension. */
export function inputExtension(source: string): string {
  let path = source;
  if (/^s3:\/\//i.test(source)) {
    path = source.replace(/^s3:\/\/[^/]*\/?/i, '');
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    try {
      path = new URL(source).pathname;
    } catch {
      path = source;
    }
  }
  const name = path.split(/[/\\]/).pop() ?? '';
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return DEFAULT_EXTENSION;
  const ext = name.slice(dot + 1).toLowerCase();
  return /^[a-z0-9]{1,8}$/.test(ext) ? `.${ext}` : DEFAULT_EXTENSION;
}

async function importFromS3(store: Store, from: ObjectLocation, dest: ObjectLocation): Promise<ImportedInput> {
  if (from.bucket === dest.bucket && from.key === dest.key) {
    // A resubmitted request may name its own imported input; copying an object onto itself is refused by S3.
    const info = await store.head(from);
    if (!info) throw noVideoAt(from);
    return { size: info.size, sha256: null, contentType: null };
  }
  try {
    const info = await store.copy(from, dest);
    return { size: info.size, sha256: null, contentType: null };
  } catch (err) {
    // The store says an object is missing; for the request that is its video.
    if (isNotFound(err)) throw noVideoAt(from);
    throw err;
  }
}

function noVideoAt(from: ObjectLocation): FaveFailure {
  return new FaveFailure(faveError('INPUT_NOT_FOUND', `no video at ${formatS3Uri(from)}: no object there`));
}

async function importFromHttp(
  store: Store,
  source: string,
  dest: ObjectLocation,
  signal: AbortSignal | undefined,
  allowPrivateNetwork: PrivateNetworkAccess,
  maxBytes: number,
): Promise<ImportedInput> {
  if (!URL.canParse(source)) throw new FaveFailure(faveError('BAD_REQUEST', `video_uri is not a valid URL: ${redactUrl(source)}`, VIDEO_URI));
  const shown = displayUrl(source);
  let response: Awaited<ReturnType<typeof request>>;
  try {
    response = await request(source, {
      method: 'GET',
      dispatcher: allowPrivateNetwork === true ? downloads : allowPrivateNetwork === false ? publicDownloads : localNetworkDownloads,
      headers: { accept: '*/*', 'user-agent': 'fave-orchestrator' },
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    if (signal?.aborted) throw cancelled(source);
    // undici refuses some requests outright (a redirect back to the same URL): retrying cannot help.
    const code = (err as { code?: unknown }).code;
    if (code === 'EPRIVATEADDRESS') throw new FaveFailure(faveError('BAD_REQUEST', `video_uri: ${(err as Error).message}`, VIDEO_URI));
    const refused = code === 'UND_ERR_INVALID_ARG';
    throw new FaveFailure(faveError('INPUT_IMPORT_FAILED', `cannot download ${shown}: ${describeError(err)}`, refused ? {} : { transient: true }));
  }
  const status = response.statusCode;
  if (status < 200 || status >= 300) {
    await response.body.dump().catch(() => undefined);
    throw httpFailure(shown, status);
  }
  const declared = headerValue(response.headers['content-length']);
  const expectedSize = declared !== null && /^\d+$/.test(declared) ? Number(declared) : null;
  if (expectedSize !== null && expectedSize > maxBytes) {
    response.body.destroy();
    throw tooLarge(source, maxBytes, expectedSize);
  }
  const contentType = headerValue(response.headers['content-type']);
  return streamInto(store, response.body, dest, { label: shown, expectedSize, maxBytes, contentType, signal, transient: true });
}

async function importFromFile(store: Store, path: string, dest: ObjectLocation, signal: AbortSignal | undefined, maxBytes: number): Promise<ImportedInput> {
  let isFile: boolean;
  try {
    isFile = (await stat(path)).isFile();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new FaveFailure(faveError('INPUT_NOT_FOUND', `no file at ${path}`));
    throw new FaveFailure(faveError('INPUT_IMPORT_FAILED', `cannot read ${path}: ${describeError(err)}`));
  }
  if (!isFile) throw new FaveFailure(faveError('INPUT_NOT_FOUND', `${path} is not a regular file`));
  const contentType = VIDEO_TYPES[extname(path).toLowerCase()] ?? null;
  return streamInto(store, createReadStream(path), dest, { label: path, expectedSize: null, maxBytes, contentType, signal, transient: false });
}

interface StreamSource {
  label: string;
  expectedSize: number | null;
  maxBytes: number;
  contentType: string | null;
  signal: AbortSignal | undefined;
  /** Whether a failure while reading the source is worth retrying (network: yes, local file: no). */
  transient: boolean;
}

async function streamInto(store: Store, source: Readable, dest: ObjectLocation, from: StreamSource): Promise<ImportedInput> {
  if (from.signal) addAbortSignal(from.signal, source);
  const hasher = new HashingPassThrough(from.expectedSize, from.maxBytes);
  // Told apart from store failures so the error blames the right side.
  let sourceError: unknown = null;
  source.once('error', (err) => {
    sourceError ??= err;
    hasher.destroy(err);
  });
  source.pipe(hasher);
  let storedSize: number;
  try {
    storedSize = (await store.putStream(dest, hasher, from.contentType ? { contentType: from.contentType } : {})).size;
  } catch (err) {
    source.destroy();
    if (from.signal?.aborted) throw cancelled(from.label);
    if (hasher.overLimit) throw tooLarge(from.label, from.maxBytes, null);
    if (hasher.lengthMismatch) {
      throw new FaveFailure(faveError('INPUT_IMPORT_FAILED', `${from.label} announced ${from.expectedSize} bytes but sent ${hasher.size}`, { transient: from.transient }));
    }
    if (sourceError !== null) {
      throw new FaveFailure(faveError('INPUT_IMPORT_FAILED', `reading ${from.label} failed: ${describeError(sourceError)}`, { transient: from.transient }));
    }
    throw err;
  }
  if (storedSize !== hasher.size) {
    throw new FaveFailure(faveError('STORE_ERROR', `${formatS3Uri(dest)} holds ${storedSize} bytes after ${hasher.size} were written`));
  }
  return { size: hasher.size, sha256: hasher.digest(), contentType: from.contentType };
}

/** Counts and hashes what passes through; fails at the end when an announced length was not met. */
class HashingPassThrough extends Transform {
  size = 0;
  /** Set when the byte count differs from the announced length. */
  lengthMismatch = false;
  /** Set when more than the allowed bytes came: the copy stops there. */
  overLimit = false;
  private readonly hash: Hash = createHash('sha256');

  constructor(
    private readonly expectedSize: number | null,
    private readonly maxBytes: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      this.overLimit = true;
      callback(new Error(`more than ${this.maxBytes} bytes`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== null && this.size !== this.expectedSize) {
      this.lengthMismatch = true;
      callback(new Error(`expected ${this.expectedSize} bytes, got ${this.size}`));
      return;
    }
    callback();
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

function httpFailure(shown: string, status: number): FaveFailure {
  if (status === 404 || status === 410) {
    return new FaveFailure(faveError('INPUT_NOT_FOUND', `GET ${shown} answered HTTP ${status}: no video there`, { http_status: status }));
  }
  const transient = status === 408 || status === 429 || status >= 500;
  const hint = status >= 300 && status < 400 ? ` (more than ${MAX_REDIRECTIONS} redirects, or a redirect without a Location)` : '';
  return new FaveFailure(faveError('INPUT_IMPORT_FAILED', `GET ${shown} answered HTTP ${status}${hint}`, { http_status: status, ...(transient ? { transient } : {}) }));
}

/** Drops credentials and query strings (presigned URLs carry signatures) from what is logged and persisted. */
function displayUrl(source: string): string {
  try {
    const url = new URL(source);
    return `${url.origin}${url.pathname}${url.search ? '?…' : ''}`;
  } catch {
    return redactUrl(source);
  }
}

function headerValue(value: string | string[] | undefined): string | null {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? null : first;
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${code ? `${code} ` : ''}${err.message}${cause}`;
}

function tooLarge(source: string, maxBytes: number, size: number | null): FaveFailure {
  const what = size === null ? `sent more than ${maxBytes} bytes` : `is ${size} bytes`;
  return new FaveFailure(faveError('BAD_REQUEST', `video_uri: ${displayUrl(source)} ${what}, more than MAX_INPUT_BYTES (${maxBytes}); nothing of it was kept`, VIDEO_URI));
}

function cancelled(source: string): FaveFailure {
  return new FaveFailure(faveError('CANCELLED', `import of ${displayUrl(source)} was cancelled`));
}
