import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ClipStateSchema, type ClipState } from '../src/domain/context.ts';
import { faveError } from '../src/domain/errors.ts';
import { STATE_VERSION, parseStateFile } from '../src/persistence/state-file.ts';
import { serializeEnvelope } from '../src/persistence/state-serializer.ts';
import { PLAIN_VALUES, StoredClipSchema, VALUE_SCHEMAS, storedClip } from '../src/persistence/stored-clip.ts';
import { describeZodIssue } from '../src/lib/zod-issue.ts';
import { invocationRecord } from './support/fixtures.ts';

/** A clip with what a real one holds: its own calls, a frame retried once, an async frame, a repeat answer. */
function clip(index: number): ClipState {
  const output = (uri: string, metadata: Record<string, unknown>) => ({ type: 'json', uri, metadata });
  const frameRecord = (frame: number, over: Parameters<typeof invocationRecord>[1] = {}) =>
    invocationRecord('stage-object-detector', {
      clip_index: index,
      frame_index: frame,
      queued_at: 1_796_597_092_092 + frame,
      started_at: 1_796_597_092_146 + frame,
      ended_at: 1_796_597_092_180 + frame,
      latency_ms: 34 + frame,
      call_id: `call-${index}-${frame}`,
      memory_limit_mb: 1024,
      cost_unit: 0.021,
      dispatch_id: `d${index}.${frame}`,
      outputs: [output(`s3://b/det/${index}/${frame}.json`, { clip: index, frame_index: frame })],
      ...over,
    });
  const failed = faveError('STAGE_HTTP_ERROR', 'stage-object-detector answered 500 for clip 1 frame 1', { stage: 'stage-object-detector', clip_index: index, frame_index: 1 });
  const { outputs: _none, ...withoutOutputs } = frameRecord(1, { outcome: 'error', error: failed, http_status: 500, response_digest: 'abcdef0123456789' });
  return {
    index,
    uri: `s3://b/clip_${index}.mp4`,
    start_s: index * 4,
    end_s: index * 4 + 4,
    status: 'pending',
    progress: { compressed_uri: 's3://b/c.tar.gz', transcript_uri: null, transcript: 'a "quoted" é', transcript_note: null, frames: [{ index: 0, uri: 's3://b/f0.jpg' }] },
    records: [
      invocationRecord('stage-ffmpeg-2', { clip_index: index, outputs: [output('s3://b/c.tar.gz', { clip_index: index, extra: null })] }),
      invocationRecord('stage-ffmpeg-3', { clip_index: index, attempt: 1 }),
    ],
    frames: [
      { index: 0, uri: 's3://b/f0.jpg', status: 'done', detections: [{ label: 'car', confidence: 0.9 }], note: null, records: [frameRecord(0)], error: null },
      { index: 1, uri: 's3://b/f1.jpg', status: 'done', detections: [], note: 'nothing seen', records: [withoutOutputs, frameRecord(1, { attempt: 2 })], error: null },
      { index: 2, uri: 's3://b/f2.jpg', status: 'pending', detections: [], note: null, records: [], error: null },
      {
        index: 3,
        uri: 's3://b/f3.jpg',
        status: 'failed',
        detections: [],
        note: null,
        records: [frameRecord(3, { call_mode: 'async', queue_delay_ms: null }), frameRecord(3, { attempt: 2, call_mode: 'async', queue_delay_ms: 12 })],
        error: failed,
      },
    ],
    error: null,
  };
}

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/state-before-domain-module.json');
/** A version 2 file as this version writes it: clips with a table (one listing its frames once) and one inline. */
const FIXTURE_V2 = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/state-v2.json');

const reread = (value: unknown) => StoredClipSchema.parse(JSON.parse(JSON.stringify(value)));

