import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { allRecords } from '../src/domain/answer.ts';
import type { InvocationRecord } from '../src/domain/invocations.ts';
import { FinalResultSchema } from '../src/domain/result.ts';
import type { S3Store } from '../src/persistence/s3-store.ts';
import { parseStateFile, type StateEnvelope } from '../src/persistence/state-file.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { runFave, type ChildRun } from './support/child.ts';
import { motoSkipReason, motoStoreOn, startMoto, type RunningMoto } from './support/moto.ts';
import { startS3rver } from './support/s3rver.ts';
import { startTestGateway, type CallRecord, type TestGateway, type TestGatewayOptions } from './support/test-gateway.ts';
import { until } from './support/until.ts';

/**
 * `fave serve` replicas (real child processes) sharing one bucket on moto, which enforces
 * If-None-Match / If-Match as AWS S3 and MinIO do. Each replica calls the stages through a
 * gateway of its own, so the merged call log says which replica (owner) made every call.
 */

const VIDEO_KEY = 'uploads/replicas.mp4';
const skip = motoSkipReason();

interface LogLine {
  time: number;
  event?: string;
  request_id?: string;
  [field: string]: unknown;
}

interface Replica {
  name: string;
  run: ChildRun;
  url: string;
  owner: string;
  gateway: TestGateway;
  logs: LogLine[];
  stop(): Promise<void>;
}

type OwnedCall = CallRecord & { replica: string };

