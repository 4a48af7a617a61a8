import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinalResultSchema } from '../src/contracts/result.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { runFave } from './support/child.ts';
import { startTestGateway, type TestGateway } from './support/test-gateway.ts';

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
  await writeFile(video, 'the scripted stages do not read the video');
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
