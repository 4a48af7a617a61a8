import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { DEFAULT_STAGE_NAMES } from '../src/domain/stage.ts';
import { runFave, type ChildRun } from './support/child.ts';
import { startTestGateway, type TestGateway } from './support/test-gateway.ts';
import { until } from './support/until.ts';

/**
 * `fave load --cold` and `--warm` end to end: `fave serve` in front of the test gateway's replica
 * model, the regime set through the gateway's system API, and the cold starts read back from the
 * results file by `fave analyze --json`.
 */

let dir: string;
let store: FsStore;
let gateway: TestGateway;
let serve: ChildRun;
let serveUrl: string;

const COLD_START_MS = 300;
const ADMIN = { user: 'admin', password: 'system-pw' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-regimes-'));
  store = new FsStore(join(dir, 'data'), 'fave-artifacts');
  await store.init();
  // Two clips of one frame: one request has no more than two calls of a stage in flight, which
  // one replica (two calls at once) serves, so a warm regime of one replica meets no cold start.
  gateway = await startTestGateway({
    store,
    clips: 2,
    framesPerClip: 1,
    latencyMs: 20,
    systemAuth: ADMIN,
    replicas: { coldStartMs: COLD_START_MS, maxInflight: 2, maxReplicas: 10, initialReplicas: 0, idleMs: 0 },
  });
  await writeFile(join(dir, 'street.mp4'), 'the scripted stages do not read the video');
  serve = runFave(['serve', '--port', '0', '--host', '127.0.0.1'], {
    GATEWAY_URL: gateway.url,
    FAVE_DATA_DIR: join(dir, 'data'),
    OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'),
    // What is measured is the regime fave load sets, not the orchestrator's own scaling.
    PREWARM: 'off',
    LOG_LEVEL: 'warn',
  });
  let stdout = '';
  serve.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const line = await until(() => /^fave serve: API (http:\/\/127\.0\.0\.1:\d+)\//m.exec(stdout), {
    timeoutMs: 30_000,
    message: () => `fave serve prints where it listens (${stdout})`,
  });
  serveUrl = line[1]!;
}, 60_000);

afterAll(async () => {
  serve?.child.kill('SIGTERM');
  await serve?.exit;
  await gateway?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

interface StageFigures {
  calls: number;
  cold_starts: number;
}

/** `fave load` with the regime flag, then `fave analyze --json` on the file it wrote. */
async function loadAndAnalyze(
  regime: '--cold' | '--warm',
  profile: string,
  requests: number,
  out: string,
): Promise<{ succeeded: number; requests: number; stages: Record<string, StageFigures> }> {
  const env = { LOG_LEVEL: 'warn', OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'), OPENFAAS_USERNAME: ADMIN.user, OPENFAAS_PASSWORD: ADMIN.password };
  const load = await runFave(
    [
      'load',
      '--target',
      serveUrl,
      '--video',
      join(dir, 'street.mp4'),
      '--regime',
      'burst',
      '--requests',
      String(requests),
      '--profile',
      profile,
      regime,
      '--gateway',
      gateway.url,
      '--out',
      join(dir, out),
    ],
    env,
  ).exit;
  expect(load.code, load.stderr).toBe(0);
  const path = load.stdout.trim();
  expect(path).toMatch(new RegExp(`/results_burst_${profile}_${requests}req_${regime.slice(2)}_\\d{10}\\.json$`));
  expect(JSON.parse(await readFile(path, 'utf8'))).toHaveLength(requests);
  const analyze = await runFave(['analyze', path, '--json'], env).exit;
  expect(analyze.code, analyze.stderr).toBe(0);
  const report = JSON.parse(analyze.stdout) as { runs: Array<{ succeeded: number; requests: number; stages: Record<string, StageFigures> }> };
  expect(report.runs).toHaveLength(1);
  return report.runs[0]!;
}

const FUNCTIONS = Object.values(DEFAULT_STAGE_NAMES);

describe('fave load sets the replica regime through the system API', () => {
  it('--warm scales every stage to the profile replicas.min and waits until they are ready: no cold start', async () => {
    const model = gateway.replicaModel!;
    expect(model.names().sort()).toEqual([...FUNCTIONS].sort());
    for (const name of FUNCTIONS) expect(model.status(name)).toMatchObject({ replicas: 0, availableReplicas: 0 });
    gateway.reset();

    const run = await loadAndAnalyze('--warm', 'warm', 1, 'warm');

    // One scale call per function, to `warm`'s replicas.min (1), all before the first stage call:
    // the load waited for the replicas to be ready (a call before would have met a cold start).
    // Node may fire a timer a millisecond early; the slack covers that and nothing more.
    expect(gateway.scaleCalls.map((c) => c.name).sort()).toEqual([...FUNCTIONS].sort());
    for (const call of gateway.scaleCalls) expect(call.replicas).toBe(1);
    const firstCall = Math.min(...gateway.calls.map((c) => c.started_at));
    expect(Math.max(...gateway.scaleCalls.map((c) => c.at)) + COLD_START_MS - 5).toBeLessThanOrEqual(firstCall);

    expect(run).toMatchObject({ requests: 1, succeeded: 1 });
    expect(Object.keys(run.stages).sort()).toEqual([...FUNCTIONS].sort());
    for (const name of FUNCTIONS) expect(run.stages[name], name).toMatchObject({ cold_starts: 0 });
    expect(gateway.calls.filter((c) => c.cold_start === true)).toEqual([]);
  }, 120_000);

  it('--cold scales every stage to 0 and waits until they report 0: every stage meets a cold start', async () => {
    const model = gateway.replicaModel!;
    // The warm run left replicas running.
    for (const name of FUNCTIONS) expect(model.status(name).availableReplicas).toBeGreaterThan(0);
    gateway.reset();

    const run = await loadAndAnalyze('--cold', 'cold', 2, 'cold');

    expect(gateway.scaleCalls.map((c) => c.name).sort()).toEqual([...FUNCTIONS].sort());
    for (const call of gateway.scaleCalls) expect(call.replicas).toBe(0);
    const firstCall = Math.min(...gateway.calls.map((c) => c.started_at));
    expect(Math.max(...gateway.scaleCalls.map((c) => c.at))).toBeLessThanOrEqual(firstCall);

    expect(run).toMatchObject({ requests: 2, succeeded: 2 });
    // Each function's first calls waited for a replica to start; the two requests' calls to one
    // stage overlap, so they may share that start or need a second replica.
    for (const name of FUNCTIONS) expect(run.stages[name]!.cold_starts, name).toBeGreaterThanOrEqual(1);
    const coldCalls = gateway.calls.filter((c) => c.cold_start === true).length;
    expect(Object.values(run.stages).reduce((sum, s) => sum + s.cold_starts, 0)).toBe(coldCalls);
  }, 120_000);
});
