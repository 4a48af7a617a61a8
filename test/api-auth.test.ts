import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { chromium } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { foreignOrigin } from '../src/server/auth.ts';
import { parseApiTokens, roleOfToken } from '../src/config/api-tokens.ts';
import { serveAuth, startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { runFave } from './support/child.ts';
import { startHarness, type Harness, type HarnessOptions } from './support/harness.ts';
import { until } from './support/until.ts';
import { closeNodeServer } from './support/cleanup.ts';

const READ = 'read-token-0123456789abcdef';
const OPERATE = 'operate-token-0123456789abcdef';
const TOKENS = `read:${READ},operate:${OPERATE}`;

let h: Harness | null = null;
let server: HttpServer | null = null;
let other: Server | null = null;

afterEach(async () => {
  await server?.close(200);
  await h?.close();
  if (other) await closeNodeServer(other);
  server = null;
  h = null;
  other = null;
});

async function start(env: Record<string, string>, options: HarnessOptions = {}): Promise<{ h: Harness; server: HttpServer }> {
  h = await startHarness({ gateway: { clips: 2, framesPerClip: 1 }, ...options, env: { FAVE_ANONYMOUS_ROLE: '', ...env } });
  server = await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false });
  return { h, server };
}

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${server!.url}${path}`, {
    method,
    redirect: 'manual',
    headers: { ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(method === 'POST' ? { body: body ?? '{}' } : {}),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** Every route but /healthz, with the role it needs. */
const ROUTES: Array<[method: string, path: string, role: 'read' | 'operate']> = [
  ['GET', '/metrics', 'read'],
  ['POST', '/', 'operate'],
  ['GET', '/requests/r1', 'read'],
  ['GET', '/requests/r1/result', 'read'],
  ['POST', '/requests/r1/resume', 'operate'],
  ['POST', '/requests/r1/cancel', 'operate'],
  ['GET', '/requests/r1/artifacts/clip-0', 'read'],
  ['POST', '/uploads', 'operate'],
  ['GET', '/ui', 'read'],
  ['GET', '/ui/requests/r1', 'read'],
  ['GET', '/ui/api/requests', 'read'],
  ['GET', '/ui/api/requests/r1', 'read'],
];

describe('API tokens', () => {
  it('answers 401 without a token on every route but /healthz, and 403 to a read token on operate routes', async () => {
    await start({ FAVE_API_TOKENS: TOKENS });
    expect((await call('GET', '/healthz')).status).toBe(200);
    for (const [method, path, role] of ROUTES) {
      const anonymous = await call(method, path);
      expect(anonymous.status, `${method} ${path} without a token`).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await call(method, path, { authorization: 'Bearer not-a-valid-token-at-all' })).status, `${method} ${path} bad token`).toBe(401);
      const read = await call(method, path, { authorization: `Bearer ${READ}` });
      if (role === 'operate') {
        expect(read.status, `${method} ${path} with a read token`).toBe(403);
        expect(JSON.parse(read.text).error.code).toBe('FORBIDDEN');
      } else {
        expect([200, 404], `${method} ${path} with a read token`).toContain(read.status);
      }
    }
    // Nothing was stored for any refusal.
    expect(await h!.store.list('fave-artifacts', 'requests/')).toEqual([]);

    const submitted = await call('POST', '/', { authorization: `Bearer ${OPERATE}` }, JSON.stringify({ video_uri: h!.videoUri, request_id: 'r1' }));
    expect(submitted.status).toBe(200);
    expect((await call('GET', '/requests/r1/result', { authorization: `Bearer ${READ}` })).status).toBe(200);
  });

  it('refuses a state-changing call from another origin, or with a body type a cross-site page can send', async () => {
    await start({ FAVE_API_TOKENS: TOKENS });
    const auth = { authorization: `Bearer ${OPERATE}` };
    const foreign = await call('POST', '/', { ...auth, origin: 'http://evil.example' }, JSON.stringify({ video_uri: h!.videoUri }));
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.text).error).toMatchObject({ code: 'FOREIGN_ORIGIN', field: 'Origin' });
    const text = await call('POST', '/requests/r1/cancel', { ...auth, 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(JSON.parse(text.text).error).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', field: 'Content-Type' });
    expect(foreignOrigin({ origin: 'https://faas.example.com', host: '10.0.0.5:8080' }, ['https://faas.example.com'])).toBeNull();
    expect(foreignOrigin({ origin: 'https://faas.example.com', host: 'faas.example.com', 'x-forwarded-host': 'faas.example.com' })).toBeNull();
    expect(foreignOrigin({ origin: 'null', host: 'faas.example.com' })).toBe('null');
    // The service's own origin is fine.
    const own = await call('POST', '/', { ...auth, origin: server!.url }, JSON.stringify({ video_uri: h!.videoUri, request_id: 'own' }));
    expect(own.status).toBe(200);
  });

  it('signs the UI in with a token into an HttpOnly, SameSite=Strict cookie', async () => {
    await start({ FAVE_API_TOKENS: TOKENS });
    const page = await call('GET', '/ui');
    expect(page.status).toBe(401);
    expect(page.text).toContain('<form method="post" action="/ui/login">');
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expect((await call('POST', '/ui/login', form, 'token=wrong-token-0123456789')).status).toBe(401);
    const signedIn = await call('POST', '/ui/login', form, `token=${encodeURIComponent(READ)}`);
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^fave_token=/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    const session = cookie.split(';')[0]!;
    // A stale cookie still reaches the sign-in form, and signing in again works.
    const stale = 'fave_token=stale-token-0123456789abcdef';
    expect((await call('GET', '/ui', { cookie: stale })).status).toBe(401);
    expect((await call('POST', '/ui/login', { ...form, cookie: stale }, `token=${encodeURIComponent(READ)}`)).status).toBe(303);
    expect((await call('GET', '/ui', { cookie: session })).status).toBe(200);
    expect((await call('GET', '/ui/api/requests', { cookie: session })).status).toBe(200);
    expect((await call('POST', '/requests/r1/cancel', { cookie: session })).status).toBe(403);
  });

  it('gives callers without a token the FAVE_ANONYMOUS_ROLE, and a wrong token is still refused', async () => {
    await start({ FAVE_API_TOKENS: TOKENS, FAVE_ANONYMOUS_ROLE: 'read' });
    expect((await call('GET', '/ui/api/requests')).status).toBe(200);
    expect((await call('POST', '/requests/r1/cancel')).status).toBe(403);
    expect((await call('GET', '/metrics', { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
  });

  it('reads tokens as role:token entries and compares them by digest', () => {
    const auth = { tokens: parseApiTokens(`read:${READ}\noperate:${OPERATE}`, 'fave-api-tokens'), anonymousRole: null };
    expect(roleOfToken(auth, READ)).toBe('read');
    expect(roleOfToken(auth, OPERATE)).toBe('operate');
    expect(roleOfToken(auth, `${READ}x`)).toBeNull();
    expect(() => parseApiTokens('admin:0123456789abcdef0', 'FAVE_API_TOKENS')).toThrow(/entry 1 must be "read:<token>"/);
    expect(() => parseApiTokens('read:short', 'FAVE_API_TOKENS')).toThrow(/16 to 512 characters/);
    expect(() => parseApiTokens('read:short', 'FAVE_API_TOKENS')).not.toThrow(/short/);
  });

  it('without tokens listens on loopback only, and another address needs --insecure-no-auth', () => {
    const none = { tokens: [], anonymousRole: null };
    expect(serveAuth(none, '127.0.0.1', {}).auth.anonymousRole).toBe('operate');
    expect(serveAuth(none, '127.0.0.1', {}).notice).toMatch(/loopback|127\.0\.0\.1 only/);
    expect(() => serveAuth(none, '0.0.0.0', {})).toThrow(/--insecure-no-auth/);
    expect(serveAuth(none, '0.0.0.0', { insecureNoAuth: true }).auth.anonymousRole).toBe('operate');
    expect(() => serveAuth(none, '127.0.0.1', { requireAuth: true })).toThrow(/FAVE_ANONYMOUS_ROLE/);
    expect(serveAuth({ tokens: [], anonymousRole: 'read' }, '127.0.0.1', { requireAuth: true }).notice).toMatch(/read role/);
  });

  it("the image's command line refuses to start without tokens or FAVE_ANONYMOUS_ROLE", async () => {
    const dockerfile = readFileSync(join(import.meta.dirname, '..', 'Dockerfile'), 'utf8');
    const fprocess = /fprocess="node dist\/cli\/main\.js ([^"]+)"/.exec(dockerfile)?.[1];
    expect(fprocess).toBeDefined();
    const args = fprocess!.split(' ').map((a) => (a === '3000' ? '0' : a));
    const dir = await mkdtemp(join(tmpdir(), 'fave-auth-'));
    const env = { FAVE_DATA_DIR: dir, OPENFAAS_SECRETS_DIR: '/nonexistent', LOG_LEVEL: 'info', FAVE_API_TOKENS: '', FAVE_ANONYMOUS_ROLE: '' };
    const refused = await runFave(args, env).exit;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/FAVE_API_TOKENS is not set/);

    const run = runFave(args, { ...env, FAVE_ANONYMOUS_ROLE: 'read' });
    try {
      let seen = '';
      run.child.stderr!.on('data', (d: Buffer) => (seen += d.toString()));
      await until(() => seen.includes('"event":"listening"'), { timeoutMs: 15_000, message: 'the server to listen' });
      expect(seen).toMatch(/"event":"api_auth".*"anonymous_role":"read"/);
    } finally {
      run.child.kill('SIGKILL');
      await run.exit;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('fave serve without tokens', () => {
  it('listens on loopback and says so; another address needs --insecure-no-auth', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fave-auth-'));
    const env = { FAVE_DATA_DIR: dir, OPENFAAS_SECRETS_DIR: '/nonexistent', LOG_LEVEL: 'info', FAVE_API_TOKENS: '', FAVE_ANONYMOUS_ROLE: '' };
    try {
      const refused = await runFave(['serve', '--port', '0', '--host', '0.0.0.0'], env).exit;
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/without tokens needs --insecure-no-auth/);

      const run = runFave(['serve', '--port', '0'], env);
      try {
        let seen = '';
        run.child.stderr!.on('data', (d: Buffer) => (seen += d.toString()));
        await until(() => seen.includes('"event":"listening"'), { timeoutMs: 15_000, message: 'the server to listen' });
        expect(seen).toMatch(/"event":"listening","url":"http:\/\/127\.0\.0\.1:\d+"/);
        expect(seen).toMatch(/"event":"api_auth".*listening on 127\.0\.0\.1 only/);
      } finally {
        run.child.kill('SIGKILL');
        await run.exit;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const CHROMIUM = '/usr/bin/chromium';

describe.skipIf(!existsSync(CHROMIUM))('a page on another origin in Chromium', () => {
  it('cannot cancel or submit with no-cors requests, even where callers need no token', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      }),
    );
    // Loopback without tokens: every local caller may operate, which is what a local page would abuse.
    const harness = await startHarness({
      logger,
      gateway: { clips: 1, framesPerClip: 1, faults: [{ stage: 'ffmpeg0', kind: 'hang', times: 1 }] },
      env: { FAVE_ANONYMOUS_ROLE: '' },
    });
    h = harness;
    server = await startHttpServer({ app: harness.app, port: 0, host: '127.0.0.1', processMetrics: false });
    const started = await fetch(`${server.url}/?async=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_uri: harness.videoUri, request_id: 'victim' }),
    });
    expect(started.status).toBe(202);

    const target = server.url;
    other = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><script>
        const opts = (body) => ({ method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body });
        window.done = Promise.allSettled([
          fetch(${JSON.stringify(`${target}/requests/victim/cancel`)}, opts('{}')),
          fetch(${JSON.stringify(`${target}/`)}, opts(${JSON.stringify(JSON.stringify({ video_uri: harness.videoUri, request_id: 'planted' }))})),
          fetch(${JSON.stringify(`${target}/requests/victim/cancel`)}, { method: 'POST', mode: 'no-cors' }),
        ]).then((r) => r.map((x) => x.status));
      </script>`);
    });
    await new Promise<void>((resolve) => other!.listen(0, '127.0.0.1', resolve));
    const attacker = `http://localhost:${(other.address() as AddressInfo).port}/`;

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      await page.goto(attacker);
      expect(await page.evaluate('window.done')).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    } finally {
      await browser.close();
    }
    const refused = lines
      .map((l) => JSON.parse(l) as { event?: string; path?: string; status?: number })
      .filter((l) => l.event === 'http' && (l.path === '/' || l.path === '/requests/victim/cancel') && l.status !== 202);
    expect(refused.map((l) => l.status)).toEqual([403, 403, 403]);
    expect((await harness.app.orchestrator.requests.view('victim'))?.status).toBe('RUNNING');
    expect(await harness.app.orchestrator.requests.view('planted')).toBeNull();
  });
});
