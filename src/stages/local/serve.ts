import { startGatewayServer } from '../gateway/server.ts';
import type { FunctionHandler, GatewayServer, GatewayServerOptions } from '../gateway/types.ts';
import { closeLocalStages, createLocalStages, type LocalStages, type LocalStagesOptions } from './index.ts';
import { invokeLocalStage, refused } from './local-transport.ts';

export interface LocalGatewayOptions extends LocalStagesOptions, Pick<GatewayServerOptions, 'upstreamTimeoutMs' | 'basicAuth'> {
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
}

/** Wraps the local stages as gateway functions: the body is the stage request JSON. */
export function localFunctionHandlers(stages: LocalStages): Record<string, FunctionHandler> {
  const handlers: Record<string, FunctionHandler> = {};
  for (const name of Object.keys(stages)) {
    handlers[name] = async (call) => {
      let body: unknown;
      try {
        body = JSON.parse(call.body.toString('utf8'));
      } catch {
        return refused('request body is not JSON');
      }
      return invokeLocalStage(stages, name, body, call.signal);
    };
  }
  return handlers;
}

/**
 * Serves the local stages behind an OpenFaaS-compatible gateway (`POST /function/{name}`), so the
 * orchestrator's HTTP path can run against real stages on one machine.
 */
export async function startLocalGateway(options: LocalGatewayOptions): Promise<GatewayServer> {
  const stages = createLocalStages(options);
  const server = await startGatewayServer({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    functions: localFunctionHandlers(stages),
    ...(options.upstreamTimeoutMs !== undefined ? { upstreamTimeoutMs: options.upstreamTimeoutMs } : {}),
    ...(options.basicAuth ? { basicAuth: options.basicAuth } : {}),
  });
  return {
    url: server.url,
    port: server.port,
    close: async () => {
      await server.close();
      await closeLocalStages(stages);
    },
  };
}
