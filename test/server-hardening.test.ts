import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { foreignHost } from '../src/server/auth.ts';
import { AuthThrottle } from '../src/server/auth-throttle.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { badRequestTarget } from '../src/server/request-target.ts';
import { clientOf } from '../src/server/router.ts';
import type { HttpRequestLike } from '../src/server/types.ts';
import { loadConfig } from '../src/config/config.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { startHarness, type Harness } from './support/harness.ts';

const OPERATE = 'operate-token-0123456789abcdef';

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * One request with exactly the request target and Host given: node:http sends both as they are
 * (fetch would resolve the path and refuses to set Host).
 */
function raw(server: HttpServer, method: string, target: string, headers: Record<string, string>, body?: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, method, path: target, headers, setHost: false, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorCode(answer: RawAnswer): string | undefined {
  return (JSON.parse(answer.text) as { error?: { code?: string } }).error?.code;
}

async function serve(env: Record<string, string>, host = '127.0.0.1'): Promise<{ h: Harness; server: HttpServer }> {
  const h = closeAfterTest(await startHarness({ gateway: { clips: 1, framesPerClip: 1 }, env }));
  const server = closeAfterTest(await startHttpServer({ app: h.app, port: 0, host, processMetrics: false }), (s) => s.close(200));
  return { h, server };
}

describe('DNS rebinding: the Host of callers without a token', () => {
  let h: Harness;
  let server: HttpServer;

  it('refuses the rebound requests of a token-less loopback server, and answers its own names', async () => {
    ({ h, server } = await serve({ FAVE_ANONYMOUS_ROLE: '' }));
    const port = server.port;
    const submit = JSON.stringify({ video_uri: h.videoUri, request_id: 'rebound' });
    // The two requests a page on evil.example makes once its name resolves to 127.0.0.1.
    const post = await raw(server, 'POST', '/?async=true', { host: `evil.example:${port}`, origin: `http://evil.example:${port}`, 'content-type': 'application/json' }, submit);
    expect(post.status).toBe(403);
    expect(JSON.parse(post.text).error).toMatchObject({ code: 'FOREIGN_HOST', field: 'Host' });
    expect(JSON.parse(post.text).error.message).toContain(`127.0.0.1:${port}`);
    const list = await raw(server, 'GET', '/ui/api/requests', { host: `evil.example:${port}` });
    expect(list.status).toBe(403);
    expect(errorCode(list)).toBe('FOREIGN_HOST');
    const page = await raw(server, 'GET', '/ui', { host: `evil.example:${port}` });
    expect(page.status).toBe(403);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.text).toContain('FOREIGN_HOST');
    // Nothing was started for the refused submit.
    expect(await h.app.orchestrator.requests.view('rebound')).toBeNull();

    for (const name of ['127.0.0.1', 'localhost', '[::1]', 'LOCALHOST']) {
      expect((await raw(server, 'GET', '/ui/api/requests', { host: `${name}:${port}` })).status, name).toBe(200);
    }
    // Another port is another origin: a page served there is not this service.
    expect((await raw(server, 'GET', '/ui/api/requests', { host: `127.0.0.1:${port + 1}` })).status).toBe(403);
    // Other names, and what is not a host name at all.
    for (const host of [`127.0.0.2:${port}`, `localhost.evil.example:${port}`, `evil.example`, `127.0.0.1:${port}@evil`, '']) {
      expect((await raw(server, 'GET', '/metrics', { host })).status, host).toBe(403);
    }
    // A health probe carries whatever Host its platform uses.
    expect((await raw(server, 'GET', '/healthz', { host: `10.1.2.3:${port}` })).status).toBe(200);
  });

  it('lets operators name more hosts with FAVE_ALLOWED_HOSTS', async () => {
    ({ server } = await serve({ FAVE_ANONYMOUS_ROLE: 'read', FAVE_ALLOWED_HOSTS: 'fave.internal, proxy.example:8443' }));
    expect((await raw(server, 'GET', '/ui/api/requests', { host: 'fave.internal' })).status).toBe(200);
    expect((await raw(server, 'GET', '/ui/api/requests', { host: 'fave.internal:9999' })).status).toBe(200);
    expect((await raw(server, 'GET', '/ui/api/requests', { host: 'proxy.example:8443' })).status).toBe(200);
    expect((await raw(server, 'GET', '/ui/api/requests', { host: 'proxy.example:8080' })).status).toBe(403);
    expect((await raw(server, 'GET', '/ui/api/requests', { host: 'evil.example' })).status).toBe(403);
    expect(() => loadConfig({ FAVE_ALLOWED_HOSTS: 'ok.example, http://bad/' })).toThrow(/FAVE_ALLOWED_HOSTS entry 2/);
  });

  it('with tokens, a token is what counts; only callers without one are held to the names', async () => {
    ({ server } = await serve({ FAVE_API_TOKENS: `operate:${OPERATE}`, FAVE_ANONYMOUS_ROLE: 'read' }, '127.0.0.1'));
    const host = { host: 'fave.example.com' };
    expect((await raw(server, 'GET', '/ui/api/requests', { ...host, authorization: `Bearer ${OPERATE}` })).status).toBe(200);
    expect((await raw(server, 'GET', '/ui/api/requests', host)).status).toBe(403);
    ({ server } = await serve({ FAVE_API_TOKENS: `operate:${OPERATE}`, FAVE_ANONYMOUS_ROLE: '' }));
    const anonymous = await raw(server, 'GET', '/ui/api/requests', host);
    expect(anonymous.status).toBe(401);
  });

  it('judges Host names strictly', () => {
    const policy = { port: 8080, extra: ['fave.internal'] };
    expect(foreignHost('127.0.0.1:8080', policy)).toBeNull();
    expect(foreignHost('[::1]:8080', policy)).toBeNull();
    expect(foreignHost('localhost:80', policy)).not.toBeNull();
    expect(foreignHost('localhost', { port: 80, extra: [] })).toBeNull();
    expect(foreignHost('fave.internal:1', policy)).toBeNull();
    expect(foreignHost('evil.example:8080', policy)).toMatch(/not a name of this service/);
    expect(foreignHost(undefined, policy)).toMatch(/no Host/);
    expect(foreignHost('a b', policy)).toMatch(/not a host name/);
    // Behind of-watchdog the port is not known: any port of a loopback name.
    expect(foreignHost('localhost:31112', { port: null, extra: [] })).toBeNull();
  });
});

