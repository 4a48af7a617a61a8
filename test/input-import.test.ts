import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { importInput, inputExtension } from '../src/input/import.ts';
import { requestKeys, type ObjectLocation, type Store } from '../src/persistence/store.ts';
import { startS3rverStore } from './support/s3rver.ts';
import { failureOf } from './support/fixtures.ts';

const BUCKET = 'fave-artifacts';
const VIDEO = randomBytes(20 * 1024 * 1024 + 123);
const VIDEO_SHA256 = createHash('sha256').update(VIDEO).digest('hex');

async function sha256OfStream(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

let http: Server;
/** The test's own loopback server stands in for a source a trusted caller (the CLI) may reach. */
const TRUSTED = { allowPrivateNetwork: true };
let base: string;
let workDir: string;
let localVideo: string;
/** Resolves when `/stall` has sent its first bytes, so a test can cancel mid-download. */
let stallStarted: Promise<void>;
let onStallStarted: () => void = () => {};

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'fave-import-'));
  localVideo = join(workDir, 'holiday.MOV');
  await writeFile(localVideo, VIDEO);
  stallStarted = new Promise((resolve) => (onStallStarted = resolve));
  http = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const hop = /^\/hop\/(\d+)$/.exec(path);
    if (hop) {
      res.writeHead(302, { location: `/hop/${Number(hop[1]) + 1}` }).end();
      return;
    }
    switch (path) {
      case '/videos/clip.mp4':
        res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': VIDEO.length });
        res.end(VIDEO);
        return;
      case '/videos/chunked.webm':
        // No Content-Length: sent chunked, in pieces.
        res.writeHead(200, { 'content-type': 'video/webm' });
        for (let offset = 0; offset < VIDEO.length; offset += 1_000_000) res.write(VIDEO.subarray(offset, offset + 1_000_000));
        res.end();
        return;
      case '/go':
        res.writeHead(302, { location: '/go2' }).end();
        return;
      case '/go2':
        res.writeHead(301, { location: '/videos/clip.mp4' }).end();
        return;
      case '/loop':
        res.writeHead(302, { location: '/loop' }).end();
        return;
      case '/broken.mp4':
        res.writeHead(503).end('busy');
        return;
      case '/truncated.mp4':
        res.writeHead(200, { 'content-length': VIDEO.length });
        res.write(VIDEO.subarray(0, 1024 * 1024), () => res.destroy());
        return;
      case '/stall.mp4':
        res.writeHead(200, { 'content-length': VIDEO.length });
        res.write(VIDEO.subarray(0, 64 * 1024), () => onStallStarted());
        req.socket.on('close', () => res.destroy());
        return;
      default:
        res.writeHead(404).end('not here');
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
});

