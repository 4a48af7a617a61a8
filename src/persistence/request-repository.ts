import { z } from 'zod';
import type { PipelineContext } from '../domain/context.ts';
import { FaveFailure, faveError } from '../domain/errors.ts';
import type { MachineValue } from '../domain/progress.ts';
import { assertRequestId } from '../domain/request.ts';
import { requestView, type Lease, type RequestView } from '../domain/request-view.ts';
import { FinalResultSchema, type FinalResult } from '../domain/result.ts';
import { parseStateFile, type StateEnvelope } from './state-file.ts';
import { isNotFound, requestKeys, type ObjectLocation, type Store } from './store.ts';

/** A request's state.json as read, with the ETag of exactly the bytes read. */
export interface StoredState {
  envelope: StateEnvelope;
  etag: string;
}

/** What a request running in this process shows of itself: its machine's value and context, its lease. */
export interface LiveRequest {
  value: MachineValue;
  context: PipelineContext;
  lease: Lease | null;
}

/** The requests running in this process, as the repository asks after them. */
export interface LiveRequests {
  get(requestId: string): LiveRequest | null;
  ids(): string[];
}

const NOTHING_LIVE: LiveRequests = { get: () => null, ids: () => [] };

/** A cancel asked for where the request does not run, left for its owner. */
const CancelMarkerSchema = z.object({ reason: z.string(), requested_at: z.number(), requested_by: z.string().optional() });

/**
 * The requests of one bucket: their state.json and final.json, their cancel markers, and the one
 * view of a request, live when this process runs it, else read from its state.json.
 * Missing objects are answered as null here; "no such request" is the caller's to say.
 */
export class RequestRepository {
  constructor(
    private readonly store: Store,
    private readonly bucket: string,
    private readonly live: LiveRequests = NOTHING_LIVE,
  ) {}

  /** Where a request stands; null when neither this process nor the store knows it. */
  async view(requestId: string): Promise<RequestView | null> {
    assertRequestId(requestId);
    const running = this.live.get(requestId);
    if (running) return requestView({ ...running, local: true, updated_at: null, observed_at: Date.now() });
    const stored = await this.readState(requestId);
    return stored ? this.viewOf(stored.envelope) : null;
  }

  /** The view of a state.json already read. */
  private viewOf(envelope: StateEnvelope): RequestView {
    const { snapshot, lease, updated_at } = envelope;
    return requestView({ context: snapshot.context, value: snapshot.value, lease, local: false, updated_at, observed_at: Date.now() });
  }

  /** Ids of every request this process runs or the store holds (lexical, not by age). */
  async ids(): Promise<string[]> {
    const ids = new Set(this.live.ids());
    for (const id of await this.stored()) ids.add(id);
    return [...ids].sort();
  }

  /** Ids of every request with a state.json. */
  async stored(): Promise<string[]> {
    const keys = await this.store.list(this.bucket, 'requests/');
    return keys.filter((k) => k.endsWith('/metadata/state.json')).map((k) => k.split('/')[1]!);
  }

  /**
   * Reads state.json with the ETag of exactly the bytes read: a compare-and-swap against it then
   * fails if anyone wrote in between. (A read racing a write is simply read again.)
   */
  async readState(requestId: string): Promise<StoredState | null> {
    assertRequestId(requestId);
    const loc = this.at(requestKeys.state(requestId));
    for (let attempt = 1; ; attempt++) {
      const before = await this.store.head(loc);
      if (!before) return null;
      const body = await this.readObject(loc);
      if (body === null) return null;
      const after = await this.store.head(loc);
      if (after?.etag === before.etag || attempt >= 5) {
        return { envelope: parseStateFile(body.toString('utf8'), `requests/${requestId}/metadata/state.json`), etag: before.etag };
      }
    }
  }

  /** The ETag of state.json as stored now; null when there is none. */
  async stateEtag(requestId: string): Promise<string | null> {
    const info = await this.store.head(this.at(requestKeys.state(requestId)));
    return info?.etag ?? null;
  }

  /** final.json, the answer of a finished run; null when none was written. */
  async readResult(requestId: string): Promise<FinalResult | null> {
    assertRequestId(requestId);
    const body = await this.readObject(this.at(requestKeys.final(requestId)));
    return body === null ? null : FinalResultSchema.parse(JSON.parse(body.toString('utf8')));
  }

  /** Leaves a cancel for whichever process runs the request; it reads it at its next lease renewal. */
  async putCancelMarker(requestId: string, reason: string, requestedBy: string): Promise<void> {
    assertRequestId(requestId);
    const body = JSON.stringify({ reason, requested_at: Date.now(), requested_by: requestedBy });
    await this.store.put(this.at(requestKeys.cancel(requestId)), body, { contentType: 'application/json' });
  }

  /** A cancel marker newer than `since`, taken (deleted) so it acts once; its reason. */
  async takeCancelMarker(requestId: string, since: number): Promise<string | null> {
    const loc = this.at(requestKeys.cancel(requestId));
    if (!(await this.store.head(loc))) return null;
    const body = await this.readObject(loc);
    if (body === null) return null;
    await this.store.delete(loc);
    const marker = CancelMarkerSchema.safeParse(parseJson(body));
    // A marker from before this execution started was meant for an earlier run of the request.
    if (!marker.success || marker.data.requested_at < since) return null;
    return marker.data.reason;
  }

  /** The failure of a request that should be there and is not. */
  static missing(requestId: string, why = `requests/${requestId}/metadata/state.json does not exist`): FaveFailure {
    return new FaveFailure(faveError('REQUEST_NOT_FOUND', `no request ${requestId}: ${why}`));
  }

  private at(key: string): ObjectLocation {
    return { bucket: this.bucket, key };
  }

  private async readObject(loc: ObjectLocation): Promise<Buffer | null> {
    try {
      return await this.store.get(loc);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
}
