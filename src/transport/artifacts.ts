import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { z } from 'zod';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { cocoLabelForId } from '../domain/query/coco.ts';
import { truncateText } from '../lib/redact.ts';
import { describeZodIssue } from '../lib/zod-issue.ts';
import { noTranscriptNote } from '../domain/notes.ts';

/** Reading what the stages write: tar.gz archives, timestamps, transcripts, detections, in the formats `docs/stages.md` gives. */

const gunzipAsync = promisify(gunzip);

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

async function gunzipArchive(bytes: Buffer): Promise<Buffer> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    const head = bytes.subarray(0, 4).toString('hex') || 'nothing';
    throw unreadable(`not a gzip archive (${bytes.length} bytes, starting with ${head})`);
  }
  try {
    return await gunzipAsync(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw unreadable(`gzip stream is corrupt or truncated: ${reason}`);
  }
}

/**
 * Regular files of a tar.gz, in archive order; only those `keep` accepts are buffered, so
 * looking for a small member does not copy a large video next to it.
 */
async function extractMembers(bytes: Buffer, keep: (name: string) => boolean): Promise<Member[]> {
  const tarBytes = await gunzipArchive(bytes);
  const extract = tar.extract();
  const members: Member[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const name = normalizeMemberName(entry.header.name);
      if (!FILE_TYPES.has(entry.header.type) || !keep(name)) {
        entry.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      members.push({ name, data: Buffer.concat(chunks) });
    }
  })();
  extract.end(tarBytes);
  try {
    await reading;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw unreadable(`tar archive inside the gzip stream is corrupt or truncated: ${reason}`);
  }
  return members;
}

/**
 * Every regular file of a tar.gz by its name, without a leading "./" or "/". A name stored
 * twice keeps its last copy, as extracting the archive would.
 */
export async function readTarGzMembers(bytes: Buffer): Promise<Map<string, Buffer>> {
  const members = await extractMembers(bytes, () => true);
  return new Map(members.map((m) => [m.name, m.data]));
}

/**
 * One file of a tar.gz, or `null` when there is none by that name. The exact path wins
 * (its last copy); otherwise the first file with the same base name, since stages differ in
 * whether they put files under a directory.
 */
export async function readTarGzMember(bytes: Buffer, name: string): Promise<Buffer | null> {
  const wanted = normalizeMemberName(name);
  const wantedBase = basename(wanted);
  const members = await extractMembers(bytes, (n) => n === wanted || basename(n) === wantedBase);
  const exact = members.filter((m) => m.name === wanted).at(-1);
  return (exact ?? members[0])?.data ?? null;
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
    z
      .looseObject({ x: finite, y: finite, width: finite, height: finite })
      .transform((b) => [b.x, b.y, b.x + b.width, b.y + b.height]),
  ],
  { error: 'expected [x1, y1, x2, y2], {x1, y1, x2, y2} or {x, y, w, h}' },
);

/** A class name, or a COCO-80 class id (also as a string of digits). */
const LabelSchema = z.union([z.string(), z.number()], { error: 'expected a class name or a COCO class id' }).transform(
  (value, ctx): string => {
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
  },
);

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
  if (Array.isArray(json)) return { detections: parseOrContract(DetectionListSchema, json), note: null };
  if (typeof json !== 'object' || json === null) {
    throw contract(
      `object detector output is not usable: (root): expected {"detections": [...]} or an array of detections, got ${json === null ? 'null' : typeof json}`,
    );
  }
  const document = json as Record<string, unknown>;
  if (document.detections !== undefined && document.detections !== null) {
    const detections = parseOrContract(DetectorDocumentSchema, document).detections;
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
