import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReport } from '../src/cli/commands/report.ts';
import { highlightTranscript } from '../src/ui/answer-html.ts';
import { buildAnswer, pickThumbnails, type AnswerContext } from '../src/ui/answer.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { routerCall } from './support/router.ts';

const XSS = '<img src=x onerror=alert(1)>';

type Clip = AnswerContext['clips'][number];

function clip(index: number, over: { transcript?: string | null; note?: string | null; labels?: Array<[string, number]>; frameNote?: string | null } = {}): Clip {
  return {
    index,
    start_s: index * 4,
    end_s: index * 4 + 4,
    status: 'done',
    progress: { transcript: over.transcript ?? null, transcript_note: over.note ?? null, frames: null },
    frames: [0, 1].map((f) => ({
      index: f,
      uri: `s3://b/requests/r/f${index}-${f}.jpg`,
      detections: (over.labels ?? []).map(([label, confidence]) => ({ label, confidence })),
      note: over.frameNote ?? null,
    })),
    error: null,
  };
}

function context(query: string | null, clips: Clip[]): AnswerContext {
  return { query, settings: { detector_enabled: true, min_confidence: 0.5 }, clips, error: null };
}

describe('the verdict', () => {
  it('counts the matches, best first', () => {
    const answer = buildAnswer(context('red car', [clip(0, { transcript: 'a red car' }), clip(1, { labels: [['car', 0.9]] }), clip(2, { transcript: 'a dog' })]), 'COMPLETED');
    expect(answer.verdict).toEqual({ kind: 'match', text: '2 of 3 clips match' });
    expect(answer.matches).toEqual([0, 1]);
    expect(answer.clips[0]!.highlight.sort()).toEqual(['car', 'red']);
    expect(answer.clips[2]!.match).toBeNull();
  });

  it('says honestly when nothing could match, with the stages’ reasons', () => {
    const answer = buildAnswer(
      context('cars', [clip(0, { note: 'no speech engine configured', frameNote: 'no detector model configured (set FAVE_DETECTOR_MODEL)' })]),
      'COMPLETED',
    );
    expect(answer.verdict.kind).toBe('cannot-match');
    expect(answer.verdict.text).toBe(
      'cannot match: no transcripts or detections were produced (no speech engine configured; no detector model configured (set FAVE_DETECTOR_MODEL); see docs/stages.md)',
    );
  });

  it('tells "no clip matches" apart from "cannot match"', () => {
    const answer = buildAnswer(context('bicycle', [clip(0, { transcript: 'a quiet street', labels: [['person', 0.8]] })]), 'COMPLETED');
    expect(answer.verdict).toEqual({ kind: 'no-match', text: 'no clip matches (looked for "bicycle" in 1 analysed clip)' });
  });

  it('says what is there when there is no query, and how far a running request is', () => {
    expect(buildAnswer(context(null, [clip(0), clip(1)]), 'COMPLETED').verdict).toEqual({ kind: 'no-query', text: '2 clips; no query was given, so none is ranked' });
    const running = buildAnswer(context('car', [clip(0, { transcript: 'car' }), { ...clip(1), status: 'pending' }]), 'RUNNING');
    expect(running.verdict).toEqual({ kind: 'running', text: 'running: 1 of 2 clips done; 1 matching so far' });
  });

  it('marks the words that matched, escaping everything', () => {
    expect(highlightTranscript(`Two cars ${XSS} and a car`, ['car'])).toBe('Two <mark>cars</mark> &lt;img src=x onerror=alert(1)&gt; and a <mark>car</mark>');
  });

  it('picks at most four thumbnails, frames with the wanted object first', () => {
    const frames = Array.from({ length: 20 }, (_, i) => ({ index: i, detections: i === 13 ? [{ label: 'car' }] : [] }));
    const picked = pickThumbnails(frames, ['car']);
    expect(picked).toHaveLength(4);
    expect(picked).toContain(13);
    expect(picked).toEqual([...picked].sort((a, b) => a - b));
    expect(pickThumbnails(frames.slice(0, 3), [])).toEqual([0, 1, 2]);
  });
});

describe('what stages answer is text on the page and in the report', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      gateway: {
        clips: 2,
        framesPerClip: 2,
        transcript: (c) => `clip ${c}: a car ${XSS}`,
        detections: (c) => [
          { label: `car${XSS}`, confidence: 0.9, box: [0, 0, 10, 10] },
          ...(c === 0 ? [{ label: 'car', confidence: 0.8, box: [0, 0, 5, 5] as [number, number, number, number] }] : []),
        ],
      },
    });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, query: 'car', request_id: 'xss' })).done;
    expect(outcome.status).toBe('COMPLETED');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('escapes transcripts and labels in the live page and the report', async () => {
    const page = await routerCall(h.app)('GET', '/ui/requests/xss');
    expect(page.status).toBe(200);
    const report = await renderReport(h.app.orchestrator, 'xss');
    for (const html of [String(page.body), report!.html]) {
      expect(html.includes('<img src=x')).toBe(false);
      expect(html).toContain('a <mark>car</mark> &lt;img src=x onerror=alert(1)&gt;');
      expect(html).toContain('<b>car&lt;img src=x onerror=alert(1)&gt;</b>');
      expect(html).toContain('2 of 2 clips match');
    }
  });

  it('gives a report clip players only when told where fave serve answers, and lets its CSP play from there alone', async () => {
    const without = await renderReport(h.app.orchestrator, 'xss');
    expect(without!.html).not.toContain('<video');
    expect(without!.html).toContain('media-src &#39;none&#39;');
    const served = await renderReport(h.app.orchestrator, 'xss', { baseUrl: 'http://127.0.0.1:8080' });
    expect(served!.html).toContain('<video class="player" controls preload="metadata" src="http://127.0.0.1:8080/requests/xss/artifacts/clip-0"');
    expect(served!.html).toContain('media-src http://127.0.0.1:8080;');
  });
});
