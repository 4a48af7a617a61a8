import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StageResponseSchema, type StageRequest } from '../src/transport/contract.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { parseS3Uri } from '../src/persistence/store.ts';
import { unpackTarGz } from '../src/stages/local/archive.ts';
import { createLocalStages, type LocalStageResponse, type LocalStages } from '../src/stages/local/index.ts';
import { LocalTransport } from '../src/stages/local/local-transport.ts';
import { probeMedia, type MediaInfo } from '../src/stages/local/probe.ts';
import { BlockEnergies, formatTimestamp, frameMeanSquares, nonSilentIntervals, parseTimestampsFile, segmentAudio, shapeClips } from '../src/stages/local/segmentation.ts';
import { speechArgv, splitCommandLine } from '../src/stages/local/speech.ts';
import { startLocalGateway } from '../src/stages/local/serve.ts';
import { makeNotAVideo, makeSilentVideo, makeToneBurstVideo } from './support/media.ts';
import { until } from './support/until.ts';
import { type Fanout } from '../src/domain/stage.ts';

const BUCKET = 'fave-artifacts';
const BURSTS: Array<[number, number]> = [
  [1, 2.5],
  [5, 6],
  [8.5, 10.5],
];
const TONE_DURATION = 12;
const SILENT_DURATION = 4;
const FPS = 2;

let dir: string;
let store: FsStore;
let stages: LocalStages;

/**
 * Local stages whose per-call temp dirs go to `{dir}/work`, so the test can see they are all
 * removed. Clips follow the tone bursts only here, however short (the shaping of clips has its own test).
 */
function makeStages(options: Omit<Parameters<typeof createLocalStages>[0], 'store' | 'workRoot'> & { store?: FsStore } = {}): LocalStages {
  return createLocalStages({
    speechCommand: null,
    detectorModel: null,
    segmentation: { silentClips: false, minClipS: 0.1 },
    ...options,
    store: options.store ?? store,
    workRoot: join(dir, 'work'),
  });
}

function request(stage: string, requestId: string, inputUri: string, fanout: Fanout = {}): StageRequest {
  return { request_id: requestId, stage, input_uri: inputUri, output_hint: null, config: { profile: 'default' }, fanout };
}

/** Calls a stage and checks its answer against the wire contract every time. */
async function call(stage: string, requestId: string, inputUri: string, fanout: Fanout = {}, on: LocalStages = stages): Promise<LocalStageResponse> {
  const response = await on[stage]!(request(stage, requestId, inputUri, fanout), AbortSignal.timeout(60_000));
  expect(StageResponseSchema.safeParse(response).success).toBe(true);
  expect(response.metrics).toMatchObject({ memory_limit_mb: null, cold_start: false, cost_unit: null, extra: {} });
  expect(response.metrics.duration_ms).toBeGreaterThanOrEqual(0);
  expect(response.request_id).toBe(requestId);
  expect(response.stage).toBe(stage);
  return response;
}

function expectSuccess(response: LocalStageResponse): void {
  expect(response.message).toBeNull();
  expect(response.status).toBe('success');
}

async function putInput(requestId: string, file: string, ext: string): Promise<string> {
  const key = `requests/${requestId}/input/original${ext}`;
  await store.put({ bucket: BUCKET, key }, await readFile(file));
  return `s3://${BUCKET}/${key}`;
}

let unpackCount = 0;
async function readArchive(uri: string): Promise<Map<string, string>> {
  const archive = join(dir, `archive-${unpackCount}.tar.gz`);
  const target = join(dir, `unpacked-${unpackCount++}`);
  await writeFile(archive, await store.get(parseS3Uri(uri)));
  const names = await unpackTarGz(archive, target);
  return new Map(names.map((n) => [n, join(target, n)]));
}

async function probeUri(uri: string): Promise<MediaInfo> {
  return probeMedia(store.path(parseS3Uri(uri)), AbortSignal.timeout(30_000));
}

