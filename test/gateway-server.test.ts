import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ConnectionReset, startGatewayServer } from '../src/stages/gateway/server.ts';
import type { FunctionCall, FunctionHandler, GatewayServer, GatewayServerOptions } from '../src/stages/gateway/types.ts';
import { startHttpSink, type HttpSink } from './support/http-sink.ts';
import { until } from './support/until.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function gateway(functions: Record<string, FunctionHandler>, extra: Partial<GatewayServerOptions> = {}): Promise<GatewayServer> {
  const server = await startGatewayServer({ functions, ...extra });
  cleanup.push(() => server.close());
  return server;
}

async function sink(): Promise<HttpSink> {
  const s = await startHttpSink();
  cleanup.push(() => s.close());
  return s;
}

/** A handler that records its calls and waits until released or aborted. */
function gatedHandler() {
  const calls: FunctionCall[] = [];
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  let aborted!: (reason: unknown) => void;
  const abortedP = new Promise<unknown>((r) => (aborted = r));
  const handler: FunctionHandler = (call) => {
    calls.push(call);
    call.signal.addEventListener('abort', () => aborted(call.signal.reason), { once: true });
    started();
    return new Promise((_, reject) => call.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
  };
  return { handler, calls, started: startedP, aborted: abortedP };
}

const echo: FunctionHandler = async (call) => ({
  status: 201,
  headers: { 'Content-Type': 'application/json', 'X-Echo': 'yes', 'Content-Length': '999' },
  body: JSON.stringify({ name: call.name, body: call.body.toString('utf8'), headers: call.headers, callId: call.callId }),
});

describe('gateway server: sync calls', () => {
  it('passes body, lower-cased headers and call id, and returns the reply with X-Call-Id and X-Duration-Seconds', async () => {
    const gw = await gateway({ echo });
    const res = await request(`${gw.url}/function/echo`, {
      method: 'POST',
      body: 'hello',
      headers: { 'X-Custom-Thing': 'v1', 'content-type': 'text/plain' },
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers['x-echo']).toBe('yes');
    expect(res.headers['content-type']).toBe('application/json');
    const callId = res.headers['x-call-id'];
    expect(callId).toMatch(UUID);
    expect(Number(res.headers['x-duration-seconds'])).toBeGreaterThanOrEqual(0);
    expect(String(res.headers['x-duration-seconds'])).toMatch(/^\d+\.\d+$/);
    const seen = (await res.body.json()) as { name: string; body: string; headers: Record<string, string>; callId: string };
    expect(seen.name).toBe('echo');
    expect(seen.body).toBe('hello');
    expect(seen.headers['x-custom-thing']).toBe('v1');
    expect(seen.callId).toBe(callId);
  });

  it('keeps the caller-given X-Call-Id', async () => {
    const gw = await gateway({ echo });
    const res = await request(`${gw.url}/function/echo`, { method: 'POST', body: '{}', headers: { 'X-Call-Id': 'call-42' } });
    expect(res.headers['x-call-id']).toBe('call-42');
    expect(((await res.body.json()) as { callId: string }).callId).toBe('call-42');
  });

  it('answers 404 in OpenFaaS words for an unknown function, including prototype names', async () => {
    const gw = await gateway({ echo });
    for (const name of ['nope', 'constructor', '__proto__']) {
      const res = await request(`${gw.url}/function/${name}`, { method: 'POST', body: '{}' });
      expect(res.statusCode).toBe(404);
      expect(await res.body.text()).toBe(`error finding function ${name}: function not found`);
    }
  });

  it('answers 502 when the handler throws', async () => {
    const gw = await gateway({
      boom: async () => {
        throw new Error('segfault');
      },
    });
    const res = await request(`${gw.url}/function/boom`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(502);
    expect(await res.body.text()).toContain('segfault');
    expect(res.headers['x-call-id']).toMatch(UUID);
  });

  it('answers 504 past the upstream timeout and aborts the handler', async () => {
    const gated = gatedHandler();
    const gw = await gateway({ slow: gated.handler }, { upstreamTimeoutMs: 100 });
    const res = await request(`${gw.url}/function/slow`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(504);
    await res.body.text();
    const reason = await gated.aborted;
    expect(String(reason)).toContain('timeout');
  });

  it('aborts the handler when the client disconnects', async () => {
    const gated = gatedHandler();
    const gw = await gateway({ slow: gated.handler });
    const controller = new AbortController();
    const pending = request(`${gw.url}/function/slow`, { method: 'POST', body: '{}', signal: controller.signal });
    await gated.started;
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(String(await gated.aborted)).toContain('client disconnected');
  });

  it('resets the connection when the handler throws ConnectionReset', async () => {
    const gw = await gateway({
      reset: async () => {
        throw new ConnectionReset();
      },
    });
    await expect(request(`${gw.url}/function/reset`, { method: 'POST', body: '{}' })).rejects.toThrow();
  });

  it('answers 502 for a reply with an invalid status', async () => {
    const gw = await gateway({ weird: async () => ({ status: 42, body: '' }) });
    const res = await request(`${gw.url}/function/weird`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(502);
    await res.body.text();
  });
});

describe('gateway server: async calls', () => {
  it('answers 202 at once and POSTs the reply to X-Callback-Url', async () => {
    const receiver = await sink();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const gw = await gateway({
      later: async (call) => {
        await released;
        return { status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ got: call.body.toString() }) };
      },
    });
    const res = await request(`${gw.url}/async-function/later`, {
      method: 'POST',
      body: 'payload',
      headers: { 'X-Callback-Url': `${receiver.url}/done?x=1` },
    });
    // The handler has not finished yet, so the 202 cannot have waited for it.
    expect(res.statusCode).toBe(202);
    await res.body.text();
    const callId = res.headers['x-call-id'];
    expect(callId).toMatch(UUID);
    release();
    const cb = await receiver.nth(0);
    expect(cb.method).toBe('POST');
    expect(cb.path).toBe('/done?x=1');
    expect(cb.headers['x-call-id']).toBe(callId);
    expect(cb.headers['x-function-status']).toBe('200');
    expect(Number(cb.headers['x-duration-seconds'])).toBeGreaterThanOrEqual(0);
    expect(cb.headers['content-type']).toBe('application/json');
    expect(JSON.parse(cb.body.toString())).toEqual({ got: 'payload' });
  });

  it('reports a throwing handler as 502 and a timed-out one as 504 to the callback', async () => {
    const receiver = await sink();
    const gated = gatedHandler();
    const gw = await gateway(
      {
        boom: async () => {
          throw new Error('kaput');
        },
        slow: gated.handler,
      },
      { asyncTimeoutMs: 100 },
    );
    const a = await request(`${gw.url}/async-function/boom`, { method: 'POST', body: '{}', headers: { 'X-Callback-Url': receiver.url, 'X-Call-Id': 'a' } });
    await a.body.text();
    const first = await receiver.nth(0);
    expect(first.headers['x-call-id']).toBe('a');
    expect(first.headers['x-function-status']).toBe('502');
    expect(first.body.toString()).toContain('kaput');

    const b = await request(`${gw.url}/async-function/slow`, { method: 'POST', body: '{}', headers: { 'X-Callback-Url': receiver.url, 'X-Call-Id': 'b' } });
    await b.body.text();
    const second = await receiver.nth(1);
    expect(second.headers['x-call-id']).toBe('b');
    expect(second.headers['x-function-status']).toBe('504');
    await gated.aborted;
  });

  it('holds a sync call to the upstream timeout (504) but lets an async one run past it, then calls back', async () => {
    const receiver = await sink();
    const releases = new Map<string, () => void>();
    // Each call runs until the test lets it go (or the gateway gives up on it).
    const held: FunctionHandler = (call) =>
      new Promise((resolve, reject) => {
        releases.set(call.callId, () => resolve({ status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ done: call.callId }) }));
        call.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      });
    const gw = await gateway({ held }, { upstreamTimeoutMs: 100 });
    const before = Date.now();
    const queued = await request(`${gw.url}/async-function/held`, { method: 'POST', body: '{}', headers: { 'X-Callback-Url': `${receiver.url}/cb?token=t` } });
    expect(queued.statusCode).toBe(202);
    const callId = queued.headers['x-call-id'];
    expect(callId).toMatch(UUID);
    await queued.body.text();
    const release = await until(() => releases.get(String(callId)), { message: 'the queued call to start' });
    // A sync call made after it started is cut off at the upstream timeout, so by the time it is
    // answered the queued call has run past that timeout: only then is it let go.
    const sync = await request(`${gw.url}/function/held`, { method: 'POST', body: '{}' });
    expect(sync.statusCode).toBe(504);
    await sync.body.text();
    release();
    const callback = await receiver.nth(0);
    expect(callback.path).toBe('/cb?token=t');
    expect(callback.headers).toMatchObject({ 'x-call-id': callId, 'x-function-status': '200', 'x-function-name': 'held', 'content-type': 'application/json' });
    // Node's timers may fire a fraction of a millisecond early against performance.now().
    expect(Number(callback.headers['x-duration-seconds'])).toBeGreaterThanOrEqual(0.099);
    // The watchdog's X-Start-Time: nanoseconds since the epoch.
    const startedMs = Number(BigInt(callback.headers['x-start-time']!) / 1_000_000n);
    expect(startedMs).toBeGreaterThanOrEqual(before - 5);
    expect(JSON.parse(callback.body.toString())).toEqual({ done: callId });
  });

  it('runs queued calls at most max_inflight at a time; X-Start-Time shows the wait in the queue', async () => {
    const receiver = await sink();
    const ids = ['q1', 'q2', 'q3'];
    let running = 0;
    let peak = 0;
    const started: string[] = [];
    const releases = new Map<string, () => void>();
    // Each call runs until the test lets it go: one started while another is held would show in the peak.
    const held: FunctionHandler = async (call) => {
      peak = Math.max(peak, ++running);
      started.push(call.callId);
      await new Promise<void>((resolve) => releases.set(call.callId, resolve));
      running--;
      return { status: 200, body: 'ok' };
    };
    const gw = await gateway({ held }, { asyncMaxInflight: 1 });
    for (const id of ids) {
      const res = await request(`${gw.url}/async-function/held`, { method: 'POST', body: '{}', headers: { 'X-Callback-Url': receiver.url, 'X-Call-Id': id } });
      expect(res.statusCode).toBe(202);
      await res.body.text();
    }
    const releasedAt: number[] = [];
    for (const id of ids) {
      const release = await until(() => releases.get(id), { message: () => `${id} to start (started so far: ${started.join(', ')})` });
      releasedAt.push(Date.now());
      release();
    }
    const callbacks = await Promise.all(ids.map((_, n) => receiver.nth(n)));
    expect(peak).toBe(1);
    expect(started).toEqual(ids);
    expect(callbacks.map((cb) => cb.headers['x-call-id'])).toEqual(ids);
    // Each call waited in the queue until the one before it was let go.
    const startedMs = callbacks.map((cb) => Number(BigInt(cb.headers['x-start-time']!) / 1_000_000n));
    expect(startedMs[1]).toBeGreaterThanOrEqual(releasedAt[0]!);
    expect(startedMs[2]).toBeGreaterThanOrEqual(releasedAt[1]!);
  });

  it('answers 404 at once for an unknown function and 400 for a bad callback URL', async () => {
    const gw = await gateway({ echo });
    const missing = await request(`${gw.url}/async-function/nope`, { method: 'POST', body: '{}' });
    expect(missing.statusCode).toBe(404);
    expect(await missing.body.text()).toContain('error finding function nope');
    const bad = await request(`${gw.url}/async-function/echo`, { method: 'POST', body: '{}', headers: { 'X-Callback-Url': 'ftp://x/y' } });
    expect(bad.statusCode).toBe(400);
    await bad.body.text();
  });

  it('runs the handler without a callback URL', async () => {
    let ran!: () => void;
    const done = new Promise<void>((r) => (ran = r));
    const gw = await gateway({
      fire: async () => {
        ran();
        return { status: 200, body: '' };
      },
    });
    const res = await request(`${gw.url}/async-function/fire`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(202);
    await res.body.text();
    await done;
  });
});

describe('gateway server: auth, routes and shutdown', () => {
  it('enforces basic auth on function routes but not on /healthz', async () => {
    const gw = await gateway({ echo }, { basicAuth: { user: 'admin', password: 's3cret' } });
    const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    const none = await request(`${gw.url}/function/echo`, { method: 'POST', body: '{}' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Basic');
    await none.body.text();
    const wrong = await request(`${gw.url}/function/echo`, { method: 'POST', body: '{}', headers: { authorization: basic('admin:nope') } });
    expect(wrong.statusCode).toBe(401);
    await wrong.body.text();
    const asyncWrong = await request(`${gw.url}/async-function/echo`, { method: 'POST', body: '{}' });
    expect(asyncWrong.statusCode).toBe(401);
    await asyncWrong.body.text();
    const right = await request(`${gw.url}/function/echo`, { method: 'POST', body: '{}', headers: { authorization: basic('admin:s3cret') } });
    expect(right.statusCode).toBe(201);
    await right.body.text();
    const health = await request(`${gw.url}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.text();
  });

  it('answers 404 for unknown paths and 405 for wrong methods', async () => {
    const gw = await gateway({ echo });
    const cases: Array<[string, string, number]> = [
      ['GET', '/healthz', 200],
      ['POST', '/healthz', 405],
      ['GET', '/function/echo', 405],
      ['PUT', '/async-function/echo', 405],
      ['GET', '/', 404],
      ['POST', '/system/functions', 405],
      ['GET', '/system/nothing', 404],
      ['GET', '/system/function/nope', 404],
      ['GET', '/system/scale-function/echo', 405],
      ['POST', '/function/', 404],
    ];
    for (const [method, path, status] of cases) {
      const res = await request(`${gw.url}${path}`, { method: method as 'GET', body: method === 'GET' ? undefined : '{}' });
      expect([method, path, res.statusCode]).toEqual([method, path, status]);
      await res.body.text();
    }
  });

  it('close() aborts in-flight handlers and does not wait for keep-alive sockets', async () => {
    const gated = gatedHandler();
    const gw = await startGatewayServer({ functions: { slow: gated.handler, echo } });
    // Leave an idle keep-alive connection behind.
    const warm = await request(`${gw.url}/function/echo`, { method: 'POST', body: '{}' });
    await warm.body.text();
    const pending = request(`${gw.url}/function/slow`, { method: 'POST', body: '{}' });
    pending.catch(() => {});
    await gated.started;
    await gw.close();
    expect(String(await gated.aborted)).toContain('shutting down');
    await expect(pending).rejects.toThrow();
    await gw.close();
  });
});

describe('gateway server: system API and replica model', () => {
  const auth = { user: 'admin', password: 'secret-password' };
  const basic = `Basic ${Buffer.from('admin:secret-password').toString('base64')}`;
  const coldEcho: FunctionHandler = async (call) => ({ status: 200, body: JSON.stringify({ cold: call.coldStart }) });

  async function json(url: string, init: { method?: 'GET' | 'POST'; body?: string; authorization?: string } = {}) {
    const res = await request(url, {
      method: init.method ?? 'GET',
      ...(init.body ? { body: init.body } : {}),
      headers: init.authorization ? { authorization: init.authorization } : {},
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text && res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as unknown) : text };
  }

  it('lists functions, answers one, and scales it, behind the admin basic auth as OpenFaaS does', async () => {
    const gw = await gateway({ echo: coldEcho }, { systemAuth: auth, replicas: { coldStartMs: 50, maxInflight: 2, initialReplicas: 1 } });
    expect((await json(`${gw.url}/system/functions`)).status).toBe(401);
    expect((await json(`${gw.url}/system/functions`, { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` })).status).toBe(401);
    const list = await json(`${gw.url}/system/functions`, { authorization: basic });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject([{ name: 'echo', replicas: 1, availableReplicas: 1, invocationCount: 0, envVars: { max_inflight: '2' } }]);
    // Function calls do not take the admin credentials (only /system/* does).
    expect((await request(`${gw.url}/function/echo`, { method: 'POST', body: '{}' })).statusCode).toBe(200);

    const scaled = await json(`${gw.url}/system/scale-function/echo`, { method: 'POST', body: JSON.stringify({ serviceName: 'echo', replicas: 3 }), authorization: basic });
    expect(scaled.status).toBe(202);
    expect((await json(`${gw.url}/system/function/echo`, { authorization: basic })).body).toMatchObject({ name: 'echo', replicas: 3, availableReplicas: 1, invocationCount: 1 });
    await until(async () => ((await json(`${gw.url}/system/function/echo`, { authorization: basic })).body as { availableReplicas: number }).availableReplicas === 3);
    const bad = await json(`${gw.url}/system/scale-function/echo`, { method: 'POST', body: JSON.stringify({ serviceName: 'echo', replicas: -1 }), authorization: basic });
    expect(bad.status).toBe(400);
  });

  it('answers 401, 403 or 404 on demand', async () => {
    let forced: number | null = 403;
    const gw = await gateway({ echo: coldEcho }, { systemStatus: () => forced });
    expect((await json(`${gw.url}/system/functions`)).status).toBe(403);
    forced = 404;
    expect((await json(`${gw.url}/system/functions`)).status).toBe(404);
    forced = null;
    expect((await json(`${gw.url}/system/functions`)).status).toBe(200);
  });

  it('a call that finds no ready replica starts one and waits: it is a cold call; the next ones are warm', async () => {
    const gw = await gateway({ echo: coldEcho }, { replicas: { coldStartMs: 1500, maxInflight: 2, initialReplicas: 0, maxReplicas: 2 } });
    const call = async () => JSON.parse(await (await request(`${gw.url}/function/echo`, { method: 'POST', body: '{}' })).body.text()) as { cold: boolean };
    // Three at once, all arriving within the cold start: two wait for the first replica, the third for a second one; all three are cold.
    expect(await Promise.all([call(), call(), call()])).toEqual([{ cold: true }, { cold: true }, { cold: true }]);
    // The third call may have been served by the first replica while the second was still starting.
    await until(() => gw.replicas!.status('echo').availableReplicas === 2, { message: 'the second replica ready' });
    expect(gw.replicas!.status('echo')).toMatchObject({ replicas: 2, availableReplicas: 2 });
    expect(await call()).toEqual({ cold: false });
    expect(gw.replicas!.usage('echo')).toMatchObject({ started: 2, coldCalls: 3 });
    // A scale to zero removes the idle replicas; the next call is cold again.
    gw.replicas!.scale('echo', 0);
    expect(gw.replicas!.status('echo').replicas).toBe(0);
    expect(await call()).toEqual({ cold: true });
  });

  it('idle replicas above the minimum go away after the idle time', async () => {
    const gw = await gateway({ echo: coldEcho }, { replicas: { coldStartMs: 10, idleMs: 50, minReplicas: 1, initialReplicas: 3 } });
    await until(() => gw.replicas!.status('echo').replicas === 1, { message: 'idle replicas removed down to the minimum' });
  });
});
