import { idealTime } from '../ideal.ts';
import { benchEnv, openApp, timeRequest } from '../workspace.ts';
import { openGateway, type BenchContext } from './context.ts';

export interface ScalingFigures {
  concurrent_scaling: number;
  requests: number;
  alone_total_ms: number;
  together_ms: number;
  /** Ideal time of one request alone (latency and per-request concurrency only). */
  ideal_alone_ms: number;
}

/** N requests one after another, each alone, against the same N submitted at once. */
export async function measureScaling(ctx: BenchContext): Promise<ScalingFigures> {
  const { requests, clips, framesPerClip, latencyMs } = ctx.sizes.scaling;
  const concurrency = ctx.sizes.concurrency;
  const gateway = await openGateway(ctx, { clips, framesPerClip, latencyMs });
  const app = await openApp(benchEnv({ gatewayUrl: gateway.url, dataDir: ctx.workspace.dataDir, concurrency }));
  try {
    await timeRequest(app, 'scaling-warm', ctx.workspace.videoUri);
    const aloneStart = performance.now();
    for (let i = 0; i < requests; i++) await timeRequest(app, `scaling-alone-${i}`, ctx.workspace.videoUri);
    const alone = performance.now() - aloneStart;
    ctx.log(`  ${requests} requests one at a time: ${alone.toFixed(0)} ms`);

    const togetherStart = performance.now();
    await Promise.all(Array.from({ length: requests }, (_, i) => timeRequest(app, `scaling-together-${i}`, ctx.workspace.videoUri)));
    const together = performance.now() - togetherStart;
    ctx.log(`  ${requests} requests at once: ${together.toFixed(0)} ms`);
    return {
      concurrent_scaling: alone / together,
      requests,
      alone_total_ms: alone,
      together_ms: together,
      ideal_alone_ms: idealTime({ clips, framesPerClip, latencyMs, concurrency }).total_ms,
    };
  } finally {
    await app.close();
    await gateway.stop();
  }
}
