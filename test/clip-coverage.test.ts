import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('clips the frame extractor returns no frame for', () => {
  it("complete, say so in objects_note, and are counted in the answer's metrics", async () => {
    h = await startHarness({ gateway: { clips: 4, framesPerClip: 2, clipsWithoutFrames: [1, 3] } });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'short-clips' })).done;
    expect(outcome.status).toBe('COMPLETED');
    const { clips, metrics } = outcome.result;
    expect(clips.map((c) => [c.status, c.frames])).toEqual([
      ['done', 2],
      ['done', 0],
      ['done', 2],
      ['done', 0],
    ]);
    for (const index of [1, 3]) {
      expect(clips[index]!.objects).toEqual([]);
      expect(clips[index]!.objects_note).toMatch(/^no frame: .*\(4 s long\)/);
    }
    expect(clips[0]!.objects_note).toBeNull();
    expect(metrics.clips_without_frames).toBe(2);
    expect((await h.readFinal('short-clips')).metrics.clips_without_frames).toBe(2);
    expect(
      h.gateway
        .callsTo('detector')
        .map((c) => c.clip)
        .sort(),
    ).toEqual([0, 0, 2, 2]);
  });
});
