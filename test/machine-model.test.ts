import { describe, expect, it } from 'vitest';
import { type Actor, type AnyStateMachine, type EventObject } from 'xstate';
import { pipelineMachine, type PipelineMachine } from '../src/machine/pipeline.machine.ts';
import { inertActors } from './support/inert-actors.ts';
import { persistedSnapshotOf } from '../src/persistence/state-file.ts';
import type { PipelineContext, PipelineInput } from '../src/domain/context.ts';
import { declaredTransitions, coverTransitions } from './support/model.ts';
import { invocationRecord, testSettings } from './support/fixtures.ts';
import { type Settings } from '../src/domain/settings.ts';

/** The model sends every done/error event itself: the actors it runs never settle. */

const settings = (tolerated: number, detector = true): Settings =>
  testSettings({
    bucket: 'fave-artifacts',
    timeouts_ms: { ffmpeg0: 1000, librosa: 1000, ffmpeg1: 1000, ffmpeg2: 1000, deepspeech: 1000, ffmpeg3: 1000, detector: 1000 },
    retry: { max_attempts: 2, base_delay_ms: 1, max_delay_ms: 2, stop_on_repeated_error: true },
    max_concurrency: 1,
    tolerated_failure_pct: tolerated,
    detector_enabled: detector,
    deadline_at: Date.now() + 3_600_000,
  });

const record = (stage: string) => invocationRecord(stage);
const failure = { code: 'STAGE_REPORTED_ERROR' as const, message: 'bad input', attempts: 1 };

function callOutput(id: string, stage: string, facts: unknown, ok: boolean) {
  return {
    type: `xstate.done.actor.${id}`,
    output: { task_id: id, step: stage, clip_index: null, frame_index: null, facts: ok ? facts : null, error: ok ? null : failure, records: [record(stage)] },
  };
}

type Snap = { value: unknown; context: PipelineContext };

