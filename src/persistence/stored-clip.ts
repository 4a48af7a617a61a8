import { z } from 'zod';
import { ClipProgressSchema, ClipStateSchema, FrameStateSchema, type ClipState, type FrameState } from '../domain/context.ts';
import { InvocationRecordSchema, type InvocationRecord } from '../domain/invocations.ts';
import { fast, isPlainObject, plainValues, type PlainPredicate } from '../lib/zod-plain.ts';

/**
 * A clip as state.json stores it from format version 2 on: its frames' invocation records are
 * one table, by field rather than by record.
 *
 * Most of a large state file is invocation records, one or more per frame, and most of their
 * fields hold the same value on every record of a clip (the stage, the clip, the outcome, the
 * memory limit, a null error). As a table, a field with one value for every row is written once
 * (`same`), a field that varies is one array (`each`), and an optional field that only some rows
 * have lists those rows (`some`). On a large request the file is a third smaller, and a column of
 * plain values is validated in one pass (`fast`), any other value by its field's schema. The
 * clip read back is exactly the one written: the same records, in the same order, with the same
 * fields present, its keys in schema order. A clip's own records stay inline, as tools reading the
 * file expect them.
 */

type Field = keyof InvocationRecord;
const recordShape = InvocationRecordSchema.shape;
const FIELDS = Object.keys(recordShape) as Field[];
const OPTIONAL_FIELDS: ReadonlySet<Field> = new Set(FIELDS.filter((field) => recordShape[field].safeParse(undefined).success));

/**
 * Outputs as the orchestrator keeps them: a type, a uri, a metadata object and any other key.
 * (Their schema turns an absent metadata into `{}`: a predicate read off it never answers.)
 */
const PlainOutputsSchema = z.array(z.looseObject({ type: z.string(), uri: z.string(), metadata: z.record(z.string(), z.unknown()) }));
const isOutputs = plainValues(PlainOutputsSchema);

const rowIndex = z.number().int().nonnegative();
const rowIndexes = fast(z.array(rowIndex));

/** The schema of one value of a field, present (an optional field's inner schema). */
export const VALUE_SCHEMAS = {
  stage: recordShape.stage,
  clip_index: recordShape.clip_index,
  frame_index: recordShape.frame_index,
  attempt: recordShape.attempt,
  queued_at: recordShape.queued_at,
  started_at: recordShape.started_at,
  ended_at: recordShape.ended_at,
  latency_ms: recordShape.latency_ms,
  reported_duration_ms: recordShape.reported_duration_ms,
  gateway_duration_ms: recordShape.gateway_duration_ms,
  call_id: recordShape.call_id,
  cold_start: recordShape.cold_start,
  memory_limit_mb: recordShape.memory_limit_mb,
  cost_unit: recordShape.cost_unit,
  http_status: recordShape.http_status,
  outcome: recordShape.outcome,
  error: recordShape.error,
  call_mode: recordShape.call_mode.unwrap(),
  queue_delay_ms: recordShape.queue_delay_ms.unwrap(),
  response_digest: recordShape.response_digest.unwrap(),
  dispatch_id: recordShape.dispatch_id.unwrap(),
  outputs: recordShape.outputs.unwrap(),
} satisfies Record<Field, z.ZodType>;

/** How the values of each field are recognized as plain (see `fast`). */
export const PLAIN_VALUES = Object.fromEntries(FIELDS.map((field) => [field, field === 'outputs' ? isOutputs : plainValues(VALUE_SCHEMAS[field])])) as Record<
  Field,
  PlainPredicate
>;

/** How a column of each field's values is recognized as plain: a scalar field's in one loop. */
const PLAIN_COLUMNS = Object.fromEntries(
  FIELDS.map((field) => [field, field === 'outputs' ? (value: unknown) => Array.isArray(value) && value.every(isOutputs) : plainValues(z.array(VALUE_SCHEMAS[field]))]),
) as Record<Field, PlainPredicate>;

/** A column of a field's values: checked in one pass when plain, else value by value by the field's schema. */
const columnOf = <F extends Field>(field: F) => fast(z.array(VALUE_SCHEMAS[field]), PLAIN_COLUMNS[field]);

