import type { Worker } from 'node:worker_threads';
import { FaveFailure, faveError } from '../../domain/errors.ts';
import { startWorkerThread } from '../../lib/worker-thread.ts';
import type { DetectionDocument, DetectionJob } from './detection.ts';

/**
 * The object detector's worker threads: at most `size`, started on first use, reused picture
 * after picture, one picture per thread at a time; more pictures wait in line. Inference and the
 * work around it (decoding pictures into tensors, decoding the model's output) take seconds of
 * CPU per picture, which on the main thread would stall every request, health probe and lease
 * renewal of the process. A thread that dies fails only its own picture, as a typed error, and
 * the next picture gets a new one.
 */

export type WorkerFailure =
  | { kind: 'rejection'; message: string }
  | { kind: 'tool'; what: string; tool: string; exitCode: number | null; reason: string; stderr: string }
  | { kind: 'internal'; message: string };

export type ToWorker =
  | { type: 'detect'; id: number; job: DetectionJob }
  | { type: 'warm'; engine: DetectionJob['engine']; modelPath: string | null }
  | { type: 'abort'; id: number }
  | { type: 'close' };
export type ToParent = { type: 'done'; id: number; document: DetectionDocument } | { type: 'failed'; id: number; error: WorkerFailure } | { type: 'closed' };

export interface DetectorWorkerData {
  /** Where the optional COCO packages are resolved from (a file URL); the worker's own place by default. */
  cocoResolveFrom: string | null;
}

/** The picture or the model could not be used: the stage answers `{status: "error"}` with it. */
export class DetectorFailure extends Error {
  override name = 'DetectorFailure';
  constructor(readonly failure: Exclude<WorkerFailure, { kind: 'internal' }>) {
    super(failure.kind === 'rejection' ? failure.message : `${failure.what}: ${failure.reason}`);
  }
}

export interface DetectorPoolOptions {
  /** The most threads detecting at once. */
  size: number;
  cocoResolveFrom?: string;
}

interface Pending {
  id: number;
  job: DetectionJob;
  signal: AbortSignal;
  resolve: (document: DetectionDocument) => void;
  reject: (err: unknown) => void;
  settled: boolean;
  onAbort: () => void;
}

interface Slot {
  worker: Worker;
  current: Pending | null;
}

/** How long a closing thread may take to release its model before it is stopped. */
const CLOSE_GRACE_MS = 5_000;

