import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIGURE_NAMES, fanoutLabel } from '../bench/report.ts';
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
      fanout: expect.any(Object),
      versus: expect.any(Object),
      scaling: expect.any(Object),
    });
    // The table (on stderr with --json) judges nothing against the full-size targets and names
    // the workload by the size it ran.
    expect(stderr).not.toMatch(/MISSED|\bmet\b/);
    expect(stderr).toContain('not judged in smoke');
    expect(stderr).toContain(`ideal ÷ measured wall time, ${fanoutLabel(SMOKE)}`);
    expect(stderr).not.toMatch(/13k|13,003/);
  }, 150_000);
});