describe.skipIf(skip)('replicas sharing one bucket on an S3 endpoint that enforces conditional writes', () => {
  let moto: RunningMoto;
  let store: S3Store;
  let replicas: Replica[] = [];

  beforeAll(async () => {
    moto = await startMoto();
    store = motoStoreOn(moto);
    expect(await store.init()).toEqual({ conditionalWrites: true });
    await store.put({ bucket: moto.bucket, key: VIDEO_KEY }, Buffer.from('video bytes; the scripted stages do not look'));
  });

  afterEach(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    replicas = [];
    // No request of one test may be an orphan for the next one's replicas to sweep up.
    const states = (await store.list(moto.bucket, 'requests/')).filter((key) => key.endsWith('/metadata/state.json'));
    await Promise.all(states.map((key) => store.delete({ bucket: moto.bucket, key })));
  });

  afterAll(async () => {
    await store?.close();
    await moto?.stop();
  });

  /** Every replica's environment, built here only (credentials, auth and timing in one place). */
  function replicaEnv(gatewayUrl: string, extra: Record<string, string>): Record<string, string> {
    return {
      GATEWAY_URL: gatewayUrl,
      FAVE_STORE: 's3',
      ARTIFACT_ENDPOINT: moto.endpoint,
      ARTIFACT_BUCKET: moto.bucket,
      ARTIFACT_ACCESS_KEY: moto.accessKeyId,
      ARTIFACT_SECRET_KEY: moto.secretAccessKey,
      RESUME_ON_START: 'true',
      FAVE_ANONYMOUS_ROLE: 'operate',
      MAX_CONCURRENT_INVOCATIONS: '2',
      RETRY_BASE_DELAY_MS: '5',
      RETRY_MAX_DELAY_MS: '20',
      LOG_LEVEL: 'info',
      OPENFAAS_SECRETS_DIR: '/nonexistent',
      ...extra,
    };
  }

  async function startReplica(name: string, gatewayOptions: Omit<TestGatewayOptions, 'store'>, extraEnv: Record<string, string>): Promise<Replica> {
    const gateway = await startTestGateway({ store, artifacts: 'none', ...gatewayOptions });
    const run = runFave(['serve', '--port', '0', '--host', '127.0.0.1'], replicaEnv(gateway.url, extraEnv));
    const logs: LogLine[] = [];
    let partial = '';
    run.child.stderr!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        try {
          logs.push(JSON.parse(line) as LogLine);
        } catch {
          // Not a log line (a runtime warning): kept out of the structured log.
        }
      }
    });
    let exited = false;
    void run.exit.then(() => (exited = true));
    const stop = async () => {
      if (!exited) {
        run.child.kill('SIGKILL');
        await run.exit;
      }
      await gateway.close();
    };
    try {
      const listening = await until(() => exited || logs.find((l) => l.event === 'listening'), { timeoutMs: 30_000, message: `replica ${name} listens` });
      const ready = await until(() => exited || logs.find((l) => l.event === 'store_ready'), { timeoutMs: 30_000, message: `replica ${name} has its store` });
      if (listening === true || ready === true) throw new Error(`replica ${name} exited: ${(await run.exit).stderr.slice(-2000)}`);
      expect(ready.conditional_writes).toBe(true);
      expect(logs.filter((l) => l.event === 'store_without_conditional_writes')).toEqual([]);
      const replica = { name, run, url: String(listening.url), owner: String(ready.owner), gateway, logs, stop };
      replicas.push(replica);
      return replica;
    } catch (err) {
      await stop();
      throw err;
    }
  }

  /** A replica's log events in short, for failure messages. */
  const eventsOf = (replica: Replica): string =>
    JSON.stringify(replica.logs.filter((l) => l.event !== 'state').map((l) => [l.event, l.request_id ?? '', l.phase ?? '', l.error ?? '']));

  const callsOf = (...of: Replica[]): OwnedCall[] => of.flatMap((r) => r.gateway.calls.map((c) => ({ ...c, replica: r.name }))).sort((x, y) => x.started_at - y.started_at);

  async function submitAsync(replica: Replica, requestId: string): Promise<void> {
    const res = await fetch(`${replica.url}/?async=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_uri: `s3://${moto.bucket}/${VIDEO_KEY}`, request_id: requestId }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
  }

  async function readState(id: string): Promise<StateEnvelope | null> {
    const body = await store.get({ bucket: moto.bucket, key: requestKeys.state(id) }).catch(() => null);
    return body ? parseStateFile(body.toString('utf8'), `state.json of ${id}`) : null;
  }

  /** Every request COMPLETED: one listing until each has its final.json, then their states. */
  async function completed(ids: string[]): Promise<boolean> {
    const keys = new Set(await store.list(moto.bucket, 'requests/'));
    if (!ids.every((id) => keys.has(requestKeys.final(id)))) return false;
    const states = await Promise.all(ids.map(readState));
    return states.every((s) => s?.status === 'COMPLETED');
  }

  /** Successful PUTs of a request's final.json, from moto's access log. */
  const finalWrites = (id: string): number => moto.accessLog().filter((line) => line.startsWith(`PUT /${moto.bucket}/${requestKeys.final(id)}`) && line.endsWith(' 200')).length;

  async function metric(replica: Replica, sample: string): Promise<number> {
    const text = await (await fetch(`${replica.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
    if (!line) throw new Error(`${replica.name} reports no ${sample}`);
    return Number(line.slice(sample.length + 1));
  }

  /**
   * Per request, the span of calls of each owner (first start to last end): no two may overlap.
   * A call that never ended counts as still running.
   */
  function overlaps(calls: OwnedCall[]): string[] {
    const spans = new Map<string, Map<string, { from: number; to: number }>>();
    for (const call of calls) {
      if (call.request_id === null) continue;
      const byOwner = spans.get(call.request_id) ?? new Map<string, { from: number; to: number }>();
      spans.set(call.request_id, byOwner);
      const span = byOwner.get(call.replica) ?? { from: call.started_at, to: call.started_at };
      span.from = Math.min(span.from, call.started_at);
      span.to = Math.max(span.to, call.ended_at ?? Number.POSITIVE_INFINITY);
      byOwner.set(call.replica, span);
    }
    const found: string[] = [];
    for (const [id, byOwner] of spans) {
      const ordered = [...byOwner.entries()].sort((x, y) => x[1].from - y[1].from);
      for (let i = 1; i < ordered.length; i++) {
        const [before, earlier] = ordered[i - 1]!;
        const [after, later] = ordered[i]!;
        if (earlier.to > later.from) found.push(`${id}: ${before} called until ${earlier.to}, ${after} from ${later.from}`);
      }
    }
    return found;
  }

  /**
   * Per request, pairs of calls by two owners that were under way at the same time. Under load a
   * request may go from one owner to another and back (a lease that ran out each time): their
   * spans interleave, their calls must not.
   */
  function concurrentCalls(calls: OwnedCall[]): string[] {
    const found: string[] = [];
    const byRequest = new Map<string, OwnedCall[]>();
    for (const call of calls) if (call.request_id !== null) byRequest.set(call.request_id, [...(byRequest.get(call.request_id) ?? []), call]);
    for (const [id, list] of byRequest) {
      for (const [i, x] of list.entries()) {
        for (const y of list.slice(i + 1)) {
          if (x.replica === y.replica) continue;
          const xEnd = x.ended_at ?? Number.POSITIVE_INFINITY;
          const yEnd = y.ended_at ?? Number.POSITIVE_INFINITY;
          if (x.started_at < yEnd && y.started_at < xEnd)
            found.push(`${id}: ${x.replica} ${x.stage_key} ${x.started_at}-${xEnd} with ${y.replica} ${y.stage_key} ${y.started_at}-${yEnd}`);
        }
      }
    }
    return found;
  }

  /** How often each unit (stage, clip, frame) of each request was called, across replicas. */
  function unitCounts(calls: OwnedCall[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const call of calls) {
      if (call.request_id === null) continue;
      const unit = `${call.request_id}/${call.stage_key}/${call.clip ?? '-'}/${call.frame ?? '-'}`;
      counts.set(unit, (counts.get(unit) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * Busy loops competing with the replicas for the CPU (a load average far over the core count),
   * as on a crowded host or a throttled container. Stopped by the returned function.
   */
  function busyLoops(count: number): () => Promise<void> {
    const loops = Array.from({ length: count }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    return async () => {
      await Promise.all(
        loops.map(
          (loop) =>
            new Promise<void>((resolve) => {
              if (loop.exitCode !== null || loop.signalCode !== null) return resolve();
              loop.once('exit', () => resolve());
              loop.kill('SIGKILL');
            }),
        ),
      );
    };
  }

  it('three replicas: A is SIGKILLed mid-fan-out, B and C finish its 30 requests, never two owners at once', async () => {
    await takeover('quiet', 30);
  }, 150_000);

  it('the same takeover while three busy loops compete for the CPU: no unit is called three times', async () => {
    const stopLoops = busyLoops(3);
    try {
      await takeover('loaded', 10);
    } finally {
      await stopLoops();
    }
  }, 300_000);

  async function takeover(label: 'quiet' | 'loaded', count: number): Promise<void> {
    // Under load everything is slower; the waits only bound a test that would otherwise hang.
    const slack = label === 'quiet' ? 1 : 3;
    const ttl = 5000;
    // Quick single calls, then a slow fan-out (6 clips × 3 steps, 2 at a time) to be killed in.
    const gateway: Omit<TestGatewayOptions, 'store'> = {
      clips: 6,
      framesPerClip: 1,
      latencyMs: { ffmpeg0: 40, librosa: 40, ffmpeg1: 40, ffmpeg2: 250, deepspeech: 250, ffmpeg3: 250, detector: 80 },
    };
    const env = { LEASE_TTL_MS: String(ttl), PERSIST_INTERVAL_MS: '2000' };
    const startedAt = Date.now();
    const [a, b, c] = await Promise.all(['A', 'B', 'C'].map((name) => startReplica(name, gateway, env)));
    // Ids of their own: moto's access log (final.json PUTs) outlives a test.
    const ids = Array.from({ length: count }, (_, i) => `replica-${label}-${String(i).padStart(2, '0')}`);
    await Promise.all(ids.map((id) => submitAsync(a!, id)));

    // Mid-fan-out: every request has had a per-clip call. (On a store slower than the lease,
    // A gives up some requests before the kill and B or C take them: that is allowed too.)
    const inFanOut = (id: string) => [a!, b!, c!].some((r) => r.gateway.calls.some((call) => call.request_id === id && call.stage_key === 'ffmpeg2'));
    // Under load the owner lets some requests go before the kill and they move on elsewhere:
    // there, half of them in their fan-out is mid-fan-out enough.
    const killWhen = () => (label === 'quiet' ? ids.every(inFanOut) : ids.filter(inFanOut).length * 2 >= ids.length);
    await until(killWhen, {
      timeoutMs: 30_000 * slack,
      message: () =>
        `every request is in its fan-out on A; calls A/B/C ${[a!, b!, c!].map((r) => r.gateway.calls.length).join('/')}; ` +
        `not yet: ${ids.filter((id) => !inFanOut(id)).join(',')}; ` +
        `A: ${eventsOf(a!).slice(0, 3000)}; B: ${eventsOf(b!).slice(0, 1500)}`,
    });
    a!.run.child.kill('SIGKILL');
    expect((await a!.run.exit).signal).toBe('SIGKILL');
    const killedAt = Date.now();
    const orphans = (await Promise.all(ids.map(readState))).flatMap((s, i) => (s?.status === 'RUNNING' ? [ids[i]!] : []));
    expect(orphans.length).toBeGreaterThanOrEqual(label === 'quiet' ? 20 : 1);

    await until(() => completed(ids), { timeoutMs: 45_000 * slack, message: 'every request is COMPLETED', everyMs: 250 });

    const doneAt = Date.now();
    const calls = callsOf(a!, b!, c!);
    // Takeover: B or C calls a stage within one lease period of the kill (plus a margin for a busy machine).
    const firstTakeover = calls.find((call) => call.replica !== 'A' && call.started_at >= killedAt);
    expect(firstTakeover, 'a call by B or C after the kill').toBeDefined();
    // (Under load the sweeps themselves are late: the bound is for a quiet machine.)
    if (label === 'quiet') expect(firstTakeover!.started_at - killedAt).toBeLessThan(ttl + 2500);

    // No request was ever called by two owners at once.
    expect(label === 'quiet' ? overlaps(calls) : concurrentCalls(calls)).toEqual([]);
    // A unit runs twice at most: once by A (its answer lost with A), once by who took it over.
    const counts = unitCounts(calls);
    expect([...counts.entries()].filter(([, n]) => n >= 3)).toEqual([]);
    // Nothing ran on A after it died; every orphan went on with B or C.
    expect(calls.filter((call) => call.replica === 'A' && call.started_at > killedAt)).toEqual([]);
    const takers = new Map<string, Set<string>>();
    for (const call of calls) {
      if (call.replica === 'A' || call.request_id === null) continue;
      takers.set(call.request_id, (takers.get(call.request_id) ?? new Set()).add(call.replica));
    }
    expect([...takers.keys()].filter((id) => orphans.includes(id)).sort()).toEqual(orphans);
    // Between them: which of the two sweeps first decides the split (one may take them all).
    for (const owners of takers.values()) for (const owner of owners) expect(['B', 'C']).toContain(owner);

    // Every request completed once: one final.json, written once, and a released lease.
    for (const id of ids) {
      const state = (await readState(id))!;
      expect(state.lease).toBeNull();
      const final = FinalResultSchema.parse(JSON.parse((await store.get({ bucket: moto.bucket, key: requestKeys.final(id) })).toString('utf8')));
      expect(final.status).toBe('COMPLETED');
      expect(final.clips).toHaveLength(6);
      expect(finalWrites(id), `PUTs of ${id}'s final.json`).toBe(1);
    }

    const lostClaims = [...b!.logs, ...c!.logs].filter((l) => l.event === 'lease_lost').length;
    console.log(
      `[replicas] ${label}: ${orphans.length} orphans; units called twice ${[...counts.values()].filter((n) => n === 2).length}; first takeover ${firstTakeover!.started_at - killedAt} ms after the kill; ` +
        `all done ${doneAt - killedAt} ms after it; taken by B/C ${[...takers.values()].filter((o) => o.has('B')).length}/${[...takers.values()].filter((o) => o.has('C')).length}; ` +
        `${lostClaims} lost races; started ${killedAt - startedAt} ms before the kill; ${moto.accessLog().length} requests to moto`,
    );

    // B and C raced for the same orphans (and, under load, for requests A let go before it was
    // killed, which A may have taken back); each lost claim is logged with its winner.
    const owners = new Set([a!.owner, b!.owner, c!.owner]);
    for (const line of [...b!.logs, ...c!.logs].filter((l) => l.event === 'lease_lost' && l.phase === 'claim')) {
      expect(owners.has(String(line.winner)), JSON.stringify(line)).toBe(true);
      expect(line.winner).not.toBe(line.owner);
    }
  }

  it('a stalled owner (SIGSTOP for twice the lease) wakes to find its requests taken over, and sends not one stage call', async () => {
    const ttl = 2000;
    const env = { LEASE_TTL_MS: String(ttl), PERSIST_INTERVAL_MS: '500' };
    const gateway: Omit<TestGatewayOptions, 'store'> = {
      clips: 4,
      framesPerClip: 1,
      latencyMs: { ffmpeg0: 30, librosa: 30, ffmpeg1: 30, ffmpeg2: 300, deepspeech: 300, ffmpeg3: 300, detector: 60 },
    };
    const [a, b] = await Promise.all([startReplica('A', gateway, env), startReplica('B', gateway, env)]);
    const ids = Array.from({ length: 10 }, (_, i) => `stalled-${i}`);
    await Promise.all(ids.map((id) => submitAsync(a!, id)));
    const inFanOut = (id: string) => a!.gateway.calls.some((call) => call.request_id === id && call.stage_key === 'ffmpeg2');
    await until(() => ids.every(inFanOut), { timeoutMs: 30_000, message: () => `every request is in its fan-out on A; A: ${eventsOf(a!).slice(0, 2000)}` });

    process.kill(a!.run.child.pid!, 'SIGSTOP');
    const stoppedAt = Date.now();
    let wokeAt = Number.POSITIVE_INFINITY;
    try {
      const orphans = (await Promise.all(ids.map(readState))).flatMap((st, i) => (st?.status === 'RUNNING' ? [ids[i]!] : []));
      expect(orphans.length).toBeGreaterThan(0);
      // B has made a call for every request A left running, and the stall has lasted 2 leases.
      await until(() => Date.now() - stoppedAt >= 2 * ttl && orphans.every((id) => b!.gateway.calls.some((call) => call.request_id === id)), {
        timeoutMs: 30_000,
        message: () => `B takes A's requests over; B: ${eventsOf(b!).slice(0, 2000)}`,
      });
    } finally {
      wokeAt = Date.now();
      process.kill(a!.run.child.pid!, 'SIGCONT');
    }
    await until(() => completed(ids), { timeoutMs: 45_000, message: 'every request is COMPLETED', everyMs: 250 });

    const calls = callsOf(a!, b!);
    const afterWaking = calls.filter((call) => call.replica === 'A' && call.started_at >= wokeAt);
    const refusals = (await Promise.all(['deadline', 'stall', 'lost'].map((reason) => metric(a!, `fave_lease_fence_refusals_total{reason="${reason}"}`)))).join('/');
    console.log(
      `[replicas] stall: A stopped ${wokeAt - stoppedAt} ms; calls by A after waking: ${afterWaking.length}; ` +
        `calls held back by A's fence (deadline/stall/lost): ${refusals}; requests fenced (logged): ${new Set(a!.logs.filter((l) => l.event === 'lease_fenced').map((l) => l.request_id)).size}`,
    );
    expect(afterWaking.map((c) => [c.request_id, c.stage_key, c.clip])).toEqual([]);
    expect(overlaps(calls)).toEqual([]);

    // Every request completed once, and its count of invocations is exactly what the two
    // gateways served for it: A's calls in flight at the stall are counted, as interrupted. An
    // attempt whose journal marker became durable just as A stopped, and which A's fence then
    // kept from being sent, is counted too: B cannot tell it from one that went out. Each such
    // one must be an attempt A withdrew, matched by none of A's calls.
    let withdrawnTotal = 0;
    for (const id of ids) {
      const state = (await readState(id))!;
      expect(state.lease).toBeNull();
      expect(finalWrites(id), `PUTs of ${id}'s final.json`).toBe(1);
      const final = FinalResultSchema.parse(JSON.parse((await store.get({ bucket: moto.bucket, key: requestKeys.final(id) })).toString('utf8')));
      expect(final.status).toBe('COMPLETED');
      expect(final.clips).toHaveLength(4);
      const served = calls.filter((call) => call.request_id === id).length;
      const sentByA = (r: InvocationRecord) =>
        calls.some((call) => call.replica === 'A' && call.request_id === id && call.stage === r.stage && call.clip === r.clip_index && call.frame === r.frame_index);
      const withdrawn = allRecords(state.snapshot.context).filter((r) => r.outcome === 'interrupted' && !sentByA(r));
      withdrawnTotal += withdrawn.length;
      expect(final.metrics.invocations, `invocations of ${id}`).toBe(served + withdrawn.length);
    }
    const heldBack = refusals.split('/').reduce((sum, n) => sum + Number(n), 0);
    expect(withdrawnTotal, 'attempts counted that no gateway served').toBeLessThanOrEqual(heldBack);
  }, 120_000);

  it('a replica whose clock runs ahead takes over a live request: the owner loses its renewal and makes no further call or write', async () => {
    // Renewed every 3 s; without a renewal, an owner would stop on its own only after about 8 s.
    const ttl = 9000;
    const env = { LEASE_TTL_MS: String(ttl), PERSIST_INTERVAL_MS: '2000', MAX_CONCURRENT_INVOCATIONS: '1' };
    const gateway: Omit<TestGatewayOptions, 'store'> = { clips: 6, framesPerClip: 1, latencyMs: 30 };
    // On A the fan-out's first call never answers, and with one call at a time nothing else
    // moves: only stopping at the lost renewal itself ends that call.
    const a = await startReplica('A', { ...gateway, faults: [{ stage: 'ffmpeg2', clip: 0, kind: 'hang' }] }, env);
    const id = 'skewed';
    await submitAsync(a, id);
    await until(() => a.gateway.calls.some((call) => call.request_id === id && call.fault === 'hang'), { timeoutMs: 20_000, message: 'A is into the fan-out' });

    // B's clock runs far ahead: every lease A writes looks expired to it, so its first sweep
    // takes the request over while A is alive and renewing.
    const b = await startReplica('B', { ...gateway, latencyMs: 200 }, { ...env, LEASE_CLOCK_OFFSET_MS: String(20 * ttl) });
    const lost = await until(() => a.logs.find((l) => l.event === 'lease_lost' && l.request_id === id), {
      timeoutMs: 20_000,
      message: () => `A logs its lost lease; A logged ${eventsOf(a)}; B logged ${eventsOf(b)}`,
    });
    const writesAtLoss = await metric(a, 'fave_state_writes_total');
    expect(lost).toMatchObject({ phase: 'renewal', owner: a.owner, winner: b.owner });

    await until(() => completed([id]), { timeoutMs: 30_000, message: 'the request is COMPLETED', everyMs: 100 });
    const state = (await readState(id))!;
    expect(state.lease).toBeNull();
    expect(finalWrites(id)).toBe(1);

    // A: no call started once it knew, the ones in flight were stopped, and no state written.
    const fromA = a.gateway.calls.filter((call) => call.request_id === id);
    const hung = fromA.filter((call) => call.fault === 'hang');
    expect(hung).toHaveLength(1);
    expect(hung[0]!.outcome).toBe('hang');
    // Stopped at the first refused renewal after B's claim, not later when its own lease ran out.
    const takenOverAt = b.gateway.calls.find((call) => call.request_id === id)!.started_at;
    expect(hung[0]!.ended_at! - takenOverAt).toBeLessThan(ttl / 2);
    expect(fromA.filter((call) => call.started_at > lost.time)).toEqual([]);
    expect(
      fromA
        .filter((call) => call.ended_at === null || call.ended_at > lost.time + 1000)
        .map((c) => [c.stage, c.clip, c.started_at - lost.time, (c.ended_at ?? 0) - lost.time, c.outcome]),
    ).toEqual([]);
    expect(await metric(a, 'fave_state_writes_total')).toBe(writesAtLoss);
    expect(await metric(a, 'fave_lease_lost_total{phase="renewal"}')).toBe(1);
    expect(a.logs.filter((l) => l.event === 'execution_failed')).toEqual([]);
    // It was taken over in the fan-out, and B finished it.
    expect(fromA.map((call) => call.stage_key)).toEqual(['ffmpeg0', 'librosa', 'ffmpeg1', 'ffmpeg2']);
    expect(b.gateway.calls.some((call) => call.request_id === id && call.stage_key === 'detector')).toBe(true);
  });

  it('an owner whose store stops answering stops its calls before its lease runs out, then resumes the request itself', async () => {
    const ttl = 5000;
    const gateway = await startTestGateway({
      store,
      artifacts: 'none',
      clips: 3,
      framesPerClip: 1,
      latencyMs: 20,
      faults: [{ stage: 'ffmpeg2', clip: 0, kind: 'hang', times: 1 }],
    });
    const logs: LogLine[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    const app = await createApp({
      env: replicaEnv(gateway.url, { LEASE_TTL_MS: String(ttl), MAX_CONCURRENT_INVOCATIONS: '1', RESUME_ON_START: 'false' }),
      logger,
    });
    const id = 'paused-store';
    try {
      const handle = await app.orchestrator.submit({ video_uri: `s3://${moto.bucket}/${VIDEO_KEY}`, request_id: id });
      const hung = await until(() => gateway.calls.find((call) => call.request_id === id && call.fault === 'hang'), { timeoutMs: 20_000, message: 'the hanging call is made' });
      // The store stops answering: no renewal can land, and every lease stored expires by stoppedAt + ttl.
      process.kill(moto.pid, 'SIGSTOP');
      const stoppedAt = Date.now();
      try {
        await until(() => hung.ended_at !== null, { timeoutMs: 2 * ttl, message: 'the owner aborts its call while the store is silent' });
      } finally {
        process.kill(moto.pid, 'SIGCONT');
      }
      expect(hung.outcome).toBe('hang');
      expect(hung.ended_at!).toBeLessThan(stoppedAt + ttl);

      // Nobody took it meanwhile: the same process resumes it once the store answers again.
      const outcome = await handle.done;
      expect(outcome.status).toBe('COMPLETED');
      expect(logs.filter((l) => l.request_id === id && l.event === 'lease_expired')).toHaveLength(1);
      expect(logs.filter((l) => l.event === 'lease_lost')).toEqual([]);
      expect(finalWrites(id)).toBe(1);
    } finally {
      await app.close();
      await gateway.close();
    }
  });
});

describe('a store that ignores conditional writes', () => {
  it('is detected at start, with a warning that one owner per request then holds within the process only', async () => {
    const s3 = await startS3rver();
    const logs: LogLine[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    const env = {
      FAVE_STORE: 's3',
      ARTIFACT_ENDPOINT: s3.endpoint,
      ARTIFACT_BUCKET: s3.bucket,
      ARTIFACT_ACCESS_KEY: s3.accessKeyId,
      ARTIFACT_SECRET_KEY: s3.secretAccessKey,
      OPENFAAS_SECRETS_DIR: '/nonexistent',
    };
    const app = await createApp({ env, logger });
    try {
      expect(await app.orchestrator.init()).toEqual({ conditionalWrites: false });
      expect(logs.find((l) => l.event === 'store_ready')).toMatchObject({ conditional_writes: false, owner: app.orchestrator.owner });
      const warning = logs.find((l) => l.event === 'store_without_conditional_writes');
      expect(warning).toMatchObject({ level: 40 });
      expect(String(warning!.message)).toContain('within this process only');
    } finally {
      await app.close();
      await s3.stop();
    }
  });
});
