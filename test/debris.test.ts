import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { isFaveError } from '../src/domain/errors.ts';
import { sweepDebris, TEMP_FILE_PATTERN } from '../src/persistence/debris.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { serveOnAnyPort, type ChildRun } from './support/child.ts';
import { closeAfterTest, closeNodeServer } from './support/cleanup.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { until } from './support/until.ts';

const BUCKET = 'fave-artifacts';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fave-debris-'));
  closeAfterTest({ close: () => rm(dir, { recursive: true, force: true }) });
  return dir;
}

/** Every file under `dir`, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

async function foldersIn(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);
}

/** `fave serve` in a child process on a loopback port of its choosing, answering /healthz. */
async function serveChild(dataDir: string, env: Record<string, string> = {}): Promise<{ run: ChildRun; port: number }> {
  const { run, base } = await serveOnAnyPort({
    FAVE_DATA_DIR: dataDir,
    ARTIFACT_BUCKET: BUCKET,
    // Never called: the requests here do not get past their import.
    GATEWAY_URL: 'http://127.0.0.1:9',
    OPENFAAS_SECRETS_DIR: join(dataDir, 'no-secrets'),
    LOG_LEVEL: 'silent',
    FAVE_API_TOKENS: '',
    FAVE_ANONYMOUS_ROLE: '',
    ...env,
  });
  closeAfterTest({
    close: async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.exit;
    },
  });
  await until(
    async () => {
      if (run.child.exitCode !== null) throw new Error(`fave serve exited: ${(await run.exit).stderr}`);
      return fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
    },
    { timeoutMs: 30_000, everyMs: 50, message: 'fave serve to answer /healthz' },
  );
  return { run, port: Number(new URL(base).port) };
}

/** A chunked upload that keeps sending until stopped; errors are expected (the server is killed). */
function endlessUpload(port: number): { req: ClientRequest; stop: () => void } {
  const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/uploads?filename=long.mp4', headers: { 'content-type': 'video/mp4' } });
  req.on('error', () => undefined);
  let stopped = false;
  const chunk = randomBytes(64 * 1024);
  const next = () => {
    if (stopped) return;
    if (req.write(chunk)) setImmediate(next);
    else req.once('drain', next);
  };
  next();
  return { req, stop: () => ((stopped = true), req.destroy()) };
}

