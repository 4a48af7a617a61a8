import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { StageResponseSchema } from '../src/transport/contract.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { parseS3Uri } from '../src/persistence/store.ts';
import { makeTarGz, readTarGz } from './support/archives.ts';
import { type StageOutput } from '../src/domain/stage.ts';
import { expectedClips, startTestGateway, type Detection, type ExpectedClip, type TestGateway, type TestGatewayOptions } from './support/test-gateway.ts';

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function tempStore(): Promise<FsStore> {
  const dir = await mkdtemp(join(tmpdir(), 'fave-test-gateway-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const store = new FsStore(dir, 'fave-artifacts');
  await store.init();
  return store;
}

async function start(options: Partial<TestGatewayOptions> = {}): Promise<{ gw: TestGateway; store: FsStore }> {
  const store = options.store instanceof FsStore ? options.store : await tempStore();
  const gw = await startTestGateway({ ...options, store });
  cleanup.push(() => gw.close());
  return { gw, store };
}

interface Fanout {
  clip_index: number;
  frame_index?: number;
  frame_uri?: string;
}

async function post(gw: TestGateway, name: string, body: string | object) {
  const res = await request(`${gw.url}/function/${name}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

async function callStage(gw: TestGateway, key: keyof TestGateway['script']['stageNames'], requestId: string, inputUri: string, fanout: Fanout | Record<string, never> = {}) {
  const stage = gw.script.stageNames[key];
  const res = await post(gw, stage, { request_id: requestId, stage, input_uri: inputUri, output_hint: null, config: { profile: 'default' }, fanout });
  expect(res.status).toBe(200);
  const parsed = StageResponseSchema.parse(JSON.parse(res.text));
  expect(parsed.status, parsed.message ?? '').toBe('success');
  return parsed;
}

async function putInput(store: FsStore, requestId: string): Promise<string> {
  const key = `requests/${requestId}/input/original.mp4`;
  await store.put({ bucket: store.bucket, key }, 'not really a video');
  return `s3://${store.bucket}/${key}`;
}

function parseHms(s: string): number {
  const [h, m, sec] = s.split(':').map(Number);
  return h! * 3600 + m! * 60 + sec!;
}

function canonical(raw: Record<string, unknown>): Detection {
  return {
    label: String(raw.label ?? raw.class ?? raw.name),
    confidence: Number(raw.confidence ?? raw.score),
    box: raw.box as Detection['box'],
  };
}

/** Drives every stage the way the orchestrator would and reads back what each clip learned. */
async function walkPipeline(gw: TestGateway, store: FsStore, requestId: string): Promise<ExpectedClip[]> {
  const last = (outputs: StageOutput[]) => outputs[outputs.length - 1]!.uri;
  const f0 = await callStage(gw, 'ffmpeg0', requestId, await putInput(store, requestId));
  const lib = await callStage(gw, 'librosa', requestId, last(f0.outputs));
  const segments = await readTarGz(await store.get(parseS3Uri(last(lib.outputs))));
  const lines = segments['timestamps.txt']!.toString().trim().split('\n');
  const clipsResp = await callStage(gw, 'ffmpeg1', requestId, last(lib.outputs));

  const result: ExpectedClip[] = [];
  for (const clipOut of clipsResp.outputs) {
    const index = clipOut.metadata.clip_index as number;
    expect(await store.head(parseS3Uri(clipOut.uri))).not.toBeNull();
    const [from, to] = lines[index]!.split(' ');
    const start_s = (clipOut.metadata.start_s as number | undefined) ?? parseHms(from!);
    const end_s = (clipOut.metadata.end_s as number | undefined) ?? parseHms(to!);

    const compressed = await callStage(gw, 'ffmpeg2', requestId, clipOut.uri, { clip_index: index });
    const speech = await callStage(gw, 'deepspeech', requestId, last(compressed.outputs), { clip_index: index });
    const out = speech.outputs[0]!;
    let text: string;
    if (typeof out.metadata.transcript === 'string') text = out.metadata.transcript;
    else if (out.uri.endsWith('.txt')) text = (await store.get(parseS3Uri(out.uri))).toString();
    else text = (await readTarGz(await store.get(parseS3Uri(out.uri))))['transcript.txt']!.toString();
    const dummy = /^Dummy transcript: (.*)$/.exec(text);

    const frames = await callStage(gw, 'ffmpeg3', requestId, last(speech.outputs), { clip_index: index });
    const expectedFrames: ExpectedClip['frames'] = [];
    let note: string | null = null;
    for (const frameOut of frames.outputs) {
      expect(frameOut.type).toBe('image');
      expect(frameOut.metadata.clip).toBe(index);
      const frameIndex = frameOut.metadata.frame_index as number;
      const det = await callStage(gw, 'detector', requestId, frameOut.uri, { clip_index: index, frame_index: frameIndex, frame_uri: frameOut.uri });
      const doc = JSON.parse((await store.get(parseS3Uri(det.outputs[0]!.uri))).toString()) as {
        detections?: Array<Record<string, unknown>>;
        note?: string;
      };
      if (!doc.detections) note = doc.note ?? null;
      expectedFrames.push({ frame_index: frameIndex, detections: (doc.detections ?? []).map(canonical) });
    }
    result.push({
      index,
      start_s,
      end_s,
      uri: clipOut.uri,
      transcript: dummy ? null : text,
      transcript_note: dummy ? dummy[1]! : null,
      frames: expectedFrames,
      detections_note: note,
    });
  }
  return result;
}

describe('test gateway: a full scripted pipeline', () => {
  it('writes real artifacts and agrees with expectedClips (defaults)', async () => {
    const { gw, store } = await start();
    const clips = await walkPipeline(gw, store, 'req-1');
    expect(clips).toEqual(expectedClips({ store }, 'req-1'));
    expect(clips).toHaveLength(3);
    expect(clips[0]!.transcript).toContain('red car');

    const keys = await store.list('fave-artifacts', 'requests/req-1/');
    expect(keys).toContain('requests/req-1/stage-ffmpeg-0/media.tar.gz');
    expect(keys).toContain('requests/req-1/stage-ffmpeg-1/clip_002.mp4');
    expect(keys).toContain('requests/req-1/stage-ffmpeg-3/clip_001/frame_001.jpg');
    expect(keys).toContain('requests/req-1/stage-object-detector/clip_002/frame_000.json');
    const media = await readTarGz(await store.get({ bucket: 'fave-artifacts', key: 'requests/req-1/stage-ffmpeg-0/media.tar.gz' }));
    expect(Object.keys(media).sort()).toEqual(['audio.wav', 'video.mp4']);
    const segments = await readTarGz(await store.get({ bucket: 'fave-artifacts', key: 'requests/req-1/stage-librosa/segments.tar.gz' }));
    expect(Object.keys(segments).sort()).toEqual(['timestamps.txt', 'video.mp4']);
    expect(segments['timestamps.txt']!.toString()).toBe('00:00:00 00:00:04\n00:00:04 00:00:08\n00:00:08 00:00:12\n');
    const compressed = await readTarGz(await store.get({ bucket: 'fave-artifacts', key: 'requests/req-1/stage-ffmpeg-2/clip_001.tar.gz' }));
    expect(Object.keys(compressed).sort()).toEqual(['audio.wav', 'video.mp4']);

    // Every alias of the detector's wire form is exercised by the defaults.
    const docs = await Promise.all(keys.filter((k) => k.includes('stage-object-detector')).map(async (key) => (await store.get({ bucket: 'fave-artifacts', key })).toString()));
    const all = docs.join('\n');
    for (const field of ['"label"', '"class"', '"name"', '"score"', '"confidence"']) expect(all).toContain(field);

    const stages = [...new Set(gw.calls.map((c) => c.stage))];
    expect(stages).toEqual(['stage-ffmpeg-0', 'stage-librosa', 'stage-ffmpeg-1', 'stage-ffmpeg-2', 'stage-deepspeech', 'stage-ffmpeg-3', 'stage-object-detector']);
    expect(gw.calls.every((c) => c.status === 200 && c.outcome === 'success' && c.request_id === 'req-1')).toBe(true);
    expect(gw.callsTo('detector').map((c) => [c.clip, c.frame])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [2, 0],
      [2, 1],
    ]);
  });

  it('honours clip times from timestamps only, txt transcripts and custom sizes', async () => {
    const options = {
      clips: 2,
      framesPerClip: 3,
      clipSeconds: 5,
      clipTimesIn: 'timestamps' as const,
      transcriptMode: 'txt' as const,
      transcript: (i: number) => `words of clip ${i}`,
    };
    const { gw, store } = await start(options);
    const f1 = await (async () => {
      const lib = await callStage(gw, 'librosa', 'r2', await putInput(store, 'r2'));
      return callStage(gw, 'ffmpeg1', 'r2', lib.outputs[0]!.uri);
    })();
    expect(f1.outputs.map((o) => o.metadata)).toEqual([{ clip_index: 0 }, { clip_index: 1 }]);
    const clips = await walkPipeline(gw, store, 'r2');
    expect(clips).toEqual(expectedClips({ ...options, store }, 'r2'));
    expect(clips[1]).toMatchObject({ start_s: 5, end_s: 10, transcript: 'words of clip 1' });
  });

  it('supports inline and dummy transcripts and the placeholder detector', async () => {
    const inline = await start({ transcriptMode: 'inline', clips: 1 });
    expect(await walkPipeline(inline.gw, inline.store, 'r3')).toEqual(expectedClips({ transcriptMode: 'inline', clips: 1 }, 'r3'));

    const options = { transcriptMode: 'dummy' as const, detectorMode: 'placeholder' as const, clips: 2 };
    const { gw, store } = await start(options);
    const clips = await walkPipeline(gw, store, 'r4');
    expect(clips).toEqual(expectedClips(options, 'r4'));
    expect(clips[0]).toMatchObject({ transcript: null, transcript_note: 'no model loaded' });
    expect(clips[0]!.frames.every((f) => f.detections.length === 0)).toBe(true);
    expect(clips[0]!.detections_note).toContain('not decoded');
  });

  it('honours custom stage names, bucket and detections', async () => {
    const store = await tempStore();
    const detections = (clip: number, frame: number): Detection[] => [{ label: 'dog', confidence: 0.5 + clip / 10 + frame / 100, box: [1, 2, 3, 4] }];
    const options = { store, bucket: 'other-bucket', stageNames: { ffmpeg2: 'my-compressor' }, detections, clips: 2 };
    const { gw } = await start(options);
    expect(gw.bucket).toBe('other-bucket');
    expect(gw.script.stageNames.ffmpeg2).toBe('my-compressor');
    const clips = await walkPipeline(gw, store, 'r5');
    expect(clips).toEqual(expectedClips(options, 'r5'));
    expect(await store.list('other-bucket', 'requests/r5/my-compressor/')).toEqual(['requests/r5/my-compressor/clip_000.tar.gz', 'requests/r5/my-compressor/clip_001.tar.gz']);
  });
});

describe('test gateway: input validation like the Python stages', () => {
  it('answers status error on bad input, with HTTP 200', async () => {
    const { gw, store } = await start();
    const input = await putInput(store, 'r6');
    const cases: Array<[string, string | object, RegExp]> = [
      ['stage-ffmpeg-0', 'not json', /invalid JSON/],
      ['stage-ffmpeg-0', { request_id: 'r6', stage: 'stage-ffmpeg-0' }, /input_uri/],
      ['stage-ffmpeg-0', { request_id: '../x', stage: 'stage-ffmpeg-0', input_uri: input }, /request_id/],
      ['stage-ffmpeg-0', { request_id: 'r6', stage: 'stage-ffmpeg-0', input_uri: 'http://not-s3' }, /s3:\/\//],
      ['stage-ffmpeg-0', { request_id: 'r6', stage: 'stage-ffmpeg-0', input_uri: 's3://fave-artifacts/requests/r6/missing.mp4' }, /input not found/],
      ['stage-ffmpeg-2', { request_id: 'r6', stage: 'stage-ffmpeg-2', input_uri: input }, /clip_index/],
      ['stage-object-detector', { request_id: 'r6', stage: 'stage-object-detector', input_uri: input, fanout: { clip_index: 0 } }, /frame_index/],
    ];
    for (const [stage, body, message] of cases) {
      const res = await post(gw, stage, body);
      expect(res.status).toBe(200);
      const json = JSON.parse(res.text) as Record<string, unknown>;
      expect(Object.keys(json).sort()).toEqual(['message', 'status']);
      expect(json.status).toBe('error');
      expect(json.message).toMatch(message);
    }
    expect(gw.calls.map((c) => c.outcome)).toEqual(Array(cases.length).fill('error'));
    expect(await store.list('fave-artifacts', 'requests/r6/stage-')).toEqual([]);
  });

  it('does not check inputs when requireInputs is false', async () => {
    const { gw } = await start({ requireInputs: false });
    const res = await callStage(gw, 'ffmpeg2', 'r7', 's3://fave-artifacts/nowhere.mp4', { clip_index: 1 });
    expect(res.outputs[0]!.uri).toBe('s3://fave-artifacts/requests/r7/stage-ffmpeg-2/clip_001.tar.gz');
  });

  it('answers the full wire shape with metrics and cold starts every Nth answer', async () => {
    const { gw } = await start({ requireInputs: false, coldStartEvery: 2 });
    const bodies = [];
    for (let i = 0; i < 4; i++) {
      const res = await post(gw, 'stage-ffmpeg-0', { request_id: 'r8', stage: 'stage-ffmpeg-0', input_uri: 's3://fave-artifacts/x.mp4' });
      bodies.push(JSON.parse(res.text) as Record<string, unknown> & { metrics: Record<string, unknown> });
    }
    expect(Object.keys(bodies[0]!).sort()).toEqual(['message', 'metrics', 'outputs', 'request_id', 'stage', 'status']);
    expect(bodies[0]).toMatchObject({ request_id: 'r8', stage: 'stage-ffmpeg-0', status: 'success', message: null });
    expect(Object.keys(bodies[0]!.metrics).sort()).toEqual(['cold_start', 'cost_unit', 'duration_ms', 'extra', 'memory_limit_mb']);
    expect(bodies.map((b) => b.metrics.cold_start)).toEqual([false, true, false, true]);
    expect(gw.calls.map((c) => c.cold_start)).toEqual([false, true, false, true]);
  });
});

describe('test gateway: scripted faults', () => {
  const ffmpeg2 = (gw: TestGateway, clip: number, requestId = 'rf') =>
    post(gw, 'stage-ffmpeg-2', { request_id: requestId, stage: 'stage-ffmpeg-2', input_uri: 's3://fave-artifacts/in.mp4', fanout: { clip_index: clip } });

  it('status faults apply to the first `times` matching calls only', async () => {
    const { gw } = await start({ requireInputs: false, faults: [{ stage: 'ffmpeg2', clip: 1, kind: 'status', status: 503, times: 2 }] });
    expect((await ffmpeg2(gw, 0)).status).toBe(200);
    const first = await ffmpeg2(gw, 1);
    expect(first.status).toBe(503);
    expect(first.headers['x-call-id']).toBeDefined();
    expect((await ffmpeg2(gw, 1)).status).toBe(503);
    expect((await ffmpeg2(gw, 1)).status).toBe(200);
    expect(gw.calls.map((c) => [c.clip, c.status, c.fault])).toEqual([
      [0, 200, null],
      [1, 503, 'status'],
      [1, 503, 'status'],
      [1, 200, null],
    ]);
  });

  it('a 404 fault reads like the gateway, and faults can be added and cleared at runtime', async () => {
    const { gw } = await start({ requireInputs: false });
    gw.addFault({ stage: 'stage-ffmpeg-2', kind: 'status', status: 404 });
    const res = await ffmpeg2(gw, 0);
    expect(res.status).toBe(404);
    expect(res.text).toBe('error finding function stage-ffmpeg-2: function not found');
    expect((await ffmpeg2(gw, 3)).status).toBe(404);
    gw.clearFaults();
    expect((await ffmpeg2(gw, 0)).status).toBe(200);
  });

  it('error, malformed and contract faults answer HTTP 200 with the scripted body', async () => {
    const { gw } = await start({
      requireInputs: false,
      faults: [
        { stage: 'ffmpeg2', clip: 0, kind: 'error', message: 'cannot parse input' },
        { stage: 'ffmpeg2', clip: 1, kind: 'malformed' },
        { stage: 'ffmpeg2', clip: 2, kind: 'contract' },
      ],
    });
    const error = await ffmpeg2(gw, 0);
    expect([error.status, JSON.parse(error.text)]).toEqual([200, { status: 'error', message: 'cannot parse input' }]);
    const malformed = await ffmpeg2(gw, 1);
    expect(malformed.status).toBe(200);
    expect(() => JSON.parse(malformed.text)).toThrow();
    const contract = await ffmpeg2(gw, 2);
    expect(contract.status).toBe(200);
    const body = JSON.parse(contract.text) as { status: string; outputs: Array<Record<string, unknown>> };
    expect(body.status).toBe('success');
    expect(body.outputs[0]).toBeDefined();
    expect(body.outputs[0]!.uri).toBeUndefined();
    expect(gw.calls.map((c) => c.outcome)).toEqual(['error', 'malformed', 'contract']);
  });

  it('frame faults match the frame only', async () => {
    const { gw } = await start({ requireInputs: false, faults: [{ stage: 'detector', clip: 1, frame: 1, kind: 'error' }] });
    const detect = (clip: number, frame: number) =>
      post(gw, 'stage-object-detector', {
        request_id: 'rf',
        stage: 'stage-object-detector',
        input_uri: 's3://fave-artifacts/f.jpg',
        fanout: { clip_index: clip, frame_index: frame },
      });
    const statuses = [];
    for (const [c, f] of [
      [1, 0],
      [0, 1],
      [1, 1],
    ] as const)
      statuses.push((JSON.parse((await detect(c, f)).text) as { status: string }).status);
    expect(statuses).toEqual(['success', 'success', 'error']);
  });

  it('hang never answers: the gateway timeout turns it into 504 and the call is recorded as hung', async () => {
    const { gw } = await start({ requireInputs: false, upstreamTimeoutMs: 150, faults: [{ stage: 'ffmpeg2', kind: 'hang', times: 1 }] });
    const res = await ffmpeg2(gw, 0);
    expect(res.status).toBe(504);
    await expect.poll(() => gw.calls[0]?.ended_at).not.toBeNull();
    expect(gw.calls[0]).toMatchObject({ status: null, outcome: 'hang', fault: 'hang' });
    expect(gw.inFlight).toBe(0);
    expect((await ffmpeg2(gw, 0)).status).toBe(200);
  });

  it('hang ends when the caller gives up', async () => {
    const { gw } = await start({ requireInputs: false, faults: [{ stage: 'ffmpeg2', kind: 'hang' }] });
    const controller = new AbortController();
    const pending = request(`${gw.url}/function/stage-ffmpeg-2`, {
      method: 'POST',
      body: JSON.stringify({ request_id: 'rf', stage: 'stage-ffmpeg-2', input_uri: 's3://fave-artifacts/x', fanout: { clip_index: 0 } }),
      signal: controller.signal,
    });
    await expect.poll(() => gw.inFlight).toBe(1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await expect.poll(() => gw.inFlight).toBe(0);
  });

  it('slow delays the answer by at least its ms', async () => {
    const { gw } = await start({ requireInputs: false, faults: [{ stage: 'ffmpeg2', kind: 'slow', ms: 120 }] });
    const res = await ffmpeg2(gw, 0);
    expect(res.status).toBe(200);
    const call = gw.calls[0]!;
    expect(call.ended_at! - call.started_at).toBeGreaterThanOrEqual(100);
    expect((JSON.parse(res.text) as { metrics: { duration_ms: number } }).metrics.duration_ms).toBeGreaterThanOrEqual(100);
  });

  it('reset drops the connection without an answer', async () => {
    const { gw } = await start({ requireInputs: false, faults: [{ stage: 'ffmpeg2', kind: 'reset', times: 1 }] });
    await expect(ffmpeg2(gw, 0)).rejects.toThrow();
    expect(gw.calls[0]).toMatchObject({ outcome: 'reset', status: null });
    expect((await ffmpeg2(gw, 0)).status).toBe(200);
  });

  it('faults can target one request', async () => {
    const { gw } = await start({ requireInputs: false, faults: [{ stage: 'ffmpeg2', requestId: 'bad', kind: 'status', status: 502 }] });
    expect((await ffmpeg2(gw, 0, 'good')).status).toBe(200);
    expect((await ffmpeg2(gw, 0, 'bad')).status).toBe(502);
  });
});

describe('test gateway: concurrency bookkeeping', () => {
  it('counts the peak of N parallel calls overall and per request', async () => {
    const { gw } = await start({ requireInputs: false, latencyMs: { ffmpeg2: 500 } });
    const call = (requestId: string, clip: number) =>
      post(gw, 'stage-ffmpeg-2', { request_id: requestId, stage: 'stage-ffmpeg-2', input_uri: 's3://fave-artifacts/x', fanout: { clip_index: clip } });
    const all = await Promise.all([call('a', 0), call('a', 1), call('a', 2), call('b', 0), call('b', 1)]);
    expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(gw.maxConcurrent).toBe(5);
    expect(gw.maxConcurrentByRequest('a')).toBe(3);
    expect(gw.maxConcurrentByRequest('b')).toBe(2);
    expect(gw.maxConcurrentByRequest('c')).toBe(0);
    expect(gw.inFlight).toBe(0);
    for (const c of gw.calls) expect(c.ended_at! - c.started_at).toBeGreaterThanOrEqual(450);

    gw.reset();
    expect([gw.calls.length, gw.maxConcurrent, gw.maxConcurrentByRequest('a')]).toEqual([0, 0, 0]);
    await call('a', 0);
    await call('a', 1);
    expect(gw.maxConcurrent).toBe(1);
    expect(gw.maxConcurrentByRequest('a')).toBe(1);
  });
});

describe('archives', () => {
  it('round-trips tar.gz members', async () => {
    const big = Buffer.alloc(200_000, 7);
    const archive = await makeTarGz({ 'a.txt': 'hello', 'dir/b.bin': big });
    expect(archive.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const files = await readTarGz(archive);
    expect(Object.keys(files).sort()).toEqual(['a.txt', 'dir/b.bin']);
    expect(files['a.txt']!.toString()).toBe('hello');
    expect(files['dir/b.bin']!.equals(big)).toBe(true);
  });
});
