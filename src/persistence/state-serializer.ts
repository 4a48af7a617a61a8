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
  return Buffer.concat(envelopeParts(envelope, clipForm));
}

/** The same bytes in parts (the per-clip buffers are the cached ones), for a gathered write. */
export function envelopeParts(envelope: StateEnvelope, clipForm: (clip: ClipState) => unknown = asItIs): Buffer[] {
  const { snapshot, ...head } = envelope;
  const { context, ...snapshotRest } = snapshot;
  const { clips, ...contextRest } = context;
  // Each object left open for the field nested in it; the clips array closes them all again.
  const levels = [
    [head, 'snapshot'],
    [snapshotRest, 'context'],
    [contextRest, 'clips'],
  ] as const;
  const opening = `${levels.map(([rest, key]) => openField(JSON.stringify(rest), key)).join('')}[`;
  const parts: Buffer[] = [Buffer.from(opening, 'utf8')];
  let clipJson = clipJsonByForm.get(clipForm);
  if (!clipJson) {
    clipJson = new WeakMap();
    clipJsonByForm.set(clipForm, clipJson);
  }
  clips.forEach((clip, i) => {
    if (i > 0) parts.push(COMMA);
    let json = clipJson.get(clip);
    if (json === undefined) {
      json = Buffer.from(JSON.stringify(clipForm(clip)), 'utf8');
      clipJson.set(clip, json);
    }
    parts.push(json);
  });
  parts.push(Buffer.from(`]${'}'.repeat(levels.length)}`));
  return parts;
}

/** The JSON text of an object, left open for one more field: `{"a":1` + `,"key":`. */
function openField(objectJson: string, key: string): string {
  const separator = objectJson.length > 2 ? ',' : '';
  return `${objectJson.slice(0, -1)}${separator}${JSON.stringify(key)}:`;
}