/** The fields whose value is an array per row, each value checked by that field's schema. */
const EachSchema = z
  .object({
    stage: columnOf('stage'),
    clip_index: columnOf('clip_index'),
    frame_index: columnOf('frame_index'),
    attempt: columnOf('attempt'),
    queued_at: columnOf('queued_at'),
    started_at: columnOf('started_at'),
    ended_at: columnOf('ended_at'),
    latency_ms: columnOf('latency_ms'),
    reported_duration_ms: columnOf('reported_duration_ms'),
    gateway_duration_ms: columnOf('gateway_duration_ms'),
    call_id: columnOf('call_id'),
    cold_start: columnOf('cold_start'),
    memory_limit_mb: columnOf('memory_limit_mb'),
    cost_unit: columnOf('cost_unit'),
    http_status: columnOf('http_status'),
    outcome: columnOf('outcome'),
    error: columnOf('error'),
    call_mode: columnOf('call_mode'),
    queue_delay_ms: columnOf('queue_delay_ms'),
    response_digest: columnOf('response_digest'),
    dispatch_id: columnOf('dispatch_id'),
    outputs: columnOf('outputs'),
  })
  .partial();

/** An optional field present on some rows only: those rows, ascending, and their values. */
const sparse = <F extends Field>(field: F) => z.strictObject({ rows: rowIndexes, values: columnOf(field) });

const SomeSchema = z
  .object({
    call_mode: sparse('call_mode'),
    queue_delay_ms: sparse('queue_delay_ms'),
    response_digest: sparse('response_digest'),
    dispatch_id: sparse('dispatch_id'),
    outputs: sparse('outputs'),
  })
  .partial();
type SomeField = keyof z.infer<typeof SomeSchema>;
const SOME_FIELDS = Object.keys(SomeSchema.shape) as SomeField[];

/** The invocation records of a clip's frames: `counts[i]` rows for frame `i`, in turn. */
export const RecordTableSchema = z.strictObject({
  rows: rowIndex,
  counts: rowIndexes,
  same: InvocationRecordSchema.partial(),
  each: EachSchema,
  some: SomeSchema,
});
export type RecordTable = z.infer<typeof RecordTableSchema>;

/** Version 2 never writes the `running` that earlier versions read as `pending`: its status is a plain enum. */
const StoredStatusSchema = z.enum(['pending', 'done', 'failed']);

const StoredFrameSchema = FrameStateSchema.extend({ status: StoredStatusSchema, records: FrameStateSchema.shape.records.optional() });

/**
 * The frames ffmpeg-3 listed are the clip's frames, by index and uri: stored once, in `frames`,
 * with `progress.frames` saying so (`FRAMES_LISTED`).
 */
const FRAMES_LISTED = 'the clip frames';
const StoredProgressSchema = ClipProgressSchema.extend({ frames: z.union([ClipProgressSchema.shape.frames, z.literal(FRAMES_LISTED)]) });

/** Records whose outputs carry a metadata object (as the orchestrator keeps them) are recognized as plain. */
const PlainRecordSchema = InvocationRecordSchema.extend({ outputs: PlainOutputsSchema.optional() });
const plainRecords = plainValues(z.array(PlainRecordSchema));

/**
 * Invocation records read in one pass when plain, as a clip's inline records are. The request's
 * own records are few, but ffmpeg-1's lists every clip it cut (one output each): through the
 * schema that was a thousand objects validated and copied on a 1,000-clip request.
 */
export const StoredRecordsSchema = fast(z.array(InvocationRecordSchema), plainRecords);

const StoredFramesSchema = z.array(StoredFrameSchema);
/** Frames with their records inline (a small clip) or without (the table has them). */
const plainFrames = plainValues(z.array(StoredFrameSchema.extend({ records: z.array(PlainRecordSchema).optional() })));

const StoredClipObjectSchema = ClipStateSchema.extend({
  status: StoredStatusSchema,
  progress: StoredProgressSchema,
  frames: StoredFramesSchema,
  records: ClipStateSchema.shape.records,
  record_table: RecordTableSchema.optional(),
});
type StoredClipObject = z.output<typeof StoredClipObjectSchema>;

/**
 * A clip as version 2 writes it: its frames' records in `record_table`, or (fewer than two of
 * them) inline, as earlier versions wrote every clip.
 *
 * A clip whose every part is plain (`plainStoredClip`) is read as it was parsed and built into
 * the clip once; any other is run through `StoredClipObjectSchema`, whose refusals and messages
 * are the ones reported. Either way the table is then checked as a whole (`checkClip`).
 */
