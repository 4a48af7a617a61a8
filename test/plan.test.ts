import { describe, expect, it } from 'vitest';
import * as plan from '../src/machine/plan.ts';
import { emptyProgress } from '../src/domain/context.ts';
import { nextStep, stepInput } from '../src/machine/clip-chain.ts';
import { summarizeProgress } from '../src/domain/progress.ts';
import { allRecords } from '../src/domain/answer.ts';
import { clipState as clip, invocationRecord, pipelineContext as context } from './support/fixtures.ts';
import type { DispatchMarker } from '../src/domain/invocations.ts';

const rec = (stage: string) => invocationRecord(stage);

describe('retries in progress', () => {
  it('are kept by task id until their call settles, whichever way the result comes', () => {
    const failed = { ...rec('stage-deepspeech'), clip_index: 0, outcome: 'error' as const, http_status: 502 };
    let ctx = context([clip(0, { status: 'pending' }), clip(1, { status: 'pending' })]);
    ctx = { ...ctx, ...plan.recordRetry(ctx, 'clip-0/deepspeech', failed) };
    ctx = { ...ctx, ...plan.recordRetry(ctx, 'clip-0/deepspeech', { ...failed, attempt: 2 }) };
    ctx = { ...ctx, ...plan.recordRetry(ctx, 'librosa', failed) };
    expect(ctx.retrying['clip-0/deepspeech']!.map((r) => r.attempt)).toEqual([1, 2]);
    // They are invocations already: counted in the progress and the answer's metrics.
    expect(summarizeProgress(ctx).invocations).toBe(3);
    expect(allRecords(ctx)).toHaveLength(3);

    // Another clip's step settling leaves them; the retried step settling takes its entry away.
    const other = plan.settleClipSteps(ctx, [{ clip_index: 1, step: 'ffmpeg2', facts: { kind: 'output', uri: 'c1' }, error: null, records: [] }]);
    expect(other.retrying).toBe(ctx.retrying);
    const settled = plan.settleClipSteps(ctx, [
      { clip_index: 0, step: 'deepspeech', facts: { kind: 'transcript', uri: 't', transcript: 'x', note: null }, error: null, records: [] },
    ]);
    expect(Object.keys(settled.retrying!)).toEqual(['librosa']);

    const step = plan.applyStep(ctx, { task_id: 'librosa', step: 'librosa', clip_index: null, frame_index: null, facts: null, error: null, records: [] });
    expect(Object.keys(step.retrying!)).toEqual(['clip-0/deepspeech']);
    expect(plan.prepareRedrive({ ...ctx, clips: [] }, 0).retrying).toEqual({});
  });
});

describe('the clip chain', () => {
  it('starts at the first step not finished, each step fed the previous output', () => {
    const p = emptyProgress();
    expect(nextStep(p)).toBe('ffmpeg2');
    expect(stepInput('ffmpeg2', { uri: 'clip' }, p)).toBe('clip');
    const compressed = { ...p, compressed_uri: 'c' };
    expect(nextStep(compressed)).toBe('deepspeech');
    expect(stepInput('deepspeech', { uri: 'clip' }, compressed)).toBe('c');
    const transcribed = { ...compressed, transcript_uri: 't' };
    expect(nextStep(transcribed)).toBe('ffmpeg3');
    expect(stepInput('ffmpeg3', { uri: 'clip' }, transcribed)).toBe('t');
    expect(nextStep({ ...transcribed, frames: [] })).toBeNull();
  });
});

