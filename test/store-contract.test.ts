import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { openStore } from '../src/app.ts';
import { S3Store } from '../src/persistence/s3-store.ts';
import { isPreconditionFailed, type ObjectLocation, type Store, type StoreCapabilities } from '../src/persistence/store.ts';
import { s3StoreOn, startS3rver } from './support/s3rver.ts';
import { failureOf } from './support/fixtures.ts';
import { motoSkipReason, startMotoStore } from './support/moto.ts';

interface Harness {
  store: Store;
  /** DeleteObjects calls the server has received so far (the S3 servers, which log requests). */
  deleteObjectsCalls?: () => number;
  stop(): Promise<void>;
}

interface Factory {
  name: string;
  /** What `init()` must detect: s3rver accepts If-Match / If-None-Match and ignores them. */
  conditionalWrites: boolean;
  /** Why this store cannot be tested here (printed), or null. */
  skip: string | null;
  /** Has `deleteMany` (S3's DeleteObjects); the filesystem store deletes one object a call. */
  deleteMany: boolean;
  start(): Promise<Harness>;
}

const BUCKET = 'fave-artifacts';

const factories: Factory[] = [
  {
    name: 'FsStore',
    conditionalWrites: true,
    skip: null,
    deleteMany: false,
    async start() {
      const dir = await mkdtemp(join(tmpdir(), 'fave-fs-store-'));
      const store = new FsStore(dir, BUCKET);
      return { store, stop: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'S3Store (s3rver)',
    conditionalWrites: false,
    skip: null,
    deleteMany: true,
    async start() {
      const s3 = await startS3rver();
      const store = s3StoreOn(s3);
      return {
        store,
        deleteObjectsCalls: () => s3.requests.filter((r) => /^POST \S*\?delete(=|&|$)/.test(r)).length,
        async stop() {
          await store.close();
          await s3.stop();
        },
      };
    },
  },
  {
    // Enforces If-None-Match / If-Match as AWS S3 and MinIO do.
    name: 'S3Store (moto)',
    conditionalWrites: true,
    skip: motoSkipReason(),
    deleteMany: true,
    async start() {
      const { store, moto, stop } = await startMotoStore();
      return { store, stop, deleteObjectsCalls: () => moto.accessLog().filter((line) => /^POST \S*\?delete(&|=|\s|$)/.test(line)).length };
    },
  },
];

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

async function sha256OfStream(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Random bytes in odd-sized chunks (so multipart parts never line up with them), hashed as generated. */
function generatedStream(chunks: number, chunkSize: number): { stream: Readable; digest: () => string; size: number } {
  const hash = createHash('sha256');
  async function* generate(): AsyncGenerator<Buffer> {
    for (let i = 0; i < chunks; i++) {
      const chunk = randomBytes(chunkSize);
      hash.update(chunk);
      yield chunk;
    }
  }
  return { stream: Readable.from(generate()), digest: () => hash.digest('hex'), size: chunks * chunkSize };
}

describe.each(factories)('Store contract: $name', (factory) => {
  if (factory.skip) {
    it.skip(factory.skip, () => undefined);
    return;
  }
  let harness: Harness;
  let store: Store;
  let capabilities: StoreCapabilities;
  const at = (key: string): ObjectLocation => ({ bucket: BUCKET, key });

  beforeAll(async () => {
    harness = await factory.start();
    store = harness.store;
    capabilities = await store.init();
  });

  afterAll(async () => {
    await harness?.stop();
  });

  /** Enforcement tests exist only for the stores that enforce; the others prove `init()` says so. */
  const enforcing = (name: string, fn: () => Promise<void>) => {
    if (factory.conditionalWrites) it(name, fn);
  };

  it('detects whether conditional writes are enforced', () => {
    expect(capabilities).toEqual({ conditionalWrites: factory.conditionalWrites });
  });

  it('leaves nothing behind after init()', async () => {
    expect(await store.list(BUCKET, '')).toEqual([]);
  });

  it('puts, gets and heads Buffers and strings under nested prefixes', async () => {
    const body = randomBytes(4096);
    const written = await store.put(at('rt/a/b/c/blob.bin'), body);
    expect(written.size).toBe(body.length);
    expect(await store.head(at('rt/a/b/c/blob.bin'))).toEqual(written);
    expect(sha256(await store.get(at('rt/a/b/c/blob.bin')))).toBe(sha256(body));

    const text = '{"héllo":"wörld"}';
    const info = await store.put(at('rt/state.json'), text, { contentType: 'application/json' });
    expect(info.size).toBe(Buffer.byteLength(text));
    expect((await store.get(at('rt/state.json'))).toString('utf8')).toBe(text);
  });

  it('puts a body given in parts as their bytes one after the other, conditions included', async () => {
    // More parts than one gathered write takes at once (IOV_MAX is 1024 on Linux).
    const parts = Array.from({ length: 2500 }, (_, i) => (i % 3 === 0 ? Buffer.alloc(0) : randomBytes(1 + (i % 700))));
    const whole = Buffer.concat(parts);
    const written = await store.put(at('parts/state.json'), parts, { contentType: 'application/json', ifNoneMatch: '*' });
    expect(written.size).toBe(whole.length);
    expect(sha256(await store.get(at('parts/state.json')))).toBe(sha256(whole));
    const again = [Buffer.from('{"a":'), Buffer.from('1}')];
    const options = factory.conditionalWrites ? { ifMatch: written.etag } : {};
    await store.put(at('parts/state.json'), again, options);
    expect((await store.get(at('parts/state.json'))).toString('utf8')).toBe('{"a":1}');
  });

  it('overwrites an object and changes its etag', async () => {
    const first = await store.put(at('ow/x.json'), 'one');
    const second = await store.put(at('ow/x.json'), 'two, longer');
    expect(second.etag).not.toBe(first.etag);
    expect((await store.get(at('ow/x.json'))).toString()).toBe('two, longer');
    expect(await store.head(at('ow/x.json'))).toEqual(second);
  });

  it('maps missing objects to NOT_FOUND (get, getStream, copy) and null (head)', async () => {
    expect(await store.head(at('missing/none.bin'))).toBeNull();
    for (const attempt of [
      () => store.get(at('missing/none.bin')),
      () => store.getStream(at('missing/none.bin')),
      () => store.copy(at('missing/none.bin'), at('missing/copy.bin')),
    ]) {
      const failure = await failureOf(attempt());
      expect(failure.error.code).toBe('NOT_FOUND');
      expect(failure.error.message).toContain(`s3://${BUCKET}/missing/none.bin`);
    }
    const otherBucket = await failureOf(store.get({ bucket: 'no-such-bucket', key: 'x' }));
    expect(otherBucket.error.code).toBe('NOT_FOUND');
    const copyFromOtherBucket = await failureOf(store.copy({ bucket: 'no-such-bucket', key: 'x.mp4' }, at('missing/copy.bin')));
    expect(copyFromOtherBucket.error).toMatchObject({ code: 'NOT_FOUND', message: 'no object at s3://no-such-bucket/x.mp4' });
    expect(await store.head(at('missing/copy.bin'))).toBeNull();
  });

  it('lists keys under a prefix in lexical order', async () => {
    const keys = ['ls/a/2.json', 'ls/a/1.json', 'ls/a/sub/deep/3.json', 'ls/ab/4.json', 'ls/b.json'];
    for (const key of keys) await store.put(at(key), key);
    expect(await store.list(BUCKET, 'ls/a/')).toEqual(['ls/a/1.json', 'ls/a/2.json', 'ls/a/sub/deep/3.json']);
    expect(await store.list(BUCKET, 'ls/a')).toEqual(['ls/a/1.json', 'ls/a/2.json', 'ls/a/sub/deep/3.json', 'ls/ab/4.json']);
    expect(await store.list(BUCKET, 'ls/')).toEqual([...keys].sort());
    expect(await store.list(BUCKET, 'ls/nothing/')).toEqual([]);
  });

  it('lists every key past one S3 page (1,000 keys)', async () => {
    const keys = Array.from({ length: 1003 }, (_, i) => `many/${String(i).padStart(4, '0')}.json`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((key) => store.put({ bucket: BUCKET, key }, '{}')));
    expect(await store.list(BUCKET, 'many/')).toEqual(keys);
  });

  it('lists in bounded pages, after a key, and folder by folder with the delimiter', async () => {
    // s3rver orders `a/…` before `a-b` (its folders first), which S3's byte order does not; the
    // stem shared by a key and a folder is left out of its run.
    const mixed = !factory.name.includes('s3rver');
    const keys = ['pages/a/1.json', 'pages/a/2.json', ...(mixed ? ['pages/a-b.json'] : []), 'pages/b/1.json', 'pages/c.json'];
    for (const key of keys) await store.put({ bucket: BUCKET, key }, '12345');
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await store.listPage(BUCKET, 'pages/', { limit: 2, sizes: true, ...(token ? { token } : {}) });
      expect(page.objects.length).toBeLessThanOrEqual(2);
      for (const o of page.objects) expect(o.size).toBe(5);
      seen.push(...page.objects.map((o) => o.key));
      token = page.next ?? undefined;
    } while (token);
    expect(seen, JSON.stringify(seen)).toEqual([...keys].sort());
    expect((await store.listPage(BUCKET, 'pages/', { startAfter: 'pages/a/2.json' })).objects.map((o) => o.key)).toEqual(['pages/b/1.json', 'pages/c.json']);
    const folders = await store.listPage(BUCKET, 'pages/', { delimiter: true });
    expect(folders.prefixes).toEqual(['pages/a/', 'pages/b/']);
    expect(folders.objects.map((o) => o.key)).toEqual([...(mixed ? ['pages/a-b.json'] : []), 'pages/c.json']);
    expect(folders.next).toBeNull();
    expect(await store.listPage(BUCKET, 'nothing-here/')).toEqual({ objects: [], prefixes: [], next: null });
  });

  it('deletes objects, and deleting a missing one is not an error', async () => {
    await store.put(at('del/x.bin'), 'x');
    await store.delete(at('del/x.bin'));
    expect(await store.head(at('del/x.bin'))).toBeNull();
    expect(await store.list(BUCKET, 'del/')).toEqual([]);
    await store.delete(at('del/x.bin'));
  });

  if (factory.deleteMany) {
    it('deletes many keys in calls of at most 1,000, missing keys included', async () => {
      const keys = Array.from({ length: 2345 }, (_, i) => `dm/${String(i).padStart(4, '0')}.json`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((key) => store.put(at(key), '{}')));
      await store.put(at('dm-kept/a.json'), 'kept');
      const missing = ['dm/none-1.json', 'dm/deep/none-2.json'];
      const before = harness.deleteObjectsCalls!();
      await store.deleteMany!(BUCKET, [...keys, ...missing]);
      // 2,347 keys: three calls, none over S3's limit.
      expect(harness.deleteObjectsCalls!() - before).toBe(3);
      expect(await store.list(BUCKET, 'dm/')).toEqual([]);
      expect(await store.list(BUCKET, 'dm-kept/')).toEqual(['dm-kept/a.json']);
      // Only missing keys, and none at all: nothing to do, no error.
      await store.deleteMany!(BUCKET, missing);
      const idle = harness.deleteObjectsCalls!();
      await store.deleteMany!(BUCKET, []);
      expect(harness.deleteObjectsCalls!()).toBe(idle);
    });
  } else {
    it('has no batch delete (deletes one object a call)', () => {
      expect(store.deleteMany).toBeUndefined();
    });
  }

  it('copies byte-identically into a nested key', async () => {
    const body = randomBytes(256 * 1024);
    await store.put(at('cp/src.mp4'), body);
    const copied = await store.copy(at('cp/src.mp4'), at('cp/dst/nested/original.mp4'));
    expect(copied.size).toBe(body.length);
    expect(await store.head(at('cp/dst/nested/original.mp4'))).toEqual(copied);
    expect(sha256(await store.get(at('cp/dst/nested/original.mp4')))).toBe(sha256(body));
    expect(sha256(await store.get(at('cp/src.mp4')))).toBe(sha256(body));
  });

  it('streams an object out with getStream', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 7);
    await store.put(at('gs/blob.bin'), body);
    const read = await sha256OfStream(await store.getStream(at('gs/blob.bin')));
    expect(read).toEqual({ sha256: sha256(body), size: body.length });
  });

  it('streams a byte range out with getRange, and a missing object is NOT_FOUND', async () => {
    const body = randomBytes(200_000);
    await store.put(at('gr/blob.bin'), body);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.getRange(at('gr/blob.bin'), { start: 1000, end: 150_999 })) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(body.subarray(1000, 151_000))).toBe(true);
    const last: Buffer[] = [];
    for await (const chunk of await store.getRange(at('gr/blob.bin'), { start: 199_999, end: 199_999 })) last.push(chunk as Buffer);
    expect(Buffer.concat(last)).toEqual(body.subarray(199_999));
    await expect(store.getRange(at('gr/none.bin'), { start: 0, end: 1 })).rejects.toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('stores a ~30 MB stream of unknown length byte-identically', async () => {
    const source = generatedStream(31, 1_000_003);
    const info = await store.putStream(at('ps/big.bin'), source.stream, { contentType: 'application/octet-stream' });
    expect(info.size).toBe(source.size);
    expect(await store.head(at('ps/big.bin'))).toEqual(info);
    const read = await sha256OfStream(await store.getStream(at('ps/big.bin')));
    expect(read).toEqual({ sha256: source.digest(), size: source.size });
  });

  it('stores small and empty streams', async () => {
    const small = await store.putStream(at('ps/small.txt'), Readable.from([Buffer.from('ab'), Buffer.from('c')]));
    expect(small.size).toBe(3);
    expect((await store.get(at('ps/small.txt'))).toString()).toBe('abc');
    const empty = await store.putStream(at('ps/empty.bin'), Readable.from([]));
    expect(empty.size).toBe(0);
    expect((await store.get(at('ps/empty.bin'))).length).toBe(0);
  });

  it('does not store anything when the stream fails', async () => {
    const failing = Readable.from(
      (async function* () {
        yield randomBytes(1024);
        throw new Error('source broke');
      })(),
    );
    await expect(store.putStream(at('ps/broken.bin'), failing)).rejects.toThrow();
    expect(await store.head(at('ps/broken.bin'))).toBeNull();
  });

  enforcing('ifNoneMatch "*" creates only when absent', async () => {
    const created = await store.put(at('cond/lease.json'), 'first', { ifNoneMatch: '*' });
    const refused = await failureOf(store.put(at('cond/lease.json'), 'second', { ifNoneMatch: '*' }));
    expect(isPreconditionFailed(refused)).toBe(true);
    // The store speaks of objects: what a lost write means for a request is its caller's to say.
    expect(refused.error.code).toBe('PRECONDITION_FAILED');
    expect(refused.error.message).toContain(`s3://${BUCKET}/cond/lease.json`);
    expect(await store.head(at('cond/lease.json'))).toEqual(created);
    expect((await store.get(at('cond/lease.json'))).toString()).toBe('first');
  });

  enforcing('ifMatch writes only over the expected etag', async () => {
    const v1 = await store.put(at('cond/state.json'), 'v1');
    const v2 = await store.put(at('cond/state.json'), 'v2', { ifMatch: v1.etag });
    expect(v2.etag).not.toBe(v1.etag);
    const stale = await failureOf(store.put(at('cond/state.json'), 'v3', { ifMatch: v1.etag }));
    expect(stale.error.code).toBe('PRECONDITION_FAILED');
    expect((await store.get(at('cond/state.json'))).toString()).toBe('v2');
    const absent = await failureOf(store.put(at('cond/absent.json'), 'x', { ifMatch: v1.etag }));
    expect(isPreconditionFailed(absent)).toBe(true);
    expect(await store.head(at('cond/absent.json'))).toBeNull();
  });

  enforcing('lets exactly one of concurrent ifMatch writers win', async () => {
    const base = await store.put(at('race/state.json'), 'base');
    const writers = Array.from({ length: 8 }, (_, i) => store.put(at('race/state.json'), `writer-${i}`, { ifMatch: base.etag }));
    const results = await Promise.allSettled(writers);
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, info: r.value }] : []));
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    for (const r of lost) expect(isPreconditionFailed(r.reason)).toBe(true);
    expect((await store.get(at('race/state.json'))).toString()).toBe(`writer-${won[0]!.i}`);
    expect(await store.head(at('race/state.json'))).toEqual(won[0]!.info);
  });

  enforcing('lets exactly one of concurrent ifNoneMatch creators win', async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.put(at('race/lease.json'), `owner-${i}`, { ifNoneMatch: '*' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(isPreconditionFailed(r.reason)).toBe(true);
  });
});

