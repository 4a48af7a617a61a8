import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinalResultSchema } from '../src/domain/result.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { runTool } from '../src/stages/local/tools.ts';
import { serveFave } from './support/child.ts';
import { makeSilentVideo } from './support/media.ts';
import { until } from './support/until.ts';

/**
 * The server's memory does not grow with the video: `fave serve` (a real child process, the
 * embedded stages) runs a video of more than 150 MB, and its peak resident memory grows by a
 * small part of that. The archives the stages hand each other hold the whole video; they are
 * streamed, never held.
 */

const MIB = 1024 * 1024;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-memory-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A field of /proc/{pid}/status in bytes (VmRSS: resident now, VmHWM: the peak). */
async function memoryOf(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

describe.skipIf(process.platform !== 'linux')('memory independent of the video', () => {
  it("the server's peak RSS grows by less than a third of a 150+ MB video's size", async () => {
    // Lossless noise does not compress: three seconds of 720p are about 160 MB, made in seconds.
    const big = join(dir, 'noise.mp4');
    await runTool(
      'ffmpeg',
      [
        '-hide_banner',
        '-nostdin',
        '-loglevel',
        'error',
        '-y',
        '-f',
        'rawvideo',
        '-pix_fmt',
        'yuv420p',
        '-s',
        '1280x720',
        '-r',
        '25',
        '-i',
        '/dev/urandom',
        '-frames:v',
        '75',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-qp',
        '0',
        big,
      ],
      { signal: AbortSignal.timeout(120_000) },
    );
    const videoBytes = (await stat(big)).size;
    expect(videoBytes).toBeGreaterThan(150 * MIB);
    const small = join(dir, 'small.mp4');
    await makeSilentVideo(small, { duration: 2 });

    const store = new FsStore(join(dir, 'data'), 'fave-artifacts');
    await store.init();
    await store.putStream({ bucket: 'fave-artifacts', key: 'uploads/noise.mp4' }, createReadStream(big));
    await store.putStream({ bucket: 'fave-artifacts', key: 'uploads/small.mp4' }, createReadStream(small));

    const { run: server, base, log: serverLog } = await serveFave(dir, { FAVE_DETECTOR: 'none', FAVE_FRAME_FPS: '1' });
    const pid = server.child.pid!;

    const runRequest = async (id: string, key: string) => {
      const res = await fetch(`${base}/?async=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ video_uri: `s3://fave-artifacts/${key}`, request_id: id }),
      });
      expect(res.status, await res.text()).toBe(202);
      const result = await until(
        async () => {
          const answer = await fetch(`${base}/requests/${id}/result`);
          return answer.ok ? FinalResultSchema.parse(await answer.json()) : null;
        },
        { timeoutMs: 150_000, everyMs: 250, message: () => `request ${id} to finish; stderr: ${serverLog()}` },
      );
      expect(result.status, JSON.stringify(result.error)).toBe('COMPLETED');
      return result;
    };

    try {
      await until(
        () =>
          fetch(`${base}/healthz`).then(
            (r) => r.ok,
            () => false,
          ),
        { timeoutMs: 30_000, everyMs: 100, message: 'fave serve to answer' },
      );
      // A small request first, so what a first request loads is not counted against the video.
      await runRequest('warm-up', 'uploads/small.mp4');

      const before = await memoryOf(pid, 'VmRSS');
      // Resets the peak to the present (the kernel's clear_refs: 5).
      await writeFile(`/proc/${pid}/clear_refs`, '5');
      const result = await runRequest('large', 'uploads/noise.mp4');
      expect(result.clips.length).toBeGreaterThan(0);
      const peak = await memoryOf(pid, 'VmHWM');

      const growth = peak - before;
      console.log(
        `video ${(videoBytes / MIB).toFixed(0)} MiB: server RSS ${(before / MIB).toFixed(0)} MiB before, peak ${(peak / MIB).toFixed(0)} MiB, growth ${(growth / MIB).toFixed(0)} MiB`,
      );
      expect(growth).toBeLessThan(videoBytes / 3);
    } finally {
      server.child.kill('SIGTERM');
      await server.exit;
    }
  }, 300_000);
});
