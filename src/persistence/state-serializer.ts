import type { ClipState } from '../domain/context.ts';
import type { StateEnvelope } from './state-file.ts';

/**
 * The bytes of a state envelope, re-serializing only what changed since the last write.
 *
 * The machine's context is immutable and structurally shared: a clip that did not change between
 * two writes is the same object. Its UTF-8 JSON is kept (weakly, so it goes with the object) and
 * reused, and the envelope is assembled from those buffers in one copy, so a write during fan-out
 * costs the clips that moved rather than the whole request; no string of the whole file is
 * built, which on an 8 MB state would have to be concatenated, flattened and encoded again.
 * The result is byte-for-byte what JSON.stringify gives for the same value (each clip in its
 * stored form), up to key order (`clips` comes last in the context, `context` last in the snapshot).
 */
const clipJsonByForm = new WeakMap<(clip: ClipState) => unknown, WeakMap<ClipState, Buffer>>();
const COMMA = Buffer.from(',');
const asItIs = (clip: ClipState): unknown => clip;

/**
 * `clipForm` gives the value a clip is stored as (`storedClip`); it must depend on the clip alone,
 * since its bytes are kept with the clip.
 */
export function serializeEnvelope(envelope: StateEnvelope, clipForm: (clip: ClipState) => unknown = asItIs): Buffer {
  const layout = layoutOf(envelope, clipForm);
  const parts = [layout.opening];
  addClips(layout, 0, layout.clips.length, parts);
  parts.push(layout.closing);
  return Buffer.concat(parts);
}

/**
 * The same bytes in parts (the per-clip buffers are the cached ones), for a gathered write,
 * serialized a slice of at most `sliceMs` at a time with the event loop let go in between.
 * During detection most clips can change between two writes, so a write may re-serialize much
 * of the request (tens of ms for 1,000 clips): in one piece, every stage answer that arrives
 * meanwhile waits for it, and the calls in flight sit idle. The context is immutable, so the
 * envelope taken at the start is still the same value at the end.
 */
export async function envelopePartsInSlices(envelope: StateEnvelope, clipForm: (clip: ClipState) => unknown, sliceMs: number): Promise<Buffer[]> {
  const layout = layoutOf(envelope, clipForm);
  const parts = [layout.opening];
  const total = layout.clips.length;
  let next = 0;
  while (next < total) {
    const started = performance.now();
    do {
      const end = Math.min(total, next + CLIPS_BETWEEN_CLOCK_READS);
      addClips(layout, next, end, parts);
      next = end;
    } while (next < total && performance.now() - started < sliceMs);
    if (next < total) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  parts.push(layout.closing);
  return parts;
}

const CLIPS_BETWEEN_CLOCK_READS = 8;

/**
 * Makes the bytes of a clip ahead of the write that will need them (if not made yet): a clip
 * that will not change again is then serialized while the event loop has time, not on the way
 * to the request's answer.
 */
export function serializeClipAhead(clip: ClipState, clipForm: (clip: ClipState) => unknown): void {
  clipBytes(clip, clipForm, cacheOf(clipForm));
}

/** A clip's JSON bytes in its stored form: the cached ones, or made now and cached. */
function clipBytes(clip: ClipState, clipForm: (clip: ClipState) => unknown, cache: WeakMap<ClipState, Buffer>): Buffer {
  let json = cache.get(clip);
  if (json === undefined) {
    json = Buffer.from(JSON.stringify(clipForm(clip)), 'utf8');
    cache.set(clip, json);
  }
  return json;
}

function cacheOf(clipForm: (clip: ClipState) => unknown): WeakMap<ClipState, Buffer> {
  let cache = clipJsonByForm.get(clipForm);
  if (!cache) {
    cache = new WeakMap();
    clipJsonByForm.set(clipForm, cache);
  }
  return cache;
}

interface Layout {
  opening: Buffer;
  closing: Buffer;
  clips: readonly ClipState[];
  clipForm: (clip: ClipState) => unknown;
  cache: WeakMap<ClipState, Buffer>;
}

function layoutOf(envelope: StateEnvelope, clipForm: (clip: ClipState) => unknown): Layout {
  const { snapshot, ...head } = envelope;
  const { context, ...snapshotRest } = snapshot;
  const { clips, ...contextRest } = context;
  // Each object left open for the field nested in it; the clips array closes them all again.
  const levels = [
    [head, 'snapshot'],
    [snapshotRest, 'context'],
    [contextRest, 'clips'],
  ] as const;
  const opening = `${levels.map(([rest, key]) => openField(objectJson(rest), key)).join('')}[`;
  return { opening: Buffer.from(opening, 'utf8'), closing: Buffer.from(`]${'}'.repeat(levels.length)}`), clips, clipForm, cache: cacheOf(clipForm) };
}

/** The JSON of clips [from, to), each preceded by the comma that separates it from the one before. */
function addClips(layout: Layout, from: number, to: number, parts: Buffer[]): void {
  const { clips, clipForm, cache } = layout;
  for (let i = from; i < to; i++) {
    const clip = clips[i]!;
    if (i > 0) parts.push(COMMA);
    parts.push(clipBytes(clip, clipForm, cache));
  }
}

/**
 * The JSON of the values of the envelope's upper levels, kept with each value as a clip's is: the
 * request's own records (ffmpeg-1's lists every clip it cut) and the clip times are a few hundred
 * KB on a large request, written again with every state.json although they no longer change once
 * the clips are cut.
 */
const valueJsonCache = new WeakMap<object, string>();

/** `JSON.stringify(value)` of a plain object, each of its object values' JSON made once per value. */
function objectJson(value: object): string {
  let json = '{';
  for (const [key, field] of Object.entries(value)) {
    if (field === undefined) continue;
    if (json.length > 1) json += ',';
    json += `${JSON.stringify(key)}:${valueJson(field)}`;
  }
  return `${json}}`;
}

function valueJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  let json = valueJsonCache.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    valueJsonCache.set(value, json);
  }
  return json;
}

/** The JSON text of an object, left open for one more field: `{"a":1` + `,"key":`. */
function openField(objectJson: string, key: string): string {
  const separator = objectJson.length > 2 ? ',' : '';
  return `${objectJson.slice(0, -1)}${separator}${JSON.stringify(key)}:`;
}
