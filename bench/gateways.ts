import type { GatewaySpec, GatewayStarted, GatewayUsage } from './gateway-process.ts';
import { spawnTs, type ChildPeer } from './ipc.ts';

export interface RemoteGateway {
  readonly url: string;
  /** Calls since the last reset, and the gateway process's CPU and event-loop use since the last call. */
  usage(): Promise<GatewayUsage>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** The child process that hosts the scripted gateways of every scenario. */
export class GatewayHost {
  private constructor(private readonly peer: ChildPeer) {}

  /**
   * Stages of a real deployment write their artifacts from many pods at once; a bigger libuv
   * pool lets this one process do the same instead of queuing every write behind four threads.
   */
  static start(threadpool = 16): GatewayHost {
    return new GatewayHost(spawnTs(new URL('./gateway-process.ts', import.meta.url), 'gateway process', { UV_THREADPOOL_SIZE: String(threadpool) }));
  }

  async open(spec: GatewaySpec): Promise<RemoteGateway> {
    const { url } = await this.peer.request<GatewayStarted>({ type: 'start', spec });
    const peer = this.peer;
    return {
      url,
      usage: () => peer.request<GatewayUsage>({ type: 'usage', url }),
      reset: async () => {
        await peer.request({ type: 'reset', url });
      },
      stop: async () => {
        await peer.request({ type: 'stop', url });
      },
    };
  }

  close(): Promise<void> {
    return this.peer.close();
  }
}
