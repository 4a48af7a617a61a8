import type { ClipState, PipelineContext, TopLevelState } from '../domain/context.ts';
import { clipSettled } from '../machine/plan.ts';

/** The longest the event loop is held by one slice of this work: nothing waits on it. */
const SLICE_MS = 1;
const CLIPS_BETWEEN_CLOCK_READS = 4;

/**
 * Hands each clip of a request to `prepare` once, as it settles during DETECT, in short slices
 * while the event loop has time: what the end of the request needs of a clip that no longer
 * changes (its bytes in state.json, its part of the answer) is then ready when the last frame
 * is in, instead of being made for every clip on the way to the answer.
 *
 * Frames are detected in clip order, so the settled clips are a prefix that grows; one that
 * settles out of order waits for the clips before it. Everything `prepare` makes is a cache:
 * a clip it did not get to is made where it is needed, as before.
 */
export class SettledClips {
  /** Clips before this one were queued in this pass of DETECT. */
  private upTo = 0;
  private top: TopLevelState | null = null;
  private queue: ClipState[] = [];
  private next = 0;
  private closed = false;

  constructor(private readonly prepare: (clip: ClipState) => void) {}

  observe(top: TopLevelState, context: PipelineContext): void {
    if (this.closed) return;
    // A new pass (a redrive) has new clip objects: start over.
    if (top !== this.top) this.upTo = 0;
    this.top = top;
    if (top !== 'DETECT') return;
    const from = this.upTo;
    const { clips } = context;
    let upTo = from;
    while (upTo < clips.length && clipSettled(clips[upTo]!)) upTo++;
    if (upTo === from) return;
    this.upTo = upTo;
    const idle = this.next >= this.queue.length;
    if (idle) {
      this.queue = [];
      this.next = 0;
    }
    for (let i = from; i < upTo; i++) this.queue.push(clips[i]!);
    if (idle) setImmediate(() => this.slice());
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.next = 0;
  }

  private slice(): void {
    if (this.closed) return;
    const started = performance.now();
    do {
      const end = Math.min(this.queue.length, this.next + CLIPS_BETWEEN_CLOCK_READS);
      for (let i = this.next; i < end; i++) this.prepare(this.queue[i]!);
      this.next = end;
    } while (this.next < this.queue.length && performance.now() - started < SLICE_MS);
    if (this.next < this.queue.length) setImmediate(() => this.slice());
  }
}
