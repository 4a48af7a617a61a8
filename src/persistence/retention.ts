import { FaveFailure, faveError } from '../domain/errors.ts';
import { mapLimited } from '../lib/limiter.ts';
import { listingEntryOf, RequestIndex } from './request-index.ts';
import { RequestRepository } from './request-repository.ts';
import { deleteKeys, listPages, requestKeys, type Store } from './store.ts';

export interface GcOptions {
  /** Finished requests that finished longer ago than this are removed. */
  olderThanMs: number;
  /** Say what would go, remove nothing. */
  dryRun: boolean;
  /** The clock (epoch ms); defaults to Date.now(). */
  now?: number;
  /** Told of each request as it is removed (or would be). */
  onRemoved?: (removed: RemovedRequest) => void;
}

export interface RemovedRequest {
  request_id: string;
  /** COMPLETED or FAILED; null for the leftovers of a request whose state.json was already gone. */
  status: 'COMPLETED' | 'FAILED' | null;
  finished_at: number | null;
  objects: number;
  bytes: number;
}

export interface GcReport {
  dry_run: boolean;
  cutoff: number;
  removed: RemovedRequest[];
  objects: number;
  bytes: number;
  /** Old requests left alone because they run (or run again). */
  running_skipped: number;
  /** Finished requests that had no listing entry (stored before the index) and were given one. */
  indexed: number;
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `30d`, `12h`, `90m`, `45s`, `500ms` in milliseconds; anything else is a BAD_REQUEST naming the flag. */
export function parseDuration(text: string, flag = '--older-than'): number {
  const match = DURATION.exec(text.trim());
  if (!match) throw new FaveFailure(faveError('BAD_REQUEST', `${flag}: "${text}" is not a duration such as 30d, 12h, 90m or 45s`));
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/**
 * Removes finished requests (COMPLETED or FAILED) that finished before `now - olderThanMs`, with
 * every object under `requests/{id}/`, then their index entries. Candidates come from the listing
 * index (its keys carry the start time: nothing is read for a request that started after the
 * cutoff), plus requests the index misses, which are indexed on the way. Each candidate's
 * state.json is read just before it is removed: a running one is never touched.
 *
 * state.json goes first, on its own, so a crash part-way leaves a request nobody can resume and
 * whose listing entry still names it; the next run removes the rest. The rest goes in batches
 * where the store deletes many objects a call (S3), one object a call otherwise.
 */
export async function collectGarbage(store: Store, bucket: string, options: GcOptions): Promise<GcReport> {
  const now = options.now ?? Date.now();
  const cutoff = now - options.olderThanMs;
  const index = new RequestIndex(store, bucket);
  const repository = new RequestRepository(store, bucket);
  const report: GcReport = { dry_run: options.dryRun, cutoff, removed: [], objects: 0, bytes: 0, running_skipped: 0, indexed: 0 };

  const candidates = new Map<string, number | null>();
  for (const id of await index.unindexed()) {
    const state = await repository.readState(id).catch(() => null);
    if (!state || state.envelope.status === 'RUNNING') continue;
    const entry = listingEntryOf(state.envelope.snapshot.context, state.envelope.status, state.envelope.updated_at);
    if (!options.dryRun) await index.putListed(entry);
    report.indexed++;
    if (entry.started_at < cutoff) candidates.set(id, entry.started_at);
  }
  for await (const page of index.listedPages()) {
    // A request cannot have finished before it started: later starts are not read at all.
    for (const entry of page) if (entry.started_at < cutoff) candidates.set(entry.request_id, entry.started_at);
  }

  await mapLimited([...candidates], 4, async ([id, startedAt]) => {
    const state = await repository.readState(id);
    const envelope = state?.envelope ?? null;
    if (envelope?.status === 'RUNNING') {
      report.running_skipped++;
      return;
    }
    const finishedAt = envelope ? (envelope.snapshot.context.finished_at ?? envelope.updated_at) : null;
    if (finishedAt !== null && finishedAt >= cutoff) return;
    const objects: Array<{ key: string; size: number | null }> = [];
    for await (const page of listPages(store, bucket, requestKeys.prefix(id), { sizes: true })) objects.push(...page.objects);
    const removed: RemovedRequest = {
      request_id: id,
      status: envelope ? (envelope.status === 'COMPLETED' ? 'COMPLETED' : 'FAILED') : null,
      finished_at: finishedAt,
      objects: objects.length,
      bytes: objects.reduce((sum, o) => sum + (o.size ?? 0), 0),
    };
    if (!options.dryRun) {
      const stateKey = requestKeys.state(id);
      if (envelope) await store.delete({ bucket, key: stateKey });
      const rest = objects.filter((o) => o.key !== stateKey).map((o) => o.key);
      // On S3 a request of thousands of frames is a few DeleteObjects calls, not a call per object.
      await deleteKeys(store, bucket, rest);
      await store.pruneEmpty?.(bucket, requestKeys.prefix(id));
      await index.dropMarker(id);
      if (startedAt !== null) await index.dropListed(startedAt, id);
      if (envelope && envelope.snapshot.context.started_at !== startedAt) await index.dropListed(envelope.snapshot.context.started_at, id);
    }
    report.removed.push(removed);
    report.objects += removed.objects;
    report.bytes += removed.bytes;
    options.onRemoved?.(removed);
  });
  report.removed.sort((a, b) => (a.request_id < b.request_id ? -1 : 1));
  return report;
}
