import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, rmdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S3Store, type S3StoreOptions } from '../../src/persistence/s3-store.ts';

/** The part of s3rver's (untyped, CommonJS) API used here. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
  vhostBuckets: boolean;
}) => S3rverInstance;

const require = createRequire(import.meta.url);

interface S3rverObject {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: Record<string, string>;
}
interface FilesystemStorePrototype {
  rootDirectory: string;
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key: string, resource: 'object' | 'object.md5' | 'metadata.json'): string;
  deleteObject(bucket: string, key: string): Promise<void>;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
}

let putObjectPatched = false;

/**
 * s3rver 3.7.1 answers a PUT before the object file is flushed (it resolves on the hashing
 * transform's `finish`, not the file's `close`), so a GET right after a PUT can read a truncated
 * object; it also rewrites the file in place, so a reader can see a half-written one. Real S3 has
 * read-after-write consistency and atomic replacement, which the orchestrator relies on: store the
 * object through a temporary file, renamed into place once it is complete. The temporary file
 * lives beside the server's directory, not in it, so listings never meet it.
 */
function patchAtomicPutObject(): void {
  if (putObjectPatched) return;
  putObjectPatched = true;
  const FilesystemStore = require('s3rver/lib/stores/filesystem') as { prototype: FilesystemStorePrototype };
  let sequence = 0;
  FilesystemStore.prototype.putObject = async function putObject(this: FilesystemStorePrototype, object: S3rverObject) {
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(dirname(objectPath), { recursive: true });
    const md5 = createHash('md5');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        md5.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const partials = `${this.rootDirectory}.partial`;
    await mkdir(partials, { recursive: true });
    const temporary = join(partials, String(++sequence));
    const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    try {
      await pipeline(content, measure, createWriteStream(temporary));
      await rename(temporary, objectPath);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
    const digest = md5.digest('hex');
    await this.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
}

let deleteObjectPatched = false;

/**
 * s3rver 3.7.1 removes a deleted object's folders once empty, and fails with a 500 when another
 * delete in the same folder removed one first (ENOENT) or wrote into it (ENOTEMPTY), which a
 * DeleteObjects of many keys in one folder always meets: the client then retries the whole call.
 * S3 has no folders to race on: a folder another delete took care of is not an error here.
 */
function patchRaceFreeDeleteObject(): void {
  if (deleteObjectPatched) return;
  deleteObjectPatched = true;
  const FilesystemStore = require('s3rver/lib/stores/filesystem') as { prototype: FilesystemStorePrototype };
  FilesystemStore.prototype.deleteObject = async function deleteObject(this: FilesystemStorePrototype, bucket: string, key: string) {
    await Promise.all((['object', 'object.md5', 'metadata.json'] as const).map((resource) => rm(this.getResourcePath(bucket, key, resource), { force: true })));
    const parts = key.split('/').slice(0, -1);
    for (; parts.length > 0; parts.pop()) {
      try {
        await rmdir(join(this.getBucketPath(bucket), ...parts));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        if (code === 'ENOTEMPTY' || code === 'EEXIST') return;
        throw err;
      }
    }
  };
}

export interface RunningS3rver {
  endpoint: string;
  bucket: string;
  /** s3rver's built-in account. */
  accessKeyId: string;
  secretAccessKey: string;
  /** Every request the server received, as `METHOD /path?query`, in order. */
  requests: string[];
  /** The requests that carried a Range header, as `METHOD /path range`. */
  ranged: string[];
  stop(): Promise<void>;
}

/** An in-process S3-compatible server on 127.0.0.1 (random port) with the bucket `fave-artifacts`. */
export async function startS3rver(): Promise<RunningS3rver> {
  const S3rver = require('s3rver') as S3rverConstructor;
  patchAtomicPutObject();
  patchRaceFreeDeleteObject();
  const directory = await mkdtemp(join(tmpdir(), 'fave-s3rver-'));
  const bucket = 'fave-artifacts';
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
    vhostBuckets: false,
  });
  const address = await server.run();
  const requests: string[] = [];
  const ranged: string[] = [];
  server.httpServer?.on('request', (req: IncomingMessage) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.headers.range) ranged.push(`${req.method} ${req.url} ${req.headers.range}`);
  });
  return {
    requests,
    ranged,
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
      await rm(`${directory}.partial`, { recursive: true, force: true });
    },
  };
}

/** An S3Store on the server's bucket with its built-in account; `overrides` for the odd setting. */
export function s3StoreOn(s3: RunningS3rver, overrides: Partial<S3StoreOptions> = {}): S3Store {
  return new S3Store({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    region: 'us-east-1',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    ...overrides,
  });
}

/** A fresh s3rver and an S3Store on it; `stop` closes both. */
export async function startS3rverStore(overrides: Partial<S3StoreOptions> = {}): Promise<{ store: S3Store; stop(): Promise<void> }> {
  const s3 = await startS3rver();
  const store = s3StoreOn(s3, overrides);
  return {
    store,
    async stop() {
      await store.close();
      await s3.stop();
    },
  };
}
