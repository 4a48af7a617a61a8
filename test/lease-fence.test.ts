import { describe, expect, it } from 'vitest';
import { LeaseFence, LeaseFences, leaseMarginMs, type FenceReason } from '../src/orchestrator/lease-fence.ts';
import { StallDetector } from '../src/lib/stall-detector.ts';
import { callStageOnce, type StageCall } from '../src/transport/stage-call.ts';
import { createLimiter } from '../src/lib/limiter.ts';
import type { StageTransport } from '../src/transport/transport.ts';
import { isStageCallFailure } from '../src/domain/invocations.ts';

/** A clock that moves only when told: monotonic and wall time advance together unless split. */
function fakeClock() {
  let mono = 1_000;
  let wall = 1_700_000_000_000;
  return {
    monotonic: () => mono,
    wall: () => wall,
    advance(ms: number) {
      mono += ms;
      wall += ms;
    },
    /** The machine was suspended: the wall clock moved, the monotonic one did not. */
    suspend(ms: number) {
      wall += ms;
    },
  };
}

const TTL = 3000;

function fenceOn(clock: ReturnType<typeof fakeClock>) {
  const refusals: FenceReason[] = [];
  let renewals = 0;
  const fence = new LeaseFence({
    requestId: 'r',
    ttlMs: TTL,
    clock: clock.monotonic,
    renew: () => renewals++,
    onRefusal: (reason) => refusals.push(reason),
  });
  return { fence, refusals, renewals: () => renewals };
}

const STAGE_CALL: StageCall = {
  request_id: 'r',
  profile: 'default',
  function_name: 'stage-ffmpeg-0',
  task: { stage: 'ffmpeg0', input_uri: 's3://b/k', fanout: {} },
  timeout_ms: 10_000,
  deadline_at: Date.now() + 600_000,
};

/** A transport that counts what reaches it and answers at once. */
function countingTransport(): StageTransport & { sent: number } {
  const transport = {
    kind: 'http' as const,
    sent: 0,
    async call() {
      transport.sent++;
      const body = JSON.stringify({ request_id: 'r', stage: 'stage-ffmpeg-0', outputs: [], metrics: null, status: 'success', message: null });
      return { status: 200, headers: {}, body };
    },
    async close() {},
  };
  return transport;
}

describe('the lease fence, on a fake clock', () => {
  it('refuses before the first write lands, opens at it, and closes at ttl minus the margin from when that write was built', () => {
    const clock = fakeClock();
    const { fence, refusals } = fenceOn(clock);
    expect(fence.clear()).toBe(false);
    const builtAt = clock.monotonic();
    clock.advance(400); // the write takes 400 ms to land: the lease still counts from its building
    fence.renewed(builtAt);
    expect(fence.clear()).toBe(true);
    const margin = leaseMarginMs(TTL);
    expect(margin).toBe(1000);
    clock.advance(TTL - margin - 400 - 1);
    expect(fence.clear()).toBe(true);
    clock.advance(1);
    expect(fence.clear()).toBe(false);
    expect(refusals).toEqual(['deadline', 'deadline']);
  });

  it('a dispatch after the deadline is refused and waits; a renewal that lands re-opens the way and the call goes out', async () => {
    const clock = fakeClock();
    const { fence, refusals, renewals } = fenceOn(clock);
    fence.renewed(clock.monotonic());
    clock.advance(TTL);
    const transport = countingTransport();
    const sending = callStageOnce(transport, createLimiter(4), STAGE_CALL, { attempt: 1, gate: fence }, new AbortController().signal);
    await Promise.resolve();
    expect(transport.sent).toBe(0);
    expect(refusals).toEqual(['deadline']);
    // The refusal asked for a renewal at once.
    expect(renewals()).toBeGreaterThanOrEqual(1);
    // A renewal built before the deadline passed moves nothing: the way stays shut.
    fence.renewed(clock.monotonic() - TTL);
    await new Promise((r) => setImmediate(r));
    expect(transport.sent).toBe(0);
    // One built now lands.
    fence.renewed(clock.monotonic());
    const { response } = await sending;
    expect(response.status).toBe('success');
    expect(transport.sent).toBe(1);
  });

  it('a call refused when the request stops running here is never sent', async () => {
    const clock = fakeClock();
    const { fence } = fenceOn(clock);
    const transport = countingTransport();
    let recorded = 0;
    let unsent = 0;
    const dispatch = { id: 'd1', record: async () => void recorded++, unsent: async () => void unsent++ };
    const sending = callStageOnce(transport, createLimiter(4), STAGE_CALL, { attempt: 1, gate: fence, dispatch }, new AbortController().signal);
    await new Promise((r) => setImmediate(r));
    fence.close();
    const failure = await sending.then(
      () => null,
      (err: unknown) => err,
    );
    expect(isStageCallFailure(failure) && failure.error.code).toBe('CANCELLED');
    expect(transport.sent).toBe(0);
    // Held back before its journal marker: a resume elsewhere has nothing to count as sent.
    expect([recorded, unsent]).toEqual([0, 0]);
  });

  it('a call whose lease runs out while its marker is written is held at the send, and its marker taken back if it never goes', async () => {
    const clock = fakeClock();
    const { fence } = fenceOn(clock);
    fence.renewed(clock.monotonic());
    const transport = countingTransport();
    let unsent = 0;
    const dispatch = {
      id: 'd2',
      // The marker's write takes past the deadline.
      record: async () => void clock.advance(TTL),
      unsent: async () => void unsent++,
    };
    const controller = new AbortController();
    const sending = callStageOnce(transport, createLimiter(4), STAGE_CALL, { attempt: 1, gate: fence, dispatch }, controller.signal);
    await new Promise((r) => setImmediate(r));
    expect(transport.sent).toBe(0);
    fence.close();
    const failure = await sending.then(
      () => null,
      (err: unknown) => err,
    );
    expect(isStageCallFailure(failure) && failure.error.code).toBe('CANCELLED');
    expect(transport.sent).toBe(0);
    expect(unsent).toBe(1);
  });

  it('a stall longer than the margin makes the lease suspect until a write built after it lands', () => {
    const clock = fakeClock();
    const refusals: Array<[string, FenceReason]> = [];
    const fences = new LeaseFences({ ttlMs: 30_000, clock, stallTimer: false, onRefusal: (id, reason) => refusals.push([id, reason]) });
    let asked = 0;
    const fence = fences.open('r', () => asked++);
    fence.renewed(clock.monotonic());
    expect(fence.clear()).toBe(true);
    // Paused for 1.5 s, far within the 30 s lease but longer than its 1 s margin; the
    // detector's timer has not had its turn yet: the check before the send finds it.
    clock.advance(1500);
    expect(fence.clear()).toBe(false);
    expect(refusals).toEqual([['r', 'stall']]);
    expect(asked).toBeGreaterThanOrEqual(1);
    // A write built before the stall was noticed proves nothing.
    fence.renewed(clock.monotonic() - 1);
    expect(fence.clear()).toBe(false);
    fence.renewed(clock.monotonic());
    expect(fence.clear()).toBe(true);
    fence.close();
    expect(fences.gate('r')).toBeNull();
  });

  it('a machine suspend is a stall although the monotonic clock did not move', () => {
    const clock = fakeClock();
    const detector = new StallDetector({ thresholdMs: 1000, clock, timer: false });
    const seen: number[] = [];
    detector.onStall((stall) => seen.push(stall.ms));
    clock.advance(40);
    expect(detector.tick()).toBe(false);
    clock.suspend(5000);
    expect(detector.check()).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeGreaterThan(4000);
    detector.close();
  });
});
