import { describe, expect, it } from 'vitest';
import { createLimiter, nestedLimiter, type Limiter } from '../src/lib/limiter.ts';

/** A run that holds its slot until `finish`, and hands out its early `release`. */
function holder(limiter: Limiter) {
  let finish!: () => void;
  let release!: () => void;
  let started = false;
  const done = limiter.run(
    (free) =>
      new Promise<void>((resolve) => {
        started = true;
        release = free;
        finish = resolve;
      }),
  );
  return {
    done,
    get started() {
      return started;
    },
    finish: () => finish(),
    release: () => release(),
  };
}

/** Lets queued runs take the slots given back. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('limiter', () => {
  it('gives a slot back early when the run releases it, once, and not again when the run ends', async () => {
    const limiter = createLimiter(1);
    const first = holder(limiter);
    const second = holder(limiter);
    const third = holder(limiter);
    await settle();
    expect([first.started, second.started, third.started]).toEqual([true, false, false]);
    first.release();
    first.release();
    await settle();
    // The second took the slot; a release repeated gave nothing more.
    expect([second.started, third.started]).toEqual([true, false]);
    expect(limiter.active).toBe(1);
    first.finish();
    await first.done;
    await settle();
    expect(third.started).toBe(false);
    second.finish();
    await second.done;
    await settle();
    expect(third.started).toBe(true);
    third.finish();
    await third.done;
    expect([limiter.active, limiter.pending]).toEqual([0, 0]);
  });

  it('nested: a run takes a slot of each, and an early release gives both back', async () => {
    const request = createLimiter(1);
    const processWide = createLimiter(2);
    const limiter = nestedLimiter(request, processWide);
    const a = holder(limiter);
    const b = holder(limiter);
    // Another request's call shares the process-wide bound.
    const other = holder(processWide);
    await settle();
    expect([a.started, b.started, other.started]).toEqual([true, false, true]);
    expect([processWide.active, limiter.active, limiter.pending]).toEqual([2, 1, 1]);
    a.release();
    await settle();
    expect(b.started).toBe(true);
    expect([request.active, processWide.active]).toEqual([1, 2]);
    b.finish();
    other.finish();
    a.finish();
    await Promise.all([a.done, b.done, other.done]);
    expect([request.active, processWide.active, request.pending, processWide.pending]).toEqual([0, 0, 0, 0]);
  });
});