afterAll(async () => {
  http?.closeAllConnections();
  await new Promise((resolve) => http?.close(resolve));
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface Harness {
  store: Store;
  stop(): Promise<void>;
}

const factories: { name: string; start(): Promise<Harness> }[] = [
  {
    name: 'FsStore',
    async start() {
      const dir = await mkdtemp(join(tmpdir(), 'fave-import-fs-'));
      return { store: new FsStore(dir, BUCKET), stop: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'S3Store (s3rver)',
    start: () => startS3rverStore(),
  },
];

describe.each(factories)('importInput into $name', (factory) => {
  let harness: Harness;
  let store: Store;
  let n = 0;
  /** A fresh destination per test, built the way the caller builds it. */
  const destFor = (source: string): ObjectLocation => ({ bucket: BUCKET, key: requestKeys.input(`req-${++n}`, inputExtension(source)) });
  const storedSha256 = async (loc: ObjectLocation): Promise<string> => sha256OfStream(await store.getStream(loc));

  beforeAll(async () => {
    harness = await factory.start();
    store = harness.store;
    await store.init();
  });

  afterAll(async () => {
    await harness?.stop();
  });

  it('imports a local file byte for byte', async () => {
    const dest = destFor(localVideo);
    expect(dest.key).toMatch(/input\/original\.mov$/);
    const imported = await importInput(store, localVideo, dest, { allowLocalPath: true });
    expect(imported).toEqual({ size: VIDEO.length, sha256: VIDEO_SHA256, contentType: 'video/quicktime' });
    expect(await storedSha256(dest)).toBe(VIDEO_SHA256);
  });

  it('imports a file:// URL', async () => {
    const source = pathToFileURL(localVideo).href;
    const imported = await importInput(store, source, destFor(source), { allowLocalPath: true });
    expect(imported.sha256).toBe(VIDEO_SHA256);
  });

  it('refuses local paths unless allowed, and names a missing file', async () => {
    const refused = await failureOf(importInput(store, localVideo, destFor(localVideo)));
    expect(refused.error.code).toBe('BAD_REQUEST');
    const missing = join(workDir, 'nope.mp4');
    const notFound = await failureOf(importInput(store, missing, destFor(missing), { allowLocalPath: true }));
    expect(notFound.error).toMatchObject({ code: 'INPUT_NOT_FOUND', message: `no file at ${missing}` });
    const dir = await failureOf(importInput(store, workDir, destFor(workDir), { allowLocalPath: true }));
    expect(dir.error.code).toBe('INPUT_NOT_FOUND');
    const scheme = await failureOf(importInput(store, 'ftp://example.com/a.mp4', destFor('x')));
    expect(scheme.error.code).toBe('BAD_REQUEST');
  });

  it('imports an s3:// object by server-side copy', async () => {
    const source = `s3://${BUCKET}/uploads/camera/day1.MP4`;
    await store.put({ bucket: BUCKET, key: 'uploads/camera/day1.MP4' }, VIDEO);
    const dest = destFor(source);
    expect(dest.key).toMatch(/original\.mp4$/);
    const imported = await importInput(store, source, dest);
    expect(imported).toEqual({ size: VIDEO.length, sha256: null, contentType: null });
    expect(await storedSha256(dest)).toBe(VIDEO_SHA256);
    // Importing the imported object onto itself is a no-op, not a failed self-copy.
    const again = await importInput(store, `s3://${dest.bucket}/${dest.key}`, dest);
    expect(again.size).toBe(VIDEO.length);
  });

  it('answers INPUT_NOT_FOUND for a missing s3:// object', async () => {
    const source = `s3://${BUCKET}/uploads/missing.mp4`;
    const dest = destFor(source);
    const failure = await failureOf(importInput(store, source, dest));
    expect(failure.error.code).toBe('INPUT_NOT_FOUND');
    expect(failure.error.message).toContain(source);
    expect(await store.head(dest)).toBeNull();
  });

  it('downloads http:// byte for byte, with its content type', async () => {
    const source = `${base}/videos/clip.mp4?token=secret`;
    const dest = destFor(source);
    const imported = await importInput(store, source, dest, TRUSTED);
    expect(imported).toEqual({ size: VIDEO.length, sha256: VIDEO_SHA256, contentType: 'video/mp4' });
    expect(await storedSha256(dest)).toBe(VIDEO_SHA256);
  });

  it('downloads a chunked response of unknown length', async () => {
    const source = `${base}/videos/chunked.webm`;
    const dest = destFor(source);
    expect(dest.key).toMatch(/original\.webm$/);
    const imported = await importInput(store, source, dest, TRUSTED);
    expect(imported.sha256).toBe(VIDEO_SHA256);
    expect(await storedSha256(dest)).toBe(VIDEO_SHA256);
  });

  it('follows redirects', async () => {
    const imported = await importInput(store, `${base}/go`, destFor(`${base}/go`), TRUSTED);
    expect(imported.sha256).toBe(VIDEO_SHA256);
  });

  it('maps a 404 to INPUT_NOT_FOUND and writes nothing', async () => {
    const source = `${base}/videos/missing.mp4?X-Amz-Signature=abc`;
    const dest = destFor(source);
    const failure = await failureOf(importInput(store, source, dest, TRUSTED));
    expect(failure.error).toMatchObject({ code: 'INPUT_NOT_FOUND', http_status: 404 });
    expect(failure.error.message).toContain(`${base}/videos/missing.mp4`);
    expect(failure.error.message).not.toContain('abc');
    expect(await store.head(dest)).toBeNull();
  });

  it('fails on other statuses and on too many redirects', async () => {
    const busy = await failureOf(importInput(store, `${base}/broken.mp4`, destFor('x.mp4'), TRUSTED));
    expect(busy.error).toMatchObject({ code: 'INPUT_IMPORT_FAILED', http_status: 503, transient: true });
    const endless = await failureOf(importInput(store, `${base}/hop/1`, destFor('x.mp4'), TRUSTED));
    expect(endless.error).toMatchObject({ code: 'INPUT_IMPORT_FAILED', http_status: 302 });
    expect(endless.error.message).toContain('redirects');
    const loop = await failureOf(importInput(store, `${base}/loop`, destFor('x.mp4'), TRUSTED));
    expect(loop.error.code).toBe('INPUT_IMPORT_FAILED');
    expect(loop.error.transient).toBeUndefined();
  });

  it('fails a truncated download without storing a partial object', async () => {
    const source = `${base}/truncated.mp4`;
    const dest = destFor(source);
    const failure = await failureOf(importInput(store, source, dest, TRUSTED));
    expect(failure.error).toMatchObject({ code: 'INPUT_IMPORT_FAILED', transient: true });
    expect(failure.error.message).toContain(source);
    expect(await store.head(dest)).toBeNull();
  });

  it('stops when cancelled mid-download', async () => {
    const source = `${base}/stall.mp4`;
    const dest = destFor(source);
    const controller = new AbortController();
    const importing = importInput(store, source, dest, { ...TRUSTED, signal: controller.signal });
    await stallStarted;
    controller.abort();
    const failure = await failureOf(importing);
    expect(failure.error.code).toBe('CANCELLED');
    expect(await store.head(dest)).toBeNull();
    stallStarted = new Promise((resolve) => (onStallStarted = resolve));
  });
});

describe('inputExtension', () => {
  it.each([
    ['s3://bucket/videos/a.MP4', '.mp4'],
    ['s3://bucket/videos/a.tar.MKV', '.mkv'],
    ['https://host/path/clip.webm?sig=a.b.c#frag', '.webm'],
    ['http://host/path/', '.mp4'],
    ['http://host/download', '.mp4'],
    ['/tmp/holiday.mov', '.mov'],
    ['./no-extension', '.mp4'],
    ['/tmp/.hidden', '.mp4'],
    ['/tmp/dir.d/file', '.mp4'],
    ['/tmp/weird.ext-with-dash', '.mp4'],
    ['/tmp/toolong.abcdefghi', '.mp4'],
    ['/tmp/ok.abcdefgh', '.abcdefgh'],
    ['C:\\videos\\x.Avi', '.avi'],
  ])('%s -> %s', (source, ext) => {
    expect(inputExtension(source)).toBe(ext);
  });
});

describe('importing for an untrusted caller (allowPrivateNetwork: false)', () => {
  it('refuses loopback by address and by name at connect time, and stores nothing', async () => {
    const server = createServer((_req, res) => res.end('video bytes'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const dir = await mkdtemp(join(tmpdir(), 'fave-ssrf-'));
    const store = new FsStore(dir, 'fave-artifacts');
    await store.init();
    try {
      for (const url of [`http://127.0.0.1:${port}/v.mp4`, `http://localhost:${port}/v.mp4`]) {
        const dest = { bucket: 'fave-artifacts', key: 'requests/x/input/original.mp4' };
        await expect(importInput(store, url, dest, { allowPrivateNetwork: false })).rejects.toMatchObject({
          error: { code: 'BAD_REQUEST', message: expect.stringMatching(/loopback/) },
        });
        expect(await store.head(dest)).toBeNull();
      }
      // A caller that does not say is not trusted either.
      const unsaid = { bucket: 'fave-artifacts', key: 'requests/x/input/unsaid.mp4' };
      await expect(importInput(store, `http://127.0.0.1:${port}/v.mp4`, unsaid)).rejects.toMatchObject({ error: { code: 'BAD_REQUEST' } });
      expect(await store.head(unsaid)).toBeNull();
      // The same source is fine for a trusted caller.
      const ok = await importInput(store, `http://127.0.0.1:${port}/v.mp4`, { bucket: 'fave-artifacts', key: 'ok.mp4' }, { allowPrivateNetwork: true });
      expect(ok.size).toBe('video bytes'.length);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
