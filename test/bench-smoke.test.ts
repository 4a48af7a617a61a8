import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIGURE_NAMES, fanoutLabel, invocationsOf } from '../bench/report.ts';
import type { ColdstartFigures } from '../bench/scenarios/coldstart.ts';
import { SMOKE } from '../bench/sizes.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

describe('npm run bench', () => {
  it('runs every scenario in --smoke mode and ends with one JSON line holding every figure', async () => {
    const { stdout, stderr } = await run('npx', ['tsx', 'bench/run.ts', '--smoke', '--json'], {
      cwd: root,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 120_000,
    });
    const lines = stdout.trim().split('\n');
    const report = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    expect(report.mode).toBe('smoke');
    for (const name of FIGURE_NAMES) {
      const value = report[name];
      expect(typeof value, name).toBe('number');
      expect(Number.isFinite(value), `${name} = ${String(value)}`).toBe(true);
    }
    expect(report.details).toMatchObject({
      overhead: expect.any(Object),
      fanout: {
        machine_floor_efficiency: expect.any(Number),
        raw_efficiency: expect.any(Number),
        calls: { latency_ms: expect.any(Number), gateway_ms: expect.any(Number), in_flight: expect.any(Number) },
        raw_calls: { latency_ms: expect.any(Number), gateway_ms: expect.any(Number), in_flight: expect.any(Number) },
        edges_ms: { before_first_call: expect.any(Number), after_last_call: expect.any(Number) },
      },
      async: {
        fs_create_cpu_us: { before: expect.any(Number), after: expect.any(Number) },
        fs_file_cpu_us: { before: expect.any(Number), after: expect.any(Number) },
        sync: { calls: { latency_ms: expect.any(Number), gateway_ms: expect.any(Number), in_flight: expect.any(Number) } },
        async: { calls: { latency_ms: expect.any(Number), gateway_ms: expect.any(Number), in_flight: expect.any(Number) } },
      },
      versus: expect.any(Object),
      scaling: expect.any(Object),
      sweep: { finished: SMOKE.sweep.finished, running: SMOKE.sweep.running },
      coldstart: { cold_start_ms: SMOKE.coldstart.coldStartMs, clips: SMOKE.coldstart.clips, burst: SMOKE.coldstart.burst },
    });
    // Calls in flight are counted from the request's own records: never more than its limit allows.
    const fanout = (report.details as { fanout: { calls: { in_flight: number }; concurrency: number } }).fanout;
    expect(fanout.calls.in_flight).toBeGreaterThan(0);
    expect(fanout.calls.in_flight).toBeLessThanOrEqual(fanout.concurrency);
    // The edges are parts of the request's wall time with no call in flight; the answer's writes alone take some.
    const { edges_ms: edges, wall_ms: wall } = (report.details as { fanout: { edges_ms: { before_first_call: number; after_last_call: number }; wall_ms: number } }).fanout;
    expect(edges.after_last_call).toBeGreaterThan(0);
    expect(edges.before_first_call + edges.after_last_call).toBeLessThan(wall);
    // Linux tells how long the event loop waited for a CPU; elsewhere the figure is null.
    if (process.platform === 'linux') {
      const details = report.details as { fanout: { orchestrator_main_thread_wait_ms: unknown }; async: Record<'sync' | 'async', { orchestrator_main_thread_wait_ms: unknown }> };
      for (const wait of [details.fanout, details.async.sync, details.async.async].map((d) => d.orchestrator_main_thread_wait_ms)) {
        expect(typeof wait).toBe('number');
        expect(wait as number).toBeGreaterThanOrEqual(0);
      }
    }
    // Cold starts: the three pre-warming modes, each with every figure measured.
    const coldstart = (report.details as { coldstart: ColdstartFigures }).coldstart;
    expect(coldstart.modes.map((m) => m.mode)).toEqual(['off', 'speculative', 'just-in-time']);
    for (const mode of coldstart.modes) {
      for (const [key, value] of Object.entries(mode)) {
        if (typeof value === 'number') expect(Number.isFinite(value), `coldstart ${mode.mode} ${key} = ${value}`).toBe(true);
      }
      // Pre-warming changes when replicas start, never how many stage calls a request makes.
      expect(mode.invocations_warm, mode.mode).toBe(invocationsOf(SMOKE.coldstart));
      expect(mode.invocations_cold, mode.mode).toBe(invocationsOf(SMOKE.coldstart));
    }
    // Without pre-warming, every function scaled to zero meets a cold start.
    const off = coldstart.modes[0]!;
    for (const [stage, cold] of Object.entries(off.cold_calls_by_stage)) expect(cold, `off: cold calls of ${stage}`).toBeGreaterThanOrEqual(1);
    // The table (on stderr with --json) judges nothing against the full-size targets and names
    // the workload by the size it ran.
    expect(stderr).not.toMatch(/MISSED|\bmet\b/);
    expect(stderr).toContain('not judged in smoke');
    expect(stderr).toContain(`ideal ÷ measured wall time, ${fanoutLabel(SMOKE)}`);
    expect(stderr).not.toMatch(/13k|13,003/);
    expect(stderr).toContain('sweep: none running');
    expect(stderr).toContain('coldstart: penalty ms');
  }, 150_000);
});
