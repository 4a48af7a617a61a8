import type { GatewaySpec, GatewayStarted, GatewayUsage } from './gateway-process.ts';
import { spawnScript, type ChildPeer } from './ipc.ts';

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
   * `threadpool` sizes the gateway process's libuv pool. Stages of a real deployment write
   * their artifacts from many pods at once; with fsynced artifacts a bigger pool lets this one
   * process do the same instead of queuing every fsync behind the default four threads.
   */
  static start(options: { threadpool?: number; nodeArgs?: string[] } = {}): GatewayHost {
    const env: NodeJS.ProcessEnv = options.threadpool ? { UV_THREADPOOL_SIZE: String(options.threadpool) } : {};
    return new GatewayHost(spawnScript(new URL('./gateway-process.ts', import.meta.url), 'gateway process', env, options.nodeArgs ?? []));
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
