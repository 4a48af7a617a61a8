import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinalResultSchema } from '../src/domain/result.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { runFave } from './support/child.ts';
import { startTestGateway, type TestGateway } from './support/test-gateway.ts';
import { makeToneBurstVideo } from './support/media.ts';
import { until } from './support/until.ts';

/** What the `fave` CLI prints and how it exits, run as a child process against the test gateway. */

let dir: string;
let store: FsStore;
let gateway: TestGateway;
let video: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-cli-'));
  store = new FsStore(join(dir, 'data'), 'fave-artifacts');
  await store.init();
  gateway = await startTestGateway({ store, clips: 3, framesPerClip: 1 });
  video = join(dir, 'video.mp4');
  // A real (tiny) video: the CLI asks ffprobe before it stores anything; the scripted stages never read it.
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

describe('fave run --json into a pipe', () => {
  it('prints a multi-megabyte answer whole and exits 0', async () => {
    // Long transcripts make the answer several megabytes: far past what a pipe holds at once.
    const big = await startTestGateway({ store, clips: 120, framesPerClip: 1, transcriptMode: 'inline', transcript: (clip) => `clip ${clip} ${'word '.repeat(5_000)}` });
    try {
      const out = await runFave(['run', video, '--json', '--request-id', 'big-answer'], env({ GATEWAY_URL: big.url })).exit;
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout.length).toBeGreaterThan(3_000_000);
      const result = FinalResultSchema.parse(JSON.parse(out.stdout));
      expect(result.clips).toHaveLength(120);
    } finally {
      await big.close();
    }
  });
});

describe('fave run refuses a video it cannot read, before any request exists', () => {
  it.each([
    ['a directory', () => dir, /is a directory, not a video file/],
    ['a device', () => '/dev/null', /is not a regular file/],
  ])('%s exits 2', async (_what, path, message) => {
    const data = join(dir, `refused-${_what.replace(/\W/g, '-')}`);
    const out = await runFave(['run', path()], env({ FAVE_DATA_DIR: data })).exit;
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toMatch(message);
    const made = await readdir(join(data, 'fave-artifacts', 'requests')).catch(() => []);
    expect(made).toEqual([]);
  });
});

describe('a request interrupted, then found with a lease its owner no longer renews', () => {
  const id = 'orphan-1';
  const stateFile = () => join(dir, 'data', 'fave-artifacts', 'requests', id, 'metadata', 'state.json');
  const readState = async () =>
    JSON.parse(await readFile(stateFile(), 'utf8')) as {
      state: string;
      status: string;
      updated_at: number;
      lease: { owner: string; acquired_at: number; expires_at: number } | null;
    };
  /** The lease as a process that died would have left it: renewed `renewedAgoMs` ago, running out in `expiresInMs`. */
  const leaveLease = async (renewedAgoMs: number, expiresInMs: number) => {
    const state = await readState();
    const now = Date.now();
    state.updated_at = now - renewedAgoMs;
    state.lease = { owner: 'gone-host:4242:deadbeef', acquired_at: now - 60_000, expires_at: now + expiresInMs };
    await writeFile(stateFile(), JSON.stringify(state));
  };

  it('Ctrl-C prints the resume command; status names the owner; resume counts down its lease, takes over and answers; a second resume says it is completed', async () => {
    gateway.addFault({ stage: 'ffmpeg1', kind: 'hang' });
    try {
      const run = runFave(['run', video, '--request-id', id], env());
      await until(
        () =>
          readState().then(
            (state) => state.state === 'CLIP',
            () => false,
          ),
        { timeoutMs: 20_000, message: 'the request reaches CLIP' },
      );
      run.child.kill('SIGINT');
      const interrupted = await run.exit;
      expect(interrupted.code, interrupted.stderr).toBe(130);
      expect(interrupted.stderr).toContain(`fave resume ${id}`);
    } finally {
      gateway.clearFaults();
    }

    await leaveLease(40_000, 12_000);
    const asked = Date.now();
    const status = await runFave(['status', id], env()).exit;
    const slack = Math.ceil((Date.now() - asked) / 1000);
    expect(status.code, status.stderr).toBe(0);
    const line = /^orphan-1: RUNNING \(CLIP\), owner gone-host:4242:deadbeef not renewed for (\d+) s \(lease expires in (\d+) s\)$/m.exec(status.stdout);
    expect(line, status.stdout).not.toBeNull();
    const [notRenewed, expiresIn] = [Number(line![1]), Number(line![2])];
    expect(notRenewed).toBeGreaterThanOrEqual(40);
    expect(notRenewed).toBeLessThanOrEqual(40 + slack);
    expect(expiresIn).toBeLessThanOrEqual(12);
    expect(expiresIn).toBeGreaterThanOrEqual(12 - slack);

    // Long enough to be seen counting down after the CLI's start on a busy machine.
    await leaveLease(1_000, 12_000);
    const resumed = await runFave(['resume', id], env()).exit;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/run by another process: owner gone-host:4242:deadbeef .*\(lease expires in \d s\)/);
    // Counted down: more than one distinct "expires in" figure.
    const figures = new Set([...resumed.stderr.matchAll(/lease expires in (\d+) s/g)].map((m) => m[1]));
    expect(figures.size, resumed.stderr).toBeGreaterThan(1);
    expect(resumed.stderr).toContain(`request ${id}: the lease ran out; resuming it here`);
    expect(resumed.stdout).toContain(`request ${id}: COMPLETED`);

    const again = await runFave(['resume', id], env()).exit;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`request ${id} is already COMPLETED`);
    expect(again.stderr).not.toMatch(/another process/);
    expect(again.stdout).toContain(`request ${id}: COMPLETED`);
  });
});

