import { randomBytes } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { toFaveError } from '../domain/errors.ts';
import { uploadsStoredBytes } from '../persistence/debris.ts';
import { formatS3Uri, type ObjectLocation, type Store } from '../persistence/store.ts';
import type { HttpRequestLike, HttpResponseLike } from './types.ts';
import { jsonAnswer } from './answers.ts';
import { apiError, errorAnswer, type RefusalCode } from './error-policy.ts';

/**
 * `POST /uploads`: the request body (the raw video bytes) streamed into the store under
 * `uploads/`, answered with the `s3://` URI to submit. The body never sits in memory whole; past
 * the cap the upload is refused with 413 and nothing of it is kept.
 */

export const UPLOAD_EXTENSIONS = ['.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.mpg', '.mpeg', '.ts', '.flv', '.wmv', '.3gp', '.ogv'];

function refuse(code: RefusalCode, message: string, field?: string): HttpResponseLike {
  return errorAnswer(apiError(code, message, field), 'json');
}

/** A file name safe as the last part of a key: `My clip (1).MP4` → `My_clip_1_.mp4`. */
export function uploadFileName(raw: string | undefined): string | { error: string } {
  const given = (raw ?? '').split(/[\\/]/).pop()!.trim();
  if (given === '') return 'video.mp4';
  const dot = given.lastIndexOf('.');
  const ext = dot > 0 ? given.slice(dot).toLowerCase() : '';
  if (!UPLOAD_EXTENSIONS.includes(ext)) return { error: `filename: "${given.slice(0, 80)}" is not a video file name (one of ${UPLOAD_EXTENSIONS.join(', ')})` };
  const stem = given
    .slice(0, dot)
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 80);
  return `${stem || 'video'}${ext}`;
}

/**
 * `MAX_UPLOAD_STORE_BYTES`: what stored uploads and the ones arriving in this process may take
 * together. The stored total is read from the store as each upload starts; uploads arriving at
 * the same time count as they grow, so two of them cannot both take the last free bytes.
 */
export class UploadQuota {
  private stored = 0;
  private readonly arriving = new Set<SizeCap>();

  constructor(
    private readonly store: Store,
    readonly maxBytes: number,
  ) {}

  /** Free bytes now, after reading what is stored. */
  async refresh(): Promise<number> {
    this.stored = await uploadsStoredBytes(this.store);
    return this.free();
  }

  free(): number {
    let arriving = 0;
    for (const cap of this.arriving) arriving += cap.size;
    return this.maxBytes - this.stored - arriving;
  }

  track(cap: SizeCap): void {
    this.arriving.add(cap);
  }

  /** The upload has ended: stored (its bytes now count as stored) or not. */
  settle(cap: SizeCap, stored: boolean): void {
    this.arriving.delete(cap);
    if (stored) this.stored += cap.size;
  }
}

class SizeCap extends Transform {
  size = 0;
  exceeded: 'cap' | 'quota' | null = null;
  constructor(
    private readonly max: number,
    private readonly quota: UploadQuota | null,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.max) this.exceeded = 'cap';
    else if (this.quota !== null && this.quota.free() < 0) this.exceeded = 'quota';
    if (this.exceeded !== null) {
      callback(new Error(`body: more than the ${this.max} bytes allowed`));
      return;
    }
    callback(null, chunk);
  }
}

export async function receiveUpload(options: { store: Store; request: HttpRequestLike; maxBytes: number; quota?: UploadQuota }): Promise<HttpResponseLike> {
  const { store, request, maxBytes } = options;
  const quota = options.quota ?? null;
  if (maxBytes <= 0) return refuse('UPLOADS_DISABLED', 'uploads are turned off here (FAVE_UPLOAD_MAX_BYTES=0)');
  const name = uploadFileName(request.query.filename ?? request.headers['x-filename']);
  if (typeof name !== 'string') return refuse('BAD_REQUEST', name.error, 'filename');
  const declared = Number(request.headers['content-length'] ?? NaN);
  const tooLarge = (): HttpResponseLike => refuse('PAYLOAD_TOO_LARGE', `body: the upload is larger than the ${maxBytes} bytes allowed (FAVE_UPLOAD_MAX_BYTES)`, 'body');
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge();
  const full = (): HttpResponseLike =>
    refuse(
      'UPLOAD_STORE_FULL',
      `the stored uploads would take more than the ${quota?.maxBytes ?? 0} bytes allowed together (MAX_UPLOAD_STORE_BYTES); submit or wait for older uploads to expire (UPLOAD_TTL_SECONDS)`,
      'body',
    );
  if (quota !== null) {
    const free = await quota.refresh();
    if (free <= 0 || (Number.isFinite(declared) && declared > free)) return full();
  }

  const source = request.stream ?? Readable.from(request.body === undefined ? [] : [Buffer.from(request.body)]);
  // Gone while the quota was read: nothing would ever end the stream into the store.
  if (source.destroyed) return refuse('BAD_REQUEST', 'body: the client went away before the upload ended', 'body');
  const cap = new SizeCap(maxBytes, quota);
  // The store's pipeline reports the cap's errors; one raised after it settled has nobody else to go to.
  cap.on('error', () => undefined);
  quota?.track(cap);
  // pipe(), not pipeline(): a refusal must not destroy the connection before it is answered.
  source.pipe(cap);
  source.on('error', (err) => cap.destroy(err));
  source.on('close', () => {
    if (!source.readableEnded) cap.destroy(new Error('the client went away before the upload ended'));
  });
  const loc: ObjectLocation = { bucket: store.bucket, key: `uploads/${randomBytes(8).toString('hex')}/${name}` };
  // Nothing of a refused upload stays, its folder included (500 empty posts must not leave 500 folders).
  const discard = async (): Promise<void> => {
    await store.delete(loc).catch(() => undefined);
    await store.pruneFolder?.(loc).catch(() => undefined);
  };
  let stored = false;
  try {
    const info = await store.putStream(loc, cap, { contentType: 'application/octet-stream' });
    if (info.size === 0) {
      await discard();
      return refuse('BAD_REQUEST', 'body: the upload is empty; send the video bytes as the request body', 'body');
    }
    stored = true;
    return jsonAnswer(201, { uri: formatS3Uri(loc), bucket: loc.bucket, key: loc.key, size: info.size }, { location: formatS3Uri(loc) });
  } catch (err) {
    source.unpipe(cap);
    // The stores keep nothing of a failed stream; this also covers a store that would.
    await discard();
    if (cap.exceeded === 'cap') return tooLarge();
    if (cap.exceeded === 'quota') return full();
    const error = toFaveError(err);
    return refuse(error.code, `the upload was not stored: ${error.message}`);
  } finally {
    quota?.settle(cap, stored);
  }
}
