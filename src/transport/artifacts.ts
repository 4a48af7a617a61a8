import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { z } from 'zod';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { cocoLabelForId } from '../domain/query/coco.ts';
import { truncateText } from '../lib/redact.ts';
import { describeZodIssue } from '../lib/zod-issue.ts';
import { noTranscriptNote } from '../domain/notes.ts';

/** Reading what the stages write: tar.gz archives, timestamps, transcripts, detections, in the formats `docs/stages.md` gives. */

function unreadable(message: string): FaveFailure {
  return new FaveFailure(faveError('ARTIFACT_UNREADABLE', message));
}

function contract(message: string): FaveFailure {
  return new FaveFailure(faveError('STAGE_CONTRACT', message));
}

// ---------------------------------------------------------------------------------------------
// tar.gz

/** "./a/b.txt" and "/a/b.txt" both name "a/b.txt": Python's tarfile writes either form. */
function normalizeMemberName(name: string): string {
  let n = name.replace(/\\/g, '/');
  for (;;) {
    if (n.startsWith('./')) n = n.slice(2);
    else if (n.startsWith('/')) n = n.slice(1);
    else return n;
  }
}

function basename(name: string): string {
  const n = normalizeMemberName(name).replace(/\/+$/, '');
  return n.slice(n.lastIndexOf('/') + 1);
}

// tar-stream reports an unknown type flag as null; like tar, read such entries as files.
const FILE_TYPES: ReadonlySet<unknown> = new Set(['file', 'contiguous-file', null, undefined]);

interface Member {
  name: string;
  data: Buffer;
}

/** The archive's first bytes, kept for the message when they are not gzip. */
class NotGzip extends Error {
  constructor(
    readonly size: number,
    readonly head: string,
  ) {
    super('not a gzip archive');
  }
}

/**
 * Passes a gzip stream through once its first two bytes are the gzip magic; anything else is
 * counted, not kept, and refused at its end with its size and first bytes.
 */
class GzipMagic extends Transform {
  private head = Buffer.alloc(0);
  private size = 0;
  private verdict: 'pending' | 'gzip' | 'other' = 'pending';

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.verdict === 'gzip') return callback(null, chunk);
    if (this.verdict === 'other') {
      if (this.head.length < 4) this.head = Buffer.concat([this.head, chunk.subarray(0, 4 - this.head.length)]);
      return callback();
    }
    this.head = Buffer.concat([this.head, chunk]);
    if (this.head.length < 2) return callback();
    this.verdict = this.head[0] === 0x1f && this.head[1] === 0x8b ? 'gzip' : 'other';
    if (this.verdict === 'other') {
      this.head = this.head.subarray(0, 4);
      return callback();
    }
    const pending = this.head;
    this.head = Buffer.alloc(0);
    callback(null, pending);
  }

  override _flush(callback: TransformCallback): void {
    if (this.verdict === 'gzip') return callback();
    callback(new NotGzip(this.size, this.head.subarray(0, 4).toString('hex') || 'nothing'));
  }
}

/** A member is larger than its reader takes: refused rather than held. */
export const MEMBER_TOO_LARGE = 'is larger than';

/**
 * Regular files of a tar.gz, in archive order, read as the archive streams by: only those `keep`
 * accepts are held (each up to `maxMemberBytes`), the rest is drained, so looking for a small
 * member does not hold the video next to it, nor the archive itself.
 */
