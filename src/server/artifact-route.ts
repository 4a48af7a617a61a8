import type { Readable } from 'node:stream';
import { contentTypeOf, locateArtifact, type ArtifactContext } from '../persistence/request-artifacts.ts';
import type { ByteRange, Store } from '../persistence/store.ts';
import type { HttpResponseLike } from './types.ts';
import { apiError, errorAnswer } from './error-policy.ts';

/**
 * `GET /requests/{id}/artifacts/{name}`: a clip video or frame picture of a request, streamed
 * from the store with HTTP Range support so a `<video>` can seek. Only artifacts the request's
 * state names, under the request's own prefix, are served; anything else is a 404 before any
 * object is read.
 */

export type RangeAsk = { kind: 'none' } | { kind: 'range'; range: ByteRange } | { kind: 'unsatisfiable' };

/**
 * One `bytes=` range against an object of `size` bytes (RFC 9110 §14.1.2). A header that is not
 * a single byte range is ignored (the whole object is answered), as the RFC allows.
 */
export function parseRange(header: string | undefined, size: number): RangeAsk {
  if (header === undefined) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'none' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return { kind: 'unsatisfiable' };
  if (end < start) return { kind: 'none' };
  return { kind: 'range', range: { start, end } };
}

const HEADERS = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'private, max-age=300',
  'accept-ranges': 'bytes',
  // A picture or a video, never a document: nothing in it may run.
  'content-security-policy': "default-src 'none'; sandbox",
};

function notFound(requestId: string, name: string): HttpResponseLike {
  return errorAnswer(apiError('NOT_FOUND', `request ${requestId} has no artifact ${name}`), 'json');
}

export async function serveArtifact(options: { store: Store; context: ArtifactContext; name: string; range: string | undefined; head: boolean }): Promise<HttpResponseLike> {
  const { store, context, name } = options;
  const loc = locateArtifact(context, name);
  if (!loc) return notFound(context.request_id, name);
  const info = await store.head(loc);
  if (!info) return notFound(context.request_id, name);
  const type = contentTypeOf(loc.key);
  const base = { ...HEADERS, 'content-type': type, etag: info.etag.startsWith('"') || info.etag.startsWith('W/') ? info.etag : `"${info.etag}"` };
  const ask = parseRange(options.range, info.size);
  if (ask.kind === 'unsatisfiable') {
    return { status: 416, headers: { ...base, 'content-range': `bytes */${info.size}`, 'content-length': '0' }, body: '' };
  }
  if (ask.kind === 'range') {
    const { start, end } = ask.range;
    const body: Readable | string = options.head ? '' : await store.getRange(loc, ask.range);
    return {
      status: 206,
      headers: { ...base, 'content-range': `bytes ${start}-${end}/${info.size}`, 'content-length': String(end - start + 1) },
      body,
    };
  }
  const body: Readable | string = options.head || info.size === 0 ? '' : await store.getStream(loc);
  return { status: 200, headers: { ...base, 'content-length': String(info.size) }, body };
}
