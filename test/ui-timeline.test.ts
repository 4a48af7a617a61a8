import { describe, expect, it } from 'vitest';
import type { InvocationRecord } from '../src/domain/invocations.ts';
import {
  buildTimeline,
  criticalPath,
  flattenInvocations,
  invocationKey,
  layoutLanes,
  mergeInvocations,
  predecessorOf,
  stepsByName,
  toInvocation,
  type Invocation,
} from '../src/ui/timeline.ts';
import { invocationRecord } from './support/fixtures.ts';
import { DEFAULT_STAGE_NAMES } from '../src/domain/stage.ts';

const N = DEFAULT_STAGE_NAMES;

function rec(stage: string, start: number, end: number, extra: Partial<InvocationRecord> = {}): InvocationRecord {
  return invocationRecord(stage, { queued_at: start, started_at: start, ended_at: end, latency_ms: end - start, cold_start: false, ...extra });
}

/**
 * Two clips of one frame each. Clip 1's deepspeech fails once and is retried, which makes
 * clip 1 the last to settle; frame (1,0) is the last detection to end.
 */
function sampleContext() {
  return {
    settings: { stage_names: N },
    records: [rec(N.ffmpeg0, 0, 10), rec(N.librosa, 10, 20), rec(N.ffmpeg1, 20, 30)],
    clips: [
      {
        records: [rec(N.ffmpeg2, 30, 40, { clip_index: 0 }), rec(N.deepspeech, 40, 50, { clip_index: 0 }), rec(N.ffmpeg3, 50, 60, { clip_index: 0 })],
        frames: [{ records: [rec(N.detector, 100, 110, { clip_index: 0, frame_index: 0, queued_at: 95 })] }],
      },
      {
        records: [
          rec(N.ffmpeg2, 30, 45, { clip_index: 1 }),
          rec(N.deepspeech, 45, 55, { clip_index: 1, outcome: 'error', http_status: 502, error: { code: 'STAGE_UNAVAILABLE', message: 'scaling' } }),
          rec(N.deepspeech, 70, 80, { clip_index: 1, attempt: 2, cold_start: true }),
          rec(N.ffmpeg3, 80, 95, { clip_index: 1 }),
        ],
        frames: [{ records: [rec(N.detector, 95, 130, { clip_index: 1, frame_index: 0 })] }],
      },
    ],
  };
}

const keyOf = (invocations: Invocation[]) => (i: number) => invocations[i]!.key;

describe('flattenInvocations', () => {
  it('collects the single stages, every clip chain and every frame, in order of start', () => {
    const invocations = flattenInvocations(sampleContext());
    expect(invocations).toHaveLength(12);
    expect(invocations.map((i) => i.started_at)).toEqual([...invocations.map((i) => i.started_at)].sort((a, b) => a - b));
    expect(invocations[0]).toMatchObject({ key: 'stage-ffmpeg-0|-|-|1', step: 'ffmpeg0', queued_at: 0, outcome: 'success' });
    const retried = invocations.find((i) => i.key === 'stage-deepspeech|1|-|2')!;
    expect(retried).toMatchObject({ attempt: 2, cold_start: true, step: 'deepspeech', clip_index: 1 });
    const failed = invocations.find((i) => i.key === 'stage-deepspeech|1|-|1')!;
    expect(failed).toMatchObject({ outcome: 'error', http_status: 502, error: { code: 'STAGE_UNAVAILABLE', message: 'scaling' } });
    expect(invocations.find((i) => i.key === 'stage-object-detector|0|0|1')).toMatchObject({ queued_at: 95, started_at: 100 });
  });

  it('shows the failed attempts of a call still being retried', () => {
    const failed = rec(N.librosa, 10, 20, { outcome: 'error', http_status: 502 });
    const context = { settings: { stage_names: N }, records: [rec(N.ffmpeg0, 0, 10)], retrying: { librosa: [failed] }, clips: [] };
    expect(flattenInvocations(context).map((i) => [i.key, i.outcome])).toEqual([
      ['stage-ffmpeg-0|-|-|1', 'success'],
      ['stage-librosa|-|-|1', 'error'],
    ]);
  });

  it('maps renamed functions to their step through the request settings', () => {
    const context = {
      settings: { stage_names: { ...N, ffmpeg2: 'my-compressor' } },
      records: [],
      clips: [{ records: [rec('my-compressor', 1, 2, { clip_index: 0 })], frames: [] }],
    };
    expect(flattenInvocations(context)[0]).toMatchObject({ stage: 'my-compressor', step: 'ffmpeg2', key: 'my-compressor|0|-|1' });
  });
});

describe('mergeInvocations', () => {
  it('adds live attempts the context does not hold yet, once', () => {
    const steps = stepsByName(N);
    const fromContext = flattenInvocations(sampleContext());
    const again = toInvocation(rec(N.ffmpeg0, 0, 10), steps);
    const fresh = toInvocation(rec(N.ffmpeg2, 200, 210, { clip_index: 5 }), steps);
    const merged = mergeInvocations(fromContext, [again, fresh]);
    expect(merged).toHaveLength(fromContext.length + 1);
    expect(merged.at(-1)!.key).toBe('stage-ffmpeg-2|5|-|1');
  });

  it('keeps a redriven attempt that reuses a key but started at another time', () => {
    const steps = stepsByName(N);
    const first = toInvocation(rec(N.ffmpeg0, 0, 10), steps);
    const redriven = toInvocation(rec(N.ffmpeg0, 50, 60), steps);
    expect(mergeInvocations([first], [redriven]).map((i) => i.started_at)).toEqual([0, 50]);
  });
});

