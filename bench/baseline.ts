import { Agent, request } from 'undici';
import { StageResponseSchema, type StageResponse } from '../src/transport/contract.ts';
import { inputExtension } from '../src/input/import.ts';
import { formatS3Uri, parseS3Uri, requestKeys, type ObjectLocation, type Store } from '../src/persistence/store.ts';
import { extractFacts } from '../src/transport/stage-facts.ts';
import { buildStageRequest } from '../src/transport/contract.ts';
import { describeZodIssue } from '../src/lib/zod-issue.ts';
import { DEFAULT_STAGE_NAMES, type StageKey, type StageFacts } from '../src/domain/stage.ts';

/**
 * The orchestration algorithm this project replaces (DESIGN §1), rebuilt faithfully so it can
 * run against the same gateway and store: clips one after another, every stage call awaited
 * in turn, no retries and no per-stage timeout, and for every stage entry the whole state
 * file is read, parsed, updated and written back. Reading stage outputs and building the
 * stage requests reuse the project's own code, so the comparison is about orchestration only.
 */

export interface BaselineOptions {
  gatewayUrl: string;
  store: Store;
  bucket: string;
  requestId: string;
  videoUri: string;
  profile?: string;
  stageNames?: Record<StageKey, string>;
  detectorEnabled?: boolean;
}

export interface BaselineResult {
  wall_ms: number;
  invocations: number;
  clips: number;
  state_writes: number;
  state_bytes_written: number;
  final_state_bytes: number;
}

/** One stage call as the state file records it. */
interface StepEntry {
  stage: string;
  clip_index: number | null;
  frame_index: number | null;
  input_uri: string;
  status: 'running' | 'success' | 'skipped' | 'simulated';
  outputs: StageResponse['outputs'];
  metrics: StageResponse['metrics'];
  started_at: number;
  ended_at: number | null;
}

interface BaselineState {
  request_id: string;
  status: 'RUNNING' | 'COMPLETED';
  current_stage: string | null;
  started_at: number;
  updated_at: number;
  steps: StepEntry[];
}

interface ClipSummary {
  index: number;
  uri: string;
  start_s: number | null;
  end_s: number | null;
  transcript: string | null;
  transcript_note: string | null;
  objects: Record<string, { count: number; max_confidence: number }>;
}