describe('settleClipSteps', () => {
  it('keeps each finished step, and finishes the clip with its frames on the last one', () => {
    const ctx = context([clip(0), clip(1)]);
    const after = plan.settleClipSteps(ctx, [
      { clip_index: 0, step: 'ffmpeg2', facts: { kind: 'output', uri: 'c0' }, error: null, records: [rec('stage-ffmpeg-2')] },
      { clip_index: 1, step: 'ffmpeg3', facts: { kind: 'frames', uri: 'f', frames: [{ index: 0, uri: 'f0' }] }, error: null, records: [rec('stage-ffmpeg-3')] },
    ]);
    expect(after.clips![0]).toMatchObject({ status: 'pending', progress: { compressed_uri: 'c0' } });
    expect(after.clips![0]!.records).toHaveLength(1);
    expect(after.clips![1]).toMatchObject({ status: 'done', frames: [{ index: 0, uri: 'f0', status: 'pending' }] });
    expect(after.clips_pending).toBe(1);
    expect(after.failed_clips).toBe(0);
    expect(ctx.clips[0]!.progress.compressed_uri).toBeNull();
  });

  it('fails the clip on a failed step, once, and ignores results for clips already ended', () => {
    const error = { code: 'STAGE_REPORTED_ERROR' as const, message: 'no', stage: 'stage-deepspeech', clip_index: 0, attempts: 1 };
    const ctx = context([clip(0), clip(1, { status: 'done' })]);
    const after = plan.settleClipSteps(ctx, [
      { clip_index: 0, step: 'deepspeech', facts: null, error, records: [rec('stage-deepspeech')] },
      { clip_index: 1, step: 'ffmpeg2', facts: { kind: 'output', uri: 'late' }, error: null, records: [] },
    ]);
    expect(after.clips![0]).toMatchObject({ status: 'failed', error });
    expect(after.clips![1]).toBe(ctx.clips[1]);
    expect(after.failed_clips).toBe(1);
    expect(after.clips_pending).toBe(0);
    expect(plan.tooManyFailures({ ...ctx, ...after })).toBe(true);
    expect(plan.tooManyFailuresError({ ...ctx, ...after })).toEqual(error);
  });
});

describe('settleFrames', () => {
  it('records detections per frame and fails the clip of a failed frame', () => {
    const frames = [0, 1].map((i) => ({ index: i, uri: `f${i}`, status: 'pending' as const, detections: [], note: null, records: [], error: null }));
    const ctx = context([clip(0, { status: 'done', frames }), clip(1, { status: 'done', frames })], { frames_pending: 4, clips_pending: 0 });
    const error = { code: 'STAGE_CONTRACT' as const, message: 'bad', stage: 'stage-object-detector', clip_index: 1, frame_index: 0, attempts: 1 };
    const after = plan.settleFrames(ctx, [
      { clip_index: 0, frame_index: 1, facts: { kind: 'detections', uri: 'd', detections: [{ label: 'car', confidence: 0.9 }], note: null }, error: null, records: [rec('d')] },
      { clip_index: 1, frame_index: 0, facts: null, error, records: [rec('d')] },
    ]);
    expect(after.clips![0]!.frames[1]).toMatchObject({ status: 'done', detections: [{ label: 'car', confidence: 0.9 }] });
    expect(after.clips![0]!.status).toBe('done');
    expect(after.clips![1]).toMatchObject({ status: 'failed', error });
    expect(after.frames_pending).toBe(2);
    expect(after.failed_clips).toBe(1);
  });
});

describe('clipSettled', () => {
  const frame = (index: number, status: 'pending' | 'done' | 'failed') => ({ index, uri: `f${index}`, status, detections: [], note: null, records: [], error: null });

  it('is true once the chain failed or every frame is detected or failed, and not before', () => {
    expect(plan.clipSettled(clip(0))).toBe(false);
    expect(plan.clipSettled(clip(0, { status: 'failed' }))).toBe(true);
    expect(plan.clipSettled(clip(0, { status: 'done', frames: [frame(0, 'done'), frame(1, 'pending')] }))).toBe(false);
    expect(plan.clipSettled(clip(0, { status: 'done', frames: [frame(0, 'done'), frame(1, 'failed')] }))).toBe(true);
    // A clip without frames has nothing left to detect.
    expect(plan.clipSettled(clip(0, { status: 'done' }))).toBe(true);
  });
});

