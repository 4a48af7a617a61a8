import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createApp, type App } from '../../src/app.ts';
import { FsStore } from '../../src/persistence/fs-store.ts';
import { parseStateFile, type StateEnvelope } from '../../src/persistence/state-file.ts';
import { requestKeys, type Store } from '../../src/persistence/store.ts';
import type { FinalResult } from '../../src/domain/result.ts';
import { FinalResultSchema } from '../../src/domain/result.ts';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from './test-gateway.ts';

export interface Harness {
  dir: string;
  store: Store;
  gateway: TestGateway;
  app: App;
  env: Record<string, string>;
  /** A video object in the store to submit. */
  videoUri: string;
  readState(requestId: string): Promise<StateEnvelope>;
  readFinal(requestId: string): Promise<FinalResult>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  gateway?: Omit<TestGatewayOptions, 'store'>;
  env?: Record<string, string>;
  store?: Store;
  /** The app's logger (default: silent). */
  logger?: Logger;
  /** The GATEWAY_URL the app gets, from the scripted gateway's URL (default: that URL). */
  gatewayUrl?: (url: string) => string;
}

/** A filesystem store in a temp dir, the scripted gateway on loopback, and an app wired to both. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'fave-test-'));
  const store = options.store ?? new FsStore(join(dir, 'data'), 'fave-artifacts');
  await store.init();
  const gateway = await startTestGateway({ store, ...options.gateway });
  const env: Record<string, string> = {
    GATEWAY_URL: options.gatewayUrl ? options.gatewayUrl(gateway.url) : gateway.url,
    FAVE_DATA_DIR: join(dir, 'data'),
    ARTIFACT_BUCKET: 'fave-artifacts',
    RETRY_BASE_DELAY_MS: '5',
    RETRY_MAX_DELAY_MS: '20',
    OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'),
    LOG_LEVEL: 'silent',
    // Test servers let callers in without a token; the auth tests set FAVE_API_TOKENS and clear this.
    FAVE_ANONYMOUS_ROLE: 'operate',
    ...options.env,
  };
  const app = await createApp({ env, logger: options.logger ?? pino({ level: 'silent' }) });
  const videoKey = 'uploads/sample.mp4';
  await store.put({ bucket: 'fave-artifacts', key: videoKey }, Buffer.from('not really a video, the scripted stages do not care'));
  return {
    dir,
    store,
    gateway,
    app,
    env,
    videoUri: `s3://fave-artifacts/${videoKey}`,
    async readState(requestId) {
      const body = await store.get({ bucket: 'fave-artifacts', key: requestKeys.state(requestId) });
      return parseStateFile(body.toString('utf8'), 'state.json');
    },
    async readFinal(requestId) {
      const body = await store.get({ bucket: 'fave-artifacts', key: requestKeys.final(requestId) });
      return FinalResultSchema.parse(JSON.parse(body.toString('utf8')));
    },
    async close() {
      await app.close();
      await gateway.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
