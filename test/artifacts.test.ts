import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { FaveFailure } from '../src/domain/errors.ts';
import { interpretDetections, interpretTranscript, parseTimestamps, readTarGzMember, readTarGzMembers } from '../src/transport/artifacts.ts';
import { COCO_LABELS, cocoLabelForId } from '../src/domain/query/coco.ts';

type Entry = { name: string; content: string | Buffer } | { name: string; type: 'directory' } | { name: string; type: 'symlink'; linkname: string };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if ('content' in e) pack.entry({ name: e.name }, e.content);
    else if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' });
    else pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function tarGzOf(entries: Entry[]): Promise<Buffer> {
  return gzipSync(await tarOf(entries));
}

/** Runs `action` and returns the FaveError it failed with. */
async function failureOf(action: () => unknown): Promise<FaveFailure['error']> {
  try {
    await action();
  } catch (err) {
    expect(err).toBeInstanceOf(FaveFailure);
    return (err as FaveFailure).error;
  }
  throw new Error('expected a failure, got success');
}

function asText(map: Map<string, Buffer>): Record<string, string> {
  return Object.fromEntries([...map].map(([k, v]) => [k, v.toString('utf8')]));
}

describe('readTarGzMembers', () => {
  it('returns every regular file by its normalised name', async () => {
    const archive = await tarGzOf([
      { name: './video.mp4', content: 'VIDEO' },
      { name: 'out/', type: 'directory' },
      { name: 'out/timestamps.txt', content: '00:00:00 00:00:04\n' },
      { name: '/abs/audio.wav', content: 'WAV' },
      { name: '././nested/./x.txt', content: 'X' },
    ]);
    expect(asText(await readTarGzMembers(archive))).toEqual({
      'video.mp4': 'VIDEO',
      'out/timestamps.txt': '00:00:00 00:00:04\n',
      'abs/audio.wav': 'WAV',
      'nested/./x.txt': 'X',
    });
  });

  it('keeps binary content byte for byte, also for large members', async () => {
    const video = randomBytes(300_000);
    const archive = await tarGzOf([
      { name: 'video.mp4', content: video },
      { name: 'empty.txt', content: '' },
    ]);
    const members = await readTarGzMembers(archive);
    expect(members.get('video.mp4')?.equals(video)).toBe(true);
    expect(members.get('empty.txt')?.length).toBe(0);
  });

  it('skips directories and symlinks', async () => {
    const archive = await tarGzOf([
      { name: 'dir', type: 'directory' },
      { name: 'dir/a.txt', content: 'A' },
      { name: 'link.txt', type: 'symlink', linkname: 'dir/a.txt' },
    ]);
    expect(asText(await readTarGzMembers(archive))).toEqual({ 'dir/a.txt': 'A' });
  });

  it('keeps the last copy of a name stored twice, as extraction would', async () => {
    const archive = await tarGzOf([
      { name: 'transcript.txt', content: 'first' },
      { name: './transcript.txt', content: 'second' },
    ]);
    expect(asText(await readTarGzMembers(archive))).toEqual({ 'transcript.txt': 'second' });
  });

  it('reads names longer than 100 characters (pax headers)', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(110)}.txt`;
    const archive = await tarGzOf([{ name: long, content: 'long' }]);
    expect(asText(await readTarGzMembers(archive))).toEqual({ [long]: 'long' });
  });

  it('reads an archive without members as empty', async () => {
    expect((await readTarGzMembers(await tarGzOf([]))).size).toBe(0);
    expect((await readTarGzMembers(gzipSync(Buffer.alloc(0)))).size).toBe(0);
  });

  describe('a corrupt archive is ARTIFACT_UNREADABLE and says what is wrong', () => {
    it('bytes that are not gzip', async () => {
      const error = await failureOf(() => readTarGzMembers(Buffer.from('hello world')));
      expect(error).toEqual({
        code: 'ARTIFACT_UNREADABLE',
        message: 'not a gzip archive (11 bytes, starting with 68656c6c)',
      });
    });

    it('no bytes at all', async () => {
      const error = await failureOf(() => readTarGzMembers(Buffer.alloc(0)));
      expect(error).toEqual({ code: 'ARTIFACT_UNREADABLE', message: 'not a gzip archive (0 bytes, starting with nothing)' });
    });

    it('a plain (uncompressed) tar', async () => {
      const error = await failureOf(async () => readTarGzMembers(await tarOf([{ name: 'a', content: 'A' }])));
      expect(error.code).toBe('ARTIFACT_UNREADABLE');
      expect(error.message).toMatch(/^not a gzip archive \(\d+ bytes, starting with /);
    });

    it('a truncated gzip stream', async () => {
      const archive = await tarGzOf([{ name: 'video.mp4', content: randomBytes(20_000) }]);
      const error = await failureOf(() => readTarGzMembers(archive.subarray(0, archive.length / 2)));
      expect(error).toEqual({
        code: 'ARTIFACT_UNREADABLE',
        message: 'gzip stream is corrupt or truncated: unexpected end of file',
      });
    });

    it('a gzip stream with damaged bytes', async () => {
      const archive = await tarGzOf([{ name: 'video.mp4', content: 'x'.repeat(10_000) }]);
      const damaged = Buffer.from(archive);
      damaged.fill(0xff, 12, 40);
      const error = await failureOf(() => readTarGzMembers(damaged));
      expect(error.code).toBe('ARTIFACT_UNREADABLE');
      expect(error.message).toMatch(/^gzip stream is corrupt or truncated: /);
    });

    it('gzip holding something that is not a tar', async () => {
      const error = await failureOf(() => readTarGzMembers(gzipSync(Buffer.from('not a tar '.repeat(100)))));
      expect(error.code).toBe('ARTIFACT_UNREADABLE');
      expect(error.message).toMatch(/^tar archive inside the gzip stream is corrupt or truncated: Invalid tar header/);
    });

    it('a tar cut in the middle of a member', async () => {
      const whole = await tarOf([{ name: 'video.mp4', content: 'v'.repeat(2000) }]);
      const error = await failureOf(() => readTarGzMembers(gzipSync(whole.subarray(0, 1000))));
      expect(error).toEqual({
        code: 'ARTIFACT_UNREADABLE',
        message: 'tar archive inside the gzip stream is corrupt or truncated: Unexpected end of data',
      });
    });
  });
});

describe('readTarGzMember', () => {
  it('finds a member by its exact name', async () => {
    const archive = await tarGzOf([
      { name: 'video.mp4', content: 'V' },
      { name: 'timestamps.txt', content: 'T' },
    ]);
    expect((await readTarGzMember(archive, 'timestamps.txt'))?.toString()).toBe('T');
  });

  it('ignores a "./" prefix on either side', async () => {
    const archive = await tarGzOf([{ name: './transcript.txt', content: 'hello' }]);
    expect((await readTarGzMember(archive, 'transcript.txt'))?.toString()).toBe('hello');
    expect((await readTarGzMember(archive, './transcript.txt'))?.toString()).toBe('hello');
  });

  it('falls back to the base name when the member sits in a directory', async () => {
    const archive = await tarGzOf([
      { name: 'clip_002', type: 'directory' },
      { name: 'clip_002/transcript.txt', content: 'nested' },
    ]);
    expect((await readTarGzMember(archive, 'transcript.txt'))?.toString()).toBe('nested');
    expect((await readTarGzMember(archive, 'other/transcript.txt'))?.toString()).toBe('nested');
  });

  it('prefers the exact path over a base-name match, wherever it is stored', async () => {
    const archive = await tarGzOf([
      { name: 'a/transcript.txt', content: 'in a' },
      { name: 'transcript.txt', content: 'at root' },
      { name: 'b/transcript.txt', content: 'in b' },
    ]);
    expect((await readTarGzMember(archive, 'transcript.txt'))?.toString()).toBe('at root');
    expect((await readTarGzMember(archive, 'b/transcript.txt'))?.toString()).toBe('in b');
  });

  it('takes the first base-name match in archive order when there is no exact one', async () => {
    const archive = await tarGzOf([
      { name: 'x/timestamps.txt', content: 'first' },
      { name: 'y/timestamps.txt', content: 'second' },
    ]);
    expect((await readTarGzMember(archive, 'timestamps.txt'))?.toString()).toBe('first');
  });

  it('takes the last copy of an exact name stored twice', async () => {
    const archive = await tarGzOf([
      { name: 'transcript.txt', content: 'old' },
      { name: 'transcript.txt', content: 'new' },
    ]);
    expect((await readTarGzMember(archive, 'transcript.txt'))?.toString()).toBe('new');
  });

  it('returns null when there is no such file', async () => {
    const archive = await tarGzOf([
      { name: 'video.mp4', content: 'V' },
      { name: 'transcript.txt', type: 'directory' },
      { name: 'timestamps.txt.bak', content: 'B' },
    ]);
    expect(await readTarGzMember(archive, 'timestamps.txt')).toBeNull();
    expect(await readTarGzMember(archive, 'transcript.txt')).toBeNull();
    expect(await readTarGzMember(await tarGzOf([]), 'transcript.txt')).toBeNull();
  });

  it('still reports a corrupt archive', async () => {
    const error = await failureOf(() => readTarGzMember(Buffer.from('PK\u0003\u0004zip'), 'transcript.txt'));
    expect(error.code).toBe('ARTIFACT_UNREADABLE');
    expect(error.message).toBe('not a gzip archive (7 bytes, starting with 504b0304)');
  });

  it('reads an archive as it streams, a chunk at a time, holding only the wanted member', async () => {
    const video = randomBytes(2_000_000);
    const archive = await tarGzOf([
      { name: 'video.mp4', content: video },
      { name: 'timestamps.txt', content: '00:00:00 00:00:04\n' },
    ]);
    const chunks = Array.from({ length: Math.ceil(archive.length / 1000) }, (_, i) => archive.subarray(i * 1000, (i + 1) * 1000));
    const member = await readTarGzMember(Readable.from(chunks), 'timestamps.txt', { maxBytes: 1024 });
    expect(member?.toString()).toBe('00:00:00 00:00:04\n');
  });

  it('refuses a wanted member larger than the bound instead of holding it', async () => {
    const archive = await tarGzOf([{ name: 'timestamps.txt', content: 'x'.repeat(5000) }]);
    const error = await failureOf(() => readTarGzMember(Readable.from([archive]), 'timestamps.txt', { maxBytes: 4096 }));
    expect(error).toEqual({ code: 'ARTIFACT_UNREADABLE', message: 'member timestamps.txt is larger than 4096 bytes' });
  });

  it('says a streamed archive that is not gzip, counting its bytes without keeping them', async () => {
    const error = await failureOf(() => readTarGzMember(Readable.from([Buffer.from('he'), Buffer.alloc(100_000)]), 'a.txt'));
    expect(error.message).toBe('not a gzip archive (100002 bytes, starting with 68650000)');
  });

  it('passes on a failure of the stream it reads, as it is', async () => {
    const archive = await tarGzOf([{ name: 'video.mp4', content: randomBytes(50_000) }]);
    const source = new Readable({
      read() {
        this.push(archive.subarray(0, 100));
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(readTarGzMember(source, 'timestamps.txt')).rejects.toThrow('connection reset');
  });
});

describe('parseTimestamps', () => {
  it('reads HH:MM:SS pairs', () => {
    expect(parseTimestamps('00:00:00 00:00:04\n00:00:04 00:01:10\n01:02:03 01:02:30\n')).toEqual([
      { start_s: 0, end_s: 4 },
      { start_s: 4, end_s: 70 },
      { start_s: 3723, end_s: 3750 },
    ]);
  });

  it('reads fractional seconds without floating-point noise', () => {
    expect(parseTimestamps('00:00:01.250 00:00:04.5\n01:02:03.1 01:02:03.123456')).toEqual([
      { start_s: 1.25, end_s: 4.5 },
      { start_s: 3723.1, end_s: 3723.123 },
    ]);
  });

  it('reads plain seconds, and both forms mixed', () => {
    expect(parseTimestamps('0 4\n1.25 4.5\n4.5 00:00:09')).toEqual([
      { start_s: 0, end_s: 4 },
      { start_s: 1.25, end_s: 4.5 },
      { start_s: 4.5, end_s: 9 },
    ]);
  });

  it('skips blank lines and accepts CRLF, CR, tabs, padding and a byte-order mark', () => {
    const text = '\uFEFF00:00:00 00:00:02\r\n\r\n   \r\n\t00:00:02\t\t00:00:05  \r00:00:05 00:00:06\r\n';
    expect(parseTimestamps(text)).toEqual([
      { start_s: 0, end_s: 2 },
      { start_s: 2, end_s: 5 },
      { start_s: 5, end_s: 6 },
    ]);
  });

  it('accepts single-digit fields, hours beyond a day and zero-length ranges', () => {
    expect(parseTimestamps('0:0:1 0:1:05\n100:00:00 100:00:00')).toEqual([
      { start_s: 1, end_s: 65 },
      { start_s: 360000, end_s: 360000 },
    ]);
  });

  it('reads an empty file as no ranges', () => {
    expect(parseTimestamps('')).toEqual([]);
    expect(parseTimestamps('\n\r\n  \n')).toEqual([]);
  });

  function errorOf(text: string): FaveFailure['error'] {
    try {
      parseTimestamps(text);
    } catch (err) {
      expect(err).toBeInstanceOf(FaveFailure);
      return (err as FaveFailure).error;
    }
    throw new Error('expected parseTimestamps to throw');
  }

  it('names the line number and content of a line with the wrong number of fields', () => {
    expect(errorOf('00:00:00 00:00:04\n\n00:00:04\n')).toEqual({
      code: 'ARTIFACT_UNREADABLE',
      message: 'timestamps.txt line 3 "00:00:04": expected "start end" (HH:MM:SS HH:MM:SS or seconds), found 1 field(s)',
    });
    expect(errorOf('00:00:00 00:00:04 00:00:08').message).toBe(
      'timestamps.txt line 1 "00:00:00 00:00:04 00:00:08": expected "start end" (HH:MM:SS HH:MM:SS or seconds), found 3 field(s)',
    );
  });

  it('names the token that is not a time', () => {
    expect(errorOf('00:00:00 00:00:04\r\nstart end\r\n')).toEqual({
      code: 'ARTIFACT_UNREADABLE',
      message: 'timestamps.txt line 2 "start end": "start" is not a time (HH:MM:SS[.fff] or seconds)',
    });
    expect(errorOf('00:00:00 00:61:00').message).toBe('timestamps.txt line 1 "00:00:00 00:61:00": "00:61:00" is not a time (HH:MM:SS[.fff] or seconds)');
    expect(errorOf('00:00:60 00:01:00').message).toContain('"00:00:60" is not a time');
    expect(errorOf('-1 4').message).toContain('"-1" is not a time');
    expect(errorOf('00:00 00:04').message).toContain('"00:00" is not a time');
    expect(errorOf('1,5 4').message).toContain('"1,5" is not a time');
    expect(errorOf('00:00:01. 00:00:02').message).toContain('"00:00:01." is not a time');
  });

  it('rejects a range that ends before it starts', () => {
    expect(errorOf('00:00:04 00:00:02')).toEqual({
      code: 'ARTIFACT_UNREADABLE',
      message: 'timestamps.txt line 1 "00:00:04 00:00:02": end 00:00:02 is before start 00:00:04',
    });
  });
});

describe('interpretTranscript', () => {
  it('returns speech trimmed', () => {
    expect(interpretTranscript('  a red car passes \n')).toEqual({ transcript: 'a red car passes', note: null });
  });

  it('keeps inner line breaks of a multi-line transcript', () => {
    expect(interpretTranscript('first line\nsecond line\n')).toEqual({
      transcript: 'first line\nsecond line',
      note: null,
    });
  });

  it('reports a dummy transcript as no transcript, with its reason', () => {
    expect(interpretTranscript('Dummy transcript: model not found at /models/deepspeech.pbmm\n')).toEqual({
      transcript: null,
      note: 'no transcript: model not found at /models/deepspeech.pbmm',
    });
  });

  it('recognises the dummy prefix case-insensitively and with loose spacing', () => {
    expect(interpretTranscript('DUMMY TRANSCRIPT:no model')).toEqual({ transcript: null, note: 'no transcript: no model' });
    expect(interpretTranscript('  dummy transcript :   deepspeech missing  ')).toEqual({
      transcript: null,
      note: 'no transcript: deepspeech missing',
    });
  });

  it('reports a dummy transcript without a reason as just no transcript', () => {
    expect(interpretTranscript('Dummy transcript:')).toEqual({ transcript: null, note: 'no transcript' });
    expect(interpretTranscript('Dummy transcript')).toEqual({ transcript: null, note: 'no transcript' });
  });

  it('does not mistake speech that merely starts alike for a dummy', () => {
    expect(interpretTranscript('dummy transcripts are boring')).toEqual({
      transcript: 'dummy transcripts are boring',
      note: null,
    });
    expect(interpretTranscript('this is a Dummy transcript: not at the start')).toEqual({
      transcript: 'this is a Dummy transcript: not at the start',
      note: null,
    });
  });

  it('reports an empty or blank transcript', () => {
    expect(interpretTranscript('')).toEqual({ transcript: null, note: 'empty transcript' });
    expect(interpretTranscript(' \r\n\t ')).toEqual({ transcript: null, note: 'empty transcript' });
  });
});

describe('interpretDetections', () => {
  function contractErrorOf(json: unknown): FaveFailure['error'] {
    try {
      interpretDetections(json);
    } catch (err) {
      expect(err).toBeInstanceOf(FaveFailure);
      return (err as FaveFailure).error;
    }
    throw new Error('expected interpretDetections to throw');
  }

  it('reads {detections: [{label, confidence, box}]}', () => {
    expect(interpretDetections({ detections: [{ label: 'car', confidence: 0.91, box: [10, 20, 110, 220] }] })).toEqual({
      detections: [{ label: 'car', confidence: 0.91, box: [10, 20, 110, 220] }],
      note: null,
    });
  });

  it('reads plain detections and every other form alike, however they are mixed in one list', () => {
    const plain = { label: ' Dog ', score: 0.5, box: null };
    const other = { class: 16, confidence: 0.25, box: { x: 1, y: 2, w: 3, h: 4 } };
    const expected = [
      { label: 'dog', confidence: 0.5, box: null },
      { label: 'dog', confidence: 0.25, box: [1, 2, 4, 6] },
    ];
    expect(interpretDetections([plain, other]).detections).toEqual(expected);
    expect(interpretDetections({ detections: [plain, other] }).detections).toEqual(expected);
    // Every source of a label is checked, not only the one used.
    expect(contractErrorOf({ detections: [{ label: 'car', class: 99, confidence: 0.5 }] }).message).toMatch(/detections\[0\]\.class: class id 99/);
    expect(contractErrorOf([{ label: 'car', confidence: 0.5, score: 2 }]).message).toMatch(/\[0\]\.score: expected a confidence between 0 and 1/);
  });

  it('takes the label from label, class or name, in that order', () => {
    expect(
      interpretDetections({
        detections: [
          { class: 'dog', confidence: 0.5 },
          { name: 'cat', confidence: 0.5 },
          { label: 'car', class: 'bus', name: 'truck', confidence: 0.5 },
          { class: 'bus', name: 'truck', confidence: 0.5 },
        ],
      }).detections.map((d) => d.label),
    ).toEqual(['dog', 'cat', 'car', 'bus']);
  });

  it('maps numeric class ids (also as digit strings) onto the COCO-80 labels', () => {
    expect(
      interpretDetections({
        detections: [
          { class: 0, confidence: 0.9 },
          { class: 2, confidence: 0.8 },
          { label: 79, confidence: 0.7 },
          { name: '9', confidence: 0.6 },
          { class: ' 67 ', confidence: 0.6 },
        ],
      }).detections.map((d) => d.label),
    ).toEqual(['person', 'car', 'toothbrush', 'traffic light', 'cell phone']);
  });

  it('normalises a label name to trimmed lower case', () => {
    expect(interpretDetections([{ label: '  Traffic Light ', score: 0.5 }]).detections[0]?.label).toBe('traffic light');
  });

  it('takes the confidence from confidence, else score', () => {
    expect(
      interpretDetections({
        detections: [
          { label: 'car', score: 0.3 },
          { label: 'car', confidence: 0.4, score: 0.9 },
          { label: 'car', confidence: 0 },
          { label: 'car', score: 1 },
        ],
      }).detections.map((d) => d.confidence),
    ).toEqual([0.3, 0.4, 0, 1]);
  });

  it('normalises every box form to [x1, y1, x2, y2] or null', () => {
    const boxes = interpretDetections({
      detections: [
        { label: 'car', confidence: 0.5, box: [1, 2, 3, 4] },
        { label: 'car', confidence: 0.5, box: { x1: 1, y1: 2, x2: 3, y2: 4 } },
        { label: 'car', confidence: 0.5, box: { x: 10, y: 20, w: 5, h: 7 } },
        { label: 'car', confidence: 0.5, box: { x: 10, y: 20, width: 5, height: 7 } },
        { label: 'car', confidence: 0.5, box: { x1: 0.1, y1: 0.2, x2: 0.3, y2: 0.4, extra: 'kept out' } },
        { label: 'car', confidence: 0.5, box: null },
        { label: 'car', confidence: 0.5 },
      ],
    }).detections.map((d) => d.box);
    expect(boxes).toEqual([[1, 2, 3, 4], [1, 2, 3, 4], [10, 20, 15, 27], [10, 20, 15, 27], [0.1, 0.2, 0.3, 0.4], null, null]);
  });

  it('accepts a top-level array of detections', () => {
    expect(interpretDetections([{ name: 'dog', score: 0.75, box: { x: 0, y: 0, w: 1, h: 1 } }])).toEqual({
      detections: [{ label: 'dog', confidence: 0.75, box: [0, 0, 1, 1] }],
      note: null,
    });
    expect(interpretDetections([])).toEqual({ detections: [], note: null });
  });

  it('reads an empty detections list as nothing detected, not as a missing result', () => {
    expect(interpretDetections({ detections: [], model: 'yolov8n' })).toEqual({ detections: [], note: null });
  });

  it('ignores unknown fields on the document and on each detection', () => {
    expect(
      interpretDetections({
        model: 'yolov8n',
        image: 's3://b/k.jpg',
        detections: [{ label: 'bus', confidence: 0.6, track_id: 4, mask: null }],
      }),
    ).toEqual({ detections: [{ label: 'bus', confidence: 0.6, box: null }], note: null });
  });

  it("reports the prototype detector's document as no detections available, with its note", () => {
    expect(
      interpretDetections({
        model: 'tiny-yolov4',
        raw_output_shapes: ['(1, 2535, 1, 4)', '(1, 2535, 80)'],
        note: 'Full post-processing skipped for prototype',
      }),
    ).toEqual({ detections: [], note: 'no detections available: Full post-processing skipped for prototype' });
  });

  it('explains a prototype-like document without a note from what it has', () => {
    expect(interpretDetections({ model: 'tiny-yolov4', raw_output_shapes: [] })).toEqual({
      detections: [],
      note: 'no detections available: model tiny-yolov4 reported raw outputs only',
    });
    expect(interpretDetections({ raw_output_shapes: [] })).toEqual({
      detections: [],
      note: 'no detections available: the detector reported raw outputs only',
    });
    expect(interpretDetections({ detections: null, note: 'decoder disabled' })).toEqual({
      detections: [],
      note: 'no detections available: decoder disabled',
    });
  });

  describe('anything else is STAGE_CONTRACT naming the offending field', () => {
    const prefix = 'object detector output is not usable: ';
    it.each([
      [{ detections: [{ confidence: 0.5 }] }, 'detections[0].label: missing: a detection needs label, class or name'],
      [{ detections: [{ label: 'car' }] }, 'detections[0].confidence: missing: a detection needs confidence or score'],
      [
        {
          detections: [
            { label: 'car', confidence: 0.5 },
            { class: 80, score: 0.5 },
          ],
        },
        'detections[1].class: class id 80 is not a COCO-80 class id (0-79)',
      ],
      [{ detections: [{ class: -1, score: 0.5 }] }, 'detections[0].class: class id -1 is not a COCO-80 class id (0-79)'],
      [{ detections: [{ class: 1.5, score: 0.5 }] }, 'detections[0].class: class id 1.5 is not a COCO-80 class id (0-79)'],
      [{ detections: [{ name: '   ', score: 0.5 }] }, 'detections[0].name: empty class name'],
      [{ detections: [{ label: true, score: 0.5 }] }, 'detections[0].label: expected a class name or a COCO class id'],
      [{ detections: [{ label: 'car', confidence: 1.2 }] }, 'detections[0].confidence: expected a confidence between 0 and 1'],
      [{ detections: [{ label: 'car', score: -0.1 }] }, 'detections[0].score: expected a confidence between 0 and 1'],
      [{ detections: [{ label: 'car', score: '0.5' }] }, 'detections[0].score: Invalid input: expected number, received string'],
      [{ detections: [{ label: 'car', score: 0.5, box: [1, 2, 3] }] }, 'detections[0].box: expected [x1, y1, x2, y2], {x1, y1, x2, y2} or {x, y, w, h}'],
      [{ detections: [{ label: 'car', score: 0.5, box: { x: 1, y: 2 } }] }, 'detections[0].box: expected [x1, y1, x2, y2], {x1, y1, x2, y2} or {x, y, w, h}'],
      [{ detections: [{ label: 'car', score: 0.5, box: 'x1,y1,x2,y2' }] }, 'detections[0].box: expected [x1, y1, x2, y2], {x1, y1, x2, y2} or {x, y, w, h}'],
      [{ detections: ['car'] }, 'detections[0]: expected a detection object'],
      [{ detections: 'car' }, 'detections: Invalid input: expected array, received string'],
      [[{ label: 'car' }], '[0].confidence: missing: a detection needs confidence or score'],
      [{ results: [] }, 'detections: missing (expected an array of detections)'],
      [{}, 'detections: missing (expected an array of detections)'],
      [null, '(root): expected {"detections": [...]} or an array of detections, got null'],
      [42, '(root): expected {"detections": [...]} or an array of detections, got number'],
      ['detections', '(root): expected {"detections": [...]} or an array of detections, got string'],
    ])('%j', (json, message) => {
      expect(contractErrorOf(json)).toEqual({ code: 'STAGE_CONTRACT', message: prefix + message });
    });
  });
});

describe('COCO_LABELS', () => {
  it('holds the 80 COCO classes once each, in YOLO order', () => {
    expect(COCO_LABELS).toHaveLength(80);
    expect(new Set(COCO_LABELS).size).toBe(80);
    expect(COCO_LABELS.slice(0, 10)).toEqual(['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light']);
    expect(COCO_LABELS.indexOf('dog')).toBe(16);
    expect(COCO_LABELS.indexOf('sports ball')).toBe(32);
    expect(COCO_LABELS.indexOf('dining table')).toBe(60);
    expect(COCO_LABELS.indexOf('tv')).toBe(62);
    expect(COCO_LABELS.indexOf('cell phone')).toBe(67);
    expect(COCO_LABELS.slice(-4)).toEqual(['scissors', 'teddy bear', 'hair drier', 'toothbrush']);
  });

  it('resolves class ids, and nothing outside 0..79', () => {
    expect(cocoLabelForId(0)).toBe('person');
    expect(cocoLabelForId(79)).toBe('toothbrush');
    expect(cocoLabelForId(80)).toBeNull();
    expect(cocoLabelForId(-1)).toBeNull();
    expect(cocoLabelForId(2.5)).toBeNull();
  });
});
