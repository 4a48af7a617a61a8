import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { DispatchMarkerSchema, type DispatchMarker } from '../domain/invocations.ts';
import { deleteKeys, type Appender, type Store } from './store.ts';

/**
 * The dispatch journal of one request: every stage-call attempt is written here, durably, before
 * it is sent. state.json is written in coalesced batches, so an attempt in flight at a crash (or
 * finished but not yet in a written state) would otherwise leave no trace although the gateway
 * served it; on resume the journal's attempts that state.json has no record of are recorded as
 * interrupted, and `metrics.invocations` equals what the gateway served.
 *
 * Attempts sent together share one write, of a few hundred bytes, not a rewrite of state.json:
 * the attempts of one turn of the event loop, in one line appended to this journal's own file
 * where the store can append (the filesystem), else in one small object (S3); both under
 * `requests/{id}/metadata/dispatches/`, one JSON array of markers per line.
 */

/**
 * Markers waiting when an append goes out before the turn ends. Answers arrive one callback each,
 * and each dispatches the next attempt: an append per marker was a system call per attempt (8 µs
 * on a busy machine), one per turn held the first attempt of a wave of 64 answers back for all the
 * rest. At four, an attempt waits for at most three more answers to be handled.
 */
const APPEND_BATCH = 4;

export const dispatchPrefix = (requestId: string) => `requests/${requestId}/metadata/dispatches/`;

/** An attempt recorded, then not sent after all (the request was stopped in between). */
const UnsentSchema = z.object({ id: z.string(), unsent: z.literal(true) });
type Unsent = z.infer<typeof UnsentSchema>;

/** Where a process records the attempts it is about to send. */
export interface DispatchLog {
  /** Resolves once the marker is durable; the attempt may be sent then. */
  record(requestId: string, marker: DispatchMarker): Promise<void>;
  /** Takes back a marker whose attempt was stopped before it was sent. */
  unsent(requestId: string, id: string): Promise<void>;
}

interface Waiting {
  marker: DispatchMarker | Unsent;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Writes one request's markers: those recorded together go in one line or object, and
 * successive writes run side by side, so a dispatch waits for one small write only.
 */
export class DispatchJournal {
  private waiting: Waiting[] = [];
  private scheduled = false;
  private seq = 0;
  /** Unique per journal, so two processes (or two runs) never write the same key. */
  private readonly epoch = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
  private appender: Promise<Appender> | null = null;

  constructor(
    private readonly store: Store,
    private readonly bucket: string,
    private readonly requestId: string,
    private readonly onWrite?: (bytes: number) => void,
  ) {}

  record(marker: DispatchMarker | Unsent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ marker, resolve, reject });
      if (this.store.openAppender && this.waiting.length === APPEND_BATCH) {
        queueMicrotask(() => void this.write());
      } else if (!this.scheduled) {
        // The turn's end writes whatever is still waiting then.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          void this.write();
        });
      }
    });
  }

  private async write(): Promise<void> {
    if (this.waiting.length === 0) return;
    const batch = this.waiting;
    this.waiting = [];
    const body = JSON.stringify(batch.map((w) => w.marker));
    try {
      // A marker must outlive the process (a crash, a SIGKILL); one lost with the whole machine
      // only makes the count low by the calls in flight then, so it is not worth an fsync each.
      if (this.store.openAppender) {
        this.appender ??= this.store.openAppender({ bucket: this.bucket, key: `${dispatchPrefix(this.requestId)}${this.epoch}.jsonl` });
        await (await this.appender).append(`${body}\n`);
      } else {
        const key = `${dispatchPrefix(this.requestId)}${this.epoch}-${String(this.seq++).padStart(8, '0')}.json`;
        await this.store.put({ bucket: this.bucket, key }, body, { contentType: 'application/json', sync: false });
      }
      this.onWrite?.(Buffer.byteLength(body));
      for (const w of batch) w.resolve();
    } catch (err) {
      // A failed open is not kept: the next batch tries again.
      const opening = this.appender;
      if (
        opening &&
        !(await opening.then(
          () => true,
          () => false,
        )) &&
        this.appender === opening
      )
        this.appender = null;
      for (const w of batch) w.reject(err);
    }
  }

  /** Releases the journal's file, once the request no longer runs here. */
  async close(): Promise<void> {
    const appender = this.appender;
    this.appender = null;
    if (appender) await appender.then((a) => a.close()).catch(() => undefined);
  }
}

/** Every marker written for a request, by any process; unreadable objects are skipped. */
export async function readDispatches(store: Store, bucket: string, requestId: string): Promise<DispatchMarker[]> {
  const keys = await store.list(bucket, dispatchPrefix(requestId));
  const markers: DispatchMarker[] = [];
  const unsent = new Set<string>();
  const READERS = 16;
  for (let i = 0; i < keys.length; i += READERS) {
    const bodies = await Promise.all(keys.slice(i, i + READERS).map((key) => store.get({ bucket, key }).catch(() => null)));
    for (const line of bodies.flatMap((body) => (body ? body.toString('utf8').split('\n') : []))) {
      if (!line) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        // A write cut short by the crash itself: its attempts were never sent.
        continue;
      }
      const list = z.array(z.union([UnsentSchema, DispatchMarkerSchema])).safeParse(parsed);
      if (!list.success) continue;
      for (const entry of list.data) {
        if ('unsent' in entry) unsent.add(entry.id);
        else markers.push(entry);
      }
    }
  }
  return markers.filter((m) => !unsent.has(m.id));
}

/**
 * Removes a finished request's journal: every attempt in it has its record in state.json. On S3,
 * where the journal is an object per batch of dispatches, that is a few DeleteObjects calls.
 * Best effort: what is left stays readable and is removed with the request.
 */
export async function clearDispatches(store: Store, bucket: string, requestId: string): Promise<void> {
  const keys = await store.list(bucket, dispatchPrefix(requestId));
  await deleteKeys(store, bucket, keys).catch(() => undefined);
}