export class DetectorPool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;
  private started = 0;

  constructor(private readonly options: DetectorPoolOptions) {
    if (!(Number.isInteger(options.size) && options.size >= 1)) {
      throw new FaveFailure(faveError('BAD_CONFIG', `the detector needs at least one worker thread, got ${options.size}`));
    }
  }

  /** Threads running now, and how many were ever started (a thread is reused, not restarted). */
  get stats(): { threads: number; busy: number; queued: number; started: number } {
    const busy = [...this.slots].filter((s) => s.current !== null).length;
    return { threads: this.slots.size, busy, queued: this.queue.length, started: this.started };
  }

  detect(job: DetectionJob, signal: AbortSignal): Promise<DetectionDocument> {
    if (this.closed) return Promise.reject(new FaveFailure(faveError('INTERNAL', 'the detector is closed')));
    signal.throwIfAborted();
    return new Promise<DetectionDocument>((resolve, reject) => {
      const pending: Pending = {
        id: this.nextId++,
        job,
        signal,
        resolve,
        reject,
        settled: false,
        onAbort: () => {
          const queued = this.queue.indexOf(pending);
          if (queued >= 0) this.queue.splice(queued, 1);
          else for (const slot of this.slots) if (slot.current === pending) this.post(slot, { type: 'abort', id: pending.id });
          // The thread stays busy until it has stopped; the caller need not wait for that.
          this.settle(pending, () => reject(signal.reason));
        },
      };
      signal.addEventListener('abort', pending.onAbort, { once: true });
      this.queue.push(pending);
      this.dispatch();
    });
  }

  /**
   * Starts every thread the pool may have and lets each load its model, so the first pictures do
   * not wait for it; returns at once. Idle threads stay unreferenced and keep no process alive.
   */
  warmUp(engine: DetectionJob['engine'], modelPath: string | null): void {
    if (this.closed) return;
    while (this.slots.size < this.options.size) {
      const slot = this.spawn();
      slot.worker.unref();
      this.post(slot, { type: 'warm', engine, modelPath });
    }
  }

  /** Stops every thread, after letting it release its model; pictures still waiting fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const pending of this.queue.splice(0)) this.settle(pending, () => pending.reject(new FaveFailure(faveError('INTERNAL', 'the detector was closed'))));
    await Promise.all([...this.slots].map((slot) => this.stop(slot)));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = [...this.slots].find((s) => s.current === null);
      if (!slot) {
        if (this.slots.size >= this.options.size) return;
        slot = this.spawn();
      }
      const pending = this.queue.shift()!;
      slot.current = pending;
      slot.worker.ref();
      this.post(slot, { type: 'detect', id: pending.id, job: pending.job });
    }
  }

  private spawn(): Slot {
    const data: DetectorWorkerData = { cocoResolveFrom: this.options.cocoResolveFrom ?? null };
    const worker = startWorker(data);
    this.started++;
    const slot: Slot = { worker, current: null };
    this.slots.add(slot);
    worker.on('message', (message: ToParent) => this.receive(slot, message));
    worker.on('error', (err) => this.lose(slot, `failed: ${err.message}`));
    worker.on('exit', (code) => this.lose(slot, `stopped with exit code ${code}`));
    return slot;
  }

  private receive(slot: Slot, message: ToParent): void {
    if (message.type === 'closed') return;
    const pending = slot.current;
    if (!pending || pending.id !== message.id) return;
    slot.current = null;
    // An idle thread does not keep the process alive.
    slot.worker.unref();
    if (message.type === 'done') this.settle(pending, () => pending.resolve(message.document));
    else {
      const failure = message.error;
      this.settle(pending, () =>
        pending.reject(
          failure.kind === 'internal'
            ? new FaveFailure(faveError('INTERNAL', `the object detector failed on ${pending.job.inputUri}: ${failure.message}`))
            : new DetectorFailure(failure),
        ),
      );
    }
    this.dispatch();
  }

  /** The thread is gone: its picture fails (it may be tried again), and the next one gets a new thread. */
  private lose(slot: Slot, how: string): void {
    if (!this.slots.delete(slot)) return;
    const pending = slot.current;
    slot.current = null;
    if (pending) {
      this.settle(pending, () => pending.reject(new FaveFailure(faveError('INTERNAL', `the object detector's worker thread ${how} while detecting in ${pending.job.inputUri}`))));
    }
    if (!this.closed) this.dispatch();
  }

  private settle(pending: Pending, action: () => void): void {
    if (pending.settled) return;
    pending.settled = true;
    pending.signal.removeEventListener('abort', pending.onAbort);
    action();
  }

  private post(slot: Slot, message: ToWorker): void {
    slot.worker.postMessage(message);
  }

  private async stop(slot: Slot): Promise<void> {
    const { worker } = slot;
    const released = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_GRACE_MS);
      timer.unref();
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      worker.on('message', (message: ToParent) => message.type === 'closed' && done());
      worker.once('exit', done);
    });
    // Held open until it has answered, or a closing process would leave before its threads.
    worker.ref();
    this.post(slot, { type: 'close' });
    await released;
    await worker.terminate();
    this.lose(slot, 'was closed');
  }
}

/** Started from the TypeScript sources or the compiled JavaScript, whichever this module is. */
function startWorker(data: DetectorWorkerData): Worker {
  try {
    return startWorkerThread(import.meta.url, 'detector-worker', { workerData: data });
  } catch (err) {
    throw new FaveFailure(faveError('INTERNAL', `the detector thread could not be started: ${(err as Error).message}`));
  }
}
