import type { StateEnvelope } from './state-file.ts';

/**
 * JSON of a state envelope, re-serializing only what changed since the last write.
 *
 * The machine's context is immutable and structurally shared: a clip that did not change between
 * two writes is the same object. Its JSON is kept (weakly, so it goes with the object) and reused,
 * which makes a write during fan-out cost the clips that moved rather than the whole request.
 * The result is byte-for-byte what JSON.stringify gives for the same value, up to key order
 * (`clips` comes last in the context, `context` last in the snapshot).
 */
const clipJson = new WeakMap<object, string>();

export function serializeEnvelope(envelope: StateEnvelope): string {
  const { snapshot, ...head } = envelope;
  const { context, ...snapshotRest } = snapshot;
  const { clips, ...contextRest } = context;
  const parts: string[] = [];
  for (const clip of clips) {
    let json = clipJson.get(clip);
    if (json === undefined) {
      json = JSON.stringify(clip);
      clipJson.set(clip, json);
    }
    parts.push(json);
  }
  const contextJson = `${withField(JSON.stringify(contextRest), 'clips', `[${parts.join(',')}]`)}`;
  const snapshotJson = withField(JSON.stringify(snapshotRest), 'context', contextJson);
  return withField(JSON.stringify(head), 'snapshot', snapshotJson);
}

/** Appends `"key": raw` to the JSON text of an object. */
function withField(objectJson: string, key: string, raw: string): string {
  const open = objectJson.length > 2 ? ',' : '';
  return `${objectJson.slice(0, -1)}${open}${JSON.stringify(key)}:${raw}}`;
}