describe('a clip stored with its records as one table', () => {
  it('reads back as exactly the clip written, as the record-per-object form reads (key order included)', () => {
    const original = clip(7);
    const stored = storedClip(original);
    expect(stored).toHaveProperty('record_table');
    expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(original).length);
    const back = reread(stored);
    expect(back).toEqual(original);
    expect(JSON.stringify(back)).toBe(JSON.stringify(ClipStateSchema.parse(original)));
  });

  it("stores the frames ffmpeg-3 listed once, when they are the clip's frames", () => {
    const original = clip(3);
    const listed: ClipState = { ...original, progress: { ...original.progress, frames: original.frames.map((f) => ({ index: f.index, uri: f.uri })) } };
    expect(JSON.stringify(storedClip(listed))).toContain('"frames":"the clip frames"');
    expect(JSON.stringify(reread(storedClip(listed)))).toBe(JSON.stringify(ClipStateSchema.parse(listed)));
    // Not the same frames: both lists are stored.
    expect(JSON.stringify(storedClip(original))).not.toContain('the clip frames');
    expect(reread(storedClip(original))).toEqual(original);
  });

  it('stores a clip with fewer than two records as it is, and reads that back too', () => {
    const original: ClipState = { ...clip(1), records: [], frames: [] };
    expect(storedClip(original)).toBe(original);
    expect(reread(original)).toEqual(original);
    const oneFrame: ClipState = { ...clip(1), frames: clip(1).frames.slice(0, 1) };
    expect(storedClip(oneFrame)).toBe(oneFrame);
    expect(JSON.stringify(reread(oneFrame))).toBe(JSON.stringify(ClipStateSchema.parse(oneFrame)));
  });

  it('reads a stored clip in any key order, or with parts only the schema reads, as the schema gives it', () => {
    const original = clip(5);
    const stored = JSON.parse(JSON.stringify(storedClip(original))) as Record<string, unknown> & { progress: Record<string, unknown> };
    const reversed = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).reverse());
    const shuffled = { ...reversed(stored), progress: reversed(stored.progress) };
    expect(JSON.stringify(reread(shuffled))).toBe(JSON.stringify(ClipStateSchema.parse(original)));
    // An output without metadata is not plain: the schema reads it (as `{}`), as it reads the clip written.
    const bare = JSON.parse(JSON.stringify(stored)) as { record_table: { some: { outputs: { values: Array<Array<Record<string, unknown>>> } } } };
    for (const outputs of bare.record_table.some.outputs.values) for (const output of outputs) delete output.metadata;
    const emptied: ClipState = {
      ...original,
      frames: original.frames.map((f) => ({ ...f, records: f.records.map((r) => (r.outputs ? { ...r, outputs: r.outputs.map((o) => ({ ...o, metadata: {} })) } : r)) })),
    };
    expect(JSON.stringify(reread(bare))).toBe(JSON.stringify(ClipStateSchema.parse(emptied)));
    // A key the schema does not know is dropped, as the schema drops it.
    expect(reread({ ...stored, extra: 1 })).toEqual(original);
  });

  it('accepts as plain only values that the field schema accepts unchanged', () => {
    const probes: unknown[] = [
      0,
      1,
      -1,
      1.5,
      2 ** 60,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      null,
      undefined,
      '',
      'success',
      'async',
      'interrupted',
      true,
      false,
      {},
      [],
      [{ type: 'json', uri: 's3://b/x', metadata: {} }],
      [{ type: 'json', uri: 's3://b/x', metadata: { a: 1, b: 'x', c: null }, size: 3 }],
      [{ type: 'json', uri: 's3://b/x' }],
      [{ type: 'json', uri: 's3://b/x', metadata: null }],
      [{ type: 1, uri: 's3://b/x', metadata: {} }],
      [null],
      faveError('STAGE_HTTP_ERROR', 'x'),
    ];
    for (const [field, plain] of Object.entries(PLAIN_VALUES)) {
      const schema: z.ZodType = VALUE_SCHEMAS[field as keyof typeof VALUE_SCHEMAS];
      for (const value of probes) {
        if (!plain(value)) continue;
        const parsed = schema.safeParse(value);
        expect({ field, value, ok: parsed.success }).toEqual({ field, value, ok: true });
        expect(parsed.data).toEqual(value);
      }
    }
  });

  it('checks every value with its field schema, naming where a wrong one is', () => {
    const stored = JSON.parse(JSON.stringify(storedClip(clip(2)))) as {
      record_table: { each: Record<string, unknown[]>; same: Record<string, unknown>; some: Record<string, { values: unknown[] }>; counts: number[] };
    };
    const refused = (change: (s: typeof stored) => void): string => {
      const copy = structuredClone(stored);
      change(copy);
      const result = StoredClipSchema.safeParse(copy);
      expect(result.success).toBe(false);
      return result.success ? '' : describeZodIssue(result.error);
    };
    expect(refused((s) => (s.record_table.each.queued_at![3] = 'soon'))).toBe('record_table.each.queued_at[3]: Invalid input: expected number, received string');
    expect(refused((s) => (s.record_table.each.attempt = s.record_table.each.queued_at!.map(() => 0)))).toMatch(/^record_table\.each\.attempt\[0\]: Too small/);
    expect(refused((s) => (s.record_table.some.outputs!.values[0] = [{ uri: 's3://b/x' }]))).toBe(
      'record_table.some.outputs.values[0][0].type: Invalid input: expected string, received undefined',
    );
    expect(refused((s) => delete s.record_table.same.clip_index)).toBe('record_table.same.clip_index: missing field clip_index');
    expect(refused((s) => s.record_table.each.queued_at!.pop())).toMatch(/^record_table\.each\.queued_at: expected 5 values, found 4/);
    expect(refused((s) => s.record_table.counts.push(0))).toMatch(/^record_table\.counts: expected 4 counts/);
  });
});

