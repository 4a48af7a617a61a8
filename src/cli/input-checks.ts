import { lookup } from 'node:dns/promises';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { linkLocalOrMetadata } from '../input/addresses.ts';
import { importLocalStages } from '../stages/load-local.ts';

/**
 * Why a local file is not a video, asked of ffprobe before anything is stored; null when it is
 * one, or when ffprobe is not installed (an install without the optional packages: the stages,
 * wherever they run, judge the file then).
 */
export async function notAVideo(path: string): Promise<string | null> {
  if (!platformBinariesInstalled()) return null;
  const tools = await importLocalStages(() => import('../stages/local/probe.ts')).catch(() => null);
  if (!tools) return null;
  const { ToolFailure } = await import('../stages/local/tools.ts');
  try {
    const info = await tools.probeMedia(path, AbortSignal.timeout(30_000));
    if (info.video) return null;
    return `${path} is not a video (ffprobe finds ${info.audio ? `only audio, ${info.audio.codec}` : 'no video stream'})`;
  } catch (err) {
    if (err instanceof ToolFailure) return `${path} is not a video (ffprobe: ${err.reason})`;
    return `${path} is not a video (ffprobe could not read it: ${err instanceof Error ? err.message : String(err)})`;
  }
}

/**
 * Whether the ffmpeg/ffprobe binaries of this platform are installed, asked without loading their
 * installer packages: those throw while loading when the binaries are missing, and a module that
 * failed to load must not be imported again by the stages' own import (its message is the one to show).
 */
function platformBinariesInstalled(): boolean {
  const require = createRequire(import.meta.url);
  const platform = `${process.platform}-${process.arch}`;
  try {
    require.resolve(`@ffmpeg-installer/${platform}/package.json`);
    require.resolve(`@ffprobe-installer/${platform}/package.json`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the CLI must not fetch an http(s) video: its host is, or resolves to, a link-local or
 * cloud metadata address. Loopback and private addresses are the user's own and stay allowed.
 * The download checks every connection again (redirects, a changed DNS answer).
 */
export async function linkLocalRefusal(source: string): Promise<string | null> {
  if (!/^https?:\/\//i.test(source) || !URL.canParse(source)) return null;
  const host = new URL(source).hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host)
    ? [host]
    : await lookup(host, { all: true }).then(
        (all) => all.map((a) => a.address),
        () => [],
      );
  for (const address of addresses) {
    const reason = linkLocalOrMetadata(address);
    if (reason) {
      const shown = address === host ? host : `${host} (${address})`;
      return `${shown} is a ${reason} address: the CLI does not fetch from link-local or cloud metadata addresses; set ALLOW_PRIVATE_SOURCES=true to allow it`;
    }
  }
  return null;
}

/** The line that says which speech engine the local stages use when this machine provided it. */
export async function speechEngineLine(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const { resolveLocalStageSettings } = await import('../stages/local/stage-config.ts');
  const settings = resolveLocalStageSettings({}, env);
  if (settings.speechSource !== 'pocketsphinx') return null;
  return 'speech: pocketsphinx_continuous with its US English model, found on this machine (FAVE_SPEECH_COMMAND chooses another engine; none turns it off)';
}
