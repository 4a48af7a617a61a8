import { fromCallback, fromPromise } from 'xstate';
import type { ImportOutput, ResultOutput } from '../../src/machine/pipeline.machine.ts';
import type { RunnerEvent, RunnerInput } from '../../src/machine/work.ts';
import type { ImportInput, ResultInput, StageCallInput, StageCallOutput } from '../../src/domain/context.ts';

const never = <Output, Input>() => fromPromise<Output, Input>(() => new Promise<never>(() => {}));
const idleRunner = fromCallback<RunnerEvent, RunnerInput>(() => () => {});

/**
 * Actors for `pipelineMachine.provide` that do nothing and never settle: for tests that send the
 * machine its done and error events themselves, or only restore a snapshot.
 */
export function inertActors() {
  return {
    importInput: never<ImportOutput, ImportInput>(),
    writeResult: never<ResultOutput, ResultInput>(),
    stageCall: never<StageCallOutput, StageCallInput>(),
    runClips: idleRunner,
    detectFrames: idleRunner,
  };
}
