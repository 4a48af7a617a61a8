import type { Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import { loadConfig, type Config } from './config/config.ts';
import { createLogger } from './lib/logger.ts';
import { Orchestrator } from './orchestrator/orchestrator.ts';
import type { Store } from './persistence/store.ts';
import { FsStore } from './persistence/fs-store.ts';
import { HttpTransport } from './transport/http-transport.ts';
import type { StageTransport } from './transport/transport.ts';
import { AsyncStageCaller } from './transport/async-transport.ts';
import { CallbackInbox } from './transport/callbacks.ts';
import type { AsyncCalls } from './orchestrator/orchestrator.ts';
import type { OrphanSweeps } from './orchestrator/orphan-sweeps.ts';
import { startDebrisSweeps, type DebrisSweeps } from './persistence/debris.ts';
import { importLocalStages } from './stages/load-local.ts';
import { createInspector } from './visualize/inspect.ts';
import { Prewarmer } from './orchestrator/prewarm.ts';
import { OpenFaasSystemClient } from './transport/openfaas-system.ts';

export interface App {
  config: Config;
  logger: Logger;
  store: Store;
  transport: StageTransport;
  orchestrator: Orchestrator;
  /**
   * Sweeps for requests whose owner is gone, now and about once per lease period, until stopped
   * or the app is closed. The HTTP server and the OpenFaaS function both run them.
   */
  startOrphanSweeps(): OrphanSweeps;
  /**
   * Removes what crashed writers left (stale temp files, empty upload folders) and uploads past
   * UPLOAD_TTL_SECONDS, now and then periodically, until stopped or the app is closed.
   */
  startDebrisSweeps(): DebrisSweeps;
  close(): Promise<void>;
}

export interface AppOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Overrides the transport chosen from the configuration (tests, embedded gateways). */
  transport?: StageTransport;
  /** Overrides the store opened from the configuration (tests). */
  store?: Store;
  /** Observes every actor, event and snapshot of the requests run here; else FAVE_INSPECT decides. */
  inspect?: Observer<InspectionEvent>;
}

/**
 * Wires one process: configuration, store, the way stages are reached, and the orchestrator.
 * With no GATEWAY_URL the stages run in this process (the embedded default).
 */
export async function createApp(options: AppOptions = {}): Promise<App> {
  const env = options.env ?? process.env;
  const config = loadConfig(env);
  // Read with the configuration, before anything is opened: a bad FAVE_INSPECT leaves nothing behind.
  const inspector = await createInspector(env);
  const logger = options.logger ?? createLogger(config.logLevel);
  const store = options.store ?? (await openStore(config.store));
  const transport = options.transport ?? (await createTransport(config, store, env));
  const callbacks = createCallbacks(config, store, logger, transport);
  const prewarm = createPrewarmer(config, logger);
  const inspect = options.inspect ?? inspector?.inspect;
  const orchestrator = new Orchestrator({ config, store, transport, logger, callbacks, prewarm, ...(inspect ? { inspect } : {}) });
  const sweeps = new Set<OrphanSweeps | DebrisSweeps>();
  return {
    config,
    logger,
    store,
    transport,
    orchestrator,
    startOrphanSweeps() {
      const started = orchestrator.orphans.start(config.leaseTtlMs);
      sweeps.add(started);
      return {
        async stop() {
          sweeps.delete(started);
          await started.stop();
        },
      };
    },
    startDebrisSweeps() {
      const started = startDebrisSweeps(store, {
        staleTempMs: config.staleTempMs,
        uploadTtlMs: config.uploadTtlMs,
        inUse: () => new Set(orchestrator.running().map((execution) => execution.context.video_uri)),
        // A walk of the store's folders: often enough that debris goes within about one bound, at most every 10 minutes.
        everyMs: Math.min(Math.max(config.staleTempMs / 2, 1000), 600_000),
        logger,
      });
      sweeps.add(started);
      return {
        async stop() {
          sweeps.delete(started);
          await started.stop();
        },
      };
    },
    async close() {
      await Promise.all([...sweeps].map((s) => s.stop()));
      sweeps.clear();
      await orchestrator.close();
      callbacks?.inbox.close();
      await callbacks?.caller?.close();
      await transport.close();
      await store.close();
      inspector?.stop();
      logger.flush();
    },
  };
}

/**
 * Async stage calls go through the gateway's queue and come back to the callback route. Every
 * replica that has a callback secret stores callbacks (its inbox), whether or not it calls a
 * gateway itself; the local stages are always called in-process.
 */
export function createCallbacks(config: Config, store: Store, logger: Logger, transport: StageTransport): AsyncCalls | null {
  if (!config.callback) return null;
  // A lease renewal's period: the longest a callback that reached another replica waits to be seen.
  const inbox = new CallbackInbox({ store, bucket: config.bucket, pollMs: Math.max(50, Math.floor(config.leaseTtlMs / 3)), logger });
  const caller =
    config.gatewayUrl && transport.kind === 'http'
      ? new AsyncStageCaller({ gatewayUrl: config.gatewayUrl, auth: config.gatewayAuth, callback: config.callback, inbox, maxResponseBytes: config.stageResponseMaxBytes })
      : null;
  return { inbox, caller };
}

/**
 * Pre-warming needs the gateway's system API; whether it answers is found out at the first
 * request that wants it. The embedded stages warm up in-process instead (StageTransport.warmUp).
 */
export function createPrewarmer(config: Config, logger: Logger): Prewarmer | null {
  if (!config.gatewayUrl) return null;
  if (Object.values(config.profiles).every((p) => p.prewarm === 'off')) return null;
  const client = new OpenFaasSystemClient({ gatewayUrl: config.gatewayUrl, auth: config.systemAuth, timeoutMs: config.prewarm.timeoutMs });
  return new Prewarmer({ client, config, logger });
}

export async function createTransport(config: Config, store: Store, env: NodeJS.ProcessEnv = process.env): Promise<StageTransport> {
  if (config.gatewayUrl) return new HttpTransport({ gatewayUrl: config.gatewayUrl, auth: config.gatewayAuth, maxResponseBytes: config.stageResponseMaxBytes });
  const { LocalTransport } = await importLocalStages(() => import('./stages/local/local-transport.ts'));
  const { createLocalStages } = await importLocalStages(() => import('./stages/local/index.ts'));
  return new LocalTransport(createLocalStages({ store, stageNames: config.stageNames, env }));
}

/**
 * The configured store, not yet probed: call `init()` before use. The S3 client is loaded only
 * when it is configured, so the embedded default does not carry the AWS SDK in memory.
 */
export async function openStore(config: Config['store']): Promise<Store> {
  if (config.kind === 'fs') return new FsStore(config.dataDir, config.bucket, config.lockLeaseMs === undefined ? {} : { lockLeaseMs: config.lockLeaseMs });
  const { S3Store } = await import('./persistence/s3-store.ts');
  return new S3Store({
    bucket: config.bucket,
    endpoint: config.endpoint,
    region: config.region,
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
  });
}