describe('tolerance and redrive', () => {
  it('tolerates failures up to the profile percentage', () => {
    const clips = Array.from({ length: 10 }, (_, i) => clip(i, { status: i === 0 ? 'failed' : 'done', error: i === 0 ? { code: 'INTERNAL', message: 'x' } : null }));
    const ctx = context(clips, { failed_clips: 1 });
    expect(plan.tooManyFailures({ ...ctx, settings: { ...ctx.settings, tolerated_failure_pct: 10 } })).toBe(false);
    expect(plan.tooManyFailures({ ...ctx, settings: { ...ctx.settings, tolerated_failure_pct: 5 } })).toBe(true);
    const error = plan.tooManyFailuresError({ ...ctx, settings: { ...ctx.settings, tolerated_failure_pct: 5 } });
    expect(error).toMatchObject({ code: 'TOO_MANY_FAILURES' });
    expect(error.message).toContain('1 of 10 clips failed (10%)');
  });

  it('redrive keeps finished work, reopens failed units and renews the deadline', () => {
    const failedFrame = { index: 0, uri: 'f0', status: 'failed' as const, detections: [], note: null, records: [], error: { code: 'INTERNAL' as const, message: 'x' } };
    const clips = [
      clip(0, { status: 'done' }),
      clip(1, { status: 'failed', progress: { ...emptyProgress(), compressed_uri: 'c1' }, error: { code: 'INTERNAL', message: 'x' } }),
      clip(2, {
        status: 'failed',
        progress: { ...emptyProgress(), compressed_uri: 'c', transcript_uri: 't', frames: [{ index: 0, uri: 'f0' }] },
        frames: [failedFrame],
        error: { code: 'INTERNAL', message: 'x' },
      }),
    ];
    const ctx = context(clips, {
      failed_clips: 2,
      error: { code: 'INTERNAL', message: 'x' },
      failed_at: 'FANOUT',
      started_at: 100,
      settings: { ...context([]).settings, deadline_at: 600 },
    });
    const after = plan.prepareRedrive(ctx, 1000);
    expect(after.clips!.map((c) => c.status)).toEqual(['done', 'pending', 'done']);
    expect(after.clips![1]!.progress.compressed_uri).toBe('c1');
    expect(after.clips![2]!.frames[0]).toMatchObject({ status: 'pending', error: null });
    expect(after).toMatchObject({ failed_clips: 0, clips_pending: 1, error: null, failed_at: null, redrives: 1 });
    expect(after.settings!.deadline_at).toBe(1500);
  });
});

describe('journaled attempts without a record, on resume', () => {
  const marker = (id: string, over: Partial<DispatchMarker> = {}): DispatchMarker => ({
    id,
    task_id: 'clip-0/ffmpeg2',
    stage: 'stage-ffmpeg-2',
    clip_index: 0,
    frame_index: null,
    attempt: 1,
    at: 500,
    ...over,
  });

  it('an async attempt of this run is queued again, waited for from its marker; a sync one is interrupted', () => {
    const ctx = context([clip(0), clip(1)]);
    const {
      context: after,
      interrupted,
      queued,
    } = plan.recordInterrupted(
      ctx,
      [marker('a0', { mode: 'async', run: 0, timeout_ms: 7000 }), marker('s1', { task_id: 'clip-1/ffmpeg2', clip_index: 1, mode: 'sync', run: 0, timeout_ms: 7000 })],
      800,
    );
    expect({ interrupted, queued }).toEqual({ interrupted: 1, queued: 1 });
    expect(after.dispatched['clip-0/ffmpeg2']).toEqual({ run: 0, attempt: 1, call_id: null, dispatched_at: 500, timeout_ms: 7000, dispatch_id: 'a0' });
    expect(after.clips[0]!.records).toEqual([]);
    expect(after.clips[1]!.records.map((r) => [r.outcome, r.dispatch_id])).toEqual([['interrupted', 's1']]);
    // Read again (a second resume), nothing changes: the queued marker is known now.
    expect(plan.recordInterrupted(after, [marker('a0', { mode: 'async', run: 0, timeout_ms: 7000 })], 900)).toMatchObject({ interrupted: 0, queued: 0 });
  });

  it('an async attempt of an earlier run, one its call went past, or a marker without a mode is interrupted', () => {
    const failed = { ...rec('stage-ffmpeg-2'), clip_index: 0, outcome: 'error' as const, attempt: 1, dispatch_id: 'x' };
    const ctx = context([clip(0)], { redrives: 1, retrying: { 'clip-0/ffmpeg2': [failed] } });
    const { interrupted, queued } = plan.recordInterrupted(
      ctx,
      [
        marker('old', { mode: 'async', run: 0, timeout_ms: 7000, attempt: 2 }),
        marker('past', { mode: 'async', run: 1, timeout_ms: 7000, attempt: 1 }),
        marker('plain', { attempt: 2 }),
      ],
      800,
    );
    expect({ interrupted, queued }).toEqual({ interrupted: 3, queued: 0 });
  });
});