async function extractMembers(source: Readable, keep: (name: string) => boolean, onMember: (member: Member) => void, maxMemberBytes = Number.POSITIVE_INFINITY): Promise<void> {
  const magic = new GzipMagic();
  const gunzip = createGunzip();
  const extract = tar.extract();
  let sourceError: unknown = null;
  let gunzipError: Error | null = null;
  source.once('error', (err) => (sourceError ??= err));
  gunzip.once('error', (err) => (gunzipError ??= err));
  const flowing = pipeline(source, magic, gunzip, extract);
  // The loop below sees the same failure; this only keeps an early one from going unhandled.
  flowing.catch(() => undefined);
  try {
    for await (const entry of extract) {
      const name = normalizeMemberName(entry.header.name);
      if (!FILE_TYPES.has(entry.header.type) || !keep(name)) {
        entry.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of entry) {
        size += (chunk as Buffer).length;
        if (size > maxMemberBytes) throw unreadable(`member ${name} ${MEMBER_TOO_LARGE} ${maxMemberBytes} bytes`);
        chunks.push(chunk as Buffer);
      }
      onMember({ name, data: Buffer.concat(chunks, size) });
    }
    await flowing;
  } catch (err) {
    source.destroy();
    if (err instanceof FaveFailure) throw err;
    if (sourceError !== null) throw sourceError;
    if (err instanceof NotGzip) throw unreadable(`not a gzip archive (${err.size} bytes, starting with ${err.head})`);
    const failure = gunzipError ?? err;
    const reason = failure instanceof Error ? failure.message : String(failure);
    if (gunzipError !== null) throw unreadable(`gzip stream is corrupt or truncated: ${reason}`);
    throw unreadable(`tar archive inside the gzip stream is corrupt or truncated: ${reason}`);
  }
}

function sourceOf(archive: Buffer | Readable): Readable {
  return Buffer.isBuffer(archive) ? Readable.from([archive]) : archive;
}

/**
 * Every regular file of a tar.gz by its name, without a leading "./" or "/". A name stored
 * twice keeps its last copy, as extracting the archive would. It holds every member: for
 * archives known to be small.
 */
export async function readTarGzMembers(archive: Buffer | Readable): Promise<Map<string, Buffer>> {
  const members = new Map<string, Buffer>();
  await extractMembers(
    sourceOf(archive),
    () => true,
    (m) => members.set(m.name, m.data),
  );
  return members;
}

export interface MemberReadOptions {
  /** A wanted member larger than this is ARTIFACT_UNREADABLE instead of being held. */
  maxBytes?: number;
}

/**
 * One file of a tar.gz, or `null` when there is none by that name. The exact path wins
 * (its last copy); otherwise the first file with the same base name, since stages differ in
 * whether they put files under a directory. The archive streams through: at most two copies of
 * the wanted member are held, never the rest.
 */
export async function readTarGzMember(archive: Buffer | Readable, name: string, options: MemberReadOptions = {}): Promise<Buffer | null> {
  const wanted = normalizeMemberName(name);
  const wantedBase = basename(wanted);
  const found: { exact: Buffer | null; byBase: Buffer | null } = { exact: null, byBase: null };
  await extractMembers(
    sourceOf(archive),
    (n) => n === wanted || (found.byBase === null && basename(n) === wantedBase),
    (m) => {
      if (m.name === wanted) found.exact = m.data;
      else found.byBase ??= m.data;
    },
    options.maxBytes,
  );
  return found.exact ?? found.byBase;
}

// ---------------------------------------------------------------------------------------------
// timestamps.txt

const CLOCK = /^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)$/;
const SECONDS = /^\d+(?:\.\d+)?$/;

function parseTime(token: string): number | null {
  const clock = CLOCK.exec(token);
  if (clock) return Number(clock[1]) * 3600 + Number(clock[2]) * 60 + Number(clock[3]);
  if (SECONDS.test(token)) return Number(token);
  return null;
}

/** Binary floating point would turn 01:02:03.1 into 3723.1000000000004. */
function toMillisecondPrecision(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/**
 * The clip times in `timestamps.txt`: one `start end` pair per line, each as `HH:MM:SS`
 * (optionally with a fraction) or as plain seconds. Blank lines are skipped.
 */
export function parseTimestamps(text: string): Array<{ start_s: number; end_s: number }> {
  const ranges: Array<{ start_s: number; end_s: number }> = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `timestamps.txt line ${i + 1} ${JSON.stringify(raw)}`;
    const tokens = line.split(/\s+/);
    if (tokens.length !== 2) {
      throw unreadable(`${where}: expected "start end" (HH:MM:SS HH:MM:SS or seconds), found ${tokens.length} field(s)`);
    }
    const [startToken, endToken] = tokens as [string, string];
    const start = parseTime(startToken);
    const end = parseTime(endToken);
    if (start === null || end === null) {
      const bad = start === null ? startToken : endToken;
      throw unreadable(`${where}: ${JSON.stringify(bad)} is not a time (HH:MM:SS[.fff] or seconds)`);
    }
    if (end < start) throw unreadable(`${where}: end ${endToken} is before start ${startToken}`);
    ranges.push({ start_s: toMillisecondPrecision(start), end_s: toMillisecondPrecision(end) });
  });
  return ranges;
}