export const StoredClipSchema = z.unknown().transform((value, ctx): ClipState => {
  let clip: StoredClipObject;
  if (plainStoredClip(value)) clip = value as StoredClipObject;
  else {
    const result = StoredClipObjectSchema.safeParse(value);
    if (!result.success) {
      for (const issue of result.error.issues) ctx.issues.push({ code: 'custom', path: issue.path, message: issue.message, input: value });
      return z.NEVER;
    }
    clip = result.data;
  }
  const issues: Issues = [];
  checkClip(clip, issues);
  if (issues.length > 0) {
    for (const issue of issues) ctx.issues.push(issue);
    return z.NEVER;
  }
  return clipOfStored(clip);
});

const StoredClipArraySchema = z.array(StoredClipSchema);

/**
 * The clips of a version 2 file, as `z.array(StoredClipSchema)` reads them. Plain clips, the
 * rule, are read in one loop without zod's run of the schema per clip (its result objects and
 * calls were a good part of a resume before the code is optimized, as it is not in a process
 * just started to resume); at the first clip that is not plain or not whole, the whole array is
 * read by the schema, which reports what is wrong and where.
 */
export const StoredClipsSchema = z.unknown().transform((value, ctx): ClipState[] => {
  const plain = Array.isArray(value) ? plainClips(value) : null;
  if (plain) return plain;
  const result = StoredClipArraySchema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) ctx.issues.push({ code: 'custom', path: issue.path, message: issue.message, input: value });
  return z.NEVER;
});

/** The clips, when every one is plain and whole; null at the first that is not. */
function plainClips(stored: readonly unknown[]): ClipState[] | null {
  const clips = new Array<ClipState>(stored.length);
  const issues: Issues = [];
  for (let i = 0; i < stored.length; i++) {
    const clip = stored[i];
    if (!plainStoredClip(clip)) return null;
    checkClip(clip as StoredClipObject, issues);
    if (issues.length > 0) return null;
    clips[i] = clipOfStored(clip as StoredClipObject);
  }
  return clips;
}

const isIndex = plainValues(ClipStateSchema.shape.index);
const isString = plainValues(ClipStateSchema.shape.uri);
const isSeconds = plainValues(ClipStateSchema.shape.start_s);
const isStatus = plainValues(StoredStatusSchema);
const isError = plainValues(ClipStateSchema.shape.error);
const isFrameRefs = plainValues(ClipProgressSchema.shape.frames);
const plainProgressRest = plainValues(ClipProgressSchema.extend({ frames: z.unknown() }));
const CLIP_KEYS: ReadonlySet<string> = new Set(Object.keys(StoredClipObjectSchema.shape));

/** True only of a stored clip that `StoredClipObjectSchema` accepts and gives back as it is. */
function plainStoredClip(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  for (const key in value) if (!CLIP_KEYS.has(key)) return false;
  const progress = value.progress;
  return (
    isIndex(value.index) &&
    isString(value.uri) &&
    isSeconds(value.start_s) &&
    isSeconds(value.end_s) &&
    isStatus(value.status) &&
    isError(value.error) &&
    isPlainObject(progress) &&
    plainProgressRest(progress) &&
    (progress.frames === FRAMES_LISTED || isFrameRefs(progress.frames)) &&
    plainFrames(value.frames) &&
    plainRecords(value.records) &&
    (value.record_table === undefined || plainTable(value.record_table))
  );
}

const isRowIndex = plainValues(rowIndex);
const isRowIndexes = plainValues(z.array(rowIndex));
const plainSame = plainValues(RecordTableSchema.shape.same);
const TABLE_KEYS: ReadonlySet<string> = new Set(Object.keys(RecordTableSchema.shape));
const FIELD_SET: ReadonlySet<string> = new Set(FIELDS);
const SOME_SET: ReadonlySet<string> = new Set(SOME_FIELDS);
const plainColumn = (field: Field, column: unknown): boolean => PLAIN_COLUMNS[field](column);

function plainTable(table: unknown): boolean {
  if (!isPlainObject(table)) return false;
  for (const key in table) if (!TABLE_KEYS.has(key)) return false;
  const { each, some } = table;
  if (!isRowIndex(table.rows) || !isRowIndexes(table.counts) || !plainSame(table.same) || !isPlainObject(each) || !isPlainObject(some)) return false;
  for (const field in each) if (!FIELD_SET.has(field) || !plainColumn(field as Field, each[field])) return false;
  for (const field in some) {
    const part = some[field];
    if (!SOME_SET.has(field) || !isPlainObject(part) || !isRowIndexes(part.rows) || !plainColumn(field as Field, part.values)) return false;
    for (const key in part) if (key !== 'rows' && key !== 'values') return false;
  }
  return true;
}

