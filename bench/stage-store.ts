import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FsStore } from '../src/persistence/fs-store.ts';
import type { ObjectInfo, ObjectLocation, PutBody, PutOptions } from '../src/persistence/store.ts';

/**
 * The scripted stages' side of the store. In a deployment the stage functions write their
 * artifacts from their own pods into MinIO/S3; here one gateway process writes them all. An
 * fsync per artifact (23,000 of them for the 13k request) would make that one process, not the
 * orchestrator, the thing being measured, so plain writes skip it. Writes stay atomic (temp
 * file + rename) and land in the same files the orchestrator's FsStore reads.
 */
export class UnsyncedFsStore extends FsStore {
  override async put(loc: ObjectLocation, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
    if (options.ifMatch !== undefined || options.ifNoneMatch !== undefined) return super.put(loc, body, options);
    const path = this.path(loc);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, body);
    await rename(tmp, path);
    const info = await this.head(loc);
    if (!info) throw new Error(`${loc.bucket}/${loc.key} vanished right after it was written`);
    return info;
  }
}
