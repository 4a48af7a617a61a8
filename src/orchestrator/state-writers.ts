import { StateWriter } from '../persistence/state-writer.ts';
import { requestKeys, type Store } from '../persistence/store.ts';

/** Makes each request's state.json writer, and counts the bytes they have written together. */
export class StateWriters {
  private written = 0;

  constructor(
    private readonly options: {
      store: Store;
      bucket: string;
      intervalMs: number;
      onWrite: (requestId: string, bytes: number) => void;
    },
  ) {}

  /** Bytes this process has written to state.json files (for write-amplification figures). */
  get bytes(): number {
    return this.written;
  }

  /** The writer of a request, new (`etag` null) or continuing the state.json of that ETag. */
  writer(requestId: string, etag: string | null, conditional: boolean): StateWriter {
    return new StateWriter({
      store: this.options.store,
      location: { bucket: this.options.bucket, key: requestKeys.state(requestId) },
      intervalMs: this.options.intervalMs,
      conditional,
      etag,
      onWrite: (bytes) => {
        this.written += bytes;
        this.options.onWrite(requestId, bytes);
      },
    });
  }
}
