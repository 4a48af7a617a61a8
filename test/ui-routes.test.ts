import { afterEach, describe, expect, it } from 'vitest';
import { TOP_LEVEL_STATES } from '../src/domain/context.ts';
import type { HttpResponseLike } from '../src/server/types.ts';
import { handleUi } from '../src/server/ui-routes.ts';
import type { RequestPageView, RequestSummary } from '../src/ui/view.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { until } from './support/until.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function get(path: string, method = 'GET'): Promise<HttpResponseLike> {
  const response = await handleUi({ method, path, query: {}, headers: {}, body: undefined }, h!.app.orchestrator);
  if (!response) throw new Error(`${path} was not answered by the UI`);
  return response;
}

function body(response: HttpResponseLike): string {
  return response.body.toString();
}

describe('the UI routes', () => {
  it('shows a finished request: list, page and the JSON the page polls', async () => {
    h = await startHarness({ gateway: { clips: 4, framesPerClip: 2, coldStartEvery: 5, faults: [{ stage: 'ffmpeg2', clip: 1, kind: 'status', status: 503, times: 1 }] } });
    const query = 'cars <script>alert(1)</script>';
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, query, request_id: 'ui-done' })).done;
    expect(outcome.status).toBe('COMPLETED');
    const final = await h.readFinal('ui-done');

    const api = await get('/ui/api/requests/ui-done');
    expect(api.status).toBe(200);
    expect(api.headers['content-type']).toMatch(/^application\/json/);
    const view = JSON.parse(body(api)) as RequestPageView;
    expect(view).toMatchObject({ request_id: 'ui-done', status: 'COMPLETED', state: 'COMPLETED', value: 'COMPLETED', active: ['COMPLETED'], local: false, query });
    expect(view.invocations).toHaveLength(final.metrics.invocations);
    expect(view.invocations.filter((i) => i.attempt > 1)).toHaveLength(1);
    expect(view.invocations.filter((i) => i.cold_start)).toHaveLength(final.metrics.cold_starts);
    expect(view.timeline.bars).toHaveLength(view.invocations.length);
    expect(view.timeline.critical_path.length).toBeGreaterThanOrEqual(7);
    expect(view.progress).toMatchObject({ clips_total: 4, clips_done: 4, frames_total: 8, frames_done: 8 });
    expect(view.statechart.machines.map((m) => m.id)).toEqual(['pipeline']);
    expect(view.wall_ms).toBe(final.metrics.wall_ms);

    const page = await get('/ui/requests/ui-done');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    const html = body(page);
    for (const state of TOP_LEVEL_STATES) expect(html).toContain(`data-machine="pipeline" data-state="${state}"`);
    expect(html).toContain('<script type="application/json" id="fave-data">');
    // The query is shown, never interpreted.
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('cars &lt;script&gt;alert(1)&lt;/script&gt;');
    // Self-contained: nothing is loaded from anywhere.
    expect(html).not.toMatch(/\b(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/@import|url\(http/);

    const list = await get('/ui');
    expect(list.status).toBe(200);
    expect(body(list)).toContain('data-request="ui-done"');
    const listed = JSON.parse(body(await get('/ui/api/requests'))) as { requests: RequestSummary[] };
    expect(listed.requests).toEqual([
      expect.objectContaining({ request_id: 'ui-done', status: 'COMPLETED', video_uri: h.videoUri, query, wall_ms: final.metrics.wall_ms }),
    ]);
  });

  it('answers errors as the caller expects them and leaves other paths alone', async () => {
    h = await startHarness({ gateway: { clips: 1, framesPerClip: 1 } });
    expect((await get('/ui/requests/nope')).status).toBe(404);
    const missing = await get('/ui/api/requests/nope');
    expect(missing.status).toBe(404);
    expect(JSON.parse(body(missing))).toEqual({ error: { code: 'NOT_FOUND', message: 'no request nope' } });
    const bad = await get('/ui/api/requests/..%2Fsecrets');
    expect(bad.status).toBe(400);
    expect(JSON.parse(body(bad)).error.code).toBe('BAD_REQUEST');
    expect((await get('/ui/requests/a%20b')).status).toBe(400);
    expect((await get('/ui/elsewhere')).status).toBe(404);
    const post = await get('/ui', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const head = await get('/ui', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(body(await get('/ui/'))).toContain('No requests yet');
    for (const path of ['/', '/uix', '/requests/x', '/metrics']) {
      expect(await handleUi({ method: 'GET', path, query: {}, headers: {}, body: undefined }, h.app.orchestrator)).toBeNull();
    }
  });

  it('shows a running request live, with attempts of clips that have not settled yet', async () => {
    h = await startHarness({ gateway: { clips: 3, framesPerClip: 1, faults: [{ stage: 'ffmpeg3', clip: 0, kind: 'hang' }] } });
    await get('/ui');
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'ui-live' });
    await until(() => h!.gateway.callsTo('ffmpeg3').some((c) => c.clip === 0), { timeoutMs: 15_000, message: "clip 0's ffmpeg-3 call" });

    const view = JSON.parse(body(await get('/ui/api/requests/ui-live'))) as RequestPageView;
    expect(view).toMatchObject({ status: 'RUNNING', state: 'FANOUT', value: 'FANOUT', active: ['FANOUT'], local: true });
    // Clip 0 has not settled; its finished attempts show all the same.
    expect(view.invocations.map((i) => i.key)).toEqual(expect.arrayContaining(['stage-ffmpeg-2|0|-|1', 'stage-deepspeech|0|-|1']));
    expect(view.timeline.end).toBe(view.observed_at);

    const listed = JSON.parse(body(await get('/ui/api/requests'))) as { requests: RequestSummary[] };
    expect(listed.requests[0]).toMatchObject({ request_id: 'ui-live', status: 'RUNNING', state: 'FANOUT' });
    expect(body(await get('/ui'))).toContain('data-running="true"');

    h.app.orchestrator.cancel('ui-live', 'test over');
    const outcome = await handle.done;
    expect(outcome.status).toBe('FAILED');
    const after = JSON.parse(body(await get('/ui/api/requests/ui-live'))) as RequestPageView;
    expect(after).toMatchObject({ status: 'FAILED', state: 'FAILED', value: { FAILED: 'settled' }, active: ['FAILED', 'FAILED.settled'], local: false });
    expect(after.error).toMatchObject({ code: 'CANCELLED' });
  });
});
