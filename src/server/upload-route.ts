import { randomBytes } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { toFaveError } from '../domain/errors.ts';
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

class SizeCap extends Transform {
  size = 0;
  exceeded = false;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.max) {
      this.exceeded = true;
      callback(new Error(`body: more than the ${this.max} bytes allowed`));
      return;
    }
    callback(null, chunk);
  }
}

export async function receiveUpload(options: { store: Store; request: HttpRequestLike; maxBytes: number }): Promise<HttpResponseLike> {
  const { store, request, maxBytes } = options;
  if (maxBytes <= 0) return refuse('UPLOADS_DISABLED', 'uploads are turned off here (FAVE_UPLOAD_MAX_BYTES=0)');
  const name = uploadFileName(request.query.filename ?? request.headers['x-filename']);
  if (typeof name !== 'string') return refuse('BAD_REQUEST', name.error, 'filename');
  const declared = Number(request.headers['content-length'] ?? NaN);
  const tooLarge = (): HttpResponseLike =>
    refuse('PAYLOAD_TOO_LARGE', `body: the upload is larger than the ${maxBytes} bytes allowed (FAVE_UPLOAD_MAX_BYTES)`, 'body');
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge();

  const source = request.stream ?? Readable.from(request.body === undefined ? [] : [Buffer.from(request.body)]);
  const cap = new SizeCap(maxBytes);
  // pipe(), not pipeline(): a refusal must not destroy the connection before it is answered.
  source.pipe(cap);
  source.on('error', (err) => cap.destroy(err));
  source.on('close', () => {
    if (!source.readableEnded) cap.destroy(new Error('the client went away before the upload ended'));
  });
  const loc: ObjectLocation = { bucket: store.bucket, key: `uploads/${randomBytes(8).toString('hex')}/${name}` };
  try {
    const info = await store.putStream(loc, cap, { contentType: 'application/octet-stream' });
    if (info.size === 0) {
      await store.delete(loc);
      return refuse('BAD_REQUEST', 'body: the upload is empty; send the video bytes as the request body', 'body');
    }
    return jsonAnswer(201, { uri: formatS3Uri(loc), bucket: loc.bucket, key: loc.key, size: info.size }, { location: formatS3Uri(loc) });
  } catch (err) {
    source.unpipe(cap);
    // The stores keep nothing of a failed stream; this also covers a store that would.
    await store.delete(loc).catch(() => undefined);
    if (cap.exceeded) return tooLarge();
    const error = toFaveError(err);
    return refuse(error.code, `the upload was not stored: ${error.message}`);
  }
}