describe('S3Store.init() failures', () => {
  let s3: Awaited<ReturnType<typeof startS3rver>>;
  const opened: Store[] = [];
  const open = (overrides: Partial<ConstructorParameters<typeof S3Store>[0]>): S3Store => {
    const store = s3StoreOn(s3, { maxAttempts: 1, ...overrides });
    opened.push(store);
    return store;
  };

  beforeAll(async () => {
    s3 = await startS3rver();
  });

  afterAll(async () => {
    for (const store of opened) await store.close();
    await s3?.stop();
  });

  it('names a missing bucket and the endpoint', async () => {
    const failure = await failureOf(open({ bucket: 'no-such-bucket' }).init());
    expect(failure.error.code).toBe('STORE_ERROR');
    expect(failure.error.message).toBe(`bucket no-such-bucket does not exist at ${s3.endpoint}`);
  });

  it('points at the credential variables when access is refused', async () => {
    const failure = await failureOf(open({ accessKeyId: 'WRONG', secretAccessKey: 'WRONG' }).init());
    expect(failure.error.code).toBe('STORE_ERROR');
    expect(failure.error.message).toContain('ARTIFACT_ACCESS_KEY');
    expect(failure.error.message).toContain('ARTIFACT_SECRET_KEY');
    expect(failure.error.message).toContain(s3.bucket);
  });

  it('reports an unreachable endpoint as a transient STORE_ERROR', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const failure = await failureOf(open({ endpoint: `http://127.0.0.1:${port}` }).init());
    expect(failure.error.code).toBe('STORE_ERROR');
    expect(failure.error.transient).toBe(true);
    expect(failure.error.message).toContain(`127.0.0.1:${port}`);
  });

  it('rejects half-configured static credentials', () => {
    expect(() => open({ accessKeyId: 'only-the-key', secretAccessKey: null })).toThrow(/ARTIFACT_ACCESS_KEY and ARTIFACT_SECRET_KEY/);
  });
});

