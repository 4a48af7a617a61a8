import { z } from 'zod';
import { TopLevelStateSchema, type PipelineContext } from '../domain/context.ts';
import { ProgressSummarySchema, RequestStatusSchema, summarizeProgress } from '../domain/progress.ts';
import { REQUEST_ID_PATTERN, RequestIdSchema } from '../domain/request.ts';
import { isNotFound, listPages, MAX_LIST_PAGE, type Store } from './store.ts';
import { mapLimited } from '../lib/limiter.ts';

/**
 * Two small indexes beside `requests/`, so that what a replica does all the time costs what runs,
 * not what was ever stored (docs/scale.md):
 *
 * - `index/running/{id}`: one marker per running request, written right after its claim and
 *   before its first stage call, removed once it has finished. Orphan sweeps list this prefix only.
 * - `index/requests/{inverted start time}-{id}`: one small entry per finished request, newest
 *   first in key order, carrying what the request list shows. The list pages through it; the
 *   full scan and `fave gc` read a request's start time and id from the key alone.
 *
 * A crash between a state.json write and an index write is repaired by the sweeps: a marker
 * whose state is finished (or gone) is dropped, and a request with neither a marker nor an entry
 * is found by the full scan (`unindexed`), which also indexes buckets written before the index.
 */

const RUNNING_PREFIX = 'index/running/';
const LISTED_PREFIX = 'index/requests/';
const REQUESTS_PREFIX = 'requests/';
/** Start times (epoch ms) are inverted against this, 13 digits, so the newest sort first. */
const TIME_CEILING = 9_999_999_999_999;
const TIME_DIGITS = 13;

export const indexKeys = {
  running: (requestId: string) => `${RUNNING_PREFIX}${requestId}`,
  listed: (startedAt: number, requestId: string) => `${LISTED_PREFIX}${invertedTime(startedAt)}-${requestId}`,
  runningPrefix: RUNNING_PREFIX,
  listedPrefix: LISTED_PREFIX,
};

function invertedTime(startedAt: number): string {
  return String(TIME_CEILING - Math.max(0, Math.min(TIME_CEILING, Math.floor(startedAt)))).padStart(TIME_DIGITS, '0');
}

const CURSOR_PATTERN = new RegExp(`^\\d{${TIME_DIGITS}}-${REQUEST_ID_PATTERN.source.slice(1, -1)}$`);

/** A list cursor: the listing entry's key after its prefix (`{inverted time}-{id}`). */
export const ListCursorSchema = z.string().regex(CURSOR_PATTERN, 'must be a next_cursor this list answered');

/** The id and start time a listing key names; null for a key that is not one. */
export function parseListedKey(key: string): { request_id: string; started_at: number } | null {
  if (!key.startsWith(LISTED_PREFIX)) return null;
  const tail = key.slice(LISTED_PREFIX.length);
  if (!CURSOR_PATTERN.test(tail)) return null;
  return { request_id: tail.slice(TIME_DIGITS + 1), started_at: TIME_CEILING - Number(tail.slice(0, TIME_DIGITS)) };
}

const RunningMarkerSchema = z.object({ request_id: RequestIdSchema, started_at: z.number(), owner: z.string() });

/** What the request list shows of a finished request, kept in its listing entry. */
export const ListingEntrySchema = z.object({
  request_id: RequestIdSchema,
  status: RequestStatusSchema,
  state: TopLevelStateSchema,
  video_uri: z.string(),
  query: z.string().nullable(),
  profile: z.string().nullable(),
  started_at: z.number(),
  finished_at: z.number().nullable(),
  wall_ms: z.number(),
  progress: ProgressSummarySchema,
  error: z.string().nullable(),
});
export type ListingEntry = z.infer<typeof ListingEntrySchema>;

/** The listing entry of a request that has finished, from its context. */
export function listingEntryOf(context: PipelineContext, status: 'COMPLETED' | 'FAILED', updatedAt: number): ListingEntry {
  const finishedAt = context.finished_at ?? updatedAt;
  return {
    request_id: context.request_id,
    status,
    state: status,
    video_uri: context.video_uri,
    query: context.query,
    profile: context.settings.profile,
    started_at: context.started_at,
    finished_at: finishedAt,
    wall_ms: Math.max(0, finishedAt - context.started_at),
    progress: summarizeProgress(context),
    error: context.error?.message ?? null,
  };
}

export interface ListedPage {
  entries: ListingEntry[];
  /** The cursor of the page after this one; null on the last. */
  next: string | null;
}

export class RequestIndex {
  constructor(
    private readonly store: Store,
    private readonly bucket: string,
  ) {}