/** The clip of its stored form, its keys (and its progress's) in the order `ClipStateSchema` gives them. */
function clipOfStored(stored: StoredClipObject): ClipState {
  const { progress: storedProgress, frames, record_table } = stored;
  const progress = {
    compressed_uri: storedProgress.compressed_uri,
    transcript_uri: storedProgress.transcript_uri,
    transcript: storedProgress.transcript,
    transcript_note: storedProgress.transcript_note,
    frames: storedProgress.frames === FRAMES_LISTED ? frames.map((frame) => ({ index: frame.index, uri: frame.uri })) : storedProgress.frames,
  };
  // Inline records: checkClip made sure every frame has its own.
  const restored = record_table ? framesOfTable(frames, record_table) : frames.map((frame) => frameOf(frame, frame.records ?? []));
  return {
    index: stored.index,
    uri: stored.uri,
    start_s: stored.start_s,
    end_s: stored.end_s,
    status: stored.status,
    progress,
    frames: restored,
    records: stored.records,
    error: stored.error,
  };
}

type Issues = z.core.$ZodRawIssue[];

/** The frames' records are either all in the table or all inline, never in both places nor in neither. */
function checkClip(clip: Pick<StoredClipObject, 'frames' | 'record_table'>, issues: Issues): void {
  const problem = (path: PropertyKey[], message: string) => issues.push({ code: 'custom', path, message, input: clip });
  const { frames } = clip;
  if (clip.record_table) {
    for (let i = 0; i < frames.length; i++) {
      if (frames[i]!.records) problem(['frames', i, 'records'], 'records are given both inline and in record_table');
    }
    checkTable(clip.record_table, frames.length, issues);
    return;
  }
  for (let i = 0; i < frames.length; i++) {
    if (!frames[i]!.records) problem(['frames', i, 'records'], 'expected an array of records (or a record_table in the clip)');
  }
}

/** What the schema of each part cannot see alone: every row has every field it must have, once. */
function checkTable(table: RecordTable, frames: number, issues: Issues): void {
  const problem = (path: PropertyKey[], message: string) => issues.push({ code: 'custom', path: ['record_table', ...path], message, input: table });
  // Indexed loops, without a callback per element: this runs once per clip of every resume.
  const { counts, rows, same } = table;
  if (counts.length !== frames) problem(['counts'], `expected ${frames} counts (one per frame), found ${counts.length}`);
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total !== rows) problem(['counts'], `the counts add up to ${total}, not to the ${rows} rows`);
  const each: Partial<Record<Field, unknown[]>> = table.each;
  const some: Partial<Record<SomeField, { rows: number[]; values: unknown[] }>> = table.some;
  for (let f = 0; f < FIELDS.length; f++) {
    const field = FIELDS[f]!;
    const places = (field in same ? 1 : 0) + (field in each ? 1 : 0) + (field in some ? 1 : 0);
    if (places > 1) problem([field], `field ${field} is given more than once (same, each, some)`);
    else if (places === 0 && !OPTIONAL_FIELDS.has(field) && rows > 0) problem(['same', field], `missing field ${field}`);
    const column = each[field];
    if (column && column.length !== rows) problem(['each', field], `expected ${rows} values, found ${column.length}`);
  }
  for (let f = 0; f < SOME_FIELDS.length; f++) {
    const field = SOME_FIELDS[f]!;
    const part = some[field];
    if (!part) continue;
    if (part.values.length !== part.rows.length) problem(['some', field, 'values'], `expected ${part.rows.length} values, found ${part.values.length}`);
    if (!ascendingBelow(part.rows, rows)) problem(['some', field, 'rows'], `expected ascending rows below ${rows}`);
  }
}

function ascendingBelow(listed: readonly number[], rows: number): boolean {
  for (let i = 0; i < listed.length; i++) {
    const row = listed[i]!;
    if (!(row < rows && (i === 0 || row > listed[i - 1]!))) return false;
  }
  return true;
}

/**
 * Where one field's values are read from: one value for every row (`column` null), a column, or
 * (`rows` set) the listed rows only, taken in turn. Every source has this one shape, so that
 * reading a row's fields stays monomorphic.
 */
