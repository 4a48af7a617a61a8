import { Agent, request } from 'undici';
import type { StageRequest } from '../src/transport/contract.ts';
import type { StageCallOptions, StageHttpResponse, StageTransport } from '../src/transport/transport.ts';
import { callTimesOf, type CallTimes } from './call-times.ts';

/** A replay's wall time and where its calls' time went. */
export interface TimedReplay {
  wall_ms: number;
  calls: CallTimes;
}

/** One stage call as it went over the wire. */
export interface RecordedCall {
  functionName: string;
  body: string;
}

/** Passes calls to another transport and, while `recording`, keeps what was sent. */
export class RecordingTransport implements StageTransport {
  readonly kind = 'http' as const;
  recording = true;
  readonly calls: RecordedCall[] = [];

  constructor(private readonly inner: StageTransport) {}

  call(functionName: string, body: StageRequest, options: StageCallOptions): Promise<StageHttpResponse> {
    if (this.recording) this.calls.push({ functionName, body: JSON.stringify(body) });
    return this.inner.call(functionName, body, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * The floor the orchestrator is measured against: the same POSTs, same bodies, same gateway,
 * same concurrency, with nothing in between but undici (pool sized like HttpTransport's).
 */
export class RawClient {
  private readonly agent = new Agent({ connections: 256, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });

  constructor(private readonly gatewayUrl: string) {}

  /** Sends every call, at most `concurrency` at a time, in order; returns the wall time in ms. */
  async replay(calls: RecordedCall[], concurrency: number): Promise<number> {
    return (await this.replayTimed(calls, concurrency)).wall_ms;
  }

  /** The same, with where a call's time went, as the orchestrator's records give it. */
  async replayTimed(calls: RecordedCall[], concurrency: number): Promise<TimedReplay> {
    let next = 0;
    const times = callTimesOf();
    const started = performance.now();
    const lane = async () => {
      while (next < calls.length) {
        const call = calls[next++]!;
        const sent = performance.now();
        const response = await request(`${this.gatewayUrl}/function/${encodeURIComponent(call.functionName)}`, {
          method: 'POST',
          body: call.body,
          headers: { 'content-type': 'application/json' },
          dispatcher: this.agent,
        });
        const text = await response.body.text();
        const seconds = Number(response.headers['x-duration-seconds']);
        times.add(performance.now() - sent, Number.isFinite(seconds) ? seconds * 1000 : null);
        if (response.statusCode !== 200 || !text.includes('"status":"success"')) {
          throw new Error(`raw POST to ${call.functionName} answered ${response.statusCode}: ${text.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, calls.length) }, lane));
    const wall = performance.now() - started;
    return { wall_ms: wall, calls: times.result(wall) };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
