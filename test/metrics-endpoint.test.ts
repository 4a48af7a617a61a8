import { describe, expect, it } from 'vitest';
import { startHttpServer } from '../src/server/http-server.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { startHarness } from './support/harness.ts';
import { expectedClips } from './support/test-gateway.ts';
import { until } from './support/until.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

/**
 * A strict reader of the Prometheus text format (0.0.4): HELP/TYPE comments, then samples
 * `name{label="value",…} number`, each belonging to a declared family. Throws on anything else.
 */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const familyOf = (name: string) => {
    if (types.has(name)) return name;
    const base = name.replace(/_(bucket|sum|count|total|created)$/, '');
    if (types.has(base)) return base;
    throw new Error(`sample ${name} has no # TYPE`);
  };
  for (const [n, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`line ${n + 1}: bad type ${rest}`);
        types.set(name, rest);
      } else help.set(name, rest);
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)(?: -?\d+)?$/.exec(line);
    if (!sample) throw new Error(`line ${n + 1} is not a sample: ${line}`);
    const [, name, rawLabels = '', rawValue] = sample as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;
    let consumed = 0;
    while (consumed < rawLabels.length) {
      labelRe.lastIndex = consumed;
      const m = labelRe.exec(rawLabels);
      if (!m) throw new Error(`line ${n + 1}: bad labels ${rawLabels}`);
      labels[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      consumed = labelRe.lastIndex;
    }
    familyOf(name);
    samples.push({ name, labels, value: rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue) });
  }
  return { types, help, samples };
}

const sum = (samples: Sample[], name: string, where: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

describe('GET /metrics', () => {
  it('is Prometheus text whose invocation counts equal the calls the gateway saw', async () => {
    const h = closeAfterTest(
      await startHarness({
        gateway: {
          clips: 4,
          framesPerClip: 2,
          coldStartEvery: 5,
          faults: [
            { stage: 'ffmpeg0', kind: 'status', status: 502, times: 2 },
            { stage: 'detector', clip: 1, frame: 1, kind: 'status', status: 503, times: 1 },
            // A single-call stage, so no sibling call is in flight (and abandoned) when it fails.
            { stage: 'librosa', kind: 'error', requestId: 'm-fails' },
          ],
        },
      }),
    );
    const server = closeAfterTest(await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: true }), (s) => s.close(200));
    const post = (body: unknown) => fetch(`${server.url}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post({ video_uri: h.videoUri, request_id: 'm-ok-1' })).status).toBe(200);
    expect((await post({ video_uri: h.videoUri, request_id: 'm-ok-2' })).status).toBe(200);
    expect((await post({ video_uri: h.videoUri, request_id: 'm-fails' })).status).toBe(502);

    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const { types, samples } = parseExposition(await res.text());

    expect(types.get('fave_invocations_total')).toBe('counter');
    expect(types.get('fave_invocation_duration_seconds')).toBe('histogram');
    expect(types.get('fave_retries_total')).toBe('counter');
    expect(types.get('fave_cold_starts_total')).toBe('counter');
    expect(types.get('fave_requests_in_flight')).toBe('gauge');
    expect(types.get('fave_requests_total')).toBe('counter');
    expect(types.get('fave_state_writes_total')).toBe('counter');
    expect(types.get('fave_state_write_bytes_total')).toBe('counter');
    expect(types.get('process_resident_memory_bytes')).toBe('gauge');

    const calls = h.gateway.calls;
    expect(calls.length).toBeGreaterThan(0);
    expect(sum(samples, 'fave_invocations_total')).toBe(calls.length);
    expect(sum(samples, 'fave_invocation_duration_seconds_count')).toBe(calls.length);
    for (const stage of new Set(calls.map((c) => c.stage))) {
      expect(sum(samples, 'fave_invocations_total', { stage }), stage).toBe(calls.filter((c) => c.stage === stage).length);
      const inf = samples.find((s) => s.name === 'fave_invocation_duration_seconds_bucket' && s.labels.stage === stage && s.labels.le === '+Inf');
      expect(inf?.value, stage).toBe(calls.filter((c) => c.stage === stage).length);
    }
    expect(sum(samples, 'fave_invocations_total', { stage: 'stage-ffmpeg-0', outcome: 'STAGE_UNAVAILABLE' })).toBe(2);
    expect(sum(samples, 'fave_invocations_total', { stage: 'stage-librosa', outcome: 'STAGE_REPORTED_ERROR' })).toBe(1);
    expect(sum(samples, 'fave_invocations_total', { outcome: 'success' })).toBe(calls.filter((c) => c.outcome === 'success').length);
    // The faults fire on the first request only: two retries of ffmpeg-0, one of a detector frame.
    expect(sum(samples, 'fave_retries_total')).toBe(3);
    expect(sum(samples, 'fave_retries_total', { stage: 'stage-object-detector' })).toBe(1);
    expect(sum(samples, 'fave_cold_starts_total')).toBe(calls.filter((c) => c.cold_start === true).length);
    expect(sum(samples, 'fave_cold_starts_total')).toBeGreaterThan(0);
    expect(sum(samples, 'fave_requests_total', { status: 'COMPLETED' })).toBe(2);
    expect(sum(samples, 'fave_requests_total', { status: 'FAILED' })).toBe(1);
    expect(sum(samples, 'fave_requests_in_flight')).toBe(0);
    expect(sum(samples, 'fave_state_writes_total')).toBeGreaterThanOrEqual(3);
    expect(sum(samples, 'fave_state_write_bytes_total')).toBe(h.app.orchestrator.stateBytes);
  });

  it('counts a request in flight while it runs', async () => {
    const h = closeAfterTest(await startHarness({ gateway: { clips: 2, framesPerClip: 1, faults: [{ stage: 'librosa', kind: 'hang' }] } }));
    const server = closeAfterTest(await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false }), (s) => s.close(200));
    const accepted = await fetch(`${server.url}/?async=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_uri: h.videoUri, request_id: 'm-running' }),
    });
    expect(accepted.status).toBe(202);
    const harness = h;
    await until(() => harness.gateway.callsTo('librosa').length > 0, { message: 'the librosa call' });
    const { samples } = parseExposition(await (await fetch(`${server.url}/metrics`)).text());
    expect(sum(samples, 'fave_requests_in_flight')).toBe(1);
    expect(samples.some((s) => s.name.startsWith('process_'))).toBe(false);
    expect(h.app.orchestrator.cancel('m-running')).toBe(true);
  });
});