class Source {
  next = 0;
  constructor(
    readonly value: unknown,
    readonly column: readonly unknown[] | null,
    readonly rows: readonly number[] | null,
  ) {}
}
const ABSENT = new Source(undefined, null, null);

function sourceOf(table: RecordTable, field: Field): Source {
  const same: Partial<Record<Field, unknown>> = table.same;
  const each: Partial<Record<Field, unknown[]>> = table.each;
  const some: Partial<Record<Field, { rows: number[]; values: unknown[] }>> = table.some;
  if (field in same) return new Source(same[field], null, null);
  const column = each[field];
  if (column) return new Source(undefined, column, null);
  const part = some[field];
  if (part) return new Source(undefined, part.values, part.rows);
  return ABSENT;
}

/** Every field's source, as one object of one shape (no entries built per clip to make it). */
function sourcesOf(table: RecordTable): Record<Field, Source> {
  return {
    stage: sourceOf(table, 'stage'),
    clip_index: sourceOf(table, 'clip_index'),
    frame_index: sourceOf(table, 'frame_index'),
    attempt: sourceOf(table, 'attempt'),
    queued_at: sourceOf(table, 'queued_at'),
    started_at: sourceOf(table, 'started_at'),
    ended_at: sourceOf(table, 'ended_at'),
    latency_ms: sourceOf(table, 'latency_ms'),
    reported_duration_ms: sourceOf(table, 'reported_duration_ms'),
    gateway_duration_ms: sourceOf(table, 'gateway_duration_ms'),
    call_id: sourceOf(table, 'call_id'),
    cold_start: sourceOf(table, 'cold_start'),
    memory_limit_mb: sourceOf(table, 'memory_limit_mb'),
    cost_unit: sourceOf(table, 'cost_unit'),
    http_status: sourceOf(table, 'http_status'),
    outcome: sourceOf(table, 'outcome'),
    error: sourceOf(table, 'error'),
    call_mode: sourceOf(table, 'call_mode'),
    queue_delay_ms: sourceOf(table, 'queue_delay_ms'),
    response_digest: sourceOf(table, 'response_digest'),
    dispatch_id: sourceOf(table, 'dispatch_id'),
    outputs: sourceOf(table, 'outputs'),
  };
}

/** A required field's value in `row` (checkTable made sure it has one). */
const at = (source: Source, row: number): unknown => (source.column === null ? source.value : source.column[row]);

/** An optional field's value in `row`, or undefined; rows are read in ascending order. */
function atSome(source: Source, row: number): unknown {
  const { rows } = source;
  if (rows === null) return at(source, row);
  if (rows[source.next] !== row) return undefined;
  return source.column?.[source.next++];
}

/**
 * The frames with their records, read from the table. Each record is one object literal of the
 * required fields, the optional ones appended when present: `InvocationRecordSchema`'s key order
 * (its optional fields come last), and one hidden class for the records of the same fields.
 */
