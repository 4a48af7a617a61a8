import type { Config } from '../config/config.ts';
import type { PipelineContext, TopLevelState } from '../domain/context.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import { STAGE_KEYS } from '../domain/stage.ts';
import type { StageTransport } from '../transport/transport.ts';
import type { PrewarmAction, Prewarmer } from './prewarm.ts';

/**
 * Gets the stages ahead ready while the earlier ones run: replicas through the gateway's system
 * API (`Prewarmer`, when there is one), or, for the local stages, the model and speech engine
 * loading in this process.
 */
export class StageWarmUp {
  /** Requests running here whose local stages have been asked to warm up. */
  private readonly warmed = new Set<string>();

  constructor(
    private readonly config: Config,
    private readonly transport: StageTransport,
    private readonly prewarm: Prewarmer | null,
  ) {}

  /** True when pre-warming has no scale call waiting or in flight (always, without pre-warming). */
  get idle(): boolean {
    return this.prewarm?.idle ?? true;
  }

  /** The pre-warm actions made for a request this process ran (for its timeline); empty without pre-warming. */
  actionsOf(requestId: string): PrewarmAction[] {
    return this.prewarm?.actionsOf(requestId) ?? [];
  }

  onAction(listener: (action: PrewarmAction) => void): void {
    this.prewarm?.onAction(listener);
  }

  /** Every stage answer teaches pre-warming the stage's latency and cold starts. */
  learn(record: InvocationRecord): void {
    this.prewarm?.learn(record, this.config.stageNames);
  }

  /** A request starts (or resumes) running here, in `top`. */
  started(requestId: string, top: TopLevelState, context: PipelineContext): void {
    this.prewarm?.track(requestId, top, context);
    if (top === 'FANOUT') this.warmLocalStages(requestId, context);
  }

  /** Every snapshot while it runs here. */
  observe(requestId: string, top: TopLevelState, context: PipelineContext): void {
    this.prewarm?.observe(requestId, top, context);
    if (top === 'FANOUT') this.warmLocalStages(requestId, context);
  }

  /** It stopped running here: its replicas are given back, and its fan-out widths learned. */
  stopped(requestId: string, context: PipelineContext): void {
    this.warmed.delete(requestId);
    if (this.prewarm) {
      this.prewarm.learnWidths(context);
      this.prewarm.release(requestId);
    }
  }

  async close(): Promise<void> {
    await this.prewarm?.close();
  }

  /**
   * In-process stages: the detector's model starts loading once the request has clips, while
   * their chains run; not earlier, so an input that is no video (ffmpeg-1 is the first to refuse
   * it) loads nothing. Once per request and process.
   */
  private warmLocalStages(requestId: string, context: PipelineContext): void {
    const transport = this.transport;
    if (!transport.warmUp || this.warmed.has(requestId) || context.clips.length === 0) return;
    const profile = this.config.profiles[context.settings.profile];
    if (profile?.prewarm === 'off') return;
    this.warmed.add(requestId);
    transport.warmUp(STAGE_KEYS.filter((k) => k !== 'detector' || context.settings.detector_enabled));
  }
}