  /**
   * Marks a claimed request as running. A redriven request had finished: its listing entry goes,
   * so the full scan does not take it for finished should the process die before it ends again.
   */
  async markRunning(requestId: string, startedAt: number, owner: string, redrive: boolean): Promise<void> {
    const body = JSON.stringify({ request_id: requestId, started_at: startedAt, owner });
    await this.store.put(this.at(indexKeys.running(requestId)), body, { contentType: 'application/json' });
    if (redrive) await this.store.delete(this.at(indexKeys.listed(startedAt, requestId)));
  }

  /** A finished request: its listing entry first, then its marker goes (the sweeps repair the gap). */
  async markFinished(entry: ListingEntry): Promise<void> {
    await this.putListed(entry);
    await this.dropMarker(entry.request_id);
  }

  async putListed(entry: ListingEntry): Promise<void> {
    await this.store.put(this.at(indexKeys.listed(entry.started_at, entry.request_id)), JSON.stringify(entry), { contentType: 'application/json' });
  }

  async dropMarker(requestId: string): Promise<void> {
    await this.store.delete(this.at(indexKeys.running(requestId)));
  }

  async dropListed(startedAt: number, requestId: string): Promise<void> {
    await this.store.delete(this.at(indexKeys.listed(startedAt, requestId)));
  }

  /** Ids of the running markers, a page of the listing at a time; ill-formed keys are skipped. */
  async *runningPages(): AsyncGenerator<string[]> {
    for await (const page of listPages(this.store, this.bucket, RUNNING_PREFIX)) {
      yield page.objects.map((o) => o.key.slice(RUNNING_PREFIX.length)).filter((id) => REQUEST_ID_PATTERN.test(id));
    }
  }

  /** The first `limit` running markers' ids (the request list's first page). */
  async someRunning(limit: number): Promise<string[]> {
    const page = await this.store.listPage(this.bucket, RUNNING_PREFIX, { limit });
    return page.objects.map((o) => o.key.slice(RUNNING_PREFIX.length)).filter((id) => REQUEST_ID_PATTERN.test(id));
  }

  /** Every running marker's id (the sweeps: as many as run, in pages of a thousand). */
  async runningIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const page of this.runningPages()) ids.push(...page);
    return ids;
  }

  /** When the running marker of a request was written by, and for which start; null without one. */
  async runningMarker(requestId: string): Promise<z.infer<typeof RunningMarkerSchema> | null> {
    try {
      const body = await this.store.get(this.at(indexKeys.running(requestId)));
      const parsed = RunningMarkerSchema.safeParse(parseJson(body));
      return parsed.success ? parsed.data : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Every listing entry's key, id and start time, page by page (no entry is read). */
  async *listedPages(): AsyncGenerator<Array<{ key: string; request_id: string; started_at: number }>> {
    for await (const page of listPages(this.store, this.bucket, LISTED_PREFIX)) {
      yield page.objects.flatMap((o) => {
        const parsed = parseListedKey(o.key);
        return parsed ? [{ key: o.key, ...parsed }] : [];
      });
    }
  }

  /**
   * The slow full scan: ids under `requests/` with neither a running marker nor a listing entry.
   * Listings only (one call per thousand requests and per thousand entries); nothing is read.
   */
  async unindexed(): Promise<string[]> {
    const known = new Set<string>();
    for await (const page of this.runningPages()) for (const id of page) known.add(id);
    for await (const page of this.listedPages()) for (const entry of page) known.add(entry.request_id);
    const found: string[] = [];
    for await (const page of listPages(this.store, this.bucket, REQUESTS_PREFIX, { delimiter: true })) {
      for (const prefix of page.prefixes) {
        const id = prefix.slice(REQUESTS_PREFIX.length, -1);
        if (REQUEST_ID_PATTERN.test(id) && !known.has(id)) found.push(id);
      }
    }
    return found;
  }

  /** One page of finished requests, newest first: one listing call and one small read per entry. */
  async listed(options: { after?: string | null; limit: number }): Promise<ListedPage> {
    const limit = Math.max(1, Math.min(MAX_LIST_PAGE, options.limit));
    const page = await this.store.listPage(this.bucket, LISTED_PREFIX, {
      limit,
      ...(options.after ? { startAfter: `${LISTED_PREFIX}${options.after}` } : {}),
    });
    const keys = page.objects.map((o) => o.key).filter((key) => parseListedKey(key) !== null);
    const entries = await mapLimited(keys, 8, async (key) => {
      try {
        const parsed = ListingEntrySchema.safeParse(parseJson(await this.store.get(this.at(key))));
        return parsed.success ? parsed.data : null;
      } catch (err) {
        // Removed (a redrive, `fave gc`) between the listing and the read.
        if (isNotFound(err)) return null;
        throw err;
      }
    });
    const last = keys.at(-1);
    return {
      entries: entries.filter((e): e is ListingEntry => e !== null),
      next: page.next !== null && last !== undefined ? last.slice(LISTED_PREFIX.length) : null,
    };
  }

  private at(key: string) {
    return { bucket: this.bucket, key };
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
}
