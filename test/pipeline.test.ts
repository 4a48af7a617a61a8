import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.ts';
import { expectedClips, type ScriptOptions } from './support/test-gateway.ts';
import { until } from './support/until.ts';
import type { ClipResult } from '../src/domain/result.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** The objects a clip should report, computed independently from the script's detections. */
function expectedObjects(frames: Array<{ frame_index: number; detections: Array<{ label: string; confidence: number }> }>) {
  const by = new Map<string, { count: number; max: number; frames: number[]; inFrame: Map<number, number> }>();
  for (const f of frames) {
    for (const d of f.detections) {
      const e = by.get(d.label) ?? { count: 0, max: 0, frames: [], inFrame: new Map<number, number>() };
      e.count++;
      e.max = Math.max(e.max, d.confidence);
      e.inFrame.set(f.frame_index, (e.inFrame.get(f.frame_index) ?? 0) + 1);
      if (!e.frames.includes(f.frame_index)) e.frames.push(f.frame_index);
      by.set(d.label, e);
    }
  }
  return [...by.entries()]
    .map(([label, e]) => ({ label, count: e.count, max_in_frame: Math.max(...e.inFrame.values()), max_confidence: e.max, frames: e.frames }))
    .sort((a, b) => b.count - a.count || b.max_confidence - a.max_confidence || a.label.localeCompare(b.label));
}

function expectedResultClips(script: ScriptOptions, requestId: string): ClipResult[] {
  return expectedClips(script, requestId).map((c) => ({
    index: c.index,
    start_s: c.start_s,
    end_s: c.end_s,
    uri: c.uri!,
    transcript: c.transcript,
    transcript_note: c.transcript_note === null ? null : `no transcript: ${c.transcript_note}`,
    objects: expectedObjects(c.frames),
    objects_note: c.detections_note === null ? null : `no detections available: ${c.detections_note}`,
    frames: c.frames.length,
    status: 'done',
    error: null,
  }));
}

describe('the pipeline through an OpenFaaS-like gateway', () => {
  it('answers a 20-clip × 5-frame request exactly, never above MAX_CONCURRENT_INVOCATIONS', async () => {
    const script = { clips: 20, framesPerClip: 5, clipTimesIn: 'timestamps' as const };
    h = await startHarness({ gateway: { ...script, latencyMs: 3 }, env: { MAX_CONCURRENT_INVOCATIONS: '4' } });
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, query: 'find scenes with cars', request_id: 'req-20x5' });
    const outcome = await handle.done;
    expect(outcome.status).toBe('COMPLETED');

    const final = await h.readFinal('req-20x5');
    expect(final.status).toBe('COMPLETED');
    expect(final.partial).toBe(false);
    expect(final.clips).toEqual(expectedResultClips(script, 'req-20x5'));

    // Cars are detected in even clips; clips 0, 3, 6, … say "car". Both count, objects first.
    const carClips = final.clips.filter((c) => c.objects.some((o) => o.label === 'car' && o.max_confidence >= 0.5)).map((c) => c.index);
    const saidCar = final.clips.filter((c) => /\bcar\b/.test(c.transcript ?? '')).map((c) => c.index);
    const matched = [...new Set([...carClips, ...saidCar])].sort((a, b) => a - b);
    expect(final.matches.map((m) => m.clip_index).sort((a, b) => a - b)).toEqual(matched);
    for (const m of final.matches) {
      const clip = final.clips[m.clip_index]!;
      expect(m.start_s).toBe(clip.start_s);
      expect(m.end_s).toBe(clip.end_s);
      const car = clip.objects.find((o) => o.label === 'car');
      if (car) expect(m.reasons).toContainEqual({ type: 'object', label: 'car', confidence: car.max_confidence });
      else expect(m.reasons).toEqual([{ type: 'transcript', word: 'car' }]);
    }

    // 3 single stages + 20 × 3 clip stages + 100 frames.
    expect(h.gateway.calls).toHaveLength(3 + 60 + 100);
    expect(final.metrics.invocations).toBe(163);
    expect(final.metrics.stages['stage-object-detector']!.count).toBe(100);
    expect(h.gateway.maxConcurrentByRequest('req-20x5')).toBeLessThanOrEqual(4);
    expect(h.gateway.maxConcurrentByRequest('req-20x5')).toBeGreaterThan(1);

    const state = await h.readState('req-20x5');
    expect(state.status).toBe('COMPLETED');
    expect(state.state).toBe('COMPLETED');
    expect(state.lease).toBeNull();
    expect(state.progress).toMatchObject({ clips_total: 20, clips_done: 20, frames_total: 100, frames_done: 100, invocations: 163 });
    expect(outcome.result).toEqual(final);
  });

  it('lists every clip with no matches when there is no query', async () => {
    h = await startHarness({ gateway: { clips: 4, framesPerClip: 2 } });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(outcome.result.clips.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(outcome.result.matches).toEqual([]);
    expect(outcome.result.query).toBeNull();
  });

  it('reads times from ffmpeg-1 metadata, inline and .txt transcripts, and dummy transcripts as none', async () => {
    for (const transcriptMode of ['inline', 'txt', 'dummy'] as const) {
      const script = { clips: 3, framesPerClip: 1, clipTimesIn: 'metadata' as const, transcriptMode, detectorMode: 'placeholder' as const };
      h = await startHarness({ gateway: script });
      const id = `modes-${transcriptMode}`;
      const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: id })).done;
      expect(outcome.result.clips).toEqual(expectedResultClips(script, id));
      if (transcriptMode === 'dummy') {
        expect(outcome.result.clips.every((c) => c.transcript === null && c.transcript_note?.startsWith('no transcript: '))).toBe(true);
      }
      expect(outcome.result.clips.every((c) => c.objects.length === 0 && c.objects_note?.startsWith('no detections available'))).toBe(true);
      await h.close();
      h = null;
    }
  });

  it('skips detection calls when ENABLE_OBJECT_DETECTOR=false', async () => {
    h = await startHarness({ gateway: { clips: 3, framesPerClip: 4 }, env: { ENABLE_OBJECT_DETECTOR: 'false' } });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, query: 'dog' })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(h.gateway.callsTo('detector')).toHaveLength(0);
    expect(outcome.result.clips.every((c) => c.objects_note === 'object detection disabled (ENABLE_OBJECT_DETECTOR=false)')).toBe(true);
    expect(outcome.result.matches.map((m) => m.clip_index)).toEqual([1]);
  });
});