async function probeFile(path: string | undefined): Promise<MediaInfo> {
  expect(path).toBeDefined();
  return probeMedia(path!, AbortSignal.timeout(30_000));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-local-stages-'));
  store = new FsStore(join(dir, 'data'), BUCKET);
  await store.init();
  await mkdir(join(dir, 'work'));
  stages = makeStages({ frameFps: FPS });
  await Promise.all([
    makeToneBurstVideo(join(dir, 'tone.mp4'), { bursts: BURSTS, duration: TONE_DURATION }),
    makeSilentVideo(join(dir, 'silent.mp4'), { duration: SILENT_DURATION }),
    makeNotAVideo(join(dir, 'not-a-video.mp4')),
  ]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the local pipeline on a video with three tone bursts', () => {
  const id = 'tone-1';
  let archive0: string;
  let archive1: string;
  let clips: LocalStageResponse['outputs'];
  let compressed: string;
  let transcriptArchive: string;

  it('stage-ffmpeg-0 splits the input into video.mp4 and audio.wav', async () => {
    const response = await call('stage-ffmpeg-0', id, await putInput(id, join(dir, 'tone.mp4'), '.mp4'));
    expectSuccess(response);
    expect(response.outputs).toHaveLength(1);
    archive0 = response.outputs[0]!.uri;
    expect(archive0).toBe(`s3://${BUCKET}/requests/${id}/stage-ffmpeg-0/media.tar.gz`);
    expect(response.outputs[0]).toMatchObject({ type: 'archive', metadata: { has_audio: true } });
    const members = await readArchive(archive0);
    expect([...members.keys()].sort()).toEqual(['audio.wav', 'video.mp4']);
    const video = await probeFile(members.get('video.mp4'));
    expect(video.video?.codec).toBe('h264');
    expect(video.duration).toBeCloseTo(TONE_DURATION, 0);
    const audio = await probeFile(members.get('audio.wav'));
    expect(audio.video).toBeNull();
    expect(audio.audio).toMatchObject({ codec: 'pcm_s16le', channels: 1 });
  });

  it('stage-librosa brackets each tone burst within 0.25 s, in HH:MM:SS.mmm lines', async () => {
    const response = await call('stage-librosa', id, archive0);
    expectSuccess(response);
    archive1 = response.outputs[0]!.uri;
    expect(archive1.startsWith(`s3://${BUCKET}/requests/${id}/stage-librosa/`)).toBe(true);
    const members = await readArchive(archive1);
    expect([...members.keys()].sort()).toEqual(['timestamps.txt', 'video.mp4']);
    const text = await readFile(members.get('timestamps.txt')!, 'utf8');
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(BURSTS.length);
    for (const line of lines) expect(line).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} \d{2}:\d{2}:\d{2}\.\d{3}$/);
    const parsed = parseTimestampsFile(text);
    if ('error' in parsed) throw new Error(parsed.error);
    parsed.clips.forEach((clip, i) => {
      const [start, end] = BURSTS[i]!;
      expect(Math.abs(clip.start_s - start)).toBeLessThanOrEqual(0.25);
      expect(Math.abs(clip.end_s - end)).toBeLessThanOrEqual(0.25);
    });
  });

  it('stage-ffmpeg-1 cuts one clip per line, accurate to 0.1 s', async () => {
    const response = await call('stage-ffmpeg-1', id, archive1);
    expectSuccess(response);
    clips = response.outputs;
    expect(clips).toHaveLength(BURSTS.length);
    for (const [i, clip] of clips.entries()) {
      expect(clip.type).toBe('video');
      expect(clip.uri).toBe(`s3://${BUCKET}/requests/${id}/stage-ffmpeg-1/clip_00${i}.mp4`);
      expect(clip.metadata.clip_index).toBe(i);
      const start = clip.metadata.start_s as number;
      const end = clip.metadata.end_s as number;
      expect(Math.abs(start - BURSTS[i]![0])).toBeLessThanOrEqual(0.25);
      const info = await probeUri(clip.uri);
      expect(info.video).not.toBeNull();
      expect(info.audio).not.toBeNull();
      // 10 fps source: the picture can only stop on a 0.1 s boundary.
      expect(Math.abs(info.duration! - (end - start))).toBeLessThanOrEqual(0.1 + 1e-6);
    }
  });

  it('stage-ffmpeg-2 compresses the clip named by fanout.clip_index and adds 16 kHz mono audio', async () => {
    const response = await call('stage-ffmpeg-2', id, clips[1]!.uri, { clip_index: 1 });
    expectSuccess(response);
    compressed = response.outputs[0]!.uri;
    expect(compressed).toBe(`s3://${BUCKET}/requests/${id}/stage-ffmpeg-2/clip_001.tar.gz`);
    const members = await readArchive(compressed);
    expect([...members.keys()].sort()).toEqual(['audio.wav', 'clip.mp4']);
    expect((await probeFile(members.get('clip.mp4'))).video?.codec).toBe('h264');
    expect((await probeFile(members.get('audio.wav'))).audio).toMatchObject({ codec: 'pcm_s16le', sampleRate: 16000, channels: 1 });
  });

  it('stage-deepspeech without an engine writes the dummy transcript that says so', async () => {
    const response = await call('stage-deepspeech', id, compressed, { clip_index: 1 });
    expectSuccess(response);
    transcriptArchive = response.outputs[0]!.uri;
    expect(transcriptArchive).toBe(`s3://${BUCKET}/requests/${id}/stage-deepspeech/clip_001.tar.gz`);
    const members = await readArchive(transcriptArchive);
    expect(await readFile(members.get('transcript.txt')!, 'utf8')).toBe('Dummy transcript: no speech engine configured\n');
  });

  it('stage-deepspeech runs the configured command on a 16 kHz WAV and keeps what it prints', async () => {
    const withEngine = makeStages({
      speechCommand: `sh -c 'test -s "$1" && echo "a wav of $(wc -c < "$1") bytes"; echo second line' sh {wav}`,
    });
    const response = await call('stage-deepspeech', 'speech-1', compressed, { clip_index: 1 }, withEngine);
    expectSuccess(response);
    expect(response.outputs[0]!.metadata).toMatchObject({ clip_index: 1, engine: 'sh' });
    const members = await readArchive(response.outputs[0]!.uri);
    expect(await readFile(members.get('transcript.txt')!, 'utf8')).toMatch(/^a wav of \d+ bytes second line\n$/);
  });

  it('stage-deepspeech reports a failing engine as status error with its reason', async () => {
    const failing = makeStages({ speechCommand: `sh -c 'echo "acoustic model not found" >&2; exit 3'` });
    const response = await call('stage-deepspeech', 'speech-2', compressed, { clip_index: 1 }, failing);
    expect(response.status).toBe('error');
    expect(response.message).toContain('acoustic model not found');
    const missing = makeStages({ speechCommand: '/nonexistent/speech-engine {wav}' });
    const response2 = await call('stage-deepspeech', 'speech-3', compressed, { clip_index: 1 }, missing);
    expect(response2.status).toBe('error');
    expect(response2.message).toMatch(/cannot be started \(ENOENT\)/);
  });

  it('stage-ffmpeg-3 extracts duration × fps frames (±1) from the ffmpeg-2 archive', async () => {
    const response = await call('stage-ffmpeg-3', id, compressed, { clip_index: 1 });
    expectSuccess(response);
    const duration = (clips[1]!.metadata.end_s as number) - (clips[1]!.metadata.start_s as number);
    expect(Math.abs(response.outputs.length - duration * FPS)).toBeLessThanOrEqual(1);
    response.outputs.forEach((frame, i) => {
      expect(frame.type).toBe('image');
      expect(frame.uri).toBe(`s3://${BUCKET}/requests/${id}/stage-ffmpeg-3/clip_001/frame_000${i}.jpg`);
      expect(frame.metadata).toMatchObject({ clip: 1, frame_index: i });
    });
    const picture = await probeUri(response.outputs[0]!.uri);
    expect(picture.video?.codec).toBe('mjpeg');
  });

  it('stage-ffmpeg-3 also takes a plain clip video, and the deepspeech archive that carries the clip along', async () => {
    const fromVideo = await call('stage-ffmpeg-3', 'frames-2', clips[2]!.uri, { clip_index: 2 });
    expectSuccess(fromVideo);
    const duration = (clips[2]!.metadata.end_s as number) - (clips[2]!.metadata.start_s as number);
    expect(Math.abs(fromVideo.outputs.length - duration * FPS)).toBeLessThanOrEqual(1);
    expect(fromVideo.outputs[0]!.metadata).toMatchObject({ clip: 2, frame_index: 0 });

    const fromTranscript = await call('stage-ffmpeg-3', 'frames-3', transcriptArchive, { clip_index: 1 });
    expectSuccess(fromTranscript);
    expect(fromTranscript.outputs.length).toBeGreaterThan(0);
  });

  it('stage-object-detector without a model writes a document with no detections and a note', async () => {
    const frameUri = `s3://${BUCKET}/requests/${id}/stage-ffmpeg-3/clip_001/frame_0000.jpg`;
    const response = await call('stage-object-detector', id, frameUri, { clip_index: 1, frame_index: 0, frame_uri: frameUri });
    expectSuccess(response);
    expect(response.outputs).toHaveLength(1);
    expect(response.outputs[0]!.uri).toBe(`s3://${BUCKET}/requests/${id}/stage-object-detector/clip_001/frame_0000.json`);
    const document = JSON.parse((await store.get(parseS3Uri(response.outputs[0]!.uri))).toString('utf8')) as unknown;
    expect(document).toEqual({ detections: [], model: null, note: 'no detector model configured (set FAVE_DETECTOR_MODEL)' });
  });
});

