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
  /** The gateway's own upstream timeout; past it the caller gets 504 like OpenFaaS. */
  upstreamTimeoutMs?: number;
  basicAuth?: { user: string; password: string };
}

export interface GatewayServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}