describe('failures', () => {
  it('heals transient 502s, resets and a timeout through retries with backoff', async () => {
    h = await startHarness({
      gateway: {
        clips: 4,
        framesPerClip: 2,
        faults: [
          { stage: 'ffmpeg0', kind: 'status', status: 502, times: 2 },
          { stage: 'ffmpeg2', clip: 2, kind: 'status', status: 503, times: 1 },
          { stage: 'deepspeech', clip: 1, kind: 'hang', times: 1 },
          { stage: 'detector', clip: 3, frame: 1, kind: 'reset', times: 1 },
          { stage: 'ffmpeg3', clip: 0, kind: 'status', status: 504, times: 1 },
        ],
      },
      env: { STAGE_TIMEOUT_SECONDS: '0.5' },
    });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'heals' })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(outcome.result.metrics.retries).toBe(6);
    expect(h.gateway.callsTo('ffmpeg0')).toHaveLength(3);
    const state = await h.readState('heals');
    const ctx = state.snapshot.context;
    expect(ctx.records.filter((r) => r.stage === 'stage-ffmpeg-0').map((r) => [r.attempt, r.http_status, r.outcome])).toEqual([
      [1, 502, 'error'],
      [2, 502, 'error'],
      [3, 200, 'success'],
    ]);
    const deepspeech = ctx.clips[1]!.records.filter((r) => r.stage === 'stage-deepspeech');
    expect(deepspeech.map((r) => (r.error as { code?: string } | null)?.code ?? 'ok')).toEqual(['STAGE_TIMEOUT', 'ok']);
  });

  it.each([
    ['a status "error" answer', { stage: 'librosa', kind: 'error' as const }, 'STAGE_REPORTED_ERROR', 'stage-librosa', {}],
    ['a malformed body', { stage: 'ffmpeg3', clip: 2, kind: 'malformed' as const }, 'STAGE_CONTRACT', 'stage-ffmpeg-3', { clip_index: 2 }],
    ['a contract breach', { stage: 'detector', clip: 1, frame: 0, kind: 'contract' as const }, 'STAGE_CONTRACT', 'stage-object-detector', { clip_index: 1, frame_index: 0 }],
    ['a 404', { stage: 'ffmpeg2', clip: 0, kind: 'status' as const, status: 404 }, 'STAGE_NOT_FOUND', 'stage-ffmpeg-2', { clip_index: 0 }],
  ])('fails at once on %s, naming stage, clip or frame, in state.json', async (_name, fault, code, stage, where) => {
    h = await startHarness({ gateway: { clips: 3, framesPerClip: 2, faults: [fault] } });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'fails' })).done;
    expect(outcome.status).toBe('FAILED');
    const error = outcome.result.error!;
    expect(error).toMatchObject({ code, stage, attempts: 1, ...where });
    expect(error.message).toContain(stage);
    const matching = h.gateway.calls.filter((c) => c.stage === stage && (!('clip' in fault) || c.clip === fault.clip) && (!('frame' in fault) || c.frame === fault.frame));
    expect(matching).toHaveLength(1);
    const state = await h.readState('fails');
    expect(state.status).toBe('FAILED');
    expect(state.error).toMatchObject({ code, stage, attempts: 1, ...where });
    expect(state.snapshot.context.failed_at).toBeTruthy();
    const final = await h.readFinal('fails');
    expect(final.status).toBe('FAILED');
  });

  it('cuts off a hanging stage at its timeout and gives up after max attempts', async () => {
    h = await startHarness({
      gateway: { clips: 2, framesPerClip: 1, faults: [{ stage: 'ffmpeg1', kind: 'hang' }] },
      env: { STAGE_TIMEOUT_SECONDS: '0.3', RETRY_MAX_ATTEMPTS: '2' },
    });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'hangs' })).done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.result.error).toMatchObject({ code: 'STAGE_TIMEOUT', stage: 'stage-ffmpeg-1', attempts: 2 });
    expect(outcome.result.error!.message).toContain('300 ms');
    expect(h.gateway.callsTo('ffmpeg1')).toHaveLength(2);
    const state = await h.readState('hangs');
    expect(state.snapshot.context.failed_at).toBe('CLIP');
  });

  it('tolerates failed clips up to the profile percentage and answers partial', async () => {
    h = await startHarness({
      gateway: { clips: 10, framesPerClip: 1, faults: [{ stage: 'deepspeech', clip: 4, kind: 'error' }] },
      env: { TOLERATED_FAILURE_PCT: '10' },
    });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(outcome.result.partial).toBe(true);
    expect(outcome.result.failed_clips).toEqual([{ clip_index: 4, error: expect.objectContaining({ code: 'STAGE_REPORTED_ERROR', stage: 'stage-deepspeech', clip_index: 4 }) }]);
    expect(outcome.result.clips[4]!.status).toBe('failed');
    expect(h.gateway.callsTo('ffmpeg3').some((c) => c.clip === 4)).toBe(false);
  });

  it('fails with TOO_MANY_FAILURES beyond the tolerated percentage', async () => {
    h = await startHarness({
      gateway: {
        clips: 10,
        framesPerClip: 1,
        faults: [
          { stage: 'ffmpeg2', clip: 1, kind: 'error' },
          { stage: 'ffmpeg2', clip: 2, kind: 'error' },
        ],
      },
      env: { TOLERATED_FAILURE_PCT: '10', MAX_CONCURRENT_INVOCATIONS: '1' },
    });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri })).done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.result.error).toMatchObject({ code: 'TOO_MANY_FAILURES', stage: 'stage-ffmpeg-2', clip_index: 1 });
  });

  it('cancels a running request: in-flight calls aborted, no new ones, CANCELLED persisted', async () => {
    h = await startHarness({ gateway: { clips: 6, framesPerClip: 1, faults: [{ stage: 'ffmpeg2', kind: 'hang' }] } });
    const harness = h;
    const handle = await harness.app.orchestrator.submit({ video_uri: harness.videoUri, request_id: 'cancel-me' });
    await until(() => harness.gateway.callsTo('ffmpeg2').length >= 6 || harness.gateway.inFlight >= 6, { message: 'six ffmpeg-2 calls hanging' });
    expect(h.app.orchestrator.cancel('cancel-me', 'user asked')).toBe(true);
    const outcome = await handle.done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.result.error).toMatchObject({ code: 'CANCELLED' });
    const calls = h.gateway.calls.length;
    // Out of the registry means its actor is stopped: once the aborted calls have left the
    // gateway, nothing is left that could make another call.
    await until(() => harness.app.orchestrator.get('cancel-me') === undefined && harness.gateway.inFlight === 0, {
      message: () => `cancel-me to stop (${harness.gateway.inFlight} calls in flight)`,
    });
    expect(h.gateway.calls.length).toBe(calls);
    expect((await h.readState('cancel-me')).error).toMatchObject({ code: 'CANCELLED', stage: 'FANOUT' });
  });
});
