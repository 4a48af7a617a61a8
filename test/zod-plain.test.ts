import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ClipProgressSchema, FrameStateSchema } from '../src/domain/context.ts';
import { FaveErrorSchema, faveError } from '../src/domain/errors.ts';
import { InvocationRecordSchema } from '../src/domain/invocations.ts';
import { StageOutputSchema } from '../src/domain/stage.ts';
import { fast, plainValues } from '../src/lib/zod-plain.ts';
import { describeZodIssue } from '../src/lib/zod-issue.ts';
import { invocationRecord } from './support/fixtures.ts';

const frame = {
  index: 0,
  uri: 's3://b/f0.jpg',
  status: 'done',
  detections: [{ label: 'car', confidence: 0.9 }],
  note: null,
  records: [invocationRecord('stage-object-detector', { clip_index: 0, frame_index: 0 })],
  error: null,
};

/** Values near the valid ones: each field dropped, nulled, retyped, and an extra key (holding a value or undefined). */
function variants(value: unknown): unknown[] {
  const out: unknown[] = [value, null, undefined, 0, -1, 1.5, 2 ** 60, Number.NaN, Number.POSITIVE_INFINITY, '', 'x', true, [], {}];
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    out.push({ ...record, extra: 1 }, { ...record, extra: undefined }, Object.assign(Object.create(null) as object, record), JSON.parse(`{"__proto__": {"x": 1}, "index": 0}`));
    for (const key of Object.keys(record)) {
      const { [key]: _dropped, ...rest } = record;
      out.push(rest);
      for (const replacement of [null, -1, 0.5, 'x', true, [], {}]) out.push({ ...record, [key]: replacement });
    }
  }
  if (Array.isArray(value))
    out.push(
      [...value, null],
      value.map(() => 'x'),
    );
  return out;
}

const cases: Array<[string, z.ZodType, unknown]> = [
  ['frame', FrameStateSchema, frame],
  ['frame without records', FrameStateSchema.omit({ records: true }), { ...frame, records: undefined }],
  ['progress', ClipProgressSchema, { compressed_uri: 'a', transcript_uri: null, transcript: 't', transcript_note: null, frames: [{ index: 0, uri: 'u' }] }],
  ['error', FaveErrorSchema, faveError('STAGE_TIMEOUT', 'slow', { stage: 's', clip_index: 1, transient: true })],
  ['record', InvocationRecordSchema, { ...invocationRecord('s'), call_mode: 'async', queue_delay_ms: null, attempt: 2 }],
  ['positive int', z.number().int().positive(), 1],
  ['record of numbers', z.record(z.string(), z.number()), { a: 1, b: 2.5 }],
  ['loose object', z.looseObject({ type: z.string(), metadata: z.record(z.string(), z.unknown()) }), { type: 't', metadata: { a: [1] }, more: { x: 1 } }],
  ['bounded number', z.number().min(0).max(1), 0.5],
  ['number with several bounds on each side', z.number().min(0).gt(0).max(5).lt(5), 2],
  ['array of positive ints', z.array(z.number().int().positive()), [1, 2]],
  ['array of nullable bounded numbers', z.array(z.number().min(1).nullable()), [1.5, null]],
  ['array of strings', z.array(z.string()), ['a', '']],
  ['array of nullable booleans', z.array(z.boolean().nullable()), [true, null]],
];

describe('plainValues', () => {
  it.each(cases)('is true of %s only where the schema accepts it unchanged', (_name, schema, valid) => {
    const plain = plainValues(schema);
    for (const value of variants(valid)) {
      if (!plain(value)) continue;
      const parsed = schema.safeParse(value);
      expect({ value, ok: parsed.success }).toEqual({ value, ok: true });
      expect(parsed.data).toEqual(value);
    }
  });

  it('recognizes what the state file holds as plain, so it is not checked value by value', () => {
    const storedFrames = z.array(FrameStateSchema.extend({ status: z.enum(['pending', 'done', 'failed']) }));
    expect(plainValues(storedFrames)([frame, { ...frame, index: 1, error: faveError('STAGE_TIMEOUT', 'slow') }])).toBe(true);
    // A status read through a preprocess (`running` read as `pending`) is never plain.
    expect(plainValues(FrameStateSchema)(frame)).toBe(false);
    expect(plainValues(InvocationRecordSchema.omit({ outputs: true }))(invocationRecord('s', { dispatch_id: 'd' }))).toBe(true);
  });

  it('recognizes arrays of scalars in one loop, with what the scalar schema accepts', () => {
    expect(plainValues(z.array(z.number().int().nonnegative()))([0, 3, 2 ** 40])).toBe(true);
    expect(plainValues(z.array(z.number().int().nonnegative()))([0, -1])).toBe(false);
    expect(plainValues(z.array(z.number().int().nonnegative()))([0, 1.5])).toBe(false);
    expect(plainValues(z.array(z.number()))([1, Number.NaN])).toBe(false);
    expect(plainValues(z.array(z.number().nullable()))([null, 2])).toBe(true);
    expect(plainValues(z.array(z.number()))([null, 2])).toBe(false);
    expect(plainValues(z.array(z.string().nullable()))(['a', null])).toBe(true);
    expect(plainValues(z.array(z.number().gt(1).min(1)))([1])).toBe(false);
    // A hole reads as undefined, which the schema refuses: never plain.
    const holey = [1, 2];
    holey.length = 3;
    expect(plainValues(z.array(z.number()))(holey)).toBe(false);
    expect(z.array(z.number()).safeParse(holey).success).toBe(false);
  });

  it('never answers for schemas that change what they accept (defaults, transforms, checks they do not know)', () => {
    expect(plainValues(StageOutputSchema)({ type: 'a', uri: 'b', metadata: {} })).toBe(false);
    expect(plainValues(z.string().default('x'))('x')).toBe(false);
    expect(plainValues(z.string().min(2))('xx')).toBe(false);
    expect(plainValues(z.record(z.string().min(2), z.number()))({ ab: 1 })).toBe(false);
  });
});

describe('fast', () => {
  it("refuses what the schema refuses, with the schema's path and message", () => {
    const schema = z.object({ frames: fast(z.array(FrameStateSchema)) });
    const bad = { frames: [frame, { ...frame, status: 'lost' }] };
    const result = schema.safeParse(bad);
    expect(result.success).toBe(false);
    expect(result.success ? '' : describeZodIssue(result.error)).toBe(describeZodIssue(z.object({ frames: z.array(FrameStateSchema) }).safeParse(bad).error!));
  });

  it('gives what the schema gives for a value that is not plain', () => {
    const legacy = { ...frame, status: 'running' };
    expect(fast(FrameStateSchema).parse(legacy)).toEqual(FrameStateSchema.parse(legacy));
    expect(fast(FrameStateSchema).parse(legacy).status).toBe('pending');
  });
});
