import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { StageRequest, StageStatus } from '../../transport/contract.ts';
import { REQUEST_ID_MESSAGE, REQUEST_ID_PATTERN } from '../../domain/request.ts';
import { FaveFailure } from '../../domain/errors.ts';
import { formatS3Uri, parseS3Uri, type ObjectLocation, type Store } from '../../persistence/store.ts';
import { ArchiveError, unpackTarGz } from './archive.ts';
import { ToolFailure } from './tools.ts';

/** One output of a stage, as it goes on the wire. */
export interface LocalStageOutput {
  type: string;
  uri: string;
  metadata: Record<string, unknown>;
}

export interface LocalStageMetrics {
  duration_ms: number;
  memory_limit_mb: null;
  cold_start: false;
  cost_unit: null;
  extra: Record<string, unknown>;
}

/** The stage response (`src/transport/contract.ts`) exactly as a local stage answers it. */
export interface LocalStageResponse {
  request_id: string;
  stage: string;
  outputs: LocalStageOutput[];
  metrics: LocalStageMetrics;
  status: StageStatus;
  message: string | null;
}

export type LocalStageFunction = (request: StageRequest, signal: AbortSignal) => Promise<LocalStageResponse>;

/**
 * The stage cannot work with its input: it answers `{status: "error", message}` like the Python
 * stages, which the orchestrator treats as a permanent failure (no retry).
 */
export class StageRejection extends Error {
  override name = 'StageRejection';
}

/** What a stage body gets: its request, the store, a private temp dir and the key helpers. */
export class StageContext {
  readonly input: ObjectLocation;
  readonly bucket: string;
  private inputFile: string | null = null;

  constructor(
    readonly store: Store,
    readonly request: StageRequest,
    readonly signal: AbortSignal,
    readonly workDir: string,
    input: ObjectLocation,
  ) {
    this.input = input;
    this.bucket = input.bucket;
  }

  /** The clip this call is about: `fanout.clip_index`, else a `clip_NNN` in the input name, else 0. */
  get clipIndex(): number {
    const fromFanout = this.request.fanout?.clip_index;
    if (fromFanout !== undefined) return fromFanout;
    const match = /clip_(\d+)/.exec(basename(this.input.key));
    return match ? Number(match[1]) : 0;
  }

  /** `requests/{request_id}/{stage}/{name}` in the input's bucket. */
  outputLocation(name: string): ObjectLocation {
    return { bucket: this.bucket, key: `requests/${this.request.request_id}/${this.request.stage}/${name}` };
  }

  path(name: string): string {
    return join(this.workDir, name);
  }

  /** Copies the input object to a local file named `name` (keeping the input's extension if `name` has none). */
  async downloadInput(name = 'input'): Promise<string> {
    const ext = /\.[A-Za-z0-9]{1,8}$/.exec(this.input.key)?.[0] ?? '';
    const target = this.path(name.includes('.') ? name : `${name}${ext.toLowerCase()}`);
    const stream = await this.store.getStream(this.input);
    await pipeline(stream, createWriteStream(target), { signal: this.signal });
    this.inputFile = target;
    return target;
  }

  /** Downloads the input archive and unpacks it into `dir`; returns the member names. */
  async unpackInput(dir = 'unpacked'): Promise<{ dir: string; names: string[] }> {
    const archive = await this.downloadInput('input.tar.gz');
    const target = this.path(dir);
    try {
      return { dir: target, names: await unpackTarGz(archive, target) };
    } catch (err) {
      if (err instanceof ArchiveError) throw new StageRejection(`input ${this.request.input_uri}: ${err.message}`);
      throw err;
    }
  }

  /**
   * Downloads the input and, when it is a gzip archive (by its first bytes, whatever its name),
   * unpacks it. Stages that accept "a video or an archive holding one" start here.
   */
  async openInput(): Promise<{ kind: 'archive'; dir: string; names: string[] } | { kind: 'file'; path: string }> {
    const file = await this.downloadInput();
    const handle = await open(file, 'r');
    const head = Buffer.alloc(2);
    try {
      await handle.read(head, 0, 2, 0);
    } finally {
      await handle.close();
    }
    if (head[0] !== 0x1f || head[1] !== 0x8b) return { kind: 'file', path: file };
    const dir = this.path('unpacked');
    try {
      return { kind: 'archive', dir, names: await unpackTarGz(file, dir) };
    } catch (err) {
      if (err instanceof ArchiveError) throw new StageRejection(`input ${this.request.input_uri}: ${err.message}`);
      throw err;
    }
  }