describe('S3Store copying a source larger than CopyObject takes', () => {
  it('streams it through as a multipart upload, byte-identically', async () => {
    const s3 = await startS3rver();
    // The limit is lowered so that a 12 MiB source stands in for one over S3's 5 GiB.
    const store = s3StoreOn(s3, { maxCopyObjectBytes: 1024 * 1024 });
    try {
      const body = randomBytes(12 * 1024 * 1024 + 5);
      const from = { bucket: s3.bucket, key: 'uploads/long.mp4' };
      const to = { bucket: s3.bucket, key: 'requests/r/input/original.mp4' };
      await store.put(from, body);
      const before = s3.requests.length;
      const copied = await store.copy(from, to);
      expect(copied.size).toBe(body.length);
      // No CopyObject (a PUT naming a copy source cannot be told from its URL, so count the PUTs):
      // a multipart upload of two 8 MiB parts, i.e. create, two parts, complete.
      const made = s3.requests.slice(before);
      expect(made.filter((r) => r.startsWith('POST') && r.includes('uploads'))).toHaveLength(1);
      expect(made.filter((r) => r.startsWith('PUT') && r.includes('partNumber='))).toHaveLength(2);
      expect(made.filter((r) => r.startsWith('PUT') && !r.includes('partNumber='))).toHaveLength(0);
      expect(await store.head(to)).toEqual(copied);
      expect(sha256(await store.get(to))).toBe(sha256(body));
      const missing = await failureOf(store.copy({ bucket: s3.bucket, key: 'uploads/none.mp4' }, to));
      expect(missing.error.code).toBe('NOT_FOUND');
    } finally {
      await store.close();
      await s3.stop();
    }
  });
});