describe('temp files of killed writers', () => {
  it('a kill -9 during an upload leaves a temp file, and the next start removes it with its folder', async () => {
    const dataDir = await tempDir();
    const uploads = join(dataDir, BUCKET, 'uploads');
    const first = await serveChild(dataDir);
    const upload = endlessUpload(first.port);
    const temp = await until(async () => (await filesUnder(uploads)).find((f) => TEMP_FILE_PATTERN.test(f) && f.includes('long.mp4')), {
      timeoutMs: 20_000,
      message: 'the upload temp file',
    });
    await until(async () => (await stat(join(uploads, temp))).size > 512 * 1024, { message: 'the upload to have written 512 KiB' });
    first.run.child.kill('SIGKILL');
    expect((await first.run.exit).signal).toBe('SIGKILL');
    upload.stop();
    const left = (await stat(join(uploads, temp))).size;
    expect(left).toBeGreaterThan(512 * 1024);

    // A bound of 1 s: the killed writer's file is older than that by the next sweep.
    const second = await serveChild(dataDir, { STALE_TEMP_AFTER_SECONDS: '1' });
    await until(async () => (await filesUnder(uploads)).length === 0 && (await foldersIn(uploads)).length === 0, {
      timeoutMs: 20_000,
      message: 'the temp file and its folder to be swept',
    });
    // The server works on: a new upload is stored.
    const stored = await fetch(`http://127.0.0.1:${second.port}/uploads?filename=a.mp4`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body: randomBytes(1000) });
    expect(stored.status).toBe(201);
  });

  it('a kill -9 during an HTTP import leaves requests/{id}/input/original.*.tmp, and the next start removes it', async () => {
    const dataDir = await tempDir();
    // A source that sends the start of a video and then nothing more: the import stays in its body.
    let sent = 0;
    const source = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(1024 ** 3) });
      const chunk = randomBytes(256 * 1024);
      for (let i = 0; i < 8; i++) res.write(chunk);
      sent += 8 * chunk.length;
    });
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    closeAfterTest(source, closeNodeServer);
    const sourceUrl = `http://127.0.0.1:${(source.address() as AddressInfo).port}/street.mp4`;

    const first = await serveChild(dataDir, { ALLOW_PRIVATE_SOURCES: 'true' });
    const submitted = await fetch(`http://127.0.0.1:${first.port}/?async=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_uri: sourceUrl, request_id: 'killed-import' }),
    });
    expect(submitted.status).toBe(202);
    const input = join(dataDir, BUCKET, 'requests', 'killed-import', 'input');
    const temp = await until(
      async () => {
        const files = await filesUnder(input);
        const found = files.find((f) => /^original\.mp4\.[0-9a-f]{12}\.tmp$/.test(f));
        return found && (await stat(join(input, found))).size >= 1024 * 1024 ? found : undefined;
      },
      { timeoutMs: 20_000, message: 'the import temp file to hold 1 MiB' },
    );
    expect(sent).toBeGreaterThan(0);
    first.run.child.kill('SIGKILL');
    expect((await first.run.exit).signal).toBe('SIGKILL');
    expect((await stat(join(input, temp))).size).toBeGreaterThanOrEqual(1024 * 1024);

    await serveChild(dataDir, { STALE_TEMP_AFTER_SECONDS: '1' });
    await until(async () => !(await filesUnder(input)).includes(temp), { timeoutMs: 20_000, message: 'the import temp file to be swept' });
    // The request's own records stay.
    expect(await filesUnder(join(dataDir, BUCKET, 'requests', 'killed-import'))).toContain('metadata/state.json');
  });

  it('never touches a temp file written to within the bound, nor anything but temp files', async () => {
    const dir = await tempDir();
    const store = new FsStore(dir, BUCKET);
    await store.init();
    const bucket = join(dir, BUCKET);
    await store.put({ bucket: BUCKET, key: 'requests/r1/state.json' }, '{}');
    await mkdir(join(bucket, 'requests/r1/input'), { recursive: true });
    const live = join(bucket, 'requests/r1/input/original.mp4.0123456789ab.tmp');
    const dead = join(bucket, 'requests/r1/input/original.mp4.ba9876543210.tmp');
    const broken = join(bucket, 'requests/r1/state.json.lock.aaaaaaaaaaaa.broken');
    const notOurs = join(bucket, 'requests/r1/input/notes.tmp');
    for (const path of [live, dead, broken, notOurs]) await writeFile(path, 'x'.repeat(100));
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const path of [dead, broken, notOurs]) await utimes(path, hourAgo, hourAgo);

    const swept = await sweepDebris(store, { staleTempMs: 600_000, uploadTtlMs: null });
    expect(swept).toMatchObject({ tempFiles: 2, tempBytes: 200 });
    expect((await filesUnder(bucket)).sort()).toEqual(['requests/r1/input/notes.tmp', 'requests/r1/input/original.mp4.0123456789ab.tmp', 'requests/r1/state.json']);
  });
});

describe('uploads: refusals, quota and expiry', () => {
  const CAP = 64 * 1024;
  let h: Harness;
  let server: HttpServer;

  async function start(env: Record<string, string>): Promise<void> {
    h = closeAfterTest(await startHarness({ env: { FAVE_UPLOAD_MAX_BYTES: String(CAP), ...env } }));
    server = closeAfterTest(await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false }), (s) => s.close(200));
  }

  const uploadsDir = () => join(h.dir, 'data', BUCKET, 'uploads');
  /** Upload folders other than the harness's own sample video. */
  const uploadFolders = async () => foldersIn(uploadsDir());

  function post(body: Buffer, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${server.url}/uploads?filename=v.mp4`, { method: 'POST', headers: { 'content-type': 'video/mp4', ...headers }, body });
  }

  /** A chunked upload of `size` bytes (no Content-Length): only the streamed count can refuse it. */
  function postChunked(size: number, abortAfter?: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${server.url}/uploads?filename=v.mp4`, { method: 'POST', headers: { 'content-type': 'video/mp4' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', (err) => (abortAfter !== undefined ? resolve(0) : reject(err)));
      let written = 0;
      const chunk = randomBytes(8 * 1024);
      const next = () => {
        if (abortAfter !== undefined && written >= abortAfter) {
          req.destroy();
          resolve(0);
          return;
        }
        if (written >= size) {
          req.end();
          return;
        }
        written += chunk.length;
        if (req.write(chunk)) setImmediate(next);
        else req.once('drain', next);
      };
      next();
    });
  }

  it('50 refused uploads (empty, over the cap, aborted) leave no folder', async () => {
    await start({});
    for (let i = 0; i < 20; i++) expect((await post(Buffer.alloc(0))).status).toBe(400);
    for (let i = 0; i < 10; i++) expect((await post(randomBytes(CAP + 1))).status).toBe(413);
    for (let i = 0; i < 10; i++) expect(await postChunked(CAP + 16 * 1024)).toBe(413);
    for (let i = 0; i < 10; i++) await postChunked(CAP, 24 * 1024);
    await until(async () => (await uploadFolders()).length === 0 && (await filesUnder(uploadsDir())).every((f) => f === 'sample.mp4'), {
      message: async () => `no upload folder left, found ${(await uploadFolders()).length}`,
    } as never);
    expect(await uploadFolders()).toEqual([]);
    // An upload that is kept has its folder.
    expect((await post(randomBytes(1000))).status).toBe(201);
    expect(await uploadFolders()).toHaveLength(1);
  });

  it('refuses an upload past MAX_UPLOAD_STORE_BYTES with 507, by its length or as it streams, and keeps nothing of it', async () => {
    // The harness's sample video (51 bytes) is an upload too.
    await start({ MAX_UPLOAD_STORE_BYTES: String(100 * 1024) });
    expect((await post(randomBytes(60 * 1024))).status).toBe(201);
    const declared = await post(randomBytes(60 * 1024));
    expect(declared.status).toBe(507);
    const body = (await declared.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('UPLOAD_STORE_FULL');
    expect(body.error.message).toContain('MAX_UPLOAD_STORE_BYTES');
    expect(await postChunked(60 * 1024)).toBe(507);
    expect(await uploadFolders()).toHaveLength(1);
    // What still fits is stored.
    expect((await post(randomBytes(30 * 1024))).status).toBe(201);
  });

  it('expires uploads past UPLOAD_TTL_SECONDS unless a request running here reads them', async () => {
    const dir = await tempDir();
    const store = new FsStore(dir, BUCKET);
    await store.init();
    const old = { bucket: BUCKET, key: 'uploads/aaaa/old.mp4' };
    const used = { bucket: BUCKET, key: 'uploads/bbbb/used.mp4' };
    const fresh = { bucket: BUCKET, key: 'uploads/cccc/fresh.mp4' };
    for (const loc of [old, used, fresh]) await store.put(loc, 'video');
    const dayAgo = new Date(Date.now() - 86_400_000);
    for (const loc of [old, used]) await utimes(store.path(loc), dayAgo, dayAgo);
    const swept = await sweepDebris(store, { staleTempMs: 3_600_000, uploadTtlMs: 3_600_000, inUse: () => new Set([`s3://${BUCKET}/${used.key}`]) });
    expect(swept.expiredUploads).toBe(1);
    expect(await store.list(BUCKET, 'uploads/')).toEqual([used.key, fresh.key]);
    // The expired upload's folder went with it.
    expect((await foldersIn(join(dir, BUCKET, 'uploads'))).sort()).toEqual(['bbbb', 'cccc']);
    expect(loadConfig({}).uploadTtlMs).toBe(7 * 86_400_000);
    expect(loadConfig({ UPLOAD_TTL_SECONDS: '0' }).uploadTtlMs).toBeNull();
    expect(() => loadConfig({ MAX_UPLOAD_STORE_BYTES: '0' })).toThrow(/MAX_UPLOAD_STORE_BYTES/);
  });
});

