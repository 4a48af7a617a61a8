import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { until } from './support/until.ts';

const FFMPEG_TEXT = 'ffmpeg exited with 1: clip_001.mp4: Invalid data found when processing input';

let h: Harness | null = null;
let second: App | null = null;

const clipCalls = (clip: number) => h!.gateway.callsTo('ffmpeg2').filter((c) => c.clip === clip);

describe('a deterministic failure stops early', () => {
  it('the same HTTP 500 body twice fails the request after 2 attempts with that text', async () => {
    h = closeAfterTest(await startHarness({ gateway: { clips: 3, framesPerClip: 1, faults: [{ stage: 'ffmpeg2', clip: 1, kind: 'status', status: 500, body: FFMPEG_TEXT }] } }));
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'same-500' })).done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.result.error).toMatchObject({ code: 'STAGE_HTTP_ERROR', stage: 'stage-ffmpeg-2', clip_index: 1, http_status: 500, attempts: 2, transient: false });
    const message = outcome.result.error!.message;
    for (const part of ['stage-ffmpeg-2', 'clip 1', 'HTTP 500', FFMPEG_TEXT, 'attempts 1 and 2']) expect(message).toContain(part);
    expect(clipCalls(1)).toHaveLength(2);
  });

  it('a 500 followed by a success heals', async () => {
    h = closeAfterTest(
      await startHarness({ gateway: { clips: 2, framesPerClip: 1, faults: [{ stage: 'ffmpeg2', clip: 1, kind: 'status', status: 500, body: FFMPEG_TEXT, times: 1 }] } }),
    );
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'heals' })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(clipCalls(1).map((c) => c.status)).toEqual([500, 200]);
  });

  it('two different 500 bodies, and repeated gateway 502s, keep the whole budget', async () => {
    h = closeAfterTest(
      await startHarness({
        env: { RETRY_MAX_ATTEMPTS: '4' },
        gateway: {
          clips: 2,
          framesPerClip: 1,
          faults: [
            { stage: 'ffmpeg2', clip: 0, kind: 'status', status: 500, body: 'first text', times: 1 },
            { stage: 'ffmpeg2', clip: 0, kind: 'status', status: 500, body: 'second text', times: 1 },
            { stage: 'ffmpeg2', clip: 1, kind: 'status', status: 502, times: 3 },
          ],
        },
      }),
    );
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'budget' })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(clipCalls(0).map((c) => c.status)).toEqual([500, 500, 200]);
    expect(clipCalls(1).map((c) => c.status)).toEqual([502, 502, 502, 200]);
  });

  it('a profile with stop_on_repeated_error false keeps its whole budget; the cold profile is one', async () => {
    expect(loadConfig({}).profiles.cold!.retry.stop_on_repeated_error).toBe(false);
    expect(loadConfig({}).profiles.default!.retry.stop_on_repeated_error).toBe(true);
    h = closeAfterTest(await startHarness({ gateway: { clips: 1, framesPerClip: 1, faults: [{ stage: 'ffmpeg2', kind: 'status', status: 500, body: FFMPEG_TEXT }] } }));
    const file = join(h.dir, 'profiles.json');
    await writeFile(file, JSON.stringify({ patient: { retry: { stop_on_repeated_error: false } } }));
    second = closeAfterTest(await createApp({ env: { ...h.env, FAVE_PROFILES_FILE: file, RETRY_MAX_ATTEMPTS: '3' }, logger: pino({ level: 'silent' }) }));
    const outcome = await (await second.orchestrator.submit({ video_uri: h.videoUri, request_id: 'patient', profile: 'patient' })).done;
    expect(outcome.result.error).toMatchObject({ http_status: 500, attempts: 3 });
    expect(clipCalls(0)).toHaveLength(3);
  });

  it('compares with the failed attempt made before a resume', async () => {
    h = closeAfterTest(
      await startHarness({
        gateway: {
          clips: 1,
          framesPerClip: 1,
          faults: [
            { stage: 'ffmpeg2', kind: 'status', status: 500, body: FFMPEG_TEXT, times: 1 },
            { stage: 'ffmpeg2', kind: 'hang', times: 1 },
            { stage: 'ffmpeg2', kind: 'status', status: 500, body: FFMPEG_TEXT },
          ],
        },
      }),
    );
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'across' });
    handle.done.catch(() => undefined);
    await until(() => clipCalls(0).length === 2, { message: 'the second attempt in flight' });
    await h.app.orchestrator.close();
    expect((await h.readState('across')).snapshot.context.retrying['clip-0/ffmpeg2']).toHaveLength(1);

    second = closeAfterTest(await createApp({ env: h.env, logger: pino({ level: 'silent' }) }));
    const outcome = await (await second.orchestrator.resume('across')).done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.result.error).toMatchObject({ http_status: 500, attempts: 2, transient: false });
    expect(outcome.result.error!.message).toContain(FFMPEG_TEXT);
    expect(clipCalls(0).map((c) => c.outcome)).toEqual(['status', 'hang', 'status']);
  });
});
