import type { StageKey } from '../domain/stage.ts';
import type { StageRequest } from './contract.ts';

/** What came back from one stage call, before it is validated against the contract. */
export interface StageHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface StageCallOptions {
  /** Aborted when the call is no longer wanted (request cancelled or failed, process stopping). */
  signal: AbortSignal;
  /** Past this, the transport gives up and throws a StageTimeout. */
  timeoutMs: number;
  /**
   * Told as soon as the function's answer is here, before it is stored or read: the call no
   * longer occupies the function, so its place in the concurrency bound may go to the next.
   */
  answered?: () => void;
}

/** Thrown by a transport when a call ran past its `timeoutMs`. */
export class StageTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'StageTimeout';
  }
}

/** Thrown by a transport when a stage answered more than it may (`STAGE_RESPONSE_MAX_BYTES`). */
export class StageResponseTooLarge extends Error {
  constructor(readonly limitBytes: number) {
    super(`the answer is larger than ${limitBytes} bytes (STAGE_RESPONSE_MAX_BYTES)`);
    this.name = 'StageResponseTooLarge';
  }
}

/**
 * How a stage function is reached: over HTTP through an OpenFaaS gateway, or in-process for the
 * embedded default. Either way the stage sees the same JSON and answers the same JSON.
 * Transport failures (connection reset, refused, aborted, StageTimeout) are thrown; HTTP
 * statuses are returned.
 */
export interface StageTransport {
  readonly kind: 'http' | 'local';
  call(functionName: string, request: StageRequest, options: StageCallOptions): Promise<StageHttpResponse>;
  /**
   * Starts loading what later stages need (a model, a speech engine) while earlier stages run;
   * returns at once and never fails. Transports with nothing to load leave it out.
   */
  warmUp?(stages: readonly StageKey[]): void;
  close(): Promise<void>;
}
