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
}

export interface HttpResponseLike {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}