interface SyncAnswer {
  request_id: string;
  status: string;
  result: { clips: Array<{ uri: string; transcript: string | null; status: string }>; matches: Array<{ clip_index: number }>; metrics: { invocations: number } };
}

describe('under load', () => {
  it('completes 50 concurrent requests × 10 clips on one server process, and /metrics adds up', async () => {
    const script = { clips: 10, framesPerClip: 1 };
    const h = closeAfterTest(await startHarness({ gateway: { ...script, latencyMs: 1 } }));
    const harness = h;
    const server = closeAfterTest(await startHttpServer({ app: harness.app, port: 0, host: '127.0.0.1', processMetrics: false }), (s) => s.close(200));
    const run = async (id: string) => {
      const res = await fetch(`${server.url}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ video_uri: harness.videoUri, query: 'car', request_id: id }),
      });
      return { status: res.status, body: (await res.json()) as SyncAnswer };
    };
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const baseline = process.memoryUsage().rss;
      const t0 = performance.now();
      const alone = await run('alone');
      const aloneMs = performance.now() - t0;
      expect(alone.status).toBe(200);
      const peakAlone = peak;

      const ids = Array.from({ length: 50 }, (_, i) => `load-${String(i).padStart(2, '0')}`);
      const t1 = performance.now();
      const answers = await Promise.all(ids.map(run));
      const allMs = performance.now() - t1;

      for (const [i, res] of answers.entries()) {
        const id = ids[i]!;
        expect(res.status, id).toBe(200);
        expect(res.body.request_id).toBe(id);
        expect(res.body.result.clips.map((c) => [c.uri, c.transcript, c.status])).toEqual(expectedClips(script, id).map((c) => [c.uri, c.transcript, 'done']));
        expect(res.body.result.matches.map((m) => m.clip_index)).toEqual(alone.body.result.matches.map((m) => m.clip_index));
        expect(res.body.result.metrics.invocations).toBe(3 + 30 + 10);
      }
      expect(harness.gateway.calls).toHaveLength(51 * 43);
      expect(harness.app.orchestrator.running()).toHaveLength(0);

      const { samples } = parseExposition(await (await fetch(`${server.url}/metrics`)).text());
      expect(sum(samples, 'fave_invocations_total')).toBe(harness.gateway.calls.length);
      expect(sum(samples, 'fave_requests_total', { status: 'COMPLETED' })).toBe(51);
      expect(sum(samples, 'fave_requests_in_flight')).toBe(0);

      const mb = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
      console.log(
        `[load] 1 request × 10 clips: ${Math.round(aloneMs)} ms, peak RSS ${mb(peakAlone)} (baseline ${mb(baseline)}); ` +
          `50 concurrent × 10 clips: ${Math.round(allMs)} ms wall, peak RSS ${mb(peak)}; ` +
          `${harness.gateway.calls.length} stage calls, gateway peak concurrency ${harness.gateway.maxConcurrent} ` +
          '(server, scripted gateway and store share this process)',
      );
    } finally {
      clearInterval(sampler);
    }
  });
});
