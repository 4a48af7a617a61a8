import type { ReplicaModel, ReplicaModelOptions } from './replica-model.ts';
/**
 * An OpenFaaS-compatible gateway on loopback: `/function/{name}` (sync) and
 * `/async-function/{name}` (202, then a POST of the result to `X-Callback-Url`).
 * Used by `fave gateway` to serve the local stages and by the tests with scripted stages.
 */
export interface FunctionCall {
  name: string;
  body: Buffer;
  headers: Record<string, string>;
  callId: string;
  /** Aborted when the client disconnects or the gateway shuts down. */
  signal: AbortSignal;
  /** True when the call waited for a replica to start (replica model on): it should answer `metrics.cold_start: true`. */
  coldStart: boolean;
}

export interface FunctionReply {
  status: number;
  headers?: Record<string, string>;
  body: string | Buffer;
}

export type FunctionHandler = (call: FunctionCall) => Promise<FunctionReply>;

export interface GatewayServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  functions: Record<string, FunctionHandler>;
  /** The gateway's own upstream timeout; past it a synchronous caller gets 504 like OpenFaaS. */
  upstreamTimeoutMs?: number;
  /**
   * The queue-worker's timeout for an async call (the function's own, not the gateway's); past
   * it the callback reports 504. None by default.
   */
  asyncTimeoutMs?: number;
  /** The queue-worker's `max_inflight`: queued calls run at most this many at once (no bound by default). */
  asyncMaxInflight?: number;
  /**
   * Awaited after an async call is queued and before the gateway answers 202: holding it keeps
   * the caller from learning that its call was queued (a caller that dies meanwhile never does).
   */
  beforeAccept?: (name: string) => Promise<void>;
  /** Sees every callback before it is posted; 'drop' loses it, as a queue-worker that fails to post would. */
  beforeCallback?: (callback: CallbackPost) => 'deliver' | 'drop' | Promise<'deliver' | 'drop'>;
  basicAuth?: { user: string; password: string };
  /** The basic auth of `/system/*`; `basicAuth` when absent, none when null. */
  systemAuth?: { user: string; password: string } | null;
  /** Cold starts, replicas and scaling per function (see replica-model.ts); none: every function is always warm. */
  replicas?: Partial<ReplicaModelOptions>;
  /**
   * Asked on every `/system/*` call: a status (401, 403, 404, 500…) to answer instead, 'hang' to
   * never answer, or null to serve it.
   */
  systemStatus?: (call: { method: string; path: string }) => number | 'hang' | null;
  /** Sees every accepted scale call. */
  onScale?: (name: string, replicas: number) => void;
}

export interface GatewayServer {
  readonly url: string;
  readonly port: number;
  /** The replica model, when the gateway runs one. */
  readonly replicas?: ReplicaModel | null;
  close(): Promise<void>;
}

/** A callback the queue-worker is about to post. */
export interface CallbackPost {
  name: string;
  callId: string;
  url: string;
  headers: Record<string, string>;
  body: string | Buffer;
}
