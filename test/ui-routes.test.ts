import { afterEach, describe, expect, it } from 'vitest';
import { TOP_LEVEL_STATES } from '../src/domain/context.ts';
import { REQUEST_ID_MESSAGE } from '../src/domain/request.ts';
import { requestKeys } from '../src/persistence/store.ts';
import type { HttpResponseLike } from '../src/server/types.ts';
import type { RequestPageView, RequestSummary } from '../src/ui/view.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { routerCall, type RouterCall } from './support/router.ts';
import { until } from './support/until.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

let call: { h: Harness; route: RouterCall } | null = null;

/** One router per harness, as one server has. */
async function get(path: string, method = 'GET'): Promise<HttpResponseLike> {
  if (call?.h !== h) call = { h: h!, route: routerCall(h!.app) };
  return call.route(method, path);
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
    expect(listed.requests).toEqual([expect.objectContaining({ request_id: 'ui-done', status: 'COMPLETED', video_uri: h.videoUri, query, wall_ms: final.metrics.wall_ms })]);
  });

  it('fails like the API routes: the same status and message, as a page or as JSON', async () => {
    h = await startHarness({ gateway: { clips: 1, framesPerClip: 1 } });
    const isPage = (r: HttpResponseLike) => r.headers['content-type'] === 'text/html; charset=utf-8';
    const errorOf = (r: HttpResponseLike) => (JSON.parse(body(r)) as { error: { code: string; message: string; field?: string } }).error;
    const escaped = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

    // No such request: 404 REQUEST_NOT_FOUND from the API, the UI's JSON and the UI's page.
    const missing = { code: 'REQUEST_NOT_FOUND', message: 'no request nope' };
    expect([(await get('/requests/nope')).status, (await get('/ui/api/requests/nope')).status, (await get('/ui/requests/nope')).status]).toEqual([404, 404, 404]);
    expect(errorOf(await get('/requests/nope'))).toEqual(missing);
    expect(errorOf(await get('/ui/api/requests/nope'))).toEqual(missing);
    const missingPage = await get('/ui/requests/nope');
    expect(isPage(missingPage)).toBe(true);
    expect(body(missingPage)).toContain(`REQUEST_NOT_FOUND: no request nope`);

    // A request id that cannot be one: 400 with one message, wherever it is.
    const badId = { code: 'BAD_REQUEST', message: `request_id: ${REQUEST_ID_MESSAGE}`, field: 'request_id' };
    for (const path of ['/requests/..%2Fsecrets', '/requests/a%20b/result', '/ui/api/requests/..%2Fsecrets']) {
      const answer = await get(path);
      expect(answer.status, path).toBe(400);
      expect(errorOf(answer), path).toEqual(badId);
    }
    const badPage = await get('/ui/requests/a%20b');
    expect(badPage.status).toBe(400);
    expect(isPage(badPage)).toBe(true);
    expect(body(badPage)).toContain(escaped(badId.message));

    // A method a route does not take: 405 with Allow, API and UI alike.
    for (const [method, path, allow] of [
      ['DELETE', '/requests/abc', 'GET, HEAD'],
      ['POST', '/ui', 'GET, HEAD'],
      ['POST', '/ui/requests/abc', 'GET, HEAD'],
      ['PUT', '/ui/api/requests', 'GET, HEAD'],
      ['GET', '/requests/abc/cancel', 'POST'],
      ['DELETE', '/ui/login', 'GET, HEAD, POST'],
    ] as const) {
      const answer = await get(path, method);
      expect(answer.status, `${method} ${path}`).toBe(405);
      expect(answer.headers.allow, `${method} ${path}`).toBe(allow);
      expect(isPage(answer), `${method} ${path}`).toBe(path === '/ui' || path.startsWith('/ui/requests') || path === '/ui/login');
    }

    // No such route: 404, a page under /ui, JSON elsewhere.
    const elsewhere = await get('/ui/elsewhere');
    expect([elsewhere.status, isPage(elsewhere)]).toEqual([404, true]);
    const nowhere = await get('/nowhere');
    expect([nowhere.status, errorOf(nowhere).code]).toEqual([404, 'NOT_FOUND']);

    const head = await get('/ui', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(body(await get('/ui/'))).toContain('No requests yet');

    // A state.json that cannot be read is the same fault for the API and the UI.
    await h.store.put({ bucket: 'fave-artifacts', key: requestKeys.state('broken') }, Buffer.from('{"not": "a state file"'));
    const statuses = await Promise.all(['/requests/broken', '/ui/api/requests/broken', '/ui/requests/broken'].map(async (path) => (await get(path)).status));
    expect(statuses).toEqual([500, 500, 500]);
    expect(errorOf(await get('/ui/api/requests/broken')).code).toBe(errorOf(await get('/requests/broken')).code);
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