describe('request paths', () => {
  it('refuses paths that a URL parser would resolve to another route, with 400', async () => {
    const { server } = await serve({ FAVE_ANONYMOUS_ROLE: '' });
    const host = { host: `127.0.0.1:${server.port}` };
    for (const target of [
      '//x/metrics',
      '/ui/../metrics',
      '/x/%2e%2e/metrics',
      '/x/%2E%2E/metrics',
      '/x/./metrics',
      '/x/.%2e/metrics',
      '/metrics//',
      '/ui\\..\\metrics',
      'http://127.0.0.1/metrics',
      '/a/%zz',
    ]) {
      const answer = await raw(server, 'GET', target, host);
      expect(answer.status, target).toBe(400);
      expect(JSON.parse(answer.text).error, target).toMatchObject({ code: 'BAD_REQUEST', field: 'path' });
    }
    // Plain paths route as before; one trailing slash is the same route.
    expect((await raw(server, 'GET', '/metrics', host)).status).toBe(200);
    expect((await raw(server, 'GET', '/metrics/', host)).status).toBe(200);
    expect((await raw(server, 'GET', '/healthz?x=/../y', host)).status).toBe(200);
    expect(badRequestTarget('/requests/a%2Fb')).toBeNull();
    expect(badRequestTarget('/')).toBeNull();
  });
});

describe('failed sign-ins', () => {
  it('are throttled per client with 429 and Retry-After, a good token included, until the window ends', async () => {
    const { server } = await serve({ FAVE_API_TOKENS: `operate:${OPERATE}`, FAVE_ANONYMOUS_ROLE: '' });
    const host = { host: `127.0.0.1:${server.port}` };
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      statuses.push((await raw(server, 'GET', '/ui/api/requests', { ...host, authorization: `Bearer guess-${i}` })).status);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual(Array(20).fill(429));
    const throttled = await raw(server, 'GET', '/ui/api/requests', { ...host, authorization: `Bearer ${OPERATE}` });
    expect(throttled.status).toBe(429);
    expect(errorCode(throttled)).toBe('AUTH_THROTTLED');
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(throttled.headers['retry-after'])).toBeLessThanOrEqual(60);
    // The sign-in form is throttled alike.
    const form = await raw(server, 'POST', '/ui/login', { ...host, 'content-type': 'application/x-www-form-urlencoded' }, `token=${OPERATE}`);
    expect(form.status).toBe(429);
    // A caller without credentials guesses nothing: it gets its 401 as before.
    expect((await raw(server, 'GET', '/ui/api/requests', host)).status).toBe(401);
  });

  it('counts behind a proxy on loopback by the address it forwards', () => {
    const request = (client: string | undefined, forwarded?: string): HttpRequestLike => {
      const headers: Record<string, string> = forwarded === undefined ? {} : { 'x-forwarded-for': forwarded };
      return { method: 'GET', path: '/', query: {}, headers, body: undefined, ...(client === undefined ? {} : { client }) };
    };
    expect(clientOf(request('10.0.0.7'))).toBe('10.0.0.7');
    // A caller off-host cannot pick its own count.
    expect(clientOf(request('10.0.0.7', '1.2.3.4'))).toBe('10.0.0.7');
    expect(clientOf(request('127.0.0.1', 'forged, 203.0.113.9'))).toBe('forwarded:203.0.113.9');
    expect(clientOf(request('::ffff:127.0.0.1', '203.0.113.9'))).toBe('forwarded:203.0.113.9');
    expect(clientOf(request(undefined))).toBe('unknown');
  });

  it('counts distinct guesses, forgets a window once it ended, and keeps its table bounded', () => {
    let now = 0;
    const throttle = new AuthThrottle({ maxFailures: 3, windowMs: 1000, maxClients: 100, now: () => now });
    for (let i = 0; i < 10; i++) throttle.failed('a', 'the same stale token');
    expect(throttle.retryAfterSeconds('a')).toBeNull();
    for (const guess of ['x', 'y', 'z']) throttle.failed('a', guess);
    expect(throttle.retryAfterSeconds('a')).toBe(1);
    expect(throttle.retryAfterSeconds('b')).toBeNull();
    now = 1000;
    expect(throttle.retryAfterSeconds('a')).toBeNull();
    for (let i = 0; i < 10_000; i++) throttle.failed(`client-${i}`, 'guess');
    expect(throttle.size).toBeLessThanOrEqual(100);
    // The most recent clients are the ones kept.
    for (const guess of ['x', 'y', 'z']) throttle.failed('client-9999', guess);
    expect(throttle.retryAfterSeconds('client-9999')).toBe(1);
  });
});