describe('the filesystem store', () => {
  it('names store keys, never the server path, when the file system fails', async () => {
    const dir = await tempDir();
    const store = new FsStore(dir, BUCKET);
    await store.init();
    await store.put({ bucket: BUCKET, key: 'requests/r1/input' }, 'a file where a folder is expected');
    const failures = await Promise.all([
      store.copy({ bucket: BUCKET, key: 'requests/r1/input' }, { bucket: BUCKET, key: 'requests/r1/input/original.mp4' }).catch((e: unknown) => e),
      store.put({ bucket: BUCKET, key: 'requests/r1/input/x.json' }, '{}').catch((e: unknown) => e),
      store.putStream({ bucket: BUCKET, key: 'requests/r1/input/y.mp4' }, (await import('node:stream')).Readable.from([Buffer.from('v')])).catch((e: unknown) => e),
    ]);
    for (const failure of failures) {
      const error = (failure as { error?: unknown }).error;
      expect(isFaveError(error)).toBe(true);
      if (!isFaveError(error)) continue;
      expect(error.code).toBe('STORE_ERROR');
      expect(error.message).toMatch(/fave-artifacts\/requests\/r1\/input\//);
      expect(error.message).toMatch(/ENOTDIR|EEXIST/);
      expect(error.message).not.toContain(dir);
      expect(error.message).not.toContain(tmpdir());
    }
  });

  it('answers a store failure through the API with the key, not the server path', async () => {
    const h = closeAfterTest(await startHarness({}));
    const server = closeAfterTest(await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false }), (s) => s.close(200));
    // A file where the request's folder would go: every write under it fails with ENOTDIR.
    await writeFile(join(h.dir, 'data', BUCKET, 'requests'), 'not a folder');
    const res = await fetch(`${server.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_uri: h.videoUri, request_id: 'no-room' }),
    });
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(JSON.parse(text).error).toMatchObject({ code: 'STORE_ERROR' });
    expect(text).toContain('fave-artifacts/requests/no-room/');
    expect(text).not.toContain(h.dir);
  });

  it('gives ETags that change with every write and carry no inode number', async () => {
    const dir = await tempDir();
    const store = new FsStore(dir, BUCKET);
    await store.init();
    const loc = { bucket: BUCKET, key: 'a/state.json' };
    const first = await store.put(loc, 'same size');
    const second = await store.put(loc, 'same size');
    expect(second.etag).not.toBe(first.etag);
    expect((await store.head(loc))?.etag).toBe(second.etag);
    const { ino } = await stat(store.path(loc));
    expect(second.etag).not.toContain(ino.toString(16));
    expect(second.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
  });
});
