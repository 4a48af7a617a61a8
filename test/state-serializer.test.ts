import { describe, expect, it } from 'vitest';
import { envelopePartsInSlices, serializeClipAhead, serializeEnvelope } from '../src/persistence/state-serializer.ts';
import type { StateEnvelope } from '../src/persistence/state-file.ts';
import type { ClipState } from '../src/domain/context.ts';
import { clipState, invocationRecord } from './support/fixtures.ts';

function envelope(clips: unknown[]): StateEnvelope {
  return {
    format: 'fave-state',
    version: 1,
    request_id: 'r',
    status: 'RUNNING',
    state: 'FANOUT',
    seq: 3,
    created_at: 1,
    updated_at: 2,
    lease: null,
    progress: { clips_total: clips.length, clips_done: 0, clips_failed: 0, frames_total: 0, frames_done: 0, invocations: 0 },
    error: null,
    snapshot: { status: 'active', value: 'FANOUT', historyValue: {}, children: {}, context: { request_id: 'r', query: 'a "quoted" query', clips } },
  } as unknown as StateEnvelope;
}

/** JSON.stringify of the same value, with the keys in the order the serializer writes them. */
function reference(e: StateEnvelope): string {
  const { snapshot, ...head } = e;
  const { context, ...snapshotRest } = snapshot;
  const { clips, ...contextRest } = context;
  return JSON.stringify({ ...head, snapshot: { ...snapshotRest, context: { ...contextRest, clips } } });
}

describe('serializeEnvelope', () => {
  it('gives the same value as JSON.stringify, including for unchanged clips served from its cache', () => {
    const a = { index: 0, uri: 's3://b/0', records: [{ x: 1 }], note: 'é\n"' };
    const b = { index: 1, uri: 's3://b/1', records: [] };
    const first = envelope([a, b]);
    expect(serializeEnvelope(first).toString('utf8')).toBe(reference(first));
    expect(JSON.parse(serializeEnvelope(first).toString('utf8'))).toEqual(JSON.parse(JSON.stringify(first)));
    const changed = { ...b, records: [{ y: 2 }] };
    const second = envelope([a, changed]);
    expect(serializeEnvelope(second).toString('utf8')).toBe(reference(second));
    expect(JSON.parse(serializeEnvelope(second).toString('utf8'))).toEqual(JSON.parse(JSON.stringify(second)));
  });

  it('uses the bytes of a clip serialized ahead, and gives the same bytes', () => {
    const formed: ClipState[] = [];
    const form = (clip: ClipState) => {
      formed.push(clip);
      return clip;
    };
    const a = clipState(0, { records: [invocationRecord('ffmpeg2')] });
    const b = clipState(1);
    serializeClipAhead(a, form);
    serializeClipAhead(a, form);
    expect(formed).toEqual([a]);
    const e = envelope([a, b]);
    expect(serializeEnvelope(e, form).toString('utf8')).toBe(reference(e));
    expect(formed).toEqual([a, b]);
  });

  it("gives the same bytes for the upper levels' values, kept ones included, and leaves out undefined fields", () => {
    const records = [{ stage: 'stage-ffmpeg-1', outputs: [{ uri: 's3://b/c0', metadata: { clip_index: 0 } }] }];
    const clipTimes = [{ start_s: 0, end_s: 4 }];
    const withContext = (context: Record<string, unknown>): StateEnvelope => {
      const e = envelope([{ index: 0, uri: 's3://b/0', records: [] }]);
      return { ...e, snapshot: { ...e.snapshot, context: { ...e.snapshot.context, ...context } } } as StateEnvelope;
    };
    const first = withContext({ records, clip_times: clipTimes, clips_pending: 1, failed_at: undefined, error: null });
    expect(serializeEnvelope(first).toString('utf8')).toBe(reference(first));
    // The same record and clip-time values in the next state, beside fields that changed.
    const second = withContext({ records, clip_times: clipTimes, clips_pending: 0, error: { code: 'X', message: 'm' } });
    expect(serializeEnvelope(second).toString('utf8')).toBe(reference(second));
    // A value that changed is a new object, and so new bytes.
    const third = withContext({ records: [...records, { stage: 'stage-librosa' }], clip_times: clipTimes });
    expect(serializeEnvelope(third).toString('utf8')).toBe(reference(third));
  });

  it('handles a request with no clips', () => {
    const empty = envelope([]);
    expect(serializeEnvelope(empty).toString('utf8')).toBe(reference(empty));
  });

  it('gives the same bytes when serialized in slices with the event loop let go in between', async () => {
    const clips = Array.from({ length: 50 }, (_, i) => ({ index: i, uri: `s3://b/${i}`, records: [{ attempt: i % 3 }] }));
    const whole = envelope(clips);
    let otherWorkRan = false;
    setImmediate(() => (otherWorkRan = true));
    const sliced = Buffer.concat(await envelopePartsInSlices(whole, (clip) => clip, 0));
    expect(sliced.toString('utf8')).toBe(reference(whole));
    // A slice of 0 ms lets the event loop go after every few clips: other work ran in between.
    expect(otherWorkRan).toBe(true);
    expect(Buffer.concat(await envelopePartsInSlices(envelope([]), (clip) => clip, 0)).toString('utf8')).toBe(reference(envelope([])));
  });
});
