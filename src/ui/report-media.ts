import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../persistence/store.ts';
import { contentTypeOf, locateArtifact, type ArtifactContext } from '../persistence/request-artifacts.ts';
import type { Answer } from './answer.ts';
import type { MediaLinks } from './answer-html.ts';

/**
 * The pictures and players of an offline report. Thumbnails are embedded as `data:` URIs,
 * downscaled with ffmpeg, the matches' first, until a total size is reached; the report says how
 * many were left out. Clip players link to a server only when its address is given.
 */

export interface ReportMediaOptions {
  store: Store;
  context: ArtifactContext;
  answer: Answer;
  /** Where `fave serve` answers (e.g. `http://127.0.0.1:8080`): clips play from its artifact route. */
  baseUrl?: string | null;
  /** The most bytes of embedded pictures (default 3 MiB). */
  maxEmbedBytes?: number;
  /** Width of an embedded thumbnail in pixels (default 240). */
  thumbnailWidth?: number;
}

export interface ReportMedia {
  media: MediaLinks;
  /** The origin the report's CSP lets clips play from. */
  mediaOrigin: string | null;
  embedded: number;
  leftOut: number;
}

export const DEFAULT_MAX_EMBED_BYTES = 3 * 1024 * 1024;
/** The largest picture read to be downscaled. */
const MAX_PICTURE_BYTES = 32 * 1024 * 1024;
/** Pictures this small are embedded as they are. */
const SMALL_PICTURE_BYTES = 12 * 1024;

/**
 * A smaller JPEG of a picture, or null when ffmpeg cannot make one. ffmpeg comes from an optional
 * package, so it is imported here, when a report is written, never when the CLI starts.
 */
async function downscale(bytes: Buffer, width: number, dir: string, n: number): Promise<Buffer | null> {
  const input = join(dir, `in-${n}`);
  const output = join(dir, `out-${n}.jpg`);
  await writeFile(input, bytes);
  try {
    const { FFMPEG_QUIET, runTool } = await import('../stages/local/tools.ts');
    await runTool('ffmpeg', [...FFMPEG_QUIET, '-i', input, '-frames:v', '1', '-vf', `scale='min(${width},iw)':-2`, '-q:v', '6', output], {
      signal: AbortSignal.timeout(30_000),
    });
    return await readFile(output);
  } catch {
    return null;
  }
}

export async function prepareReportMedia(options: ReportMediaOptions): Promise<ReportMedia> {
  const { store, context, answer } = options;
  const budget = options.maxEmbedBytes ?? DEFAULT_MAX_EMBED_BYTES;
  const width = options.thumbnailWidth ?? 240;
  const byIndex = new Map(answer.clips.map((c) => [c.index, c]));
  const ordered = [...answer.matches.map((i) => byIndex.get(i)!), ...answer.clips.filter((c) => c.match === null)];
  const wanted = ordered.flatMap((c) => c.thumbnails.map((t) => t.artifact));

  const pictures = new Map<string, string>();
  let used = 0;
  let leftOut = 0;
  const dir = await mkdtemp(join(tmpdir(), 'fave-report-'));
  try {
    for (const [n, artifact] of wanted.entries()) {
      // Once the budget cannot take even a small thumbnail, the rest is not read at all.
      if (budget - used < 2048) {
        leftOut++;
        continue;
      }
      const loc = locateArtifact(context, artifact);
      // A frame is a picture of some kilobytes; an artifact far larger is not read into memory.
      const info = loc ? await store.head(loc).catch(() => null) : null;
      const original = loc && info && info.size <= MAX_PICTURE_BYTES ? await store.get(loc).catch(() => null) : null;
      if (!original) {
        leftOut++;
        continue;
      }
      const small = original.length <= SMALL_PICTURE_BYTES ? original : await downscale(original, width, dir, n);
      if (!small || used + small.length > budget) {
        leftOut++;
        continue;
      }
      const type = small === original ? contentTypeOf(loc!.key) : 'image/jpeg';
      if (!type.startsWith('image/')) {
        leftOut++;
        continue;
      }
      used += small.length;
      pictures.set(artifact, `data:${type};base64,${small.toString('base64')}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const base = options.baseUrl ? options.baseUrl.replace(/\/+$/, '') : null;
  const id = encodeURIComponent(context.request_id);
  const note =
    leftOut > 0
      ? `${leftOut} of ${wanted.length} thumbnails are left out of this report (it embeds at most ${Math.round(budget / 1024)} KiB of pictures; see fave report --max-embed-kib)`
      : base
        ? null
        : 'Clip players are left out of this report; give fave report --base-url to play clips from a running fave serve.';
  return {
    media: {
      picture: (artifact) => pictures.get(artifact) ?? null,
      video: (artifact) => (base ? `${base}/requests/${id}/artifacts/${encodeURIComponent(artifact)}` : null),
      note,
    },
    mediaOrigin: base ? new URL(base).origin : null,
    embedded: pictures.size,
    leftOut,
  };
}
