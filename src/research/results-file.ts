import { z } from 'zod';

/**
 * One line of a results file in FAVE's format (`scripts/workload_generator.py`): a JSON list of
 * these. FAVE's own fields come first; `fave load` adds its own beside them, and FAVE's scripts
 * ignore what they do not read. Files from FAVE's experiments carry only the first five.
 */
export const ResultRecordSchema = z.looseObject({
  /** When the request was sent: ISO 8601, local time, no zone (Python's `datetime.now().isoformat()`). */
  timestamp: z.string(),
  duration_ms: z.number(),
  /** "success" when the HTTP call answered 2xx with JSON; "failure" otherwise. */
  status: z.string(),
  /** The orchestrator's answer (the fave-v1 envelope), or `{"error": "…"}` when there was none. */
  response: z.unknown(),
  profile: z.string().optional(),
  // What `fave load` adds.
  request_id: z.string().optional(),
  /** Milliseconds from the run's start at which the arrival process scheduled this request. */
  intended_start_ms: z.number().optional(),
  /** Milliseconds from the run's start at which it was sent. */
  started_ms: z.number().optional(),
  /** `started_ms - intended_start_ms`: how long it waited for a free slot (`--concurrency`). */
  queue_delay_ms: z.number().optional(),
  /** HTTP attempts made for this one request id (retries repeat the id). */
  attempts: z.number().int().optional(),
  http_status: z.number().int().nullable().optional(),
});
export type ResultRecord = z.infer<typeof ResultRecordSchema>;

export const ResultsFileSchema = z.array(ResultRecordSchema);

/** One call as the fave-v1 envelope lists it; loose, since FAVE's stages add fields of their own. */
const EnvelopeEntrySchema = z.looseObject({
  stage: z.string(),
  status: z.string().nullish(),
  metrics: z
    .looseObject({
      duration_ms: z.number().nullish(),
      cold_start: z.boolean().nullish(),
      cost_unit: z.number().nullish(),
    })
    .nullish(),
  clip_index: z.number().nullish(),
  frame_index: z.number().nullish(),
});
export type EnvelopeEntry = z.infer<typeof EnvelopeEntrySchema>;

const EnvelopeSchema = z.looseObject({
  status: z.string().nullish(),
  result: z
    .looseObject({
      linear: z.array(z.unknown()).nullish(),
      clips: z.array(z.looseObject({ stages: z.array(z.unknown()).nullish() })).nullish(),
    })
    .nullish(),
  // This orchestrator's own answer rides along in its fave-v1 envelope.
  answer: z.looseObject({ metrics: z.looseObject({ retries: z.number().nullish(), cost_units: z.number().nullish() }).nullish() }).nullish(),
});

export interface Envelope {
  status: string | null;
  /** Every call listed (its last attempt), linear ones first; `detector` marks the object detector's. */
  entries: Array<EnvelopeEntry & { detector: boolean }>;
  /** Stage-call retries this orchestrator reports for the request; null in FAVE's files. */
  retries: number | null;
  /** The cost of every attempt, retried ones included, as this orchestrator reports it; null in FAVE's files. */
  costOfAllAttempts: number | null;
}

/** The detector's calls: one per frame (they carry `frame_index`), or one per clip in FAVE's early answers. */
function isDetector(entry: EnvelopeEntry): boolean {
  return typeof entry.frame_index === 'number' || entry.stage === 'stage-object-detector';
}

/** What a results line's `response` says, read leniently: a malformed part counts as absent. */
export function readEnvelope(response: unknown): Envelope {
  const parsed = EnvelopeSchema.safeParse(response);
  if (!parsed.success) return { status: null, entries: [], retries: null, costOfAllAttempts: null };
  const { status, result, answer } = parsed.data;
  const entries: Envelope['entries'] = [];
  const add = (raw: unknown): void => {
    const entry = EnvelopeEntrySchema.safeParse(raw);
    if (entry.success) entries.push({ ...entry.data, detector: isDetector(entry.data) });
  };
  for (const raw of result?.linear ?? []) add(raw);
  for (const clip of result?.clips ?? []) for (const raw of clip.stages ?? []) add(raw);
  return { status: status ?? null, entries, retries: answer?.metrics?.retries ?? null, costOfAllAttempts: answer?.metrics?.cost_units ?? null };
}
