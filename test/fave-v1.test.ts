import { describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { startHarness, type Harness, type HarnessOptions } from './support/harness.ts';

/**
 * FAVE's own client tools against this orchestrator: the workload generator posts
 * `{video_uri, profile}` and reads the HTTP answer; the analysis scripts count a request as a
 * success when it is HTTP 2xx and `status != "error"`, and sum `metrics.cost_unit` over
 * `result.linear` and `result.clips[].stages`.
 */

let h: Harness | null = null;
let server: HttpServer | null = null;

async function start(options: HarnessOptions): Promise<void> {
  h = closeAfterTest(await startHarness(options));
  server = closeAfterTest(await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false }), (s) => s.close(200));
}

interface Posted {
  status: number;
  // The envelope is read field by field, as FAVE's Python scripts read it.
  body: Record<string, any>;
}

async function post(path: string, body: unknown): Promise<Posted> {
  const res = await fetch(`${server!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** FAVE's analysis rule, re-implemented: success, application error, and the request's cost. */
function analyse(answer: Posted): { success: boolean; appError: boolean; cost: number } {
  const success = answer.status >= 200 && answer.status < 300 && answer.body.status !== 'error';
  const result = answer.body.result ?? {};
  const entries = [...(result.linear ?? []), ...(result.clips ?? []).flatMap((c: { stages: unknown[] }) => c.stages)] as Array<{ metrics?: { cost_unit?: number } }>;
  const cost = entries.reduce((sum, e) => sum + (e.metrics?.cost_unit ?? 0), 0);
  return { success, appError: answer.status === 200 && answer.body.status === 'error', cost };
}

function handedOut(requestId: string): number {
  return h!.gateway.calls.filter((c) => c.request_id === requestId).reduce((sum, c) => sum + (c.cost_unit ?? 0), 0);
}

describe("RESPONSE_FORMAT=fave-v1: the Python orchestrator's answer envelope", () => {
  it("FAVE's analysis rule finds every request a success with the cost the gateway handed out, and a failure as one application error", async () => {
    await start({
      env: { RESPONSE_FORMAT: 'fave-v1' },
      gateway: { clips: 3, framesPerClip: 2, latencyMs: 4, faults: [{ stage: 'ffmpeg1', requestId: 'broken', kind: 'error', message: 'ffmpeg-1: no video stream' }] },
    });
    const answers = await Promise.all([1, 2, 3].map(() => post('/', { video_uri: h!.videoUri, profile: 'warm' })));
    for (const answer of answers) {
      const seen = analyse(answer);
      expect(seen.success, JSON.stringify(answer.body).slice(0, 300)).toBe(true);
      const id = answer.body.request_id as string;
      expect(handedOut(id)).toBeGreaterThan(0);
      expect(seen.cost).toBeCloseTo(handedOut(id), 9);
      expect(answer.body.result.linear.map((e: { stage: string }) => e.stage)).toEqual(['stage-ffmpeg-0', 'stage-librosa', 'stage-ffmpeg-1']);
      expect(answer.body.result.linear[0].metrics).toMatchObject({ memory_limit_mb: 512, cold_start: false });
      expect(answer.body.result.linear[2].outputs).toHaveLength(3);
      const clip = answer.body.result.clips[1];
      expect(clip).toMatchObject({ clip_index: 1, input_uri: expect.stringContaining('clip') });
      expect(clip.stages.map((e: { stage: string }) => e.stage)).toEqual([
        'stage-ffmpeg-2',
        'stage-deepspeech',
        'stage-ffmpeg-3',
        'stage-object-detector',
        'stage-object-detector',
      ]);
      expect(clip.stages[2].outputs.map((o: { metadata: unknown }) => o.metadata)).toEqual([
        { clip: 1, frame_index: 0 },
        { clip: 1, frame_index: 1 },
      ]);
      expect(clip.stages[4]).toMatchObject({ status: 'success', clip_index: 1, frame_index: 1, frame_uri: clip.stages[2].outputs[1].uri });
      // Our own answer rides along.
      expect(answer.body.answer).toMatchObject({ request_id: id, status: 'COMPLETED' });
    }
    expect(new Set(answers.map((a) => a.body.request_id)).size).toBe(3);

    const failed = await post('/', { video_uri: h!.videoUri, request_id: 'broken' });
    expect(failed.status).toBe(200);
    expect(analyse(failed)).toMatchObject({ success: false, appError: true });
    expect(failed.body).toMatchObject({ status: 'error', request_id: 'broken', message: expect.stringContaining('ffmpeg-1: no video stream') });
    // One call, one answer: nothing for a client to retry as a new request.
    expect(h!.gateway.callsTo('ffmpeg1').filter((c) => c.request_id === 'broken')).toHaveLength(1);

    const stored = await fetch(`${server!.url}/requests/${answers[0]!.body.request_id}/result`);
    const body = (await stored.json()) as Record<string, any>;
    expect(body.status).toBe('ok');
    expect(analyse({ status: stored.status, body }).cost).toBeCloseTo(analyse(answers[0]!).cost, 9);
  });

  it("?format=fave-v1 asks for it per call; the default stays this orchestrator's own answer", async () => {
    await start({ gateway: { clips: 1, framesPerClip: 1 } });
    const own = await post('/', { video_uri: h!.videoUri });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ status: 'COMPLETED', result: { status: 'COMPLETED' } });
    const v1 = await post('/?format=fave-v1', { video_uri: h!.videoUri });
    expect(v1.body).toMatchObject({ status: 'ok', result: { linear: expect.any(Array), clips: expect.any(Array) } });
    const bad = await post('/?format=xml', { video_uri: h!.videoUri });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'BAD_REQUEST', field: 'format' });
  });
});
