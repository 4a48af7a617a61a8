import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinalResultSchema } from '../src/domain/result.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { probeMedia } from '../src/stages/local/probe.ts';
import { findPocketsphinx } from '../src/stages/local/stage-config.ts';
import { FAVE_BIN, runFave } from './support/child.ts';
import { closeAfterTest, closeNodeServer } from './support/cleanup.ts';
import { makeSilentVideo, makeToneBurstVideo } from './support/media.ts';
import { startTestGateway, type TestGateway } from './support/test-gateway.ts';
import { until } from './support/until.ts';

/** What a newcomer met in a fresh clone, each as the CLI shows it now (a child process). */

const REPO = join(import.meta.dirname, '..');
let dir: string;
let store: FsStore;
let gateway: TestGateway;
let video: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-newcomer-'));
  store = new FsStore(join(dir, 'data'), 'fave-artifacts');
  await store.init();
  // One clip of 7 frames, each showing the same 3 people: a head count of 3, not 21.
  gateway = await startTestGateway({
    store,
    clips: 1,
    framesPerClip: 7,
    detections: () => [0, 1, 2].map((i) => ({ label: 'person', confidence: 0.9, box: [i * 10, 0, i * 10 + 8, 20] as [number, number, number, number] })),
  });
  video = join(dir, 'video.mp4');
  await makeToneBurstVideo(video, { bursts: [], duration: 1 });
});