describe('fave serve', () => {
  it('says which port is in use and exits 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const out = await runFave(['serve', '--port', String(port), '--host', '127.0.0.1'], env()).exit;
      expect(out.code, out.stderr).toBe(1);
      expect(out.stderr).toContain(`port ${port} is in use`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('prints one line with the API and UI addresses, which answer', async () => {
    const serve = runFave(['serve', '--port', '0', '--host', '127.0.0.1'], env());
    let stdout = '';
    serve.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    try {
      const line = await until(() => /^fave serve: API (http:\/\/127\.0\.0\.1:\d+)\/ {2}UI (\S+) .*$/m.exec(stdout), {
        timeoutMs: 30_000,
        message: 'fave serve prints where it listens',
      });
      expect(stdout.split('\n').filter((l) => l.startsWith('fave serve:'))).toHaveLength(1);
      expect((await fetch(`${line[1]}/healthz`)).status).toBe(200);
      const ui = await fetch(line[2]!);
      expect(ui.status).toBe(200);
      expect(ui.headers.get('content-type')).toMatch(/^text\/html/);
    } finally {
      serve.child.kill('SIGTERM');
      expect((await serve.exit).code).toBe(0);
    }
  });
});

describe('the result table', () => {
  it('fits the terminal width, explains empty columns once below it, and shows local clip files as paths', async () => {
    const bursts = join(dir, 'bursts.mp4');
    await makeToneBurstVideo(bursts, {
      bursts: [
        [1, 3],
        [5, 7],
      ],
      duration: 8,
    });
    const data = join(dir, 'embedded');
    // No GATEWAY_URL: the local stages, with no speech engine and no detector, clips on the bursts only.
    const out = await runFave(['run', bursts, '--request-id', 'table'], {
      FAVE_DATA_DIR: data,
      LOG_LEVEL: 'warn',
      COLUMNS: '64',
      FAVE_DETECTOR: 'none',
      FAVE_SILENT_CLIPS: 'false',
      // No engine even where pocketsphinx is installed: the note about it is what is looked at.
      FAVE_SPEECH_COMMAND: 'none',
    }).exit;
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.split('\n');
    const header = lines.findIndex((l) => l.startsWith('clip '));
    const table = lines.slice(header, header + 4);
    for (const line of table) expect([...line].length, line).toBeLessThanOrEqual(64);
    expect(table[2]).toMatch(/\(note 1\)\s+\(note 2\)/);

    const notes = lines
      .slice(lines.indexOf('notes:') + 1)
      .join(' ')
      .replace(/\s+/g, ' ');
    expect(notes).toContain(
      '1. no transcript: no speech engine configured; set FAVE_SPEECH_COMMAND to a speech-to-text command line (docs/stages.md, "Plugging in a speech engine")',
    );
    expect(notes).toContain(
      '2. no detector model configured (set FAVE_DETECTOR_MODEL); set FAVE_DETECTOR_MODEL to a YOLO .onnx model (docs/stages.md, "Plugging in a detector model")',
    );
    expect(out.stdout.match(/no speech engine configured/g)).toHaveLength(1);

    expect(out.stdout).toContain(`clip files (clip_000.mp4 … clip_001.mp4):\n  ${join(data, 'fave-artifacts', 'requests', 'table', 'stage-ffmpeg-1')}/\n`);
    expect(out.stdout).not.toContain('s3://');
  });
});

describe('without the optional packages, as in the container image', () => {
  const leftOut = { NODE_OPTIONS: `--import ${join(import.meta.dirname, 'support', 'without-optional.mjs')}` };

  it('--help and serve start; only the commands that run the local stages need them', async () => {
    const help = await runFave(['--help'], env(leftOut)).exit;
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('serve');

    const serve = runFave(['serve', '--port', '0', '--host', '127.0.0.1'], env(leftOut));
    let stdout = '';
    serve.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    try {
      await until(() => stdout.includes('fave serve: API'), { timeoutMs: 30_000, message: 'fave serve starts without the optional packages' });
    } finally {
      // Its graceful stop is another test's; with the import hook's thread here, a SIGTERM is
      // sometimes taken by the default action instead of the handler, so this one just ends it.
      serve.child.kill('SIGKILL');
      await serve.exit;
    }

    // The packages really are out of reach: the command that needs them says so.
    const gatewayOut = await runFave(['gateway', '--port', '0'], env(leftOut)).exit;
    expect(gatewayOut.code).toBe(2);
    expect(gatewayOut.stderr).toContain('left out, as in the container image');
    expect(gatewayOut.stderr).toMatch(/the local stages cannot be loaded .*npm install without --omit=optional/);
  });
});
