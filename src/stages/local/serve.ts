import { startGatewayServer } from '../gateway/server.ts';
import type { FunctionHandler, GatewayServer, GatewayServerOptions } from '../gateway/types.ts';
import { closeLocalStages, createLocalStages, type LocalStages, type LocalStagesOptions } from './index.ts';
import { invokeLocalStage, refused } from './local-transport.ts';
import type { StageHttpResponse } from '../../transport/transport.ts';

export interface LocalGatewayOptions extends LocalStagesOptions, Pick<GatewayServerOptions, 'upstreamTimeoutMs' | 'basicAuth' | 'systemAuth' | 'replicas'> {
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
      const response = await invokeLocalStage(stages, name, body, call.signal);
      return call.coldStart ? markedCold(response) : response;
    };
  }
  return handlers;
}

/** The stage's answer with `metrics.cold_start: true`: it waited for its replica to start. */
function markedCold(response: StageHttpResponse): StageHttpResponse {
  if (response.status !== 200) return response;
  try {
    const body: unknown = JSON.parse(response.body);
    if (typeof body !== 'object' || body === null) return response;
    const metrics = (body as { metrics?: unknown }).metrics;
    if (typeof metrics !== 'object' || metrics === null) return response;
    return { ...response, body: JSON.stringify({ ...body, metrics: { ...metrics, cold_start: true } }) };
  } catch {
    return response;
  }
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
    ...(options.systemAuth !== undefined ? { systemAuth: options.systemAuth } : {}),
    ...(options.replicas ? { replicas: options.replicas } : {}),
  });
  return {
    url: server.url,
    port: server.port,
    replicas: server.replicas ?? null,
    close: async () => {
      await server.close();
      await closeLocalStages(stages);
    },
  };
}
