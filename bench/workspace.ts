import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp, type App } from '../src/app.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import type { StageTransport } from '../src/transport/transport.ts';

export const BUCKET = 'fave-artifacts';

/** A temp dir holding the filesystem store (the embedded default) and the input video. */
export interface Workspace {
  dir: string;
  dataDir: string;
  store: FsStore;
  videoUri: string;
  cleanup(): Promise<void>;
}

export async function openWorkspace(): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'fave-bench-'));
  const dataDir = join(dir, 'data');
  const store = new FsStore(dataDir, BUCKET);
  await store.init();
  const videoKey = 'uploads/sample.mp4';
  await store.put({ bucket: BUCKET, key: videoKey }, Buffer.from('not really a video: the scripted stages never decode it'));
  return {
    dir,
    dataDir,
    store,
    videoUri: `s3://${BUCKET}/${videoKey}`,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface BenchEnvOptions {
  gatewayUrl: string;
  dataDir: string;
  concurrency: number;
  /** Unset keeps the configured default (PERSIST_INTERVAL_MS=1000). */
  persistIntervalMs?: number;
}

export function benchEnv(options: BenchEnvOptions): Record<string, string> {
  return {
    GATEWAY_URL: options.gatewayUrl,
    FAVE_DATA_DIR: options.dataDir,
    ARTIFACT_BUCKET: BUCKET,
    MAX_CONCURRENT_INVOCATIONS: String(options.concurrency),
    OPENFAAS_SECRETS_DIR: join(options.dataDir, 'no-secrets'),
    LOG_LEVEL: 'silent',
    ...(options.persistIntervalMs !== undefined ? { PERSIST_INTERVAL_MS: String(options.persistIntervalMs) } : {}),
  };
}

export function openApp(env: Record<string, string>, transport?: StageTransport): Promise<App> {
  return createApp({ env, logger: pino({ level: 'silent' }), ...(transport ? { transport } : {}) });
}

export interface TimedRequest {
  wall_ms: number;
  status: 'COMPLETED' | 'FAILED';
  invocations: number;
}

/** Submits one request and waits for its end; a FAILED request makes the figure meaningless. */
export async function timeRequest(app: App, requestId: string, videoUri: string): Promise<TimedRequest> {
  const started = performance.now();
  const handle = await app.orchestrator.submit({ video_uri: videoUri, request_id: requestId });
  const outcome = await handle.done;
  const wall = performance.now() - started;
  if (outcome.status !== 'COMPLETED') {
    throw new Error(`bench request ${requestId} ended ${outcome.status}: ${JSON.stringify(outcome.result.error)}`);
  }
  return { wall_ms: wall, status: outcome.status, invocations: outcome.result.metrics.invocations };
}
