import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import handle, { closeHandler, createHandler, requestOf, type FunctionContext, type FunctionEvent, type FunctionHandler } from '../src/handler.ts';
import { createMetrics } from '../src/server/metrics.ts';
import { createRouter } from '../src/server/router.ts';
import { MAX_BODY_BYTES } from '../src/server/validate.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { until } from './support/until.ts';

let h: Harness | null = null;
afterEach(async () => {
  await closeHandler();
  await h?.close();
  h = null;
});

/** The Host the gateway forwards with; callers without a token are refused under names not listed. */
const GATEWAY_HOST = { FAVE_ALLOWED_HOSTS: 'orchestrator.openfaas-fn' };

interface Sent {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  error: unknown;
}

/**
 * Behaves as the node20/node22 templates' FunctionContext: `status()`/`headers()` set and chain
 * (and read back when called without a value), `succeed` answers with the current status,
 * `fail` turns a 200 into a 500; the callback is what Express would send.
 */
class TemplateContext implements FunctionContext {
  statusCode = 200;
  headerValues: Record<string, string> = {};
  cbCalled = 0;
  readonly sent: Promise<Sent>;
  private resolve!: (sent: Sent) => void;

  constructor() {
    this.sent = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  status(code: number): this {
    this.statusCode = code;
    return this;
  }

  headers(values: Record<string, string>): this {
    this.headerValues = values;
    return this;
  }

  succeed(value: unknown): void {
    this.cbCalled++;
    this.resolve({ status: this.statusCode, headers: this.headerValues, body: value, error: null });
  }

  fail(value: unknown): void {
    if (this.statusCode === 200) this.statusCode = 500;
    this.cbCalled++;
    this.resolve({ status: this.statusCode, headers: this.headerValues, body: null, error: value });
  }
}

/** What the template's middleware does with a handler: call it, and succeed with its value if it did not answer. */
async function invoke(handler: FunctionHandler, event: FunctionEvent): Promise<Sent & { json: Record<string, any> }> {
  const context = new TemplateContext();
  const value = await handler(event, context);
  if (!context.cbCalled) context.succeed(value);
  const sent = await context.sent;
  expect(context.cbCalled).toBe(1);
  let json: Record<string, any> = {};
  if (typeof sent.body === 'string') {
    try {
      json = JSON.parse(sent.body) as Record<string, any>;
    } catch {
      // /metrics is text.
    }
  }
  return { ...sent, json };
}

/** An Express request as the template hands it over: JSON already parsed, `{}` when there is no body. */
function event(method: string, path: string, body: unknown = {}, headers: Record<string, string | string[]> = {}, query: Record<string, unknown> = {}): FunctionEvent {
  return {
    method,
    path,
    body,
    query,
    headers: { host: 'orchestrator.openfaas-fn:8080', 'content-type': 'application/json', 'x-call-id': 'ignored-when-body-names-an-id', ...headers },
  };
}

async function harnessHandler(): Promise<FunctionHandler> {
  h = await startHarness({ gateway: { clips: 3, framesPerClip: 1 }, env: GATEWAY_HOST });
  const app = h.app;
  const metrics = createMetrics(app.orchestrator);
  const router = createRouter({ orchestrator: app.orchestrator, logger: pino({ level: 'silent' }), metrics, config: app.config });
  return createHandler(async () => ({ router }));
}

describe('handler.ts with the Node template event/context', () => {
  it('runs a synchronous request and serves the other routes through the same router', async () => {
    const handler = await harnessHandler();
    // The gateway trims /function/orchestrator to an empty path.
    const sync = await invoke(handler, event('POST', '', { video_uri: h!.videoUri, query: 'car', request_id: 'fn-sync' }));
    expect(sync.status).toBe(200);
    expect(sync.headers['content-type']).toMatch(/^application\/json/);
    expect(sync.json).toMatchObject({ request_id: 'fn-sync', status: 'COMPLETED' });
    expect(sync.json.result).toEqual(await h!.readFinal('fn-sync'));

    const status = await invoke(handler, event('GET', '/requests/fn-sync'));
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ status: 'COMPLETED', progress: { clips_total: 3, clips_done: 3 } });
    const result = await invoke(handler, event('GET', '/requests/fn-sync/result'));
    expect(result.json).toEqual(sync.json.result);

    // Express parses repeated query keys into arrays; the first one counts.
    const accepted = await invoke(handler, event('POST', '/', { video_uri: h!.videoUri }, { 'x-call-id': 'queue-call-1' }, { async: ['true', 'false'] }));
    expect(accepted.status).toBe(202);
    expect(accepted.json.request_id).toBe('queue-call-1');
    await h!.app.orchestrator.get('queue-call-1')?.done;

    // RAW_BODY=true hands over a Buffer; a text/plain body (what a cross-site no-cors page can send) is refused.
    const raw = await invoke(handler, event('POST', '/', Buffer.from(JSON.stringify({ video_uri: h!.videoUri, request_id: 'fn-raw' }))));
    expect(raw.status).toBe(200);
    const text = await invoke(handler, event('POST', '/', JSON.stringify({ video_uri: h!.videoUri, request_id: 'fn-text' }), { 'content-type': 'text/plain' }));
    expect(text.status).toBe(415);
    expect(text.json.error).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', field: 'Content-Type' });

    const health = await invoke(handler, event('GET', '/healthz'));
    expect(health.json.status).toBe('ok');
    const metrics = await invoke(handler, event('GET', '/metrics'));
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(String(metrics.body)).toContain('fave_invocations_total{stage="stage-ffmpeg-0",outcome="success"} 3');
  });

