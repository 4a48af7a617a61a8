import type { Command } from 'commander';
import { loadConfig } from '../../config/config.ts';
import { toFaveError } from '../../domain/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { openStore } from '../../app.ts';
import { importLocalStages } from '../../stages/load-local.ts';
import { fail, port } from '../shared.ts';
import { InvalidArgumentError } from 'commander';
import type { ReplicaModelOptions } from '../../stages/gateway/replica-model.ts';

interface GatewayFlags {
  port: number;
  host: string;
  coldStartMs?: number;
  maxInflight?: number;
  initialReplicas?: number;
  minReplicas?: number;
  maxReplicas?: number;
  idleMs?: number;
}

function count(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > 86_400_000) throw new InvalidArgumentError(`must be an integer of at least ${min}`);
    return n;
  };
}

/** The replica model is on when any of its flags is given; the others keep their defaults. */
function replicaFlags(opts: GatewayFlags): Partial<ReplicaModelOptions> | null {
  const given = {
    ...(opts.coldStartMs !== undefined ? { coldStartMs: opts.coldStartMs } : {}),
    ...(opts.maxInflight !== undefined ? { maxInflight: opts.maxInflight } : {}),
    ...(opts.initialReplicas !== undefined ? { initialReplicas: opts.initialReplicas } : {}),
    ...(opts.minReplicas !== undefined ? { minReplicas: opts.minReplicas } : {}),
    ...(opts.maxReplicas !== undefined ? { maxReplicas: opts.maxReplicas } : {}),
    ...(opts.idleMs !== undefined ? { idleMs: opts.idleMs } : {}),
  };
  return Object.keys(given).length > 0 ? given : null;
}

/**
 * `fave gateway`: the local stages behind an OpenFaaS-compatible gateway (`/function/{name}`,
 * `/async-function/{name}`), so the orchestrator can drive them over HTTP exactly as in a cluster.
 */
export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description('serve the local stages as an OpenFaaS-compatible gateway until SIGINT/SIGTERM')
    .option('--port <port>', 'port to listen on (0 picks a free one)', port, 8081)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--cold-start-ms <ms>', 'replica model: a new replica is ready after this long (turns the model on)', count(0))
    .option('--max-inflight <n>', 'replica model: calls one replica serves at once', count(1))
    .option('--initial-replicas <n>', 'replica model: ready replicas per function at start', count(0))
    .option('--min-replicas <n>', 'replica model: idle replicas are never removed below this', count(0))
    .option('--max-replicas <n>', 'replica model: replicas per function at most', count(1))
    .option('--idle-ms <ms>', 'replica model: an idle replica above the minimum goes after this long (0: never)', count(0))
    .action(async (opts: GatewayFlags) => {
      try {
        const config = loadConfig();
        const logger = createLogger(config.logLevel);
        const store = await openStore(config.store);
        await store.init();
        // Imported here, not at the top: the local stages need the optional ffmpeg/onnx packages,
        // which an image built with `--omit=optional` does not have, and every other command must
        // start without them.
        const { startLocalGateway } = await importLocalStages(() => import('../../stages/local/serve.ts'));
        const replicas = replicaFlags(opts);
        const gateway = await startLocalGateway({
          store,
          stageNames: config.stageNames,
          host: opts.host,
          port: opts.port,
          // /system/* asks for the gateway's admin credentials, read as the orchestrator reads them.
          systemAuth: config.systemAuth,
          ...(replicas ? { replicas } : {}),
        });
        logger.info({ event: 'gateway_listening', url: gateway.url, store: store.kind, replica_model: replicas ?? 'off', system_auth: config.systemAuth !== null });
        // The line a script waits for: where to point GATEWAY_URL.
        process.stdout.write(`GATEWAY_URL=${gateway.url}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        await gateway.close();
        await store.close();
        logger.flush();
      } catch (err) {
        fail(toFaveError(err));
      }
    });
}
