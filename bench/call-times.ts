/**
 * Where a call's time went: its mean latency against how long the gateway timed the function,
 * and how many calls were in flight on average (Little's law: their summed latency over the wall
 * time). Taken the same way from the orchestrator's invocation records and from the bare client.
 */
export interface CallTimes {
  /**
   * Mean latency of a call: from the send to the answer read (the orchestrator's records hold
   * whole ms; async: from the gateway's 202 to the callback's arrival).
   */
  latency_ms: number;
  /** Mean of the gateway's own timing of the function (X-Duration-Seconds), where it was given. */
  gateway_ms: number | null;
  in_flight: number;
}

/** Sums what `CallTimes` needs, O(1) per call. */
export function callTimesOf(): { add(latencyMs: number, gatewayMs: number | null): void; result(wallMs: number): CallTimes } {
  let count = 0;
  let latency = 0;
  let timed = 0;
  let gateway = 0;
  return {
    add(latencyMs, gatewayMs) {
      count++;
      latency += latencyMs;
      if (gatewayMs !== null) {
        timed++;
        gateway += gatewayMs;
      }
    },
    result: (wallMs) => ({
      latency_ms: count === 0 ? 0 : latency / count,
      gateway_ms: timed === 0 ? null : gateway / timed,
      in_flight: wallMs > 0 ? latency / wallMs : 0,
    }),
  };
}
