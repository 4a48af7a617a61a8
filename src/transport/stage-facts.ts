import type { Readable } from 'node:stream';
import { describeLocation, FaveFailure, faveError, type ErrorLocation } from '../domain/errors.ts';
import type { StageFacts, StageKey, StageOutput } from '../domain/stage.ts';
import type { StageResponse } from './contract.ts';
import { isNotFound, parseS3Uri, type Store } from '../persistence/store.ts';
import { interpretDetections, interpretTranscript, MAX_TRANSCRIPT_CHARS, parseTimestamps, readTarGzMember } from './artifacts.ts';

/**
 * Every stage of the pipeline in one place: how its request is built and what the orchestrator
 * keeps of its answer. What is kept is small plain JSON, because it is persisted in state.json.
 */

type Where = ErrorLocation;

function contract(where: Where, message: string): FaveFailure {
  return new FaveFailure(faveError('STAGE_CONTRACT', `${describeLocation(where, 'stage')} ${message}`, where));
}

/** The uri of the last output: the next stage's input in the chain. */
function lastOutput(response: StageResponse, where: Where): StageOutput {
  const out = response.outputs.at(-1);
  if (!out) throw contract(where, `answered status "${response.status}" with no outputs; at least one is required`);
  return out;
}

/** Reads what a stage produced and keeps the facts the answer needs. */
export async function extractFacts(stage: StageKey, response: StageResponse, store: Store, where: Where): Promise<StageFacts> {
  // A clip too short for a single frame at the configured rate is not an error.
  if (stage === 'ffmpeg3' && response.outputs.length === 0) return { kind: 'frames', uri: '', frames: [] };
  const last = lastOutput(response, where);
  switch (stage) {
    case 'ffmpeg0':
    case 'ffmpeg2':
      return { kind: 'output', uri: last.uri };
    case 'librosa': {
      const member = await readArchiveMember(store, last.uri, 'timestamps.txt', where);
      // Without timestamps.txt the clips' time ranges come from ffmpeg-1's metadata alone.
      if (member === null) return { kind: 'timestamps', uri: last.uri, clip_times: null };
      return { kind: 'timestamps', uri: last.uri, clip_times: parseTimestamps(member.toString('utf8')) };
    }
    case 'ffmpeg1': {
      const videos = response.outputs.filter((o) => o.type === 'video');
      if (videos.length === 0) throw contract(where, 'returned no {"type": "video"} outputs; one per clip is required');
      const clips = videos.map((o, position) => {
        const index = metadataInt(o, 'clip_index') ?? position;
        return { index, uri: o.uri, start_s: metadataNumber(o, 'start_s'), end_s: metadataNumber(o, 'end_s') };
      });
      clips.sort((a, b) => a.index - b.index);
      const seen = new Set<number>();
      for (const c of clips) {
        if (seen.has(c.index)) throw contract(where, `returned clip_index ${c.index} twice in outputs[].metadata.clip_index`);
        seen.add(c.index);
      }
      return { kind: 'clips', uri: last.uri, clips };
    }
    case 'deepspeech': {
      const inline = response.outputs.find((o) => typeof o.metadata.transcript === 'string');
      if (inline) return { kind: 'transcript', uri: last.uri, ...interpretTranscript(String(inline.metadata.transcript)) };
      const txt = response.outputs.find((o) => o.uri.toLowerCase().endsWith('.txt'));
      if (txt) {
        // Past what is kept, the rest of a transcript is not read: the text says where it was cut.
        const { bytes } = await readObjectHead(store, txt.uri, where, MAX_TRANSCRIPT_BYTES);
        return { kind: 'transcript', uri: last.uri, ...interpretTranscript(bytes.toString('utf8')) };
      }
      const member = await readArchiveMember(store, last.uri, 'transcript.txt', where);
      if (member === null) return { kind: 'transcript', uri: last.uri, transcript: null, note: 'no transcript: transcript.txt not found in the deepspeech archive' };
      return { kind: 'transcript', uri: last.uri, ...interpretTranscript(member.toString('utf8')) };
    }
    case 'ffmpeg3': {
      const images = response.outputs.filter((o) => o.type === 'image');
      const frames = images.map((o, position) => ({ index: metadataInt(o, 'frame_index') ?? position, uri: o.uri }));
      frames.sort((a, b) => a.index - b.index);
      return { kind: 'frames', uri: last.uri, frames };
    }
    case 'detector': {
      const inline = response.outputs.find((o) => Array.isArray(o.metadata.detections));
      const document = inline ? { detections: inline.metadata.detections } : await readJson(store, last.uri, where);
      const { detections, note } = interpretDetections(document);
      return {
        kind: 'detections',
        uri: last.uri,
        detections: detections.map((d) => ({ label: d.label, confidence: d.confidence })),
        note,
      };
    }
  }
}

