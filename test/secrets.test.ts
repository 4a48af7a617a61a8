import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { redactUrl, scrubSecrets } from '../src/lib/redact.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { closeNodeServer } from './support/cleanup.ts';

let h: Harness | null = null;
let server: HttpServer | null = null;
let source: Server | null = null;

afterEach(async () => {
  await server?.close(200);
  await h?.close();
  if (source) await closeNodeServer(source);
  server = h = source = null;
});

const SIGNATURE = 'f00dfacecafe0123456789abcdef0123456789abcdef0123456789abcdef0123';
const CREDENTIAL = 'AKIAEXAMPLESECRET42';
const SESSION = 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN';
const GATEWAY_PASSWORD = 'gw-pass-5ecret-77';
const ECHOED_BASIC = Buffer.from(`admin:${GATEWAY_PASSWORD}`).toString('base64');
const ECHOED_BEARER = 'eyJhbGciOiJIUzI1NiJ9.echoed-bearer-secret';
const SECRETS = [SIGNATURE, CREDENTIAL, SESSION, GATEWAY_PASSWORD, ECHOED_BASIC, ECHOED_BEARER];

function leaks(text: string): string[] {
  return SECRETS.filter((secret) => text.includes(secret));
}

describe('secrets at the boundary', () => {
  it('leaves no presigned signature, gateway password or echoed Authorization in state, result, answers, UI or logs', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    // The gateway asks for basic auth; the password only comes in GATEWAY_URL's userinfo.
    const basicAuth = { user: 'admin', password: GATEWAY_PASSWORD };
    const echoed = `bad request; headers were {"Authorization": "Basic ${ECHOED_BASIC}"} Authorization: Bearer ${ECHOED_BEARER}`;
    h = await startHarness({
      logger,
      gateway: { clips: 1, framesPerClip: 1, basicAuth, faults: [{ stage: 'ffmpeg1', requestId: 'echoed', kind: 'status', status: 400, body: echoed }] },
      gatewayUrl: (url) => url.replace('http://', `http://admin:${GATEWAY_PASSWORD}@`),
    });
    expect(h.app.config.gatewayUrl).not.toContain(GATEWAY_PASSWORD);
    const seenUrls: string[] = [];
    source = createServer((req, res) => {
      seenUrls.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'video/mp4' }).end(Buffer.from('a presigned video'));
    });
    await new Promise<void>((resolve) => source!.listen(0, '127.0.0.1', resolve));
    const presigned = `http://127.0.0.1:${(source.address() as AddressInfo).port}/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${CREDENTIAL}&X-Amz-Security-Token=${SESSION}&X-Amz-Signature=${SIGNATURE}`;
    server = await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false, allowPrivateSources: true });

    const answers: string[] = [];
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server!.url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      answers.push(text);
      return { status: res.status, text };
    };
    const ok = await call('POST', '/', { video_uri: presigned, request_id: 'presigned' });
    expect(ok.status).toBe(200);
    // The download used the full URL; only the stored and shown one lacks the signature.
    expect(seenUrls.some((u) => u.includes(SIGNATURE))).toBe(true);
    const failed = await call('POST', '/', { video_uri: h.videoUri, request_id: 'echoed' });
    expect(failed.status).toBe(502);
    expect(failed.text).toContain('[redacted]');
    for (const id of ['presigned', 'echoed']) {
      await call('GET', `/requests/${id}`);
      await call('GET', `/requests/${id}/result`);
      await call('GET', `/ui/requests/${id}`);
      await call('GET', `/ui/api/requests/${id}`);
    }
    await call('GET', '/ui');
    await call('GET', '/ui/api/requests');

    const stored: string[] = [];
    for (const id of ['presigned', 'echoed']) {
      stored.push((await h.store.get({ bucket: 'fave-artifacts', key: requestKeys.state(id) })).toString('utf8'));
      stored.push((await h.store.get({ bucket: 'fave-artifacts', key: requestKeys.final(id) })).toString('utf8'));
    }
    expect(JSON.parse(stored[1]!).video_uri).toBe(`http://127.0.0.1:${(source.address() as AddressInfo).port}/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256`);
    expect(leaks(stored.join('\n')), 'state.json / final.json').toEqual([]);
    expect(leaks(answers.join('\n')), 'HTTP answers and /ui').toEqual([]);
    expect(leaks(lines.join('')), 'logs').toEqual([]);
    expect(lines.length).toBeGreaterThan(10);
  });

  it('scrubs credentials from error texts and signatures from URLs', () => {
    const url = `https://bucket.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${CREDENTIAL}&X-Amz-Security-Token=${SESSION}&X-Amz-Signature=${SIGNATURE}&versionId=3`;
    expect(redactUrl(url)).toBe('https://bucket.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&versionId=3');
    expect(redactUrl('https://user:pw@host.example/v.mp4?sig=abc&sv=2020')).toBe('https://host.example/v.mp4?sv=2020');
    const text = scrubSecrets(`Authorization: Basic ${ECHOED_BASIC}\n{"authorization":"Bearer ${ECHOED_BEARER}"} see ${url} and http://admin:${GATEWAY_PASSWORD}@gw/`);
    expect(leaks(text)).toEqual([]);
    expect(text).toContain('[redacted]');
  });

  it('scrubs key=value secrets from free text, and their JSON form, and leaves other pairs', () => {
    const cases: Array<[string, string]> = [
      ['psql: password=hunter2 user=bob', 'psql: password=[redacted] user=bob'],
      ['aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY region=eu', 'aws_secret_access_key=[redacted] region=eu'],
      ['AWS_SECRET_ACCESS_KEY = "with a space" next', 'AWS_SECRET_ACCESS_KEY = [redacted] next'],
      [
        "db_password='p w' token=abc&x=1 secret=s3cr3t, api-key=k1; client_secret=cs",
        'db_password=[redacted] token=[redacted]&x=1 secret=[redacted], api-key=[redacted]; client_secret=[redacted]',
      ],
      ['{"client_secret": "abc\\"def", "password":"pw", "name": "ok"}', '{"client_secret": "[redacted]", "password":"[redacted]", "name": "ok"}'],
      ['https://h.example/v.mp4?token=abc&sv=1', 'https://h.example/v.mp4?token=[redacted]&sv=1'],
      ['uploads are turned off here (FAVE_UPLOAD_MAX_BYTES=0)', 'uploads are turned off here (FAVE_UPLOAD_MAX_BYTES=0)'],
      ['set FAVE_ANONYMOUS_ROLE=read|operate', 'set FAVE_ANONYMOUS_ROLE=read|operate'],
    ];
    for (const [text, scrubbed] of cases) expect(scrubSecrets(text), text).toBe(scrubbed);
  });

  it('refuses an ARTIFACT_ENDPOINT with credentials at start, without printing them', () => {
    let message = '';
    try {
      loadConfig({ ARTIFACT_ENDPOINT: `http://minio:${GATEWAY_PASSWORD}@127.0.0.1:9000`, OPENFAAS_SECRETS_DIR: '/nonexistent' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/ARTIFACT_ENDPOINT must not carry credentials/);
    expect(leaks(message)).toEqual([]);
  });
});
