import { randomUUID } from 'node:crypto';
import { StageRequestSchema } from '../../transport/contract.ts';
import type { StageRequest } from '../../transport/contract.ts';
import { FaveFailure } from '../../domain/errors.ts';
import { StageTimeout, type StageCallOptions, type StageHttpResponse, type StageTransport } from '../../transport/transport.ts';
import { closeLocalStages, warmUpLocalStages, type LocalStages } from './index.ts';
import type { StageKey } from '../../domain/stage.ts';
import { describeZodIssue } from '../../lib/zod-issue.ts';

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

function reply(status: number, body: unknown, extra: Record<string, string> = {}): StageHttpResponse {
  return { status, headers: { ...JSON_HEADERS, ...extra }, body: JSON.stringify(body) };
}

/** A request the stage cannot act on: the answer of a stage whose payload model refuses it. */
export function refused(message: string): StageHttpResponse {
  return reply(200, { status: 'error', message });
}

/**
 * Runs one local stage the way the gateway and the deployed stages answer: 404 for an unknown
 * function; HTTP 200 `{"status": "error", "message"}` for a body that is not a stage request (as a
 * stage refuses what its payload model does not validate); 200 with the stage's JSON; 500 with the
 * exception's text as plain text when the stage throws. An abort is thrown, like a dropped connection.
 */
export async function invokeLocalStage(stages: LocalStages, functionName: string, body: unknown, signal: AbortSignal): Promise<StageHttpResponse> {
  const stage = Object.hasOwn(stages, functionName) ? stages[functionName] : undefined;
  if (!stage) return reply(404, { error: `no such function: ${functionName}` });
  const parsed = StageRequestSchema.safeParse(body);
  if (!parsed.success) return refused(`invalid stage request: ${describeZodIssue(parsed.error)}`);

  const started = performance.now();
  const headers = () => ({ 'x-call-id': randomUUID(), 'x-duration-seconds': ((performance.now() - started) / 1000).toFixed(6) });
  try {
    const response = await stage(parsed.data, signal);
    return reply(200, response, headers());
  } catch (err) {
    if (signal.aborted) throw signal.reason ?? err;
    const message = err instanceof FaveFailure ? err.error.message : err instanceof Error ? err.message : String(err);
    return { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers() }, body: message };
  }
}

/** The embedded transport: stage calls run in this process, with the same JSON as over HTTP. */
export class LocalTransport implements StageTransport {
  readonly kind = 'local' as const;
  private readonly closing = new AbortController();

  constructor(private readonly stages: LocalStages) {}

  async call(functionName: string, request: StageRequest, options: StageCallOptions): Promise<StageHttpResponse> {
    if (this.closing.signal.aborted) throw new Error('local transport is closed');
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = AbortSignal.any([options.signal, this.closing.signal, timeout]);
    try {
      // Through JSON and back, so a stage sees exactly what it would receive over the wire.
      return await invokeLocalStage(this.stages, functionName, JSON.parse(JSON.stringify(request)) as unknown, signal);
    } catch (err) {
      if (timeout.aborted && !options.signal.aborted) throw new StageTimeout(options.timeoutMs);
      throw err;
    }
  }

  warmUp(stages: readonly StageKey[]): void {
    if (!this.closing.signal.aborted && stages.includes('detector')) warmUpLocalStages(this.stages);
  }

  async close(): Promise<void> {
    this.closing.abort(new Error('local transport closed'));
    await closeLocalStages(this.stages);
  }
}