describe('inputs the stages must survive', () => {
  it('a video without an audio track gets a silent one and becomes one clip spanning the whole video', async () => {
    const id = 'silent-1';
    const r0 = await call('stage-ffmpeg-0', id, await putInput(id, join(dir, 'silent.mp4'), '.mp4'));
    expectSuccess(r0);
    expect(r0.outputs[0]!.metadata).toMatchObject({ has_audio: false });
    const members = await readArchive(r0.outputs[0]!.uri);
    const audio = await probeFile(members.get('audio.wav'));
    expect(audio.duration).toBeCloseTo(SILENT_DURATION, 0);

    const r1 = await call('stage-librosa', id, r0.outputs[0]!.uri);
    expectSuccess(r1);
    expect(r1.outputs[0]!.metadata).toMatchObject({ clips: 1 });
    const text = await readFile((await readArchive(r1.outputs[0]!.uri)).get('timestamps.txt')!, 'utf8');
    const parsed = parseTimestampsFile(text);
    if ('error' in parsed) throw new Error(parsed.error);
    expect(parsed.clips).toHaveLength(1);
    expect(parsed.clips[0]!.start_s).toBe(0);
    expect(parsed.clips[0]!.end_s).toBeCloseTo(SILENT_DURATION, 1);

    const r2 = await call('stage-ffmpeg-1', id, r1.outputs[0]!.uri);
    expectSuccess(r2);
    expect(r2.outputs).toHaveLength(1);
    expect(r2.outputs[0]!.metadata).toMatchObject({ clip_index: 0, start_s: 0 });
  });

  it("a file that is not a video is a status error carrying ffmpeg's reason", async () => {
    const id = 'bad-1';
    const uri = await putInput(id, join(dir, 'not-a-video.mp4'), '.mp4');
    const response = await call('stage-ffmpeg-0', id, uri);
    expect(response.status).toBe('error');
    expect(response.outputs).toEqual([]);
    expect(response.message).toContain('Invalid data found when processing input');
    expect(response.message).toContain(uri);
    expect(response.message).not.toContain(tmpdir());
  });

  it('an input that is not an archive, where one is expected, is a status error', async () => {
    const id = 'bad-2';
    const response = await call('stage-librosa', id, await putInput(id, join(dir, 'not-a-video.mp4'), '.tar.gz'));
    expect(response.status).toBe('error');
    expect(response.message).toMatch(/not a readable \.tar\.gz/);
  });

  it('a missing input, a foreign URI or a bad request id is a status error, and nothing is written', async () => {
    const missing = await call('stage-ffmpeg-0', 'gone-1', `s3://${BUCKET}/requests/gone-1/input/original.mp4`);
    expect(missing.status).toBe('error');
    expect(missing.message).toMatch(/no object at s3:\/\/fave-artifacts\/requests\/gone-1\/input\/original\.mp4/);
    const foreign = await call('stage-ffmpeg-0', 'gone-2', 'http://example.com/video.mp4');
    expect(foreign.status).toBe('error');
    expect(foreign.message).toMatch(/not an s3:\/\/ URI/);
    const badId = await call('stage-ffmpeg-0', '../escape', `s3://${BUCKET}/requests/x/input/original.mp4`);
    expect(badId.status).toBe('error');
    expect(badId.message).toMatch(/request_id must match/);
    expect(await store.list(BUCKET, 'requests/gone-')).toEqual([]);
  });
});

