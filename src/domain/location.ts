/**
 * Where an error or an invocation happened: the stage's function name (or, for an error outside
 * any stage call, the pipeline's step) and the clip and frame of the call. No imports, so the
 * request page's own script (`src/ui/browser/`) bundles it as it is.
 */
export interface Location {
  stage?: string | undefined;
  step?: string | null | undefined;
  clip_index?: number | null | undefined;
  frame_index?: number | null | undefined;
}

/** "stage-ffmpeg-2 clip 3 frame 7", "INIT"; the one way messages, logs, the CLI and the pages name a location. */
export function describeLocation(at: Location, fallback = ''): string {
  const parts: string[] = [];
  const what = at.stage ?? at.step;
  if (what) parts.push(what);
  if (at.clip_index !== undefined && at.clip_index !== null) parts.push(`clip ${at.clip_index}`);
  if (at.frame_index !== undefined && at.frame_index !== null) parts.push(`frame ${at.frame_index}`);
  return parts.length > 0 ? parts.join(' ') : fallback;
}
