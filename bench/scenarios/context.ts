import type { GatewayHost, RemoteGateway } from '../gateways.ts';
import type { Sizes } from '../sizes.ts';
import { BUCKET, type Workspace } from '../workspace.ts';

export interface BenchContext {
  sizes: Sizes;
  workspace: Workspace;
  gateways: GatewayHost;
  /** Progress lines, on stderr. */
  log(line: string): void;
}

/** A scripted gateway with every stage at a fixed latency, writing into the bench's store. */
export function openGateway(ctx: BenchContext, script: { clips: number; framesPerClip: number; latencyMs: number }): Promise<RemoteGateway> {
  return ctx.gateways.open({ dataDir: ctx.workspace.dataDir, bucket: BUCKET, ...script });
}

export function cpuMsSince(before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}
