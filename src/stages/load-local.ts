import { FaveFailure, faveError } from '../domain/errors.ts';

/**
 * Imports a module of the local stages. They need optional packages (the ffmpeg and ffprobe
 * binaries, onnxruntime) that an install with `--omit=optional` leaves out, as the container
 * image does; so they are imported only by what runs them, and a failed import says what is
 * missing and what to do instead of a bare module error.
 */
export async function importLocalStages<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const { message, code } = (err ?? {}) as { message?: unknown; code?: unknown };
    const reason = typeof message === 'string' ? message : typeof code === 'string' ? code : String(err);
    throw new FaveFailure(
      faveError(
        'BAD_CONFIG',
        `the local stages cannot be loaded (${reason}): they need the optional packages ` +
          '@ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe with their platform binaries, which an ' +
          'install with --omit=optional leaves out. Install them (npm install without --omit=optional), ' +
          'or set GATEWAY_URL to reach the stages through a gateway',
      ),
    );
  }
}
