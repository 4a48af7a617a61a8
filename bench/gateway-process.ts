import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { FsStore } from '../src/persistence/fs-store.ts';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from '../test/support/test-gateway.ts';
import { serveIpc, type BenchMessage } from './ipc.ts';
import { UnsyncedFsStore } from './stage-store.ts';

/**
 * The scripted gateway in a process of its own, so its CPU (HTTP, tar.gz, artifact writes)
 * runs on the other core and its memory is not counted as the orchestrator's.
 */

export type GatewaySpec = Omit<TestGatewayOptions, 'store' | 'faults'> & {
  dataDir: string;
  bucket: string;
  /** fsync every artifact as the project's FsStore does (true), or write them plainly (false). */
  syncArtifacts: boolean;
};

export interface GatewayStarted {
  url: string;
}

export interface GatewayUsage {
  /** Calls answered by the gateway at `url` since it started. */
  calls: number;
  max_concurrent: number;
  /** This process's CPU time and event-loop utilization since the previous `usage` message. */
  cpu_ms: number;
  elu: number;
}

const gateways = new Map<string, { gateway: TestGateway; store: FsStore }>();
let lastCpu = process.cpuUsage();
let lastElu: EventLoopUtilization = performance.eventLoopUtilization();

async function handle(message: BenchMessage): Promise<unknown> {
  switch (message.type) {
    case 'start': {
      const spec = message.spec as GatewaySpec;
      const { dataDir, bucket, syncArtifacts, ...options } = spec;
      const store = syncArtifacts ? new FsStore(dataDir, bucket) : new UnsyncedFsStore(dataDir, bucket);
      await store.init();
      const gateway = await startTestGateway({ ...options, store });
      gateways.set(gateway.url, { gateway, store });
      return { url: gateway.url } satisfies GatewayStarted;
    }
    case 'usage': {
      const entry = gateways.get(String(message.url));
      const cpu = process.cpuUsage(lastCpu);
      const elu = performance.eventLoopUtilization(lastElu);
      lastCpu = process.cpuUsage();
      lastElu = performance.eventLoopUtilization();
      return {
        calls: entry?.gateway.calls.length ?? 0,
        max_concurrent: entry?.gateway.maxConcurrent ?? 0,
        cpu_ms: (cpu.user + cpu.system) / 1000,
        elu: elu.utilization,
      } satisfies GatewayUsage;
    }
    case 'stop': {
      const entry = gateways.get(String(message.url));
      gateways.delete(String(message.url));
      await entry?.gateway.close();
      await entry?.store.close();
      return null;
    }
    default:
      throw new Error(`unknown message ${message.type}`);
  }
}

serveIpc(handle, async () => {
  await Promise.all(
    [...gateways.values()].map(async ({ gateway, store }) => {
      await gateway.close();
      await store.close();
    }),
  );
});