describe('layoutLanes', () => {
  it('gives each stage a lane in pipeline order and packs overlapping bars into rows', () => {
    const invocations = flattenInvocations(sampleContext());
    const { lanes, bars } = layoutLanes(invocations);
    expect(lanes.map((l) => l.stage)).toEqual([N.ffmpeg0, N.librosa, N.ffmpeg1, N.ffmpeg2, N.deepspeech, N.ffmpeg3, N.detector]);
    expect(bars).toHaveLength(invocations.length);
    // ffmpeg-2 of both clips run at once: two rows; clip 1's retry reuses a free row.
    expect(lanes[0]!.rows).toBe(1);
    expect(lanes[3]!.rows).toBe(2);
    expect(lanes[4]!.rows).toBe(2);
    // The detections overlap between 100 and 110.
    expect(lanes[6]!.rows).toBe(2);
    for (const lane of lanes.keys()) {
      const inLane = bars.filter((b) => b.lane === lane);
      for (const a of inLane) {
        for (const b of inLane) {
          if (a === b || a.row !== b.row) continue;
          const x = invocations[a.index]!;
          const y = invocations[b.index]!;
          expect(x.ended_at <= y.queued_at || y.ended_at <= x.queued_at).toBe(true);
        }
      }
    }
  });

  it('puts stages it does not know after the pipeline, by name', () => {
    const steps = stepsByName(N);
    const invocations = [rec('zeta', 0, 1), rec('alpha', 0, 1), rec(N.librosa, 0, 1)].map((r) => toInvocation(r, steps));
    expect(layoutLanes(invocations).lanes.map((l) => [l.stage, l.step])).toEqual([
      [N.librosa, 'librosa'],
      ['alpha', null],
      ['zeta', null],
    ]);
  });
});

describe('criticalPath', () => {
  it('walks back from the last-ending invocation through what each one waited on', () => {
    const invocations = flattenInvocations(sampleContext());
    const path = criticalPath(invocations).map(keyOf(invocations));
    expect(path).toEqual([
      'stage-ffmpeg-0|-|-|1',
      'stage-librosa|-|-|1',
      'stage-ffmpeg-1|-|-|1',
      'stage-ffmpeg-2|1|-|1',
      'stage-deepspeech|1|-|1',
      'stage-deepspeech|1|-|2',
      'stage-ffmpeg-3|1|-|1',
      'stage-object-detector|1|0|1',
    ]);
  });

  it('follows the clip a step belongs to, and the whole fan-out for a detection', () => {
    const invocations = flattenInvocations(sampleContext());
    const index = (key: string) => invocations.findIndex((i) => i.key === key);
    const key = keyOf(invocations);
    // Clip 0's ffmpeg-3 waited on clip 0's deepspeech, not on clip 1's.
    expect(key(predecessorOf(invocations, index('stage-ffmpeg-3|0|-|1'))!)).toBe('stage-deepspeech|0|-|1');
    // A detection waits for every clip: its predecessor is the last clip step to end before it.
    expect(key(predecessorOf(invocations, index('stage-object-detector|0|0|1'))!)).toBe('stage-ffmpeg-3|1|-|1');
    expect(predecessorOf(invocations, index('stage-ffmpeg-0|-|-|1'))).toBeNull();
  });

  it('skips steps a redriven clip did not run again', () => {
    const steps = stepsByName(N);
    const invocations = [rec(N.ffmpeg1, 0, 10), rec(N.ffmpeg3, 20, 30, { clip_index: 0 })].map((r) => toInvocation(r, steps));
    expect(criticalPath(invocations)).toEqual([0, 1]);
  });

  it('is empty without invocations and a single link for one', () => {
    expect(criticalPath([])).toEqual([]);
    expect(criticalPath(flattenInvocations({ settings: { stage_names: N }, records: [rec(N.ffmpeg0, 0, 1)], clips: [] }))).toEqual([0]);
  });
});

describe('buildTimeline', () => {
  it('spans the request and marks the critical bars', () => {
    const invocations = flattenInvocations(sampleContext());
    const timeline = buildTimeline(invocations, { start: -5, end: 200 });
    expect(timeline.start).toBe(-5);
    expect(timeline.end).toBe(200);
    expect(
      timeline.bars
        .filter((b) => b.critical)
        .map((b) => b.index)
        .sort(),
    ).toEqual([...timeline.critical_path].sort());
    expect(timeline.bars.map((b) => b.key)).toEqual(invocations.map((i) => i.key));
    expect(buildTimeline([], {})).toMatchObject({ start: 0, end: 0, lanes: [], bars: [], critical_path: [] });
  });

  it('keys invocations as stage|clip|frame|attempt with - for none', () => {
    expect(invocationKey({ stage: 's', clip_index: null, frame_index: null, attempt: 1 })).toBe('s|-|-|1');
    expect(invocationKey({ stage: 's', clip_index: 3, frame_index: 0, attempt: 2 })).toBe('s|3|0|2');
  });
});
