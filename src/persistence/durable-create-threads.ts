import { constants } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { startWorkerThread } from '../lib/worker-thread.ts';

/**
 * Opens a new file for durable writes: each write returns once its data is on disk, so no
 * separate flush is needed; O_EXCL, so a temporary name is never shared.
 */
export const DURABLE_NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC;

/** One object to create: its folder, the temporary file beside it, and its final name. */
export interface CreateJob {
  id: number;
  dir: string;
  tmp: string;
  path: string;
  body: string | Uint8Array;
}

export type CreateReply = { ready: true } | { id: number; created: boolean } | { id: number; failure: { code: string | null; message: string } };

export interface DurableCreateThreadsOptions {
  /** The most threads; the second starts only when the first has work in hand. */
  size: number;
  /** Jobs in hand per thread; past it on every thread, the caller writes the object itself. */
  maxPerThread: number;
}

interface Pending {
  resolve: (created: boolean | null) => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  /** Given to this thread before it said it was ready: posted then, or handed back if it never is. */
  held: CreateJob[];
  pending: Map<number, Pending>;
}

/**
 * The filesystem store's create-if-absent done on worker threads. Each step of it through the
 * thread pool woke the main thread once (five or six times per object), and on a machine with
 * few cores each wake-up, with the pool thread it follows, took the main thread's core for tens
 * of microseconds; here the main thread posts one message and takes one answer. The threads are
 * started on first use and do not keep the process alive while idle.
 *
 * `create` answers `null` when no thread takes the job (none could be started, all are full, or
 * the threads are closed): the caller then writes the object itself, the same way.
 */
export class DurableCreateThreads {
  private readonly threads: Thread[] = [];
  private readonly inFlight = new Set<Promise<boolean | null>>();
  private nextId = 1;
  /** No thread could be started, or one stopped: the store writes on its own from then on. */
  private unavailable = false;
  private closed = false;

  constructor(private readonly options: DurableCreateThreadsOptions) {}

  /** Threads running (started and not stopped). */
  get running(): number {
    return this.threads.length;
  }

  create(dir: string, tmp: string, path: string, body: string | Buffer): Promise<boolean | null> | null {
    if (this.closed || this.unavailable) return null;
    const thread = this.pick();
    if (!thread) return null;
    // A Buffer may be a view of a larger shared slab, which a message would copy whole.
    const job: CreateJob = { id: this.nextId++, dir, tmp, path, body: typeof body === 'string' ? body : new Uint8Array(body) };
    const done = new Promise<boolean | null>((resolve, reject) => {
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(job.id, { resolve, reject });
    });
    if (thread.ready) thread.worker.postMessage(job);
    else thread.held.push(job);
    this.inFlight.add(done);
    const forget = () => void this.inFlight.delete(done);
    done.then(forget, forget);
    return done;
  }

  /** Waits for the jobs in hand, then stops the threads; later objects are written by the caller. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  /** The thread with the least work in hand, or a new one when every running thread has some. */
  private pick(): Thread | null {
    let best: Thread | null = null;
    for (const thread of this.threads) if (!best || thread.pending.size < best.pending.size) best = thread;
    if ((!best || best.pending.size > 0) && this.threads.length < this.options.size) {
      const started = this.start();
      if (started) return started;
    }
    return best && best.pending.size < this.options.maxPerThread ? best : null;
  }

  private start(): Thread | null {
    let worker: Worker;
    try {
      worker = startWorkerThread(import.meta.url, 'durable-create-worker');
    } catch {
      this.unavailable = true;
      return null;
    }
    worker.unref();
    const thread: Thread = { worker, ready: false, held: [], pending: new Map() };
    this.threads.push(thread);
    worker.on('message', (reply: CreateReply) => this.receive(thread, reply));
    worker.on('error', (err) => this.lose(thread, err.message));
    worker.on('exit', (code) => this.lose(thread, `exit code ${code}`));
    return thread;
  }

  private receive(thread: Thread, reply: CreateReply): void {
    if ('ready' in reply) {
      thread.ready = true;
      for (const job of thread.held.splice(0)) thread.worker.postMessage(job);
      return;
    }
    const pending = thread.pending.get(reply.id);
    if (!pending) return;
    this.settled(thread, reply.id);
    if ('failure' in reply) {
      const { code, message } = reply.failure;
      pending.reject(Object.assign(new Error(message), code === null ? {} : { code }));
    } else {
      pending.resolve(reply.created);
    }
  }

  private settled(thread: Thread, id: number): void {
    thread.pending.delete(id);
    if (thread.pending.size === 0) thread.worker.unref();
  }

  /**
   * A thread that never started has taken no job: the caller writes those itself. One that
   * stopped while working may have created an object it did not report: its jobs fail, as a
   * write that failed partway does, and the caller's retry finds the object or makes it.
   */
  private lose(thread: Thread, reason: string): void {
    const at = this.threads.indexOf(thread);
    if (at === -1) return;
    this.threads.splice(at, 1);
    if (!this.closed) this.unavailable = true;
    const jobs = [...thread.pending];
    thread.pending.clear();
    for (const [, pending] of jobs) {
      if (thread.ready) pending.reject(new Error(`the store's write thread stopped (${reason})`));
      else pending.resolve(null);
    }
    thread.held = [];
  }
}