describe('segmentation (pure)', () => {
  const rate = 22050;
  function toneBursts(bursts: Array<[number, number]>, seconds: number): Float32Array {
    const samples = new Float32Array(Math.round(seconds * rate));
    for (const [s, e] of bursts) for (let i = Math.round(s * rate); i < Math.round(e * rate); i++) samples[i] = 0.5 * Math.sin((2 * Math.PI * 440 * i) / rate);
    return samples;
  }
  function analyse(samples: Float32Array, chunk = 1000): { meanSquares: Float64Array; count: number } {
    const energies = new BlockEnergies(512);
    for (let i = 0; i < samples.length; i += chunk) energies.push(samples.subarray(i, i + chunk));
    return { meanSquares: frameMeanSquares(energies.finish(), energies.samples), count: energies.samples };
  }

  it("has librosa's frame count and centred frames", () => {
    const { meanSquares } = analyse(new Float32Array(22050).fill(1));
    expect(meanSquares.length).toBe(1 + Math.floor(22050 / 512));
    // Frame 0 is centred on sample 0: half of it is zero padding.
    expect(meanSquares[0]).toBeCloseTo(0.5);
    expect(meanSquares[10]).toBeCloseTo(1);
  });

  it('finds the bursts, whatever the chunking of the stream', () => {
    const samples = toneBursts(BURSTS, 12);
    const a = analyse(samples, 1000);
    const b = analyse(samples, 4096);
    expect(Array.from(a.meanSquares)).toEqual(Array.from(b.meanSquares));
    const intervals = nonSilentIntervals(a.meanSquares, 30, a.count);
    expect(intervals).toHaveLength(3);
    intervals.forEach(([s, e], i) => {
      expect(Math.abs(s / rate - BURSTS[i]![0])).toBeLessThan(0.1);
      expect(Math.abs(e / rate - BURSTS[i]![1])).toBeLessThan(0.1);
    });
  });

  it('cuts a sound longer than 30 s into equal clips, all within 0.1 s to 30 s', () => {
    const samples = toneBursts(
      [
        [1, 2.02],
        [3, 68],
      ],
      70,
    );
    const { meanSquares, count } = analyse(samples, 8192);
    const { clips } = segmentAudio(meanSquares, count, { sampleRate: rate });
    expect(clips.every((c) => c.end_s - c.start_s <= 30 && c.end_s - c.start_s >= 0.1)).toBe(true);
    const long = clips.filter((c) => c.start_s > 2.5);
    expect(long).toHaveLength(3);
    expect(long[0]!.start_s).toBeCloseTo(3, 0);
    expect(long[2]!.end_s).toBeCloseTo(68, 0);
  });

  it('drops sounds shorter than 0.1 s; when nothing else is left the whole video is one clip', () => {
    const click = new Float32Array(rate * 4);
    click[rate * 2] = 1; // one sample: every frame holding it is equally loud, 4 frames ≈ 0.093 s
    const { meanSquares, count } = analyse(click);
    expect(nonSilentIntervals(meanSquares, 30, count)).toHaveLength(1);
    expect(segmentAudio(meanSquares, count, { sampleRate: rate })).toMatchObject({
      clips: [{ start_s: 0, end_s: 4 }],
      note: expect.stringContaining('shorter than 0.1 s') as unknown,
    });
    const withTone = toneBursts([[0.5, 1.5]], 4);
    withTone[rate * 3] = 1;
    const mixed = analyse(withTone);
    expect(segmentAudio(mixed.meanSquares, mixed.count, { sampleRate: rate }).clips).toHaveLength(1);
  });

  it('makes the whole video one clip when there is no sound', () => {
    const { meanSquares, count } = analyse(new Float32Array(rate * 3));
    expect(segmentAudio(meanSquares, count, { sampleRate: rate, duration: 3.2 })).toMatchObject({ clips: [{ start_s: 0, end_s: 3.2 }], top_db: null });
    expect(segmentAudio(new Float64Array(0), 0, { sampleRate: rate, duration: 5 }).clips).toEqual([{ start_s: 0, end_s: 5 }]);
  });

  it('merges the closest clips when there are too many', () => {
    const bursts: Array<[number, number]> = Array.from({ length: 10 }, (_, i) => [i, i + 0.5]);
    const { meanSquares, count } = analyse(toneBursts(bursts, 10.5));
    expect(segmentAudio(meanSquares, count, { sampleRate: rate }).clips).toHaveLength(10);
    expect(segmentAudio(meanSquares, count, { sampleRate: rate, maxClips: 4 }).clips).toHaveLength(4);
  });

  it('bridges short pauses, folds in or drops short speech, and covers the silence with clips of its own', () => {
    const shape = { duration: 20, minGapS: 0.3, minClipS: 1.25, maxClipS: 30, silentClips: true };
    // A sentence with a 0.2 s pause, a 0.4 s blip far from anything, speech again at 12–15 s.
    const clips = shapeClips(
      [
        { start_s: 2, end_s: 3.4 },
        { start_s: 3.6, end_s: 5 },
        { start_s: 8, end_s: 8.4 },
        { start_s: 12, end_s: 15 },
        { start_s: 15.5, end_s: 15.9 },
      ],
      shape,
    );
    expect(clips).toEqual([
      { start_s: 0, end_s: 2, speech: false },
      { start_s: 2, end_s: 5, speech: true },
      { start_s: 5, end_s: 12, speech: false },
      { start_s: 12, end_s: 15.9, speech: true },
      { start_s: 15.9, end_s: 20, speech: false },
    ]);
    // Every second of the video is in exactly one clip.
    clips.forEach((c, i) => expect(c.start_s).toBe(i === 0 ? 0 : clips[i - 1]!.end_s));
    // Silence shorter than a clip is shared by its neighbours; without silent clips only speech is kept.
    expect(
      shapeClips(
        [
          { start_s: 0.5, end_s: 4 },
          { start_s: 5, end_s: 9 },
        ],
        { ...shape, duration: 9.8 },
      ),
    ).toEqual([
      { start_s: 0, end_s: 4.5, speech: true },
      { start_s: 4.5, end_s: 9.8, speech: true },
    ]);
    expect(
      shapeClips(
        [
          { start_s: 2, end_s: 5 },
          { start_s: 9, end_s: 12 },
        ],
        { ...shape, silentClips: false },
      ),
    ).toEqual([
      { start_s: 2, end_s: 5, speech: true },
      { start_s: 9, end_s: 12, speech: true },
    ]);
    expect(shapeClips([], { ...shape, duration: 70 }).map((c) => [c.start_s, c.end_s, c.speech])).toEqual([
      [0, 70 / 3, false],
      [70 / 3, (2 * 70) / 3, false],
      [(2 * 70) / 3, 70, false],
    ]);
  });

  it('writes and reads timestamps with sub-second precision', () => {
    expect(formatTimestamp(3725.5)).toBe('01:02:05.500');
    expect(formatTimestamp(0.0004)).toBe('00:00:00.000');
    expect(parseTimestampsFile('00:00:01.250 00:00:02.5\n\n# note\n00:01:00 00:01:30\n')).toEqual({
      clips: [
        { start_s: 1.25, end_s: 2.5 },
        { start_s: 60, end_s: 90 },
      ],
    });
    expect(parseTimestampsFile('00:00:03 00:00:01\n')).toEqual({ error: expect.stringMatching(/line 1 ends before it starts/) as unknown });
    expect(parseTimestampsFile('hello\n')).toEqual({ error: expect.stringMatching(/line 1 is not/) as unknown });
  });
});