function pipelineEvents(clipCount: number) {
  return (s: Snap): EventObject[] => {
    const ctx = s.context;
    const value = s.value;
    const top = typeof value === 'string' ? value : Object.keys(value as object)[0]!;
    const sub = typeof value === 'object' ? (value as Record<string, string>)[top] : null;
    const events: EventObject[] = [];
    if (ctx.error === null && ctx.finished_at === null) {
      events.push({ type: 'CANCEL' });
      events.push({ type: 'STAGE.RETRYING', task_id: top, record: { ...record(top), outcome: 'error', http_status: 502 } } as EventObject);
      events.push({ type: 'STAGE.DISPATCHED', dispatches: { [top]: { run: 0, attempt: 1, call_id: 'c-1', dispatched_at: 1, timeout_ms: 1000 } } } as EventObject);
    }
    switch (top) {
      case 'INIT':
        events.push({ type: 'xstate.done.actor.importInput', output: { input_uri: 's3://b/in.mp4' } } as EventObject);
        events.push({ type: 'xstate.error.actor.importInput', error: { code: 'INPUT_NOT_FOUND', message: 'gone' } } as EventObject);
        break;
      case 'FFMPEG0':
        for (const ok of [true, false]) events.push(callOutput('ffmpeg0', 'ffmpeg0', { kind: 'output', uri: 's3://b/a.tgz' }, ok));
        break;
      case 'LIBROSA':
        for (const ok of [true, false]) {
          events.push(callOutput('librosa', 'librosa', { kind: 'timestamps', uri: 's3://b/l.tgz', clip_times: [{ start_s: 0, end_s: 1 }] }, ok));
        }
        break;
      case 'CLIP': {
        const clips = Array.from({ length: clipCount }, (_, i) => ({ index: i, uri: `s3://b/c${i}.mp4`, start_s: null, end_s: null }));
        for (const ok of [true, false]) events.push(callOutput('ffmpeg1', 'ffmpeg1', { kind: 'clips', uri: 's3://b/c.mp4', clips }, ok));
        events.push(callOutput('ffmpeg1', 'ffmpeg1', { kind: 'clips', uri: 's3://b/c.mp4', clips: [] }, true));
        break;
      }
      case 'FANOUT': {
        const clip = ctx.clips.find((c) => c.status === 'pending');
        if (clip) {
          const step = (stage: string, facts: unknown, ok: boolean) =>
            ({
              type: 'CLIPS.PROGRESS',
              results: [
                {
                  clip_index: clip.index,
                  step: stage,
                  facts: ok ? facts : null,
                  error: ok ? null : { ...failure, stage: `stage-${stage}`, clip_index: clip.index },
                  records: [record(`stage-${stage}`)],
                },
              ],
            }) as EventObject;
          events.push(step('ffmpeg2', { kind: 'output', uri: 'c' }, true));
          events.push(step('ffmpeg3', { kind: 'frames', uri: 'f', frames: [{ index: 0, uri: 'f' }] }, true));
          events.push(step('deepspeech', null, false));
        }
        events.push({ type: 'CLIPS.PROGRESS', results: [], error: { code: 'INTERNAL', message: 'runner lost the state' } } as EventObject);
        break;
      }
      case 'DETECT':
        if (sub === 'detecting') {
          const pending = ctx.clips.flatMap((clip) => (clip.status === 'done' ? clip.frames.filter((f) => f.status === 'pending').map((f) => [clip.index, f.index] as const) : []));
          const [first] = pending;
          if (first) {
            for (const ok of [true, false]) {
              events.push({
                type: 'FRAMES.SETTLED',
                results: [
                  {
                    clip_index: first[0],
                    frame_index: first[1],
                    facts: ok ? { kind: 'detections', uri: 'd', detections: [{ label: 'car', confidence: 0.9 }], note: null } : null,
                    error: ok ? null : { ...failure, clip_index: first[0], frame_index: first[1] },
                    records: [record('stage-object-detector')],
                  },
                ],
              } as EventObject);
            }
          }
          events.push({ type: 'FRAMES.SETTLED', results: [], error: { code: 'INTERNAL', message: 'runner lost the state' } } as EventObject);
        }
        if (sub === 'aggregating') {
          events.push({ type: 'xstate.done.actor.writeResult', output: { final_uri: 'f' } } as EventObject);
          events.push({ type: 'xstate.error.actor.writeResult', error: { code: 'STORE_ERROR', message: 'disk full' } } as EventObject);
        }
        break;
      case 'FAILED':
        if (sub === 'reporting') {
          events.push({ type: 'xstate.done.actor.writeFailure', output: { final_uri: 'f' } } as EventObject);
          events.push({ type: 'xstate.error.actor.writeFailure', error: { code: 'STORE_ERROR', message: 'disk full' } } as EventObject);
        } else if (ctx.redrives < 1) {
          events.push({ type: 'REDRIVE' });
        }
        break;
    }
    return events;
  };
}

function serializePipeline(s: Snap): string {
  const c = s.context;
  return JSON.stringify([
    s.value,
    c.clips.map((clip) => [clip.status, clip.frames.map((f) => f.status), clip.progress.compressed_uri !== null]),
    c.failed_at,
    c.error?.code ?? null,
    c.clips_pending,
    c.frames_pending,
    c.redrives,
  ]);
}

function uncovered(machine: AnyStateMachine, taken: Set<string>): string[] {
  return [...declaredTransitions(machine).values()].filter((t) => !taken.has(t));
}

describe('model-based: every transition of the machines is taken', () => {
  it('the pipeline machine (FAILED paths, tolerance, cancel and redrive included), and its persisted snapshot at every step', () => {
    const machine: AnyStateMachine = pipelineMachine.provide({
      actors: inertActors(),
    });
    const taken = new Set<string>();
    let states = 0;
    let checked = 0;
    for (const tolerated of [0, 50]) {
      const input: PipelineInput = {
        request_id: 'model',
        video_uri: 's3://b/v.mp4',
        query: 'car',
        settings: settings(tolerated),
        started_at: 0,
      };
      const run = coverTransitions(machine, {
        input,
        events: pipelineEvents(2) as never,
        serializeState: serializePipeline as never,
        // state.json skips XState's search of the context for actor refs; it must change nothing.
        afterEvent: (actor) => {
          checked++;
          expect(persistedSnapshotOf(actor as Actor<PipelineMachine>)).toEqual(actor.getPersistedSnapshot());
        },
      });
      run.taken.forEach((t) => taken.add(t));
      states += run.states;
    }
    expect(states).toBeGreaterThan(20);
    expect(checked).toBeGreaterThan(states);
    expect(declaredTransitions(machine).size).toBeGreaterThan(30);
    expect(uncovered(machine, taken)).toEqual([]);
  });
});
