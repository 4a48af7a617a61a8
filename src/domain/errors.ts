import { z } from 'zod';
import { MAX_ERROR_CHARS, scrubSecrets, truncateText } from '../lib/redact.ts';
import { RunningStateSchema } from './states.ts';

/**
 * Errors are plain JSON values (they are persisted in state.json), with a code a program can
 * branch on, a message a person can act on, and the stage/clip/frame they concern.
 */
export const ErrorCodes = [
  'BAD_REQUEST',
  'BAD_CONFIG',
  'INPUT_NOT_FOUND',
  'REQUEST_NOT_FOUND',
  'INPUT_IMPORT_FAILED',
  'STAGE_NOT_FOUND',
  'STAGE_HTTP_ERROR',
  'STAGE_UNAVAILABLE',
  'STAGE_TIMEOUT',
  'STAGE_TRANSPORT',
  'STAGE_REPORTED_ERROR',
  'STAGE_CONTRACT',
  'ARTIFACT_UNREADABLE',
  'STORE_ERROR',
  'NOT_FOUND',
  'PRECONDITION_FAILED',
  'STATE_CORRUPT',
  'STATE_VERSION',
  'LEASE_HELD',
  'DEADLINE_EXCEEDED',
  'TOO_MANY_FAILURES',
  'CANCELLED',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export const FaveErrorSchema = z.object({
  code: z.enum(ErrorCodes),
  message: z.string(),
  /** The stage's function name (`stage-ffmpeg-2`), when the error concerns a stage call. */
  stage: z.string().optional(),
  /**
   * The pipeline's step when no stage call is concerned: the machine state it happened in
   * (`INIT` for the input's import, `FANOUT` for a fan-out that could not start).
   */
  step: RunningStateSchema.optional(),
  clip_index: z.number().int().optional(),
  frame_index: z.number().int().optional(),
  attempts: z.number().int().optional(),
  http_status: z.number().int().optional(),
  /** The input at fault, as its caller names it: a request field (`video_uri`), a header, a variable. */
  field: z.string().optional(),
  /** True when a retry may succeed (transport errors, timeouts, 408/429/5xx). */
  transient: z.boolean().optional(),
});
export type FaveError = z.infer<typeof FaveErrorSchema>;

/**
 * Errors are stored and shown, and their text often comes from elsewhere (a stage's body, an
 * exception): credentials are scrubbed from it and its length is bounded, once, here.
 */
export function faveError(code: ErrorCode, message: string, where: Omit<FaveError, 'code' | 'message'> = {}): FaveError {
  return { code, message: cleanMessage(message), ...where };
}

export function cleanMessage(message: string): string {
  return truncateText(scrubSecrets(message), MAX_ERROR_CHARS);
}

/** Thrown wrapper so a FaveError can cross `throw` boundaries and come back out intact. */
export class FaveFailure extends Error {
  constructor(readonly error: FaveError) {
    super(error.message);
    this.name = `FaveFailure(${error.code})`;
  }
}

const KNOWN_CODES: ReadonlySet<string> = new Set(ErrorCodes);

/**
 * A FaveError value, not merely something with a code: Node's own errors carry string codes
 * too (`ERR_MODULE_NOT_FOUND`, `ENOENT`), and those are not ours to pass on as if they were.
 */
export function isFaveError(value: unknown): value is FaveError {
  if (typeof value !== 'object' || value === null) return false;
  const { code, message } = value as { code?: unknown; message?: unknown };
  return typeof code === 'string' && KNOWN_CODES.has(code) && typeof message === 'string';
}

/** Normalizes anything thrown into a FaveError; unknown throwables become INTERNAL. */
export function toFaveError(value: unknown, where: Omit<FaveError, 'code' | 'message'> = {}): FaveError {
  if (value instanceof FaveFailure) return { ...where, ...value.error };
  if (isFaveError(value)) return { ...where, ...value, message: cleanMessage(value.message) };
  const message = cleanMessage(value instanceof Error ? value.message : String(value));
  return { code: 'INTERNAL', message, ...where };
}

/** Where an error happened: the stage or step, and the clip and frame of the call. */
export type ErrorLocation = Pick<FaveError, 'stage' | 'step' | 'clip_index' | 'frame_index'>;

/** The location of a stage call: its function, and its clip and frame when it has them. */
export function callLocation(functionName: string, fanout: { clip_index?: number | undefined; frame_index?: number | undefined }): ErrorLocation {
  return {
    stage: functionName,
    ...(fanout.clip_index !== undefined ? { clip_index: fanout.clip_index } : {}),
    ...(fanout.frame_index !== undefined ? { frame_index: fanout.frame_index } : {}),
  };
}

export { describeLocation } from './location.ts';
