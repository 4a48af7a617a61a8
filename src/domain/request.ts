import { z } from 'zod';
import { FaveFailure, faveError } from './errors.ts';
import { zodIssue } from '../lib/zod-issue.ts';

/** Anything else is rejected before a storage key is built from it. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** What every surface says of a request id that does not match, after the name of its field. */
export const REQUEST_ID_MESSAGE = `must match ${REQUEST_ID_PATTERN.source}`;

export const RequestIdSchema = z.string().regex(REQUEST_ID_PATTERN, REQUEST_ID_MESSAGE);

/** A video URI longer than this is refused: it is stored with the request and shown everywhere. */
export const MAX_VIDEO_URI_CHARS = 4096;

export const PipelineRequestSchema = z.strictObject({
  video_uri: z.string().trim().min(1, 'must not be empty').max(MAX_VIDEO_URI_CHARS, `must be at most ${MAX_VIDEO_URI_CHARS} characters`),
  query: z
    .string()
    .max(1000, 'must be at most 1000 characters')
    .nullish()
    .transform((q) => (q && q.trim() ? q.trim() : null)),
  profile: z
    .string()
    .min(1)
    .nullish()
    .transform((p) => p ?? null),
  request_id: RequestIdSchema.nullish().transform((id) => id ?? null),
});
export type PipelineRequestInput = z.input<typeof PipelineRequestSchema>;
export type PipelineRequest = z.infer<typeof PipelineRequestSchema>;

/** A request as submitted, checked; anything else is a BAD_REQUEST naming the field. */
export function parsePipelineRequest(raw: unknown): PipelineRequest {
  const parsed = PipelineRequestSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = zodIssue(parsed.error);
  const field = issue.path ?? 'body';
  throw new FaveFailure(faveError('BAD_REQUEST', `${field}: ${issue.message}`, { field }));
}

/** Refuses an id that is not a request id before a storage key is built from it. */
export function assertRequestId(requestId: string): void {
  const parsed = RequestIdSchema.safeParse(requestId);
  if (!parsed.success) throw new FaveFailure(faveError('BAD_REQUEST', `request_id: ${zodIssue(parsed.error).message}`, { field: 'request_id' }));
}