describe('speech command line', () => {
  it('splits like a shell and fills in the WAV path', () => {
    expect(splitCommandLine(`a 'b c' "d \\"e\\"" f\\ g`)).toEqual(['a', 'b c', 'd "e"', 'f g']);
    expect(speechArgv('engine --in={wav} -q', '/t/a.wav')).toEqual(['engine', '--in=/t/a.wav', '-q']);
    expect(speechArgv('engine -q', '/t/a.wav')).toEqual(['engine', '-q', '/t/a.wav']);
    expect(() => createLocalStages({ store, speechCommand: "engine 'unterminated" })).toThrow(/FAVE_SPEECH_COMMAND is invalid/);
  });
});

describe('LocalTransport', () => {
  const options = () => ({ signal: AbortSignal.timeout(30_000), timeoutMs: 30_000 });

  it('answers a stage call with 200 and the stage JSON', async () => {
    const transport = new LocalTransport(stages);
    const id = 'transport-1';
    const uri = await putInput(id, join(dir, 'silent.mp4'), '.mp4');
    const http = await transport.call('stage-ffmpeg-0', request('stage-ffmpeg-0', id, uri), options());
    expect(http.status).toBe(200);
    expect(http.headers['content-type']).toBe('application/json');
    const body = StageResponseSchema.parse(JSON.parse(http.body));
    expect(body.status).toBe('success');
    expect(body.outputs[0]!.uri).toBe(`s3://${BUCKET}/requests/${id}/stage-ffmpeg-0/media.tar.gz`);
    expect(JSON.parse(http.body).metrics).toEqual({ duration_ms: expect.any(Number) as unknown, memory_limit_mb: null, cold_start: false, cost_unit: null, extra: {} });
    await transport.close();
  });

  it('answers 404 for an unknown function, and a body that is not a stage request as the stages do: HTTP 200, status error', async () => {
    const transport = new LocalTransport(stages);
    const notFound = await transport.call('stage-nope', request('stage-nope', 'x', `s3://${BUCKET}/a`), options());
    expect(notFound.status).toBe(404);
    expect(notFound.body).toContain('stage-nope');
    const proto = await transport.call('constructor', request('constructor', 'x', `s3://${BUCKET}/a`), options());
    expect(proto.status).toBe(404);
    const bad = await transport.call('stage-ffmpeg-0', { request_id: 'x', stage: 'stage-ffmpeg-0' } as unknown as StageRequest, options());
    expect(bad.status).toBe(200);
    const refusal = JSON.parse(bad.body) as Record<string, unknown>;
    expect(Object.keys(refusal).sort()).toEqual(['message', 'status']);
    expect(refusal).toMatchObject({ status: 'error', message: expect.stringMatching(/input_uri/) as unknown });
  });

  it('answers 500 with the message as plain text when the stage throws (the store is broken)', async () => {
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, 'not a directory');
    const broken = new FsStore(join(blocker, 'data'), BUCKET);
    const transport = new LocalTransport(makeStages({ store: broken }));
    const http = await transport.call('stage-ffmpeg-0', request('stage-ffmpeg-0', 'broken-1', `s3://${BUCKET}/requests/broken-1/input/original.mp4`), options());
    expect(http.status).toBe(500);
    expect(http.headers['content-type']).toMatch(/^text\/plain/);
    expect(http.body).toMatch(/filesystem store failed/);
  });

  it('throws when the call is aborted, like a dropped connection', async () => {
    const transport = new LocalTransport(stages);
    const id = 'abort-1';
    const uri = await putInput(id, join(dir, 'tone.mp4'), '.mp4');
    const controller = new AbortController();
    controller.abort(new Error('caller gave up'));
    await expect(transport.call('stage-ffmpeg-0', request('stage-ffmpeg-0', id, uri), { signal: controller.signal, timeoutMs: 1000 })).rejects.toThrow(/caller gave up/);
  });

  it('an abort in the middle of a call kills the running command and still cleans up', async () => {
    const slow = makeStages({ speechCommand: `sh -c 'touch "$1.started"; exec sleep 30' sh {wav}` });
    const transport = new LocalTransport(slow);
    const id = 'abort-2';
    const uri = await putInput(id, join(dir, 'tone.mp4'), '.mp4');
    const controller = new AbortController();
    const pending = transport.call('stage-deepspeech', request('stage-deepspeech', id, uri), { signal: controller.signal, timeoutMs: 60_000 });
    const outcome = pending.then(
      () => 'answered',
      (err: unknown) => (err as Error).message,
    );
    // Wait until the engine is really running, then give up on the call.
    const started = async (): Promise<boolean> => {
      for (const entry of await readdir(join(dir, 'work'))) {
        const files = await readdir(join(dir, 'work', entry)).catch(() => []);
        if (files.some((f) => f.endsWith('.started'))) return true;
      }
      return false;
    };
    await until(started, { timeoutMs: 30_000, everyMs: 50, message: 'the speech command to start' });
    controller.abort(new Error('caller gave up mid-call'));
    expect(await outcome).toBe('caller gave up mid-call');
    expect(await readdir(join(dir, 'work'))).toEqual([]);
  });

  it('honours configured function names', async () => {
    const renamed = makeStages({ stageNames: { ffmpeg0: 'my-ffmpeg-0' } });
    expect(Object.keys(renamed)).toContain('my-ffmpeg-0');
    expect(Object.keys(renamed)).not.toContain('stage-ffmpeg-0');
    expect(Object.keys(renamed)).toContain('stage-librosa');
  });
});