export async function runBaseline(options: BaselineOptions): Promise<BaselineResult> {
  const { store, bucket, requestId } = options;
  const names = options.stageNames ?? DEFAULT_STAGE_NAMES;
  const profile = options.profile ?? 'default';
  const stateLoc: ObjectLocation = { bucket, key: requestKeys.state(requestId) };
  const agent = new Agent({ connections: 1, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
  let stateWrites = 0;
  let stateBytes = 0;
  let invocations = 0;
  /** The outcome of the previous call, folded into the file at the next entry (as the original did). */
  let finished: StepEntry | null = null;

  const writeState = async (state: BaselineState) => {
    const body = JSON.stringify(state);
    await store.put(stateLoc, body, { contentType: 'application/json' });
    stateWrites++;
    stateBytes += Buffer.byteLength(body);
  };

  const readState = async (): Promise<BaselineState> => JSON.parse((await store.get(stateLoc)).toString('utf8')) as BaselineState;

  /** Stage entry: read the whole file, record the step, write the whole file back. */
  const enter = async (entry: StepEntry) => {
    const state = await readState();
    if (finished) state.steps[state.steps.length - 1] = finished;
    finished = null;
    state.steps.push(entry);
    state.current_stage = entry.stage;
    state.updated_at = Date.now();
    await writeState(state);
  };

  const call = async (stage: StageKey, inputUri: string, fanout: { clip_index: number; frame_index?: number; frame_uri?: string } | null): Promise<StageFacts> => {
    const functionName = names[stage];
    const entry: StepEntry = {
      stage: functionName,
      clip_index: fanout?.clip_index ?? null,
      frame_index: fanout?.frame_index ?? null,
      input_uri: inputUri,
      status: 'running',
      outputs: [],
      metrics: null,
      started_at: Date.now(),
      ended_at: null,
    };
    await enter(entry);
    invocations++;
    const payload = buildStageRequest({ request_id: requestId, function_name: functionName, task: { stage, input_uri: inputUri, fanout: fanout ?? {} }, profile });
    const response = await request(`${options.gatewayUrl}/function/${encodeURIComponent(functionName)}`, {
      method: 'POST',
      body: JSON.stringify(payload),
      headers: { 'content-type': 'application/json' },
      dispatcher: agent,
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`${functionName} answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
    const parsed = StageResponseSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${functionName} broke the contract at ${describeZodIssue(parsed.error)}`);
    const answer = parsed.data;
    if (answer.status === 'error') throw new Error(`${functionName} reported an error: ${answer.message ?? ''}`);
    const where = {
      stage: functionName,
      ...(fanout ? { clip_index: fanout.clip_index } : {}),
      ...(fanout?.frame_index !== undefined ? { frame_index: fanout.frame_index } : {}),
    };
    const facts = await extractFacts(stage, answer, store, where);
    finished = { ...entry, status: answer.status, outputs: answer.outputs, metrics: answer.metrics, ended_at: Date.now() };
    return facts;
  };

  const started = performance.now();
  try {
    const startedAt = Date.now();
    await writeState({ request_id: requestId, status: 'RUNNING', current_stage: null, started_at: startedAt, updated_at: startedAt, steps: [] });

    const inputLoc = { bucket, key: requestKeys.input(requestId, inputExtension(options.videoUri)) };
    await store.copy(parseS3Uri(options.videoUri), inputLoc);

    const media = await call('ffmpeg0', formatS3Uri(inputLoc), null);
    const segments = await call('librosa', media.uri, null);
    const cut = await call('ffmpeg1', segments.uri, null);
    if (cut.kind !== 'clips') throw new Error('stage-ffmpeg-1 gave no clips');
    const times = segments.kind === 'timestamps' ? segments.clip_times : null;

    const clips: ClipSummary[] = [];
    for (const clip of cut.clips) {
      const fanout = { clip_index: clip.index };
      const compressed = await call('ffmpeg2', clip.uri, fanout);
      const transcript = await call('deepspeech', compressed.uri, fanout);
      const frames = await call('ffmpeg3', transcript.uri, fanout);
      const summary: ClipSummary = {
        index: clip.index,
        uri: clip.uri,
        start_s: clip.start_s ?? times?.[clip.index]?.start_s ?? null,
        end_s: clip.end_s ?? times?.[clip.index]?.end_s ?? null,
        transcript: transcript.kind === 'transcript' ? transcript.transcript : null,
        transcript_note: transcript.kind === 'transcript' ? transcript.note : null,
        objects: {},
      };
      if ((options.detectorEnabled ?? true) && frames.kind === 'frames') {
        for (const frame of frames.frames) {
          const found = await call('detector', frame.uri, { clip_index: clip.index, frame_index: frame.index, frame_uri: frame.uri });
          if (found.kind !== 'detections') continue;
          for (const d of found.detections) {
            const o = (summary.objects[d.label] ??= { count: 0, max_confidence: 0 });
            o.count++;
            o.max_confidence = Math.max(o.max_confidence, d.confidence);
          }
        }
      }
      clips.push(summary);
    }

    const finalLoc = { bucket, key: requestKeys.final(requestId) };
    await store.put(finalLoc, `${JSON.stringify({ request_id: requestId, status: 'COMPLETED', clips }, null, 2)}\n`, { contentType: 'application/json' });
    const state = await readState();
    if (finished) state.steps[state.steps.length - 1] = finished;
    state.status = 'COMPLETED';
    state.current_stage = null;
    state.updated_at = Date.now();
    await writeState(state);

    return {
      wall_ms: performance.now() - started,
      invocations,
      clips: clips.length,
      state_writes: stateWrites,
      state_bytes_written: stateBytes,
      final_state_bytes: (await store.head(stateLoc))?.size ?? 0,
    };
  } finally {
    await agent.close();
  }
}