afterAll(async () => {
  await gateway.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    GATEWAY_URL: gateway.url,
    FAVE_DATA_DIR: join(dir, 'data'),
    OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'),
    RETRY_BASE_DELAY_MS: '5',
    RETRY_MAX_DELAY_MS: '20',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

async function requestsIn(data: string): Promise<string[]> {
  return readdir(join(data, 'fave-artifacts', 'requests')).catch(() => []);
}

/** A loopback server: `/video.mp4` serves the test video, `/to-metadata` redirects to the metadata service. */
async function videoServer(): Promise<string> {
  const bytes = await readFile(video);
  const server: Server = createServer((req, res) => {
    if (req.url === '/to-metadata') {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': bytes.length }).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closeAfterTest(server, closeNodeServer);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('fave run on something that is not a video', () => {
  it('README.md: exits 2 saying it is not a video, before any request is stored', async () => {
    const data = join(dir, 'not-media');
    const out = await runFave(['run', 'README.md'], env({ FAVE_DATA_DIR: data })).exit;
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toMatch(/README\.md is not a video \(ffprobe: .+\)/);
    expect(out.stderr).not.toContain('s3://');
    expect(await requestsIn(data)).toEqual([]);
  });
});

describe('fave run and link-local or cloud metadata addresses', () => {
  it.each([
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local \(cloud metadata\) address/],
    ['http://[fd00:ec2::254]/latest/meta-data/', /fd00:ec2::254 is a cloud metadata address/],
    ['http://[fe80::1]/video.mp4', /fe80::1 is a link-local address/],
  ])('%s: exits 2 naming the rule and ALLOW_PRIVATE_SOURCES, with no request', async (uri, reason) => {
    const data = join(dir, `metadata-${uri.replace(/\W/g, '-')}`);
    const out = await runFave(['run', uri], env({ FAVE_DATA_DIR: data })).exit;
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toMatch(reason);
    expect(out.stderr).toContain('the CLI does not fetch from link-local or cloud metadata addresses; set ALLOW_PRIVATE_SOURCES=true');
    expect(await requestsIn(data)).toEqual([]);
  });

  it('fetches from loopback, but not through a redirect to the metadata service', async () => {
    const base = await videoServer();
    const ok = await runFave(['run', `${base}/video.mp4`, '--json'], env()).exit;
    expect(ok.code, ok.stderr).toBe(0);
    expect(FinalResultSchema.parse(JSON.parse(ok.stdout)).status).toBe('COMPLETED');

    const redirected = await runFave(['run', `${base}/to-metadata`, '--json'], env()).exit;
    expect(redirected.code, redirected.stderr).toBe(1);
    const result = FinalResultSchema.parse(JSON.parse(redirected.stdout));
    expect(result.error).toMatchObject({ code: 'BAD_REQUEST' });
    expect(result.error!.message).toMatch(/169\.254\.169\.254 is a link-local \(cloud metadata\) address/);
  });
});

describe('fave serve on a port it may not use', () => {
  it('says the port needs privileges and what to do, not INTERNAL', async () => {
    // As root every port is allowed: run it as nobody, as a newcomer would be.
    const asRoot = process.getuid?.() === 0;
    const child = spawn(process.execPath, [FAVE_BIN, 'serve', '--port', '80'], {
      env: { ...process.env, ...env({ FAVE_DATA_DIR: join(tmpdir(), `fave-eacces-${process.pid}`) }), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('port 80 (on 127.0.0.1) needs privileges this user does not have');
    expect(stderr).toContain('--port 8080');
    expect(stderr).not.toContain('INTERNAL');
  });
});

describe("fave serve's log lines", () => {
  it('are text on a terminal and JSON on a pipe', async () => {
    // `script` gives the child a terminal; its output comes back through this pipe.
    const command = `exec "${process.execPath}" "${FAVE_BIN}" serve --port 0`;
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      env: { ...process.env, ...env({ LOG_LEVEL: 'info' }), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let tty = '';
    child.stdout.on('data', (d: Buffer) => (tty += d.toString()));
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    closeAfterTest({
      close: async () => {
        if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
        await closed;
      },
    });
    await until(() => /\binfo listening url=http:\/\/127\.0\.0\.1:\d+/.test(tty) || null, { timeoutMs: 30_000, message: `a text listening line on the terminal:\n${tty}` });
    expect(tty).not.toMatch(/\{"level"/);
    process.kill(-child.pid!, 'SIGTERM');
    await closed;

    const piped = runFave(['serve', '--port', '0'], env({ LOG_LEVEL: 'info' }));
    let err = '';
    piped.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await until(() => /"event":"listening"/.test(err) || null, { timeoutMs: 30_000, message: 'a JSON listening line on the pipe' });
    piped.child.kill('SIGTERM');
    await piped.exit;
  });
});

describe('fave --version and fave sample', () => {
  it('prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const out = await runFave(['--version'], {}).exit;
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toBe(version);
  });

  it('writes the sample video where -o says: 12 s with picture and sound', async () => {
    const path = join(dir, 'sample', 'video.mp4');
    const out = await runFave(['sample', '-o', path], {}).exit;
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe(path);
    const info = await probeMedia(path, AbortSignal.timeout(30_000));
    expect(info.video).not.toBeNull();
    expect(info.audio).not.toBeNull();
    expect(info.duration).toBeCloseTo(12, 0);
  });
});

describe('what the result says', () => {
  it('object counts: the most seen in one frame, and in how many frames', async () => {
    const out = await runFave(['run', video, '--request-id', 'head-count'], env({ COLUMNS: '160' })).exit;
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain('person (3 in one frame, in 7 frames)');
    expect(out.stdout).not.toMatch(/person\s*×\s*21/);
    const json = await runFave(['run', video, '--request-id', 'head-count', '--json'], env()).exit;
    const objects = FinalResultSchema.parse(JSON.parse(json.stdout)).clips[0]!.objects;
    expect(objects).toEqual([expect.objectContaining({ label: 'person', count: 21, max_in_frame: 3, frames: [0, 1, 2, 3, 4, 5, 6] })]);
  });

  it('a video without an audio track says "no audio track", not a silent stretch', async () => {
    const silent = join(dir, 'no-audio.mp4');
    await makeSilentVideo(silent, { duration: 2 });
    const out = await runFave(['run', silent, '--json'], { FAVE_DATA_DIR: join(dir, 'no-audio'), LOG_LEVEL: 'warn', FAVE_DETECTOR: 'none' }).exit;
    expect(out.code, out.stderr).toBe(0);
    const clips = FinalResultSchema.parse(JSON.parse(out.stdout)).clips;
    expect(clips.length).toBeGreaterThan(0);
    for (const clip of clips) {
      expect(clip.transcript_note).toContain('no audio track');
      expect(clip.transcript_note).not.toContain('silent stretch');
    }
  });
});

const pocketsphinx = findPocketsphinx();
if (!pocketsphinx) console.log('skipping the pocketsphinx test: pocketsphinx_continuous or its US English model is absent (apt-get install -y pocketsphinx pocketsphinx-en-us)');

describe.skipIf(!pocketsphinx)('speech out of the box', () => {
  it('uses pocketsphinx when FAVE_SPEECH_COMMAND is unset, and says so', async () => {
    const bursts = join(dir, 'speech.mp4');
    await makeToneBurstVideo(bursts, { bursts: [[0.5, 2.5]], duration: 3 });
    const out = await runFave(['run', bursts, '--json'], { FAVE_DATA_DIR: join(dir, 'speech'), LOG_LEVEL: 'warn', FAVE_DETECTOR: 'none', FAVE_SILENT_CLIPS: 'false' }).exit;
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain('speech: pocketsphinx_continuous with its US English model, found on this machine');
    const clips = FinalResultSchema.parse(JSON.parse(out.stdout)).clips;
    expect(clips.length).toBeGreaterThan(0);
    for (const clip of clips) expect(clip.transcript_note ?? '').not.toContain('no speech engine configured');

    const off = await runFave(['run', bursts, '--json'], {
      FAVE_DATA_DIR: join(dir, 'speech-off'),
      LOG_LEVEL: 'warn',
      FAVE_DETECTOR: 'none',
      FAVE_SILENT_CLIPS: 'false',
      FAVE_SPEECH_COMMAND: 'none',
    }).exit;
    expect(off.code, off.stderr).toBe(0);
    expect(off.stderr).not.toContain('pocketsphinx');
    expect(FinalResultSchema.parse(JSON.parse(off.stdout)).clips[0]!.transcript_note).toContain('no speech engine configured');
  });
});