function framesOfTable(frames: ReadonlyArray<Omit<FrameState, 'records'>>, table: RecordTable): FrameState[] {
  const s = sourcesOf(table);
  let row = 0;
  const take = (count: number): InvocationRecord[] => {
    const taken: InvocationRecord[] = new Array<InvocationRecord>(count);
    for (let i = 0; i < count; i++, row++) {
      // Every value was checked by its field's schema, and every required one is present (checkTable).
      // `at`, written out: one call per value was most of this loop's cost before it is optimized.
      const record = {
        stage: s.stage.column === null ? s.stage.value : s.stage.column[row],
        clip_index: s.clip_index.column === null ? s.clip_index.value : s.clip_index.column[row],
        frame_index: s.frame_index.column === null ? s.frame_index.value : s.frame_index.column[row],
        attempt: s.attempt.column === null ? s.attempt.value : s.attempt.column[row],
        queued_at: s.queued_at.column === null ? s.queued_at.value : s.queued_at.column[row],
        started_at: s.started_at.column === null ? s.started_at.value : s.started_at.column[row],
        ended_at: s.ended_at.column === null ? s.ended_at.value : s.ended_at.column[row],
        latency_ms: s.latency_ms.column === null ? s.latency_ms.value : s.latency_ms.column[row],
        reported_duration_ms: s.reported_duration_ms.column === null ? s.reported_duration_ms.value : s.reported_duration_ms.column[row],
        gateway_duration_ms: s.gateway_duration_ms.column === null ? s.gateway_duration_ms.value : s.gateway_duration_ms.column[row],
        call_id: s.call_id.column === null ? s.call_id.value : s.call_id.column[row],
        cold_start: s.cold_start.column === null ? s.cold_start.value : s.cold_start.column[row],
        memory_limit_mb: s.memory_limit_mb.column === null ? s.memory_limit_mb.value : s.memory_limit_mb.column[row],
        cost_unit: s.cost_unit.column === null ? s.cost_unit.value : s.cost_unit.column[row],
        http_status: s.http_status.column === null ? s.http_status.value : s.http_status.column[row],
        outcome: s.outcome.column === null ? s.outcome.value : s.outcome.column[row],
        error: s.error.column === null ? s.error.value : s.error.column[row],
      } as InvocationRecord;
      const callMode = atSome(s.call_mode, row);
      if (callMode !== undefined) record.call_mode = callMode as InvocationRecord['call_mode'];
      const queueDelay = atSome(s.queue_delay_ms, row);
      if (queueDelay !== undefined) record.queue_delay_ms = queueDelay as InvocationRecord['queue_delay_ms'];
      const digest = atSome(s.response_digest, row);
      if (digest !== undefined) record.response_digest = digest as InvocationRecord['response_digest'];
      const dispatchId = atSome(s.dispatch_id, row);
      if (dispatchId !== undefined) record.dispatch_id = dispatchId as InvocationRecord['dispatch_id'];
      const outputs = atSome(s.outputs, row);
      if (outputs !== undefined) record.outputs = outputs as InvocationRecord['outputs'];
      taken[i] = record;
    }
    return taken;
  };
  return frames.map((frame, i) => frameOf(frame, take(table.counts[i] ?? 0)));
}

/** A frame with its records, its keys in the order `FrameStateSchema` gives them. */
function frameOf(frame: Omit<FrameState, 'records'>, records: InvocationRecord[]): FrameState {
  return { index: frame.index, uri: frame.uri, status: frame.status, detections: frame.detections, note: frame.note, records, error: frame.error };
}

const isScalar = (value: unknown): boolean => value === null || typeof value !== 'object';

/**
 * The stored form of a clip: its frames' records as one table. A clip whose frames have fewer than
 * two records gains nothing and is stored as it is.
 */
export function storedClip(clip: ClipState): unknown {
  const rows = clip.frames.flatMap((frame) => frame.records);
  if (rows.length < 2) return clip;
  const listed = clip.progress.frames;
  const framesListed =
    listed !== null && listed.length > 0 && listed.length === clip.frames.length && listed.every((f, i) => f.index === clip.frames[i]?.index && f.uri === clip.frames[i]?.uri);
  const same: Partial<Record<Field, unknown>> = {};
  const each: Partial<Record<Field, unknown[]>> = {};
  const some: Partial<Record<Field, { rows: number[]; values: unknown[] }>> = {};
  const n = rows.length;
  // One pass per field tells absent, partly present, the same everywhere or varying; the
  // arrays are built only for the fields that need them. Every write of a request in
  // detection stores every clip again, so this runs for each clip on each write.
  for (const field of FIELDS) {
    let present = 0;
    let first: unknown;
    let allSame = true;
    for (let i = 0; i < n; i++) {
      const value = rows[i]![field];
      if (value === undefined) continue;
      if (present === 0) first = value;
      else if (allSame && value !== first) allSame = false;
      present++;
    }
    if (present === 0) continue;
    if (present < n) {
      const at: number[] = [];
      const values: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const value = rows[i]![field];
        if (value === undefined) continue;
        at.push(i);
        values.push(value);
      }
      some[field] = { rows: at, values };
      continue;
    }
    if (allSame && isScalar(first)) {
      same[field] = first;
      continue;
    }
    const values: unknown[] = new Array<unknown>(n);
    for (let i = 0; i < n; i++) values[i] = rows[i]![field];
    each[field] = values;
  }
  const { frames, ...rest } = clip;
  return {
    ...rest,
    progress: framesListed ? { ...clip.progress, frames: FRAMES_LISTED } : clip.progress,
    frames: frames.map(({ records: _frameRecords, ...frame }) => frame),
    record_table: { rows: rows.length, counts: frames.map((frame) => frame.records.length), same, each, some },
  };
}
