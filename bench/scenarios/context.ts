import type { GatewayHost, RemoteGateway } from '../gateways.ts';
import type { Sizes } from '../sizes.ts';
import { BUCKET, type Workspace } from '../workspace.ts';

export interface BenchContext {
  sizes: Sizes;
  workspace: Workspace;
  gateways: GatewayHost;
  /** When set, the orchestrator worker of the fan-out run writes a V8 CPU profile there. */
  cpuProfDir: string | null;
  /** Whether the scripted stages fsync their artifacts (see UnsyncedFsStore). */
  syncArtifacts: boolean;
  /**
   * Whether the per-clip and per-frame stages write artifacts. Off by default: the scripted
   * gateway then answers inline and costs little more than its latency, so the figures measure
   * the orchestrator rather than one process standing in for a whole cluster of stage pods.
   */
  writeArtifacts: boolean;
  /** Progress lines, on stderr. */
  log(line: string): void;
}

/** A scripted gateway with every stage at a fixed latency, writing into the bench's store. */
export function openGateway(ctx: BenchContext, script: { clips: number; framesPerClip: number; latencyMs: number }): Promise<RemoteGateway> {
  return ctx.gateways.open({
    dataDir: ctx.workspace.dataDir,
    bucket: BUCKET,
    syncArtifacts: ctx.syncArtifacts,
    artifacts: ctx.writeArtifacts ? 'write' : 'none',
    ...script,
  });
}

export function cpuMsSince(before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}