  it('refuses bad input with the same JSON errors as the server', async () => {
    const handler = await harnessHandler();
    const cases: Array<[FunctionEvent, number, string]> = [
      [event('POST', '/', {}), 400, 'video_uri'],
      [event('POST', '/', 'not json'), 400, 'body'],
      [event('POST', '/', 'not json', { 'content-type': 'text/plain' }), 415, 'Content-Type'],
      [event('POST', '/', { video_uri: 'x'.repeat(MAX_BODY_BYTES) }), 413, 'body'],
      [event('POST', '/', { video_uri: 'file:///etc/shadow' }), 400, 'video_uri'],
      [event('POST', '/', { video_uri: 'http://169.254.169.254/latest/meta-data/' }), 400, 'video_uri'],
      [event('POST', '/', { video_uri: h!.videoUri, request_id: '../../x' }), 400, 'request_id'],
      [event('POST', '/', { video_uri: h!.videoUri, profile: 'nope' }), 400, 'profile'],
      [event('POST', '/', { video_uri: h!.videoUri }, { 'x-call-id': 'not a valid id' }), 400, 'X-Call-Id'],
      [event('GET', '/requests/a..b'), 400, 'request_id'],
    ];
    for (const [e, status, field] of cases) {
      const res = await invoke(handler, e);
      expect(res.status, JSON.stringify(e.body).slice(0, 80)).toBe(status);
      expect(res.json.error.field).toBe(field);
    }
    expect(await h!.store.list('fave-artifacts', 'requests/')).toEqual([]);
    expect((await invoke(handler, event('GET', '/nowhere'))).status).toBe(404);
  });

  it('maps template events onto the router request', () => {
    expect(requestOf({ method: 'post', path: '', headers: { 'X-Call-Id': 'abc', accept: ['a', 'b'] }, query: { async: 'true', n: 3 }, body: { a: 1 } })).toEqual({
      method: 'POST',
      path: '/',
      headers: { 'x-call-id': 'abc', accept: 'a, b' },
      query: { async: 'true' },
      body: '{"a":1}',
    });
    expect(requestOf({}).body).toBeUndefined();
  });

  it('the default export refuses to start without API tokens or FAVE_ANONYMOUS_ROLE', async () => {
    h = await startHarness({ gateway: { clips: 1, framesPerClip: 1 } });
    const saved = { ...process.env };
    try {
      Object.assign(process.env, h.env, { FAVE_ANONYMOUS_ROLE: '' });
      delete process.env.FAVE_API_TOKENS;
      const refused = await invoke(handle, event('GET', '/requests/x'));
      expect(refused.status).toBe(503);
      expect(refused.json.error).toMatchObject({ code: 'BAD_CONFIG' });
      expect(refused.json.error.message).toMatch(/FAVE_API_TOKENS is not set/);
    } finally {
      await closeHandler();
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });

  it('the default export takes over orphans at every sweep, not only at its first call', async () => {
    // Short leases: the function's sweeps come at least once per lease period.
    h = await startHarness({ gateway: { clips: 2, framesPerClip: 1, latencyMs: 150 }, env: { LEASE_TTL_MS: '1500', ...GATEWAY_HOST } });
    const saved = { ...process.env };
    try {
      Object.assign(process.env, h.env, { RESUME_ON_START: 'true' });
      // The first call starts the function, and with it its first sweep.
      expect((await invoke(handle, event('GET', '/healthz'))).status).toBe(200);
      // Another process runs a request under its lease, then stops driving it (a redeploy).
      await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'orphaned' });
      await until(async () => (await h!.readState('orphaned').catch(() => null))?.state === 'CLIP', { timeoutMs: 20_000, message: 'the request to reach CLIP' });
      await h.app.orchestrator.close();
      expect((await h.readState('orphaned')).status).toBe('RUNNING');
      // No further call reaches the function: only a later sweep of its own can finish it.
      await until(async () => (await h!.readState('orphaned')).status === 'COMPLETED', { timeoutMs: 30_000, message: 'the function to take the orphan over and finish it' });
    } finally {
      await closeHandler();
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });

  it('the default export makes one app from the environment on first use, and retries a failed start', async () => {
    h = await startHarness({ gateway: { clips: 2, framesPerClip: 1 }, env: GATEWAY_HOST });
    const saved = { ...process.env };
    try {
      Object.assign(process.env, h.env, { MAX_CONCURRENT_INVOCATIONS: 'lots' });
      const broken = await invoke(handle, event('POST', '/', { video_uri: h.videoUri }));
      expect(broken.status).toBe(503);
      expect(broken.json.error).toMatchObject({ code: 'BAD_CONFIG' });
      expect(broken.json.error.message).toContain('MAX_CONCURRENT_INVOCATIONS');

      process.env.MAX_CONCURRENT_INVOCATIONS = '4';
      const first = await invoke(handle, event('POST', '/', { video_uri: h.videoUri, request_id: 'default-1' }));
      expect(first.status).toBe(200);
      expect(first.json.result.clips).toHaveLength(2);
      const second = await invoke(handle, event('GET', '/requests/default-1'));
      expect(second.json.running_here).toBe(false);
      const metrics = await invoke(handle, event('GET', '/metrics'));
      expect(String(metrics.body)).toMatch(/fave_requests_total\{status="COMPLETED"\} 1/);
      expect(String(metrics.body)).toContain('process_resident_memory_bytes');
    } finally {
      await closeHandler();
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });
});
