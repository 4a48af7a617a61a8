import { parentPort, workerData } from 'node:worker_threads';
import { DetectionRejection, DetectionToolFailure, releaseDetection, runDetection, warmDetection } from './detection.ts';
import type { ToParent, ToWorker, WorkerFailure, DetectorWorkerData } from './detector-pool.ts';

/**
 * A detector thread: it takes one picture at a time from the pool, and holds the model (and the
 * optional packages that run it, loaded here and only here) for the pictures after it.
 */

const port = parentPort;
if (!port) throw new Error('detector-worker.ts runs as a worker thread of the detector pool');
const { cocoResolveFrom } = workerData as DetectorWorkerData;
const running = new Map<number, AbortController>();

function describe(err: unknown): WorkerFailure {
  if (err instanceof DetectionRejection) return { kind: 'rejection', message: err.message };
  if (err instanceof DetectionToolFailure) {
    const { tool, exitCode, reason, stderr } = err.failure;
    return { kind: 'tool', what: err.what, tool, exitCode, reason, stderr };
  }
  return { kind: 'internal', message: err instanceof Error ? err.message : String(err) };
}

function send(message: ToParent): void {
  port!.postMessage(message);
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'detect': {
      const controller = new AbortController();
      running.set(message.id, controller);
      void runDetection(message.job, controller.signal, cocoResolveFrom ?? undefined)
        .then(
          (document) => send({ type: 'done', id: message.id, document }),
          (err: unknown) => send({ type: 'failed', id: message.id, error: describe(err) }),
        )
        .finally(() => running.delete(message.id));
      return;
    }
    case 'warm':
      void warmDetection(message.engine, message.modelPath, cocoResolveFrom ?? undefined).catch(() => undefined);
      return;
    case 'abort':
      running.get(message.id)?.abort();
      return;
    case 'close':
      for (const controller of running.values()) controller.abort();
      void releaseDetection()
        .catch(() => undefined)
        .finally(() => send({ type: 'closed' }));
      return;
  }
});