describe('state.json of version 2', () => {
  it('is written with the stored form of each clip and read back as the same envelope; version 1 files still read', () => {
    const v1 = readFileSync(FIXTURE, 'utf8');
    const old = parseStateFile(v1, FIXTURE);
    expect(old.version).toBe(1);
    // The old file's clips, with the records a large request has: the table is used.
    const clips = old.snapshot.context.clips.map((c, i) => ({ ...c, records: clip(i).records, frames: clip(i).frames }));
    const envelope = { ...old, version: STATE_VERSION, snapshot: { ...old.snapshot, context: { ...old.snapshot.context, clips } } };
    const text = serializeEnvelope(envelope, storedClip).toString('utf8');
    expect(text).toContain('"record_table"');
    const back = parseStateFile(text, 'state.json');
    expect(back).toEqual(envelope);
    const asVersion1 = parseStateFile(JSON.stringify({ ...envelope, version: 1 }), 'state.json');
    expect(JSON.stringify(back)).toBe(JSON.stringify({ ...asVersion1, version: STATE_VERSION }));
  });

  it("refuses a wrong clip, request record or clip time with the schema's path and message", () => {
    const fixture = JSON.parse(readFileSync(FIXTURE_V2, 'utf8')) as {
      snapshot: {
        context: {
          records: Array<Record<string, unknown>>;
          clip_times: unknown;
          clips: Array<Record<string, unknown> & { record_table?: { rows: number; each: { queued_at: unknown[] } } }>;
        };
      };
    };
    const refused = (change: (context: (typeof fixture)['snapshot']['context']) => void): string => {
      const copy = structuredClone(fixture);
      change(copy.snapshot.context);
      try {
        parseStateFile(JSON.stringify(copy), 'state.json');
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    const at = (where: string) => `state.json is not a valid state file at snapshot.context.${where}; it was left untouched`;
    expect(refused((c) => (c.records[0]!.queued_at = 'soon'))).toBe(at('records[0].queued_at: Invalid input: expected number, received string'));
    expect(refused((c) => (c.records[0]!.outputs = [{ uri: 's3://b/x' }]))).toBe(at('records[0].outputs[0].type: Invalid input: expected string, received undefined'));
    expect(refused((c) => (c.records[1]!.attempt = 0))).toBe(at('records[1].attempt: Too small: expected number to be >0'));
    expect(refused((c) => (c.clip_times = [{ start_s: 0 }]))).toBe(at('clip_times[0].end_s: Invalid input: expected number, received undefined'));
    expect(refused((c) => (c.clips[1]!.record_table!.each.queued_at[0] = 'soon'))).toBe(
      at('clips[1].record_table.each.queued_at[0]: Invalid input: expected number, received string'),
    );
    expect(refused((c) => ((c.clips[0]!.uri = 5), (c.clips[2]!.uri = 6)))).toBe(at('clips[0].uri: Invalid input: expected string, received number'));
    expect(refused((c) => (c.clips[1]!.record_table!.rows = 0))).toMatch(
      /^state\.json is not a valid state file at snapshot\.context\.clips\[1\]\.record_table\.counts: the counts add up to/,
    );
    // What only the schema reads (an output without metadata, an unknown key) reads as it gives it.
    const copy = structuredClone(fixture);
    copy.snapshot.context.records[0]!.outputs = [{ type: 'archive', uri: 's3://b/a.tar.gz' }];
    copy.snapshot.context.records[0]!.unknown = 1;
    copy.snapshot.context.clips[0]!.unknown = 1;
    const { context } = parseStateFile(JSON.stringify(copy), 'state.json').snapshot;
    expect(context.clips[0]).not.toHaveProperty('unknown');
    expect(context.clips).toEqual(parseStateFile(readFileSync(FIXTURE_V2, 'utf8'), FIXTURE_V2).snapshot.context.clips);
    const record = context.records[0];
    expect(record).not.toHaveProperty('unknown');
    expect(record?.outputs).toEqual([{ type: 'archive', uri: 's3://b/a.tar.gz', metadata: {} }]);
  });

  it('reads a version 2 file back unchanged: it is written again byte for byte, its clips as the record-per-object form reads them', () => {
    const text = readFileSync(FIXTURE_V2, 'utf8');
    const envelope = parseStateFile(text, FIXTURE_V2);
    expect(envelope.version).toBe(2);
    expect(envelope.snapshot.context.clips.map((c) => c.frames.map((f) => f.records.length))).toEqual([[1, 2, 0, 2], [1, 2, 0, 2], [1]]);
    expect(serializeEnvelope(envelope, storedClip).toString('utf8')).toBe(text);
    const asVersion1 = parseStateFile(JSON.stringify({ ...envelope, version: 1 }), 'state.json');
    expect(JSON.stringify(envelope)).toBe(JSON.stringify({ ...asVersion1, version: 2 }));
  });
});
