import type { ClipProgress, ClipState, FrameState, PipelineContext } from '../domain/context.ts';
import type { Settings } from '../domain/settings.ts';
import { parseS3Uri, requestKeys, type ObjectLocation } from './store.ts';

/**
 * The artifacts of a request that may be served: each one is named by what it is (`clip-3`,
 * `frame-3-7`) and resolved to the URI the request's own state holds for it. A name never
 * becomes a key: it only selects among the URIs the stages answered, and only those under the
 * request's own prefix in its own bucket are ever served.
 */

/** What artifact lookup reads of a pipeline context (live or from state.json). */
export type ArtifactContext = Pick<PipelineContext, 'request_id'> & {
  settings: Pick<Settings, 'bucket'>;
  clips: ReadonlyArray<
    Pick<ClipState, 'index' | 'uri'> & {
      frames: ReadonlyArray<Pick<FrameState, 'index' | 'uri'>>;
      progress: Pick<ClipProgress, 'frames'>;
    }
  >;
};

export type ArtifactName = { kind: 'clip'; clip: number } | { kind: 'frame'; clip: number; frame: number };

const NAME = /^(?:clip-(\d{1,6})|frame-(\d{1,6})-(\d{1,7}))$/;

export function parseArtifactName(name: string): ArtifactName | null {
  const m = NAME.exec(name);
  if (!m) return null;
  if (m[1] !== undefined) return { kind: 'clip', clip: Number(m[1]) };
  return { kind: 'frame', clip: Number(m[2]), frame: Number(m[3]) };
}

export const artifactNames = {
  clip: (clip: number) => `clip-${clip}`,
  frame: (clip: number, frame: number) => `frame-${clip}-${frame}`,
};

/** The URI the state holds for a named artifact, or null when it holds none. */
export function artifactUri(context: ArtifactContext, name: ArtifactName): string | null {
  const clip = context.clips.find((c) => c.index === name.clip);
  if (!clip) return null;
  if (name.kind === 'clip') return clip.uri;
  const frame = clip.frames.find((f) => f.index === name.frame) ?? clip.progress.frames?.find((f) => f.index === name.frame);
  return frame?.uri ?? null;
}

/**
 * Where a named artifact of the request lives, or null: when the state holds no such artifact,
 * when its URI is not an `s3://` URI, or when it points outside `requests/{id}/` of the
 * request's bucket (a stage may answer any URI; only the request's own objects are served).
 */
export function locateArtifact(context: ArtifactContext, name: string): ObjectLocation | null {
  const parsed = parseArtifactName(name);
  if (!parsed) return null;
  const uri = artifactUri(context, parsed);
  if (uri === null) return null;
  let loc: ObjectLocation;
  try {
    loc = parseS3Uri(uri);
  } catch {
    return null;
  }
  if (loc.bucket !== context.settings.bucket) return null;
  if (!loc.key.startsWith(requestKeys.prefix(context.request_id))) return null;
  if (loc.key.split('/').some((part) => part === '' || part === '.' || part === '..') || loc.key.includes('\\')) return null;
  return loc;
}

const CONTENT_TYPES: Record<string, string> = {
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  mkv: 'video/x-matroska',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  wav: 'audio/wav',
  gz: 'application/gzip',
};

/** The content type of an artifact, by its key's extension. */
export function contentTypeOf(key: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(key)?.[1]?.toLowerCase() ?? '';
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}