/**
 * The most of a stage's small outputs that is read: `timestamps.txt` of a ten-hour video is
 * under 1 MB and a detector document of 300 boxes under 100 kB. The bound keeps a stage gone
 * wrong from filling the orchestrator's memory; the video next to them is streamed past.
 */
export const MAX_SMALL_ARTIFACT_BYTES = 8 * 1024 * 1024;
/** A transcript is kept up to MAX_TRANSCRIPT_CHARS; more bytes than these could not add to it. */
const MAX_TRANSCRIPT_BYTES = MAX_TRANSCRIPT_CHARS * 4 + 4;

async function openObject(store: Store, uri: string, where: Where): Promise<Readable> {
  try {
    return await store.getStream(parseS3Uri(uri));
  } catch (err) {
    if (isNotFound(err)) {
      throw new FaveFailure(faveError('ARTIFACT_UNREADABLE', `${describeLocation(where, 'stage')} output ${uri} does not exist in the store`, where));
    }
    if (err instanceof FaveFailure && err.error.code === 'BAD_REQUEST') throw contract(where, `returned an output uri that is not s3://bucket/key: ${uri}`);
    throw err;
  }
}

/** The object's first `maxBytes` at most, and whether there was more. */
async function readObjectHead(store: Store, uri: string, where: Where, maxBytes: number): Promise<{ bytes: Buffer; cut: boolean }> {
  const body = await openObject(store, uri, where);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      const room = maxBytes - size;
      if (buf.length > room) {
        chunks.push(buf.subarray(0, room));
        return { bytes: Buffer.concat(chunks, maxBytes), cut: true };
      }
      chunks.push(buf);
      size += buf.length;
    }
  } finally {
    body.destroy();
  }
  return { bytes: Buffer.concat(chunks, size), cut: false };
}

async function readArchiveMember(store: Store, uri: string, member: string, where: Where): Promise<Buffer | null> {
  const body = await openObject(store, uri, where);
  try {
    return await readTarGzMember(body, member, { maxBytes: MAX_SMALL_ARTIFACT_BYTES });
  } catch (err) {
    if (err instanceof FaveFailure) throw new FaveFailure({ ...err.error, ...where, message: `${describeLocation(where, 'stage')} archive ${uri}: ${err.error.message}` });
    throw err;
  } finally {
    body.destroy();
  }
}

async function readJson(store: Store, uri: string, where: Where): Promise<unknown> {
  const { bytes, cut } = await readObjectHead(store, uri, where, MAX_SMALL_ARTIFACT_BYTES);
  if (cut) throw contract(where, `wrote ${uri}, which is larger than ${MAX_SMALL_ARTIFACT_BYTES} bytes`);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw contract(where, `wrote ${uri}, which is not JSON`);
  }
}

function metadataNumber(output: StageOutput, key: string): number | null {
  const value = output.metadata[key];
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return null;
}

function metadataInt(output: StageOutput, key: string): number | null {
  const value = metadataNumber(output, key);
  return value !== null && Number.isInteger(value) && value >= 0 ? value : null;
}
