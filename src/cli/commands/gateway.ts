import type { Command } from 'commander';
import { loadConfig } from '../../config/config.ts';
import { toFaveError } from '../../domain/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { openStore } from '../../config/open-store.ts';
import { importLocalStages } from '../../stages/load-local.ts';
import { fail, port } from '../shared.ts';

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
    .action(async (opts: { port: number; host: string }) => {
      try {
        const config = loadConfig();
        const logger = createLogger(config.logLevel);
        const store = await openStore(config.store);
        await store.init();
        // Imported here, not at the top: the local stages need the optional ffmpeg/onnx packages,
        // which an image built with `--omit=optional` does not have, and every other command must
        // start without them.
        const { startLocalGateway } = await importLocalStages(() => import('../../stages/local/serve.ts'));
        const gateway = await startLocalGateway({ store, stageNames: config.stageNames, host: opts.host, port: opts.port });
        logger.info({ event: 'gateway_listening', url: gateway.url, store: store.kind });
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
