import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { faveError } from '../src/domain/errors.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { interpretTranscript, MAX_TRANSCRIPT_CHARS } from '../src/transport/artifacts.ts';
import { MAX_ERROR_CHARS } from '../src/lib/redact.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { runFave } from './support/child.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { closeNodeServer } from './support/cleanup.ts';

let h: Harness | null = null;
let server: HttpServer | null = null;
let gateway: Server | null = null;
let dir: string | null = null;

afterEach(async () => {
  await server?.close(200);
  await h?.close();
  if (gateway) await closeNodeServer(gateway);
  if (dir) await rm(dir, { recursive: true, force: true });
  h = server = gateway = null;
  dir = null;
});

/** Peak resident set of a live process, from /proc (VmHWM only grows), in bytes; null once it is gone. */
function peakRss(pid: number): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

describe('caps', () => {
  it('a 300 MB stage answer is cut at STAGE_RESPONSE_MAX_BYTES with a clear error, the process staying under 300 MB RSS', async () => {
    const TOTAL = 300 * 1024 * 1024;
    let sent = 0;
    gateway = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"status":"ok","outputs":[],"pad":"');
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      const more = () => {
        while (sent < TOTAL) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end('"}');
      };
      more();
    });
    await new Promise<void>((resolve) => gateway!.listen(0, '127.0.0.1', resolve));
    dir = await mkdtemp(join(tmpdir(), 'fave-caps-'));
    const store = new FsStore(join(dir, 'data'), 'fave-artifacts');
    await store.init();
    await store.put({ bucket: 'fave-artifacts', key: 'uploads/v.mp4' }, Buffer.from('video'));
    const run = runFave(['run', 's3://fave-artifacts/uploads/v.mp4', '--json', '--request-id', 'big-answer'], {
      GATEWAY_URL: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`,
      FAVE_DATA_DIR: join(dir, 'data'),
      OPENFAAS_SECRETS_DIR: '/nonexistent',
      RETRY_MAX_ATTEMPTS: '1',
      LOG_LEVEL: 'warn',
    });
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, peakRss(run.child.pid!) ?? 0);
    }, 20);
    const exited = await run.exit.finally(() => clearInterval(sampler));
    expect(exited.code).toBe(1);
    const result = JSON.parse(exited.stdout);
    expect(result.error).toMatchObject({ code: 'STAGE_CONTRACT', stage: 'stage-ffmpeg-0' });
    expect(result.error.message).toMatch(/larger than 16777216 bytes \(STAGE_RESPONSE_MAX_BYTES\)/);
    expect(sent).toBeLessThan(TOTAL);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(300 * 1024 * 1024);
  });

  it('keeps error texts and transcripts in state truncated with a marker', async () => {
    const huge = 'x'.repeat(1_000_000);
    const error = faveError('STAGE_REPORTED_ERROR', huge);
    expect(error.message.length).toBeLessThan(MAX_ERROR_CHARS + 100);
    expect(error.message).toMatch(/… \[998000 more characters truncated\]$/);
    expect(interpretTranscript(huge).transcript!.length).toBeLessThan(MAX_TRANSCRIPT_CHARS + 100);

    h = await startHarness({ gateway: { clips: 50, framesPerClip: 1, faults: [{ stage: 'ffmpeg2', kind: 'error', message: huge }] }, env: { TOLERATED_FAILURE_PCT: '100' } });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'loud' })).done;
    expect(outcome.result.failed_clips.length).toBe(50);
    const state = await h.store.get({ bucket: 'fave-artifacts', key: requestKeys.state('loud') });
    const final = await h.store.get({ bucket: 'fave-artifacts', key: requestKeys.final('loud') });
    // 50 errors of 1 MB once made a 100 MB state.json.
    expect(state.length).toBeLessThan(2_000_000);
    expect(final.length).toBeLessThan(2_000_000);
    expect(final.toString('utf8')).toContain('more characters truncated]');
  });

  it('refuses a video_uri over 4096 characters', async () => {
    h = await startHarness();
    server = await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false });
    const res = await fetch(`${server.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_uri: `https://example.com/${'a'.repeat(5000)}.mp4` }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({ field: 'video_uri', message: 'video_uri: must be at most 4096 characters' });
  });
});
