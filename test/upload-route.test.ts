import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseS3Uri } from '../src/persistence/store.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { uploadFileName } from '../src/server/upload-route.ts';
import { startHarness, type Harness } from './support/harness.ts';

const CAP = 256 * 1024;
let h: Harness;
let server: HttpServer;

beforeAll(async () => {
  h = await startHarness({ env: { FAVE_UPLOAD_MAX_BYTES: String(CAP) } });
  server = await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false });
});

afterAll(async () => {
  await server?.close(200);
  await h?.close();
});

async function uploadsKept(): Promise<string[]> {
  return h.store.list('fave-artifacts', 'uploads/');
}

/** A chunked body (no Content-Length), so only the streamed count can refuse it. */
function postChunked(path: string, chunks: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'video/mp4' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    let i = 0;
    const next = () => {
      if (i >= chunks.length) {
        req.end();
        return;
      }
      const ok = req.write(chunks[i++]!);
      if (ok) setImmediate(next);
      else req.once('drain', next);
    };
    next();
  });
}

describe('POST /uploads', () => {
  it('stores the body byte-identically and answers the s3:// URI to submit', async () => {
    const before = await uploadsKept();
    const bytes = randomBytes(200_000);
    const res = await fetch(`${server.url}/uploads?filename=${encodeURIComponent('My street (1).MP4')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(res.status).toBe(201);
    const answer = (await res.json()) as { uri: string; size: number };
    expect(answer.size).toBe(bytes.length);
    const loc = parseS3Uri(answer.uri);
    expect(loc.bucket).toBe('fave-artifacts');
    expect(loc.key).toMatch(/^uploads\/[0-9a-f]{16}\/My_street_1_\.mp4$/);
    expect((await h.store.get(loc)).equals(bytes)).toBe(true);
    expect((await uploadsKept()).length).toBe(before.length + 1);
    // The URI starts a request.
    const started = await fetch(`${server.url}/?async=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_uri: answer.uri, request_id: 'from-upload' }),
    });
    expect(started.status).toBe(202);
    expect((await h.app.orchestrator.get('from-upload')?.done)?.status ?? (await h.app.orchestrator.requests.view('from-upload'))?.status).toBe('COMPLETED');
  });

  it('refuses an oversize upload with 413 by its Content-Length, and keeps nothing', async () => {
    const before = await uploadsKept();
    const res = await fetch(`${server.url}/uploads?filename=big.mp4`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(CAP + 1) });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(body.error.message).toContain('FAVE_UPLOAD_MAX_BYTES');
    expect(await uploadsKept()).toEqual(before);
  });

  it('refuses a chunked upload that grows past the cap with 413, and no partial object is kept', async () => {
    const before = await uploadsKept();
    const chunks = Array.from({ length: 12 }, () => randomBytes(64 * 1024));
    const res = await postChunked('/uploads?filename=stream.mp4', chunks);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await uploadsKept()).toEqual(before);
  });

  it('refuses names that are not video files, and an empty body', async () => {
    const bad = await fetch(`${server.url}/uploads?filename=evil.sh`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toBe('filename');
    const empty = await fetch(`${server.url}/uploads?filename=a.mp4`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: '' });
    expect(empty.status).toBe(400);
    expect(uploadFileName('../../etc/passwd.mp4')).toBe('passwd.mp4');
    expect(uploadFileName('..mp4')).toBe('video.mp4');
    expect(uploadFileName('clip.mp4.exe')).toEqual({ error: expect.stringContaining('not a video file name') });
  });
});
