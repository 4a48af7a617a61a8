import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import type { Store } from '../src/persistence/store.ts';
import { parseRange, serveArtifact } from '../src/server/artifact-route.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { locateArtifact, type ArtifactContext } from '../src/persistence/request-artifacts.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { artifactKeys, resolveScript } from './support/gateway-script.ts';
import { s3StoreOn, startS3rver } from './support/s3rver.ts';

let h: Harness;
let server: HttpServer;
const script = resolveScript({});
const clipKey = artifactKeys.clip(script, 'arts', 1);
const clipBytes = randomBytes(100_000);

beforeAll(async () => {
  h = await startHarness({ gateway: { clips: 3, framesPerClip: 2 } });
  server = await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false });
  const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'arts' })).done;
  expect(outcome.status).toBe('COMPLETED');
  // Real bytes to range over, in place of what the scripted stage wrote.
  await h.store.put({ bucket: 'fave-artifacts', key: clipKey }, clipBytes);
});

afterAll(async () => {
  await server?.close(200);
  await h?.close();
});

const url = (path: string) => `${server.url}${path}`;

describe('GET /requests/{id}/artifacts/{name}', () => {
  it('streams a clip whole, with its content type and Accept-Ranges', async () => {
    const res = await fetch(url('/requests/arts/artifacts/clip-1'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-length')).toBe(String(clipBytes.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(clipBytes)).toBe(true);
  });

  it('answers a Range with 206 and exactly those bytes; an open and a suffix range too', async () => {
    const mid = await fetch(url('/requests/arts/artifacts/clip-1'), { headers: { range: 'bytes=1000-1999' } });
    expect(mid.status).toBe(206);
    expect(mid.headers.get('content-range')).toBe(`bytes 1000-1999/${clipBytes.length}`);
    expect(Buffer.from(await mid.arrayBuffer()).equals(clipBytes.subarray(1000, 2000))).toBe(true);
    const open = await fetch(url('/requests/arts/artifacts/clip-1'), { headers: { range: 'bytes=99990-' } });
    expect(open.status).toBe(206);
    expect(Buffer.from(await open.arrayBuffer()).equals(clipBytes.subarray(99_990))).toBe(true);
    const suffix = await fetch(url('/requests/arts/artifacts/clip-1'), { headers: { range: 'bytes=-10' } });
    expect(suffix.headers.get('content-range')).toBe(`bytes 99990-99999/${clipBytes.length}`);
    const past = await fetch(url('/requests/arts/artifacts/clip-1'), { headers: { range: 'bytes=100000-' } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${clipBytes.length}`);
  });

  it('answers HEAD with the length and type only', async () => {
    const res = await fetch(url('/requests/arts/artifacts/clip-1'), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(clipBytes.length));
    expect(res.headers.get('content-type')).toBe('video/mp4');
  });

  it('serves a frame as a picture', async () => {
    const res = await fetch(url('/requests/arts/artifacts/frame-0-1'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('refuses unknown requests, unknown artifacts and path tricks with 404', async () => {
    for (const path of [
      '/requests/nobody/artifacts/clip-0',
      '/requests/arts/artifacts/clip-9',
      '/requests/arts/artifacts/frame-0-7',
      '/requests/arts/artifacts/state.json',
      '/requests/arts/artifacts/..%2Fmetadata%2Fstate.json',
      '/requests/arts/artifacts/%2e%2e%2fclip-0',
      '/requests/arts/artifacts/clip-0%00',
    ]) {
      const res = await fetch(url(path));
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toContain('application/json');
    }
    // Not even routed: a name with a slash, or a bad request id.
    expect((await fetch(url('/requests/arts/artifacts/metadata/state.json'))).status).toBe(404);
    expect((await fetch(url('/requests/..%2F..%2Fetc/artifacts/clip-0'))).status).toBe(400);
  });
});

describe('artifact lookup', () => {
  const context = (uri: string): ArtifactContext => ({
    request_id: 'r1',
    settings: { bucket: 'fave-artifacts' },
    clips: [{ index: 0, uri, frames: [], progress: { frames: null } }],
  });

  it('takes only URIs the state holds, under the request prefix of its bucket', () => {
    expect(locateArtifact(context('s3://fave-artifacts/requests/r1/stage-ffmpeg-1/clip_000.mp4'), 'clip-0')).toEqual({
      bucket: 'fave-artifacts',
      key: 'requests/r1/stage-ffmpeg-1/clip_000.mp4',
    });
    expect(locateArtifact(context('s3://fave-artifacts/requests/r2/stage-ffmpeg-1/clip_000.mp4'), 'clip-0')).toBeNull();
    expect(locateArtifact(context('s3://fave-artifacts/uploads/secret.mp4'), 'clip-0')).toBeNull();
    expect(locateArtifact(context('s3://other-bucket/requests/r1/clip.mp4'), 'clip-0')).toBeNull();
    expect(locateArtifact(context('s3://fave-artifacts/requests/r1/../r2/clip.mp4'), 'clip-0')).toBeNull();
    expect(locateArtifact(context('s3://fave-artifacts/requests/r1//clip.mp4'), 'clip-0')).toBeNull();
    expect(locateArtifact(context('/etc/passwd'), 'clip-0')).toBeNull();
    expect(locateArtifact(context('s3://fave-artifacts/requests/r1/a.mp4'), '../clip-0')).toBeNull();
  });

  it('reads nothing from the store for what it refuses', async () => {
    const real = new FsStore(h.dir, 'fave-artifacts');
    const reads: string[] = [];
    const counting = new Proxy(real, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          reads.push(String(prop));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as Store;
    const outside = context('s3://fave-artifacts/uploads/sample.mp4');
    const answer = await serveArtifact({ store: counting, context: outside, name: 'clip-0', range: undefined, head: false });
    expect(answer.status).toBe(404);
    expect(reads).toEqual([]);
  });

  it('answers a Range on the S3 store with a ranged GetObject, not a whole download', async () => {
    const s3 = await startS3rver();
    const store = s3StoreOn(s3);
    try {
      const key = 'requests/r1/stage-ffmpeg-1/clip_000.mp4';
      const body = randomBytes(300_000);
      await store.put({ bucket: s3.bucket, key }, body);
      const ctx: ArtifactContext = { ...context(`s3://${s3.bucket}/${key}`), settings: { bucket: s3.bucket } };
      const answer = await serveArtifact({ store, context: ctx, name: 'clip-0', range: 'bytes=1000-1999', head: false });
      expect(answer.status).toBe(206);
      expect(answer.headers['content-range']).toBe('bytes 1000-1999/300000');
      const chunks: Buffer[] = [];
      for await (const chunk of answer.body as AsyncIterable<Buffer>) chunks.push(chunk);
      expect(Buffer.concat(chunks).equals(body.subarray(1000, 2000))).toBe(true);
      expect(s3.ranged).toEqual([`GET /${s3.bucket}/${key}?x-id=GetObject bytes=1000-1999`]);
    } finally {
      await store.close();
      await s3.stop();
    }
  });

  it('parses single byte ranges and ignores what it does not understand', () => {
    expect(parseRange(undefined, 10)).toEqual({ kind: 'none' });
    expect(parseRange('bytes=0-0', 10)).toEqual({ kind: 'range', range: { start: 0, end: 0 } });
    expect(parseRange('bytes=5-100', 10)).toEqual({ kind: 'range', range: { start: 5, end: 9 } });
    expect(parseRange('bytes=-3', 10)).toEqual({ kind: 'range', range: { start: 7, end: 9 } });
    expect(parseRange('bytes=10-', 10)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-1,4-5', 10)).toEqual({ kind: 'none' });
    expect(parseRange('items=0-1', 10)).toEqual({ kind: 'none' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
  });
});
