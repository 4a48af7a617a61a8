import { FaveFailure, faveError } from '../domain/errors.ts';
import { isPreconditionFailed, type ObjectLocation, type Store } from './store.ts';
import type { StateEnvelope } from './state-file.ts';
import type { ClipState } from '../domain/context.ts';
import { envelopePartsInSlices, serializeClipAhead } from './state-serializer.ts';
import { storedClip } from './stored-clip.ts';

export interface StateWriterOptions {
  store: Store;
  location: ObjectLocation;
  /** 0: write as soon as the previous write is done; otherwise at most one write per interval. */
  intervalMs: number;
  /** Compare-and-swap on the ETag of our last write, where the store honours it. */
  conditional: boolean;
  /** ETag of the object as we last saw it; null when we are creating it. */
  etag: string | null;
  onWrite?: (bytes: number) => void;
}

/** The longest the event loop is held by serializing one write before answers get their turn, ms. */
const SERIALIZE_SLICE_MS = 2;

/**
 * Serializes and coalesces the writes of one request's state.json. Writes never overlap, the
 * newest snapshot wins, and a write that would overwrite someone else's (precondition failed)
 * stops all further writes: the lease was lost.
 */
export class StateWriter {
  bytesWritten = 0;
  writes = 0;
  private build: (() => StateEnvelope) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private writing = false;
  private urgent = false;
  private lastWriteAt = 0;
  private closed = false;
  private failure: FaveFailure | null = null;
  private etag: string | null;
  private readonly stopListeners = new Set<(failure: FaveFailure) => void>();
  private readonly writtenListeners = new Set<(envelope: StateEnvelope) => void>();

  constructor(private readonly options: StateWriterOptions) {
    this.etag = options.etag;
  }

  get lost(): FaveFailure | null {
    return this.failure;
  }

  /** The ETag of our last write as stored, and whether another write is on its way now. */
  get stored(): { etag: string | null; writing: boolean } {
    return { etag: this.etag, writing: this.writing };
  }

  /**
   * Called once, as soon as writes stop for good (another owner's write got in first, or the
   * store kept failing): whoever drives the request must stop at once, not at its next change.
   */
  onStop(listener: (failure: FaveFailure) => void): void {
    if (this.failure) listener(this.failure);
    else this.stopListeners.add(listener);
  }

  /** Told of every envelope that is now stored, as its write lands. */
  onWritten(listener: (envelope: StateEnvelope) => void): void {
    this.writtenListeners.add(listener);
  }

  /** The same as `onStop`. */
  onLost(listener: (failure: FaveFailure) => void): void {
    this.onStop(listener);
  }

  /** Records the newest envelope; `urgent` writes it without waiting out the interval. */
  request(build: () => StateEnvelope, urgent: boolean): void {
    if (this.failure || this.closed) return;
    this.build = build;
    this.urgent ||= urgent || this.options.intervalMs === 0;
    this.schedule();
  }

  /**
   * Claims the request: writes the first envelope now (create-if-absent for a new request,
   * compare-and-swap on the ETag read for a resumed one) and fails with LEASE_HELD if another
   * owner got there first. Nothing may run for the request before this succeeds.
   */
  async acquire(envelope: StateEnvelope): Promise<void> {
    this.build = () => envelope;
    this.urgent = true;
    this.schedule();
    await this.chain;
    if (this.failure) throw this.failure;
  }

  /**
   * A clip that will not change again: its bytes are made now, so that the next write (the last
   * one, on the way to the answer, above all) finds them made.
   */
  prepare(clip: ClipState): void {
    if (this.failure || this.closed) return;
    serializeClipAhead(clip, storedClip);
  }

  /** Writes whatever is pending and waits for every write to land. */
  async flush(): Promise<void> {
    while ((this.writing || this.build) && !this.failure) {
      this.urgent = true;
      this.schedule();
      await this.chain;
    }
    if (this.failure) throw this.failure;
  }

  /** Drops anything not yet written and refuses further requests. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.closed = true;
    this.build = null;
  }

  /**
   * Starts a write now when it is urgent or the interval since the last write has passed,
   * otherwise arms one timer for when it will have. One write at a time; the newest wins.
   */
  private schedule(): void {
    if (this.writing || !this.build || this.failure) return;
    const wait = this.urgent ? 0 : this.lastWriteAt + this.options.intervalMs - Date.now();
    if (wait > 0) {
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.schedule();
      }, wait);
      return;
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const build = this.build;
    this.build = null;
    this.urgent = false;
    this.writing = true;
    this.lastWriteAt = Date.now();
    this.chain = this.chain
      .then(() => this.writeOnce(build()))
      .finally(() => {
        this.writing = false;
        this.schedule();
      });
  }

  /** No write is made after this: not the pending one, not a later request, not a flush. */
  private stop(failure: FaveFailure): void {
    this.failure = failure;
    this.build = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.writtenListeners.clear();
    const listeners = [...this.stopListeners];
    this.stopListeners.clear();
    for (const listener of listeners) listener(failure);
  }

  private async writeOnce(envelope: StateEnvelope): Promise<void> {
    // In parts: most are the serializer's cached per-clip buffers, so nothing of the size of the
    // whole file is allocated for a write.
    const body = await envelopePartsInSlices(envelope, storedClip, SERIALIZE_SLICE_MS);
    // Closed while it was being serialized: dropped, as anything else not yet written.
    if (this.closed || this.failure) return;
    let bytes = 0;
    for (const part of body) bytes += part.length;
    const { store, location, conditional } = this.options;
    for (let attempt = 1; ; attempt++) {
      try {
        const options = conditional ? (this.etag ? { ifMatch: this.etag } : { ifNoneMatch: '*' as const }) : {};
        const info = await store.put(location, body, { contentType: 'application/json', ...options });
        this.etag = info.etag;
        this.bytesWritten += bytes;
        this.writes++;
        this.options.onWrite?.(bytes);
        for (const listener of this.writtenListeners) listener(envelope);
        return;
      } catch (err) {
        if (isPreconditionFailed(err)) {
          this.stop(new FaveFailure(faveError('LEASE_HELD', `state.json of ${envelope.request_id} was changed by another owner; this process stops working on it`)));
          return;
        }
        const transient = err instanceof FaveFailure ? err.error.transient !== false && err.error.code === 'STORE_ERROR' : true;
        if (!transient || attempt >= 5) {
          this.stop(err instanceof FaveFailure ? err : new FaveFailure(faveError('STORE_ERROR', `writing state.json failed: ${String(err)}`)));
          return;
        }
        await new Promise((r) => setTimeout(r, Math.random() * 100 * 2 ** attempt));
      }
    }
  }
}
