import { createActor } from 'xstate';
import type { StageRequest } from '../src/transport/contract.ts';
import { pipelineMachine } from '../src/machine/pipeline.machine.ts';
import { createActors } from '../src/orchestrator/actors.ts';
import { parseStateFile, restorable, restoringPlainContext } from '../src/persistence/state-file.ts';
import type { ObjectLocation, Store } from '../src/persistence/store.ts';
import { createLimiter } from '../src/lib/limiter.ts';
import type { StageCallOptions, StageHttpResponse, StageTransport } from '../src/transport/transport.ts';

/**
 * What a resume costs before any stage is called again: read state.json from the store, parse and validate
 * it, restore the machine from its snapshot (children included) and start it. The actor is
 * stopped at once; the stage calls its restored children start never leave the process.
 */

export interface ResumeTiming {
  read_ms: number;
  parse_ms: number;
  rehydrate_ms: number;
  total_ms: number;
  bytes: number;
  clips: number;
  /** Actors alive right after the start: the in-flight units that a resume restarts. */
  children: number;
}

/** A gateway that is never reached: every call waits for its abort. */
class UnreachableTransport implements StageTransport {
  readonly kind = 'http' as const;

  call(_name: string, _request: StageRequest, options: StageCallOptions): Promise<StageHttpResponse> {
    return new Promise((_, reject) => {
      const abort = () => reject(new Error('aborted'));
      if (options.signal.aborted) abort();
      else options.signal.addEventListener('abort', abort, { once: true });
    });
  }

  async close(): Promise<void> {}
}

/**
 * Resumes the state file at `loc` in `store` `reps` times and answers the median; `first_ms` is
 * the first of them, paid while the parsing and machine code paths are still cold.
 */
export async function timeResume(store: Store, loc: ObjectLocation, reps: number): Promise<ResumeTiming & { first_ms: number }> {
  // As the orchestrator restores a request (src/orchestrator/execution.ts): the object read
  // through the store and decoded as `RequestRepository.readState` does, then parsed.
  const machine = restoringPlainContext(pipelineMachine.provide({ actors: createActors({ transport: new UnreachableTransport(), store, limiter: createLimiter(256) }) }));
  const runs: ResumeTiming[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const text = (await store.get(loc)).toString('utf8');
    const t1 = performance.now();
    const envelope = parseStateFile(text, loc.key);
    const t2 = performance.now();
    const context = envelope.snapshot.context;
    const actor = createActor(machine, restorable(envelope.snapshot));
    actor.start();
    const children = Object.keys(actor.getSnapshot().children).length;
    actor.stop();
    const t3 = performance.now();
    runs.push({
      read_ms: t1 - t0,
      parse_ms: t2 - t1,
      rehydrate_ms: t3 - t2,
      total_ms: t3 - t0,
      bytes: Buffer.byteLength(text),
      clips: context.clips.length,
      children,
    });
  }
  const first = runs[0]!.total_ms;
  runs.sort((a, b) => a.total_ms - b.total_ms);
  return { ...runs[Math.floor(runs.length / 2)]!, first_ms: first };
}
