import type { GatewaySpec, GatewayStarted, GatewayUsage } from './gateway-process.ts';
import { spawnTs, type ChildPeer } from './ipc.ts';

export interface RemoteGateway {
  readonly url: string;
  /** Calls answered so far, and the gateway process's CPU and event-loop use since the last `usage()`. */
  usage(): Promise<GatewayUsage>;
  stop(): Promise<void>;
}

/** The child process that hosts the scripted gateways of every scenario. */
export class GatewayHost {
  private constructor(private readonly peer: ChildPeer) {}

  /**
   * Stages of a real deployment write their artifacts from many pods at once; a bigger libuv
   * pool lets this one process do the same instead of queuing every write behind four threads.
   */
  static start(options: { threadpool?: number; nodeArgs?: string[] } = {}): GatewayHost {
    const env = { UV_THREADPOOL_SIZE: String(options.threadpool ?? 16) };
    return new GatewayHost(spawnTs(new URL('./gateway-process.ts', import.meta.url), 'gateway process', env, options.nodeArgs ?? []));
  }

  async open(spec: GatewaySpec): Promise<RemoteGateway> {
    const { url } = await this.peer.request<GatewayStarted>({ type: 'start', spec });
    const peer = this.peer;
    return {
      url,
      usage: () => peer.request<GatewayUsage>({ type: 'usage', url }),
      stop: async () => {
        await peer.request({ type: 'stop', url });
      },
    };
  }

  close(): Promise<void> {
    return this.peer.close();
  }
}