// ---------------------------------------------------------------------------------------------
// transcript.txt

const DUMMY = /^dummy transcript(?:\s*:([\s\S]*))?$/i;

/**
 * A transcript, or why there is none. Without a model the deepspeech stage writes
 * `Dummy transcript: <reason>`, which is not speech and must not be searched as such.
 */
/**
 * Longest transcript kept per clip (it is stored in state.json and the result). A clip is at
 * most 30 s of speech, a few thousand characters: this bounds a stage gone wrong, not speech.
 */
export const MAX_TRANSCRIPT_CHARS = 100_000;

export function interpretTranscript(text: string): { transcript: string | null; note: string | null } {
  const trimmed = text.trim();
  if (trimmed === '') return { transcript: null, note: 'empty transcript' };
  const dummy = DUMMY.exec(trimmed);
  if (dummy) {
    const reason = (dummy[1] ?? '').trim();
    return { transcript: null, note: noTranscriptNote(reason) };
  }
  // The text itself says where it was cut.
  return { transcript: truncateText(trimmed, MAX_TRANSCRIPT_CHARS), note: null };
}

// ---------------------------------------------------------------------------------------------
// object detector JSON

export interface Detection {
  label: string;
  confidence: number;
  /** `[x1, y1, x2, y2]` in the detector's pixel space, or null when it gave none. */
  box: number[] | null;
}

const finite = z.number().refine(Number.isFinite, 'expected a finite number');

const BoxSchema = z.union(
  [
    z.tuple([finite, finite, finite, finite]).transform((b): number[] => [...b]),
    z.looseObject({ x1: finite, y1: finite, x2: finite, y2: finite }).transform((b) => [b.x1, b.y1, b.x2, b.y2]),
    z.looseObject({ x: finite, y: finite, w: finite, h: finite }).transform((b) => [b.x, b.y, b.x + b.w, b.y + b.h]),
    z.looseObject({ x: finite, y: finite, width: finite, height: finite }).transform((b) => [b.x, b.y, b.x + b.width, b.y + b.height]),
  ],
  { error: 'expected [x1, y1, x2, y2], {x1, y1, x2, y2} or {x, y, w, h}' },
);

/** A class name, or a COCO-80 class id (also as a string of digits). */
const LabelSchema = z.union([z.string(), z.number()], { error: 'expected a class name or a COCO class id' }).transform((value, ctx): string => {
  const text = typeof value === 'string' ? value.trim() : String(value);
  if (typeof value === 'number' || /^\d+$/.test(text)) {
    const label = cocoLabelForId(Number(text));
    if (label === null) {
      ctx.addIssue({ code: 'custom', message: `class id ${text} is not a COCO-80 class id (0-79)` });
      return z.NEVER;
    }
    return label;
  }
  if (text === '') {
    ctx.addIssue({ code: 'custom', message: 'empty class name' });
    return z.NEVER;
  }
  return text.toLowerCase();
});

const ConfidenceSchema = finite.min(0, 'expected a confidence between 0 and 1').max(1, 'expected a confidence between 0 and 1');

const DetectionSchema = z
  .looseObject(
    {
      label: LabelSchema.optional(),
      class: LabelSchema.optional(),
      name: LabelSchema.optional(),
      confidence: ConfidenceSchema.optional(),
      score: ConfidenceSchema.optional(),
      box: BoxSchema.nullish(),
    },
    { error: 'expected a detection object' },
  )
  .transform((d, ctx): Detection => {
    const label = d.label ?? d.class ?? d.name;
    if (label === undefined) {
      ctx.addIssue({ code: 'custom', message: 'missing: a detection needs label, class or name', path: ['label'] });
      return z.NEVER;
    }
    const confidence = d.confidence ?? d.score;
    if (confidence === undefined) {
      ctx.addIssue({ code: 'custom', message: 'missing: a detection needs confidence or score', path: ['confidence'] });
      return z.NEVER;
    }
    return { label, confidence, box: d.box ?? null };
  });