describe('local gateway over HTTP', () => {
  it('serves the stages at /function/{name}', async () => {
    const gateway = await startLocalGateway({ store, port: 0, speechCommand: null, detectorModel: null, workRoot: join(dir, 'work') });
    try {
      const id = 'http-1';
      const uri = await putInput(id, join(dir, 'silent.mp4'), '.mp4');
      const res = await fetch(`${gateway.url}/function/stage-ffmpeg-0`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request('stage-ffmpeg-0', id, uri)),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-call-id')).toBeTruthy();
      const body = StageResponseSchema.parse(await res.json());
      expect(body.status).toBe('success');
      expect(await store.head(parseS3Uri(body.outputs[0]!.uri))).not.toBeNull();

      const unknown = await fetch(`${gateway.url}/function/stage-nope`, { method: 'POST', body: '{}' });
      expect(unknown.status).toBe(404);
      await unknown.arrayBuffer();
      const notJson = await fetch(`${gateway.url}/function/stage-librosa`, { method: 'POST', body: 'hello' });
      expect(notJson.status).toBe(200);
      expect(await notJson.json()).toEqual({ status: 'error', message: 'request body is not JSON' });
    } finally {
      await gateway.close();
    }
  });
});

describe('clean-up', () => {
  it('every call above, successful, failed or aborted, removed its temp dir', async () => {
    expect(await readdir(join(dir, 'work'))).toEqual([]);
  });
});