  /** The input video: the input itself, or the preferred video member of an input archive. */
  async videoInput(preferred: readonly string[]): Promise<string> {
    const input = await this.openInput();
    if (input.kind === 'file') return input.path;
    const name = pickMember(input.names, preferred, VIDEO_EXTENSIONS);
    if (!name) throw new StageRejection(`input archive ${this.request.input_uri} holds no video (members: ${input.names.join(', ') || 'none'})`);
    return join(input.dir, name);
  }

  async upload(name: string, file: string, contentType: string): Promise<string> {
    const loc = this.outputLocation(name);
    await this.store.putStream(loc, createReadStream(file), { contentType });
    return formatS3Uri(loc);
  }

  async uploadBody(name: string, body: Buffer | string, contentType: string): Promise<string> {
    const loc = this.outputLocation(name);
    await this.store.put(loc, body, { contentType });
    return formatS3Uri(loc);
  }

  /** Turns a tool failure into the stage's answer: `what: reason`. */
  rejectTool(err: unknown, what: string): never {
    if (err instanceof ToolFailure) throw new StageRejection(`${what}: ${this.describe(err)}`);
    throw err;
  }

  /** The tool's reason, naming the input by its URI and other files by their own name, not a temp path. */
  describe(err: ToolFailure): string {
    let reason = err.reason;
    if (this.inputFile) reason = reason.split(this.inputFile).join(this.request.input_uri);
    return reason.split(`${this.workDir}/`).join('').split(this.workDir).join('.');
  }
}

const STAGE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export type StageBody = (ctx: StageContext) => Promise<LocalStageOutput[]>;

export interface StageEnvironment {
  store: Store;
  /** Where the per-call temp dirs go; the system's temp dir by default. */
  workRoot?: string;
}

/**
 * Wraps a stage body: checks the request, gives it a temp dir (always removed), times it, and
 * maps failures. Bad input becomes `{status: "error"}`; store or machine trouble is thrown so
 * the caller answers 500, which the orchestrator may retry; an abort propagates as is.
 */
export function defineStage(env: StageEnvironment, body: StageBody): LocalStageFunction {
  return async (request, signal) => {
    const started = performance.now();
    const respond = (status: StageStatus, outputs: LocalStageOutput[], message: string | null): LocalStageResponse => ({
      request_id: request.request_id,
      stage: request.stage,
      outputs,
      metrics: { duration_ms: Math.round(performance.now() - started), memory_limit_mb: null, cold_start: false, cost_unit: null, extra: {} },
      status,
      message,
    });

    const problem = checkRequest(request);
    if (problem) return respond('error', [], problem);

    let input: ObjectLocation;
    try {
      input = parseS3Uri(request.input_uri);
    } catch (err) {
      if (err instanceof FaveFailure) return respond('error', [], err.error.message);
      throw err;
    }
    const ctx = new StageContext(env.store, request, signal, await mkdtemp(join(env.workRoot ?? tmpdir(), 'fave-stage-')), input);
    try {
      const outputs = await body(ctx);
      return respond('success', outputs, null);
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      if (err instanceof StageRejection) return respond('error', [], err.message);
      if (err instanceof ToolFailure) return respond('error', [], `${err.tool}: ${ctx.describe(err)}`);
      if (err instanceof FaveFailure && (err.error.code === 'NOT_FOUND' || err.error.code === 'BAD_REQUEST')) {
        return respond('error', [], err.error.message);
      }
      throw err;
    } finally {
      await rm(ctx.workDir, { recursive: true, force: true });
    }
  };
}

function checkRequest(request: StageRequest): string | null {
  if (!REQUEST_ID_PATTERN.test(request.request_id)) return `request_id ${REQUEST_ID_MESSAGE}`;
  // It becomes a key segment: nothing that could reach another request's files.
  if (!STAGE_SEGMENT.test(request.stage)) return `stage is not a usable name: ${JSON.stringify(request.stage)}`;
  return null;
}

/** `clip_007` */
export function clipName(index: number): string {
  return `clip_${String(index).padStart(3, '0')}`;
}

/** `frame_0042` */
export function frameName(index: number): string {
  return `frame_${String(index).padStart(4, '0')}`;
}

/** Video members of a clip archive, best first; the Python stages name theirs `clip_compressed.mp4`. */
export const CLIP_VIDEO_NAMES = ['clip.mp4', 'clip_compressed.mp4', 'video.mp4'] as const;

export const VIDEO_EXTENSIONS = ['.mp4', '.mkv', '.mov', '.webm', '.avi', '.m4v'] as const;

/** Picks the first member matching one of `preferred`, else the first with one of `extensions`. */
export function pickMember(names: readonly string[], preferred: readonly string[], extensions: readonly string[]): string | null {
  for (const p of preferred) if (names.includes(p)) return p;
  return names.find((n) => extensions.some((e) => n.toLowerCase().endsWith(e))) ?? null;
}
