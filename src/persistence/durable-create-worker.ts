import { closeSync, linkSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { DURABLE_NEW_FILE, type CreateJob, type CreateReply } from './durable-create-threads.ts';

/**
 * A thread of the filesystem store that creates small objects durably, one at a time, with the
 * synchronous calls: the whole sequence (folder, temporary file opened for synchronous data
 * writes, write, link, unlink) costs the process's main thread one message each way instead of
 * a trip through the thread pool per step.
 */

const port = parentPort;
if (!port) throw new Error('durable-create-worker.ts runs as a worker thread of the filesystem store');

function create(job: CreateJob): CreateReply {
  let fd: number | null = null;
  try {
    mkdirSync(job.dir, { recursive: true });
    fd = openSync(job.tmp, DURABLE_NEW_FILE, 0o666);
    const bytes = typeof job.body === 'string' ? Buffer.from(job.body, 'utf8') : job.body;
    for (let offset = 0; offset < bytes.length;) offset += writeSync(fd, bytes, offset);
    closeSync(fd);
    fd = null;
    try {
      linkSync(job.tmp, job.path);
    } catch (err) {
      // link() fails with EEXIST when the target exists: an atomic create-if-absent.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { id: job.id, created: false };
      throw err;
    }
    return { id: job.id, created: true };
  } catch (err) {
    const { code } = err as NodeJS.ErrnoException;
    return { id: job.id, failure: { code: typeof code === 'string' ? code : null, message: err instanceof Error ? err.message : String(err) } };
  } finally {
    if (fd !== null) closeQuietly(fd);
    // Linked into place or not wanted: the object no longer depends on this name.
    unlinkQuietly(job.tmp);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already failing: the first error is the one reported.
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Never made (the open failed), or gone already.
  }
}

port.on('message', (job: CreateJob) => port.postMessage(create(job)));
// Posted after the listener is in place: the store sends no job before it, so a thread that
// fails to start has taken none, and the store writes them itself.
port.postMessage({ ready: true } satisfies CreateReply);
