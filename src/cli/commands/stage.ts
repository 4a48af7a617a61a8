import type { Command } from 'commander';
import { loadConfig } from '../../config/config.ts';
import { FaveFailure, faveError, toFaveError } from '../../domain/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { openStore } from '../../app.ts';
import { importLocalStages } from '../../stages/load-local.ts';
import { fail, port } from '../shared.ts';

/** Where of-watchdog forwards in http mode when the image names no `upstream_url`. */
export const WATCHDOG_UPSTREAM_PORT = 8082;

/** The port of the watchdog's `upstream_url`, so the two cannot disagree; the watchdog's default otherwise. */
export function upstreamPort(env: NodeJS.ProcessEnv = process.env): number {
  const url = env.upstream_url;
  if (!url) return WATCHDOG_UPSTREAM_PORT;
  if (!URL.canParse(url)) throw new FaveFailure(faveError('BAD_CONFIG', `upstream_url is not a URL: ${url} (of-watchdog forwards there; e.g. http://127.0.0.1:8082)`));
  const parsed = new URL(url);
  return parsed.port ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80;
}

/**
 * `fave stage serve <name>`: one local stage as an OpenFaaS function's process, the `fprocess`
 * of the stage image (Dockerfile.stages). Artifacts go to the store of the configuration
 * (FAVE_STORE, ARTIFACT_*), which must be the one the orchestrator uses.
 */
export function registerStage(program: Command): void {
  const stage = program.command('stage').description('run one pipeline stage as an OpenFaaS function (the stage image)');
  stage
    .command('serve')
    .description("serve one stage (e.g. stage-librosa) for of-watchdog's http mode until SIGINT/SIGTERM")
    .argument('<name>', 'function name of the stage, e.g. stage-ffmpeg-0')
    .option('--port <port>', "port to listen on (default: the port of $upstream_url, else 8082, the watchdog's default)", port)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .action(async (name: string, opts: { port?: number; host: string }) => {
      try {
        const listenPort = opts.port ?? upstreamPort();
        const config = loadConfig();
        const logger = createLogger(config.logLevel);
        const store = await openStore(config.store);
        await store.init();
        // Imported here: the stages need the optional ffmpeg/onnx packages, which only the stage image carries.
        const { startStageServer } = await importLocalStages(() => import('../../stages/local/stage-server.ts'));
        const server = await startStageServer({ store, stageNames: config.stageNames, functionName: name, host: opts.host, port: listenPort });
        logger.info({ event: 'stage_listening', stage: name, url: server.url, store: store.kind });
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        await server.close();
        await store.close();
        logger.flush();
      } catch (err) {
        fail(toFaveError(err));
      }
    });
}