/**
 * s3rver ignores If-Match / If-None-Match, so the enforcing path is checked against a minimal
 * S3 endpoint that honours them the way AWS and MinIO do (412 PreconditionFailed, 409 conflict).
 */
describe('S3Store against a server that enforces conditional writes', () => {
  let server: Server;
  let store: S3Store;
  const objects = new Map<string, Buffer>();
  const putHeaders: IncomingHttpHeaders[] = [];
  const deletes: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  const etagOf = (body: Buffer): string => `"${createHash('md5').update(body).digest('hex')}"`;
  const s3Error = (code: string, message: string): string => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  const at = (key: string): ObjectLocation => ({ bucket: BUCKET, key });

  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.method === 'POST' && new URL(req.url ?? '/', 'http://x').searchParams.has('delete')) {
          // DeleteObjects: keys named `locked` are refused, as a bucket policy would; a missing key
          // is answered NoSuchKey, which some S3-compatible servers do (AWS answers it deleted).
          const body = Buffer.concat(chunks).toString('utf8');
          // A service without DeleteObjects (some S3-compatible ones), for keys under `single/`.
          if (body.includes('<Key>single/')) {
            return void res
              .writeHead(501, { 'content-type': 'application/xml' })
              .end(s3Error('NotImplemented', 'A header you provided implies functionality that is not implemented'));
          }
          deletes.push({ headers: req.headers, body });
          const errors = [...body.matchAll(/<Key>([^<]*)<\/Key>/g)].flatMap(([, key]) => {
            const object = `/${BUCKET}/${key}`;
            if (key!.includes('locked')) return [`<Error><Key>${key}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`];
            if (!objects.delete(object)) return [`<Error><Key>${key}</Key><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`];
            return [];
          });
          return void res.writeHead(200, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?><DeleteResult>${errors.join('')}</DeleteResult>`);
        }
        if (path === `/${BUCKET}` || path === `/${BUCKET}/`) return void res.writeHead(200).end();
        const current = objects.get(path);
        if (req.method === 'PUT') {
          putHeaders.push(req.headers);
          const body = Buffer.concat(chunks);
          const ifMatch = req.headers['if-match'];
          const ifNoneMatch = req.headers['if-none-match'];
          if (path.includes('conflict')) {
            return void res.writeHead(409, { 'content-type': 'application/xml' }).end(s3Error('ConditionalRequestConflict', 'conflicting operation'));
          }
          if ((ifNoneMatch === '*' && current) || (ifMatch !== undefined && (!current || etagOf(current) !== ifMatch))) {
            return void res
              .writeHead(412, { 'content-type': 'application/xml' })
              .end(s3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'));
          }
          objects.set(path, body);
          return void res.writeHead(200, { etag: etagOf(body) }).end();
        }
        if (req.method === 'DELETE') {
          objects.delete(path);
          return void res.writeHead(204).end();
        }
        if (!current) {
          return void res.writeHead(404, { 'content-type': 'application/xml' }).end(req.method === 'HEAD' ? undefined : s3Error('NoSuchKey', 'The specified key does not exist.'));
        }
        res.writeHead(200, { etag: etagOf(current), 'content-length': current.length });
        res.end(req.method === 'HEAD' ? undefined : current);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    store = new S3Store({ bucket: BUCKET, endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's', maxAttempts: 1 });
  });

  afterAll(async () => {
    await store?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('detects enforced conditional writes and removes its probe', async () => {
    expect(await store.init()).toEqual({ conditionalWrites: true });
    expect([...objects.keys()]).toEqual([]);
  });

  it('sends If-None-Match and maps 412 to a failed precondition', async () => {
    const created = await store.put(at('lease.json'), 'first', { ifNoneMatch: '*' });
    expect(putHeaders.at(-1)?.['if-none-match']).toBe('*');
    const refused = await failureOf(store.put(at('lease.json'), 'second', { ifNoneMatch: '*' }));
    expect(isPreconditionFailed(refused)).toBe(true);
    expect(await store.head(at('lease.json'))).toEqual(created);
  });

  it('sends If-Match with the etag put returned', async () => {
    const v1 = await store.put(at('state.json'), 'v1');
    const v2 = await store.put(at('state.json'), 'v2', { ifMatch: v1.etag });
    expect(putHeaders.at(-1)?.['if-match']).toBe(v1.etag);
    expect(isPreconditionFailed(await failureOf(store.put(at('state.json'), 'v3', { ifMatch: v1.etag })))).toBe(true);
    expect(await store.head(at('state.json'))).toEqual(v2);
  });

  it('maps 409 ConditionalRequestConflict to a failed precondition', async () => {
    expect(isPreconditionFailed(await failureOf(store.put(at('conflict.json'), 'x', { ifMatch: '"abc"' })))).toBe(true);
  });

  it('deletes many keys quietly, with a checksum, and names the first key S3 could not delete', async () => {
    for (const key of ['dm/a.json', 'dm/locked-1.json', 'dm/b.json', 'dm/locked-2.json']) await store.put(at(key), key);
    const failure = await failureOf(store.deleteMany!(BUCKET, ['dm/a.json', 'dm/locked-1.json', 'dm/none.json', 'dm/b.json', 'dm/locked-2.json']));
    expect(failure.error.code).toBe('STORE_ERROR');
    expect(failure.error.message).toContain(`S3 DeleteObjects s3://${BUCKET}/dm/locked-1.json`);
    expect(failure.error.message).toContain('AccessDenied: Access Denied');
    // The missing key is not an error; the second refused one is counted.
    expect(failure.error.message).toContain('1 more keys of this call failed');
    expect(deletes).toHaveLength(1);
    expect(deletes[0]!.body).toContain('<Quiet>true</Quiet>');
    // S3 refuses a DeleteObjects without an integrity header (Content-MD5 or a flexible checksum).
    expect(Object.keys(deletes[0]!.headers).some((h) => h === 'content-md5' || h.startsWith('x-amz-checksum-'))).toBe(true);
    expect(await store.head(at('dm/a.json'))).toBeNull();
    expect(await store.head(at('dm/b.json'))).toBeNull();
    expect(await store.head(at('dm/locked-1.json'))).not.toBeNull();
    await store.deleteMany!(BUCKET, ['dm/a.json', 'dm/b.json']);
  });

  it('deletes the keys one call each where the service has no DeleteObjects', async () => {
    for (const key of ['single/a.json', 'single/b.json']) await store.put(at(key), key);
    await store.deleteMany!(BUCKET, ['single/a.json', 'single/b.json', 'single/none.json']);
    expect(await store.head(at('single/a.json'))).toBeNull();
    expect(await store.head(at('single/b.json'))).toBeNull();
  });

  it('sends plain bodies with a Content-Length, never aws-chunked', () => {
    expect(putHeaders.length).toBeGreaterThan(0);
    for (const headers of putHeaders) {
      expect(headers['content-length']).toMatch(/^\d+$/);
      expect(headers['content-encoding'] ?? '').not.toContain('aws-chunked');
      expect(headers['x-amz-content-sha256'] ?? '').not.toMatch(/^STREAMING-/);
      expect(headers['x-amz-decoded-content-length']).toBeUndefined();
    }
  });
});

describe('openStore', () => {
  it('opens the store the configuration names', async () => {
    const fs = await openStore({ kind: 'fs', dataDir: join(tmpdir(), 'fave-unused'), bucket: BUCKET });
    expect(fs).toBeInstanceOf(FsStore);
    const s3 = await openStore({ kind: 's3', bucket: BUCKET, endpoint: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: null, secretAccessKey: null });
    expect(s3).toBeInstanceOf(S3Store);
    expect(s3.bucket).toBe(BUCKET);
    await fs.close();
    await s3.close();
  });
});
