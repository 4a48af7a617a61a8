import { describe, expect, it } from 'vitest';
import type { ClipState, FrameState } from '../src/domain/context.ts';
import { SettledClips } from '../src/orchestrator/settled-clips.ts';
import { clipState, pipelineContext } from './support/fixtures.ts';
import { until } from './support/until.ts';

const frame = (index: number, status: FrameState['status']): FrameState => ({ index, uri: `f${index}`, status, detections: [], note: null, records: [], error: null });
const detecting = (index: number) => clipState(index, { status: 'done', frames: [frame(0, 'pending')] });
const detected = (index: number) => clipState(index, { status: 'done', frames: [frame(0, 'done')] });

function watched(): { settled: SettledClips; prepared: ClipState[] } {
  const prepared: ClipState[] = [];
  return { settled: new SettledClips((clip) => prepared.push(clip)), prepared };
}

describe('SettledClips', () => {
  it('hands each clip over once, as the settled prefix of DETECT grows', async () => {
    const { settled, prepared } = watched();
    const first = [detected(0), detecting(1), detected(2)];
    settled.observe('DETECT', pipelineContext(first));
    await until(() => prepared.length === 1);
    expect(prepared).toEqual([first[0]]);

    // Clip 2 settled before clip 1: it waits for it, then both go, and clip 0 is not handed over again.
    const second = [first[0]!, detected(1), first[2]!, detecting(3)];
    settled.observe('DETECT', pipelineContext(second));
    await until(() => prepared.length === 3);
    settled.observe('DETECT', pipelineContext(second));
    await new Promise((resolve) => setImmediate(resolve));
    expect(prepared).toEqual([first[0], second[1], first[2]]);
  });

  it('leaves clips alone outside DETECT, where a done clip still has its frames ahead', async () => {
    const { settled, prepared } = watched();
    settled.observe('FANOUT', pipelineContext([clipState(0, { status: 'failed' }), detecting(1)]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(prepared).toEqual([]);
  });

  it('starts over in a new pass of DETECT (a redrive brings new clips)', async () => {
    const { settled, prepared } = watched();
    const before = [detected(0)];
    settled.observe('DETECT', pipelineContext(before));
    await until(() => prepared.length === 1);
    settled.observe('FAILED', pipelineContext(before));
    const after = [detected(0)];
    settled.observe('DETECT', pipelineContext(after));
    await until(() => prepared.length === 2);
    expect(prepared[1]).toBe(after[0]);
  });

  it('gives the event loop back between slices, and stops once closed', async () => {
    const prepared: ClipState[] = [];
    // Each clip takes a while to prepare, as serializing a large one does.
    const settled = new SettledClips((clip) => {
      const busyUntil = performance.now() + 0.1;
      while (performance.now() < busyUntil);
      prepared.push(clip);
    });
    const clips = Array.from({ length: 1_000 }, (_, i) => detected(i));
    settled.observe('DETECT', pipelineContext(clips));
    expect(prepared).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    const afterOneTurn = prepared.length;
    expect(afterOneTurn).toBeGreaterThan(0);
    expect(afterOneTurn).toBeLessThan(clips.length);
    settled.close();
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(prepared.length).toBe(afterOneTurn);
  });
});
