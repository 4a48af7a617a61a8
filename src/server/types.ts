import type { Readable } from 'node:stream';

/**
 * The HTTP surface as plain values, so the same routing serves the OpenFaaS Node template
 * (event/context) and `fave serve` (node:http).
 */
export interface HttpRequestLike {
  method: string;
  /** Path without the query string, e.g. `/requests/abc`. */
  path: string;
  query: Record<string, string>;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** Raw body; undefined when there is none. */
  body: Buffer | string | undefined;
  /**
   * The body as it arrives, for the routes that stream it into the store (`POST /uploads`); the
   * server leaves it unread for them. Absent where the body was read already (the handler).
   */
  stream?: Readable;
  /** The caller's address as the server saw it (failed sign-ins are counted per client). */
  client?: string;
}

export interface HttpResponseLike {
  status: number;
  headers: Record<string, string>;
  /** A stream is piped out as it is read (artifacts); its length is in `content-length`. */
  body: string | Buffer | Readable;
}
