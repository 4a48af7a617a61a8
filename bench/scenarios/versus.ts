import { requestKeys } from '../../src/persistence/store.ts';
import { runBaseline, type BaselineResult } from '../baseline.ts';
import { idealTime, invocations } from '../ideal.ts';
import { BUCKET, benchEnv, openApp, timeRequest } from '../workspace.ts';
import { openGateway, type BenchContext } from './context.ts';

export interface VersusFigures {
  baseline_speedup: number;
  baseline_write_amplification: number;
  invocations: number;
  baseline: BaselineResult;
  ours: { wall_ms: number; state_writes: number; state_bytes_written: number; final_state_bytes: number; write_amplification: number };
  ideal_ms: number;
  baseline_clips_per_s: number;
  ours_clips_per_s: number;
}

/** The replaced sequential design and ours, on the same (smaller) workload and gateway. */
export async function measureVersus(ctx: BenchContext): Promise<VersusFigures> {
  const { clips, framesPerClip, latencyMs } = ctx.sizes.versus;
  const concurrency = ctx.sizes.concurrency;
  const gateway = await openGateway(ctx, { clips, framesPerClip, latencyMs });
  const app = await openApp(benchEnv({ gatewayUrl: gateway.url, dataDir: ctx.workspace.dataDir, concurrency }));
  try {
    const expected = invocations({ clips, framesPerClip });
    // The baseline first: a cold start is lost in its many seconds, not in ours' one or two.
    const baseline = await runBaseline({
      gatewayUrl: gateway.url,
      store: ctx.workspace.store,
      bucket: BUCKET,
      requestId: 'versus-baseline',
      videoUri: ctx.workspace.videoUri,
    });
    ctx.log(`  baseline: ${baseline.invocations} invocations in ${baseline.wall_ms.toFixed(0)} ms`);
    // Its state file is not one this orchestrator can read or finish: left in the store, every
    // later orphan sweep of a full run (the sweep scenario) would look at it again.
    await removeRequest(ctx, 'versus-baseline');
    let oursWrites = 0;
    let oursBytes = 0;
    app.orchestrator.events.on('state_write', (requestId, bytes) => {
      if (requestId !== 'versus-ours') return;
      oursWrites++;
      oursBytes += bytes;
    });
    const ours = await timeRequest(app, 'versus-ours', ctx.workspace.videoUri);
    const oursFinal = (await ctx.workspace.store.head({ bucket: BUCKET, key: requestKeys.state('versus-ours') }))?.size ?? 0;
    ctx.log(`  ours: ${ours.invocations} invocations in ${ours.wall_ms.toFixed(0)} ms`);

    if (baseline.invocations !== expected || ours.invocations !== expected) {
      throw new Error(`versus: expected ${expected} invocations, baseline made ${baseline.invocations}, ours ${ours.invocations}`);
    }
    return {
      baseline_speedup: baseline.wall_ms / ours.wall_ms,
      baseline_write_amplification: baseline.state_bytes_written / baseline.final_state_bytes,
      invocations: expected,
      baseline,
      ours: { wall_ms: ours.wall_ms, state_writes: oursWrites, state_bytes_written: oursBytes, final_state_bytes: oursFinal, write_amplification: oursBytes / oursFinal },
      ideal_ms: idealTime({ clips, framesPerClip, latencyMs, concurrency }).total_ms,
      baseline_clips_per_s: (clips * 1000) / baseline.wall_ms,
      ours_clips_per_s: (clips * 1000) / ours.wall_ms,
    };
  } finally {
    await app.close();
    await gateway.stop();
  }
}

async function removeRequest(ctx: BenchContext, requestId: string): Promise<void> {
  const { store } = ctx.workspace;
  for (const key of await store.list(BUCKET, `requests/${requestId}/`)) await store.delete({ bucket: BUCKET, key });
}
