import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createApp } from '../src/app.ts';
import { dispatchPrefix } from '../src/persistence/dispatch-journal.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { startHarness } from './support/harness.ts';
import { until } from './support/until.ts';

describe('attempts interrupted by a stop', () => {
  it("are counted and marked on resume, and do not use up the call's attempts", async () => {
    const h = closeAfterTest(
      await startHarness({ env: { RETRY_MAX_ATTEMPTS: '1' }, gateway: { clips: 2, framesPerClip: 1, faults: [{ stage: 'deepspeech', clip: 1, kind: 'hang', times: 1 }] } }),
    );
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'stopped' });
    handle.done.catch(() => undefined);
    // Stopped when the hanging call is the only one: clip 0's chain is done, and detection waits.
    await until(
      () => h.gateway.callsTo('deepspeech').some((c) => c.clip === 1) && h.gateway.callsTo('ffmpeg3').some((c) => c.clip === 0 && c.ended_at !== null) && h.gateway.inFlight === 1,
      {
        message: 'the hanging call alone in flight',
      },
    );
    await h.app.orchestrator.close();
    expect((await h.store.list('fave-artifacts', dispatchPrefix('stopped'))).length).toBeGreaterThan(0);

    const second = closeAfterTest(await createApp({ env: h.env, logger: pino({ level: 'silent' }) }));
    const outcome = await (await second.orchestrator.resume('stopped')).done;
    // With one attempt allowed, counting the interrupted one against it would have failed the call.
    expect(outcome.status).toBe('COMPLETED');
    const served = h.gateway.calls.filter((c) => c.request_id === 'stopped').length;
    expect(outcome.result.metrics.invocations).toBe(served);
    const clip = (await h.readState('stopped')).snapshot.context.clips[1]!;
    expect(clip.records.filter((r) => r.stage === 'stage-deepspeech').map((r) => [r.attempt, r.outcome])).toEqual([
      [1, 'interrupted'],
      [1, 'success'],
    ]);
    // Resuming the finished request again reads the same journal and counts nothing twice.
    const again = await (await second.orchestrator.resume('stopped')).done;
    expect(again.result.metrics.invocations).toBe(served);
    await until(async () => (await h.store.list('fave-artifacts', dispatchPrefix('stopped'))).length === 0, { message: 'the journal to be cleared' });
  });
});