const DetectionListSchema = z.array(DetectionSchema);

const DetectorDocumentSchema = z.looseObject({
  detections: DetectionListSchema,
});

/** The prototype detector runs the model but decodes nothing: `{model, raw_output_shapes, note}`. */
const PrototypeDocumentSchema = z.looseObject({
  detections: z.null().optional(),
  model: z.unknown().optional(),
  raw_output_shapes: z.unknown().optional(),
  note: z.unknown().optional(),
});

/**
 * The detections of a list every entry of which has the plain form (a class name, a confidence
 * between 0 and 1, a box `[x1, y1, x2, y2]` or none), as DetectionListSchema gives them; null
 * when any entry has another form, which the schema then reads or rejects with its reason.
 * Each detector call answers a list: this keeps the schema's unions and transforms off the
 * common path.
 */
function plainDetections(list: unknown[]): Detection[] | null {
  const detections: Detection[] = [];
  for (const entry of list) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return null;
    const d = entry as Record<string, unknown>;
    let label: string | undefined;
    for (const value of [d.label, d.class, d.name]) {
      if (value === undefined) continue;
      if (typeof value !== 'string') return null;
      const text = value.trim();
      if (text === '' || /^\d+$/.test(text)) return null;
      label ??= text.toLowerCase();
    }
    let confidence: number | undefined;
    for (const value of [d.confidence, d.score]) {
      if (value === undefined) continue;
      if (typeof value !== 'number' || !(value >= 0 && value <= 1)) return null;
      confidence ??= value;
    }
    if (label === undefined || confidence === undefined) return null;
    const box = d.box;
    if (box === undefined || box === null) {
      detections.push({ label, confidence, box: null });
      continue;
    }
    if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => typeof v === 'number' && Number.isFinite(v))) return null;
    detections.push({ label, confidence, box: [...(box as number[])] });
  }
  return detections;
}

function parseOrContract<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw contract(`object detector output is not usable: ${describeZodIssue(parsed.error)}`);
}

/**
 * The detections in an object detector's JSON document: `{detections: [...]}` or a bare array.
 * The prototype detector's document, which has no detections, yields none and a note saying
 * why, rather than anything invented.
 */
export function interpretDetections(json: unknown): { detections: Detection[]; note: string | null } {
  if (Array.isArray(json)) return { detections: plainDetections(json) ?? parseOrContract(DetectionListSchema, json), note: null };
  if (typeof json !== 'object' || json === null) {
    throw contract(`object detector output is not usable: (root): expected {"detections": [...]} or an array of detections, got ${json === null ? 'null' : typeof json}`);
  }
  const document = json as Record<string, unknown>;
  if (document.detections !== undefined && document.detections !== null) {
    const detections = (Array.isArray(document.detections) ? plainDetections(document.detections) : null) ?? parseOrContract(DetectorDocumentSchema, document).detections;
    // An empty list with a note says why nothing was detected (e.g. no model configured).
    const note = detections.length === 0 && typeof document.note === 'string' && document.note.trim() !== '' ? document.note.trim() : null;
    return { detections, note };
  }
  const prototype = PrototypeDocumentSchema.safeParse(document);
  if (prototype.success && ('raw_output_shapes' in document || 'note' in document || 'model' in document)) {
    const { note, model } = prototype.data;
    const why =
      typeof note === 'string' && note.trim() !== ''
        ? note.trim()
        : typeof model === 'string' && model.trim() !== ''
          ? `model ${model.trim()} reported raw outputs only`
          : 'the detector reported raw outputs only';
    return { detections: [], note: `no detections available: ${why}` };
  }
  throw contract('object detector output is not usable: detections: missing (expected an array of detections)');
}
