import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { request } from 'undici';
import { createApp } from '../src/app.ts';
import { parseStageResponse, StageRequestSchema, StageResponseSchema } from '../src/transport/contract.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { buildStageRequest } from '../src/transport/contract.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { startHarness } from './support/harness.ts';
import { validateStagePayload } from './support/python-stage-models.ts';
import { until } from './support/until.ts';

const FULL = {
  request_id: 'r1',
  stage: 'stage-ffmpeg-2',
  input_uri: 's3://fave-artifacts/requests/r1/stage-ffmpeg-1/clip_002.mp4',
  output_hint: null,
  config: { profile: 'warm' },
  fanout: { clip_index: 2 },
};

describe('stage requests as the stages validate them', () => {
  it('the linear stages get fanout {} and every request is one the StagePayload stand-in accepts', () => {
    const linear = buildStageRequest({ request_id: 'r1', function_name: 'stage-ffmpeg-0', task: { stage: 'ffmpeg0', input_uri: 's3://b/k', fanout: {} }, profile: 'default' });
    expect(linear).toEqual({ request_id: 'r1', stage: 'stage-ffmpeg-0', input_uri: 's3://b/k', output_hint: null, config: { profile: 'default' }, fanout: {} });
    expect(StageRequestSchema.safeParse(linear).success).toBe(true);
    expect(validateStagePayload(linear)).toMatchObject({ ok: true });
    expect(validateStagePayload(FULL)).toMatchObject({ ok: true });
  });

  it.each([
    ['fanout', null],
    ['config', null],
    ['output_hint', 3],
    ['input_uri', null],
  ])('the contract schema refuses %s: %s', (field, value) => {
    expect(StageRequestSchema.safeParse({ ...FULL, [field]: value }).success).toBe(false);
  });

  it('the contract schema refuses a missing or an unknown field', () => {
    const { fanout: _omitted, ...withoutFanout } = FULL;
    expect(StageRequestSchema.safeParse(withoutFanout).success).toBe(false);
    expect(StageRequestSchema.safeParse({ ...FULL, extra: 1 }).success).toBe(false);
    expect(StageRequestSchema.safeParse({ ...FULL, fanout: { clip_index: 2, extra: 1 } }).success).toBe(false);
  });

  it("the test gateway refuses fanout: null and config: null with HTTP 200 and pydantic's message", async () => {
    const h = closeAfterTest(await startHarness({ gateway: { clips: 1, framesPerClip: 1, requireInputs: false } }));
    for (const field of ['fanout', 'config'] as const) {
      const res = await request(`${h.gateway.url}/function/stage-ffmpeg-0`, {
        method: 'POST',
        body: JSON.stringify({ ...FULL, stage: 'stage-ffmpeg-0', [field]: null }),
        headers: { 'content-type': 'application/json' },
      });
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(['message', 'status']);
      expect(body.status).toBe('error');
      expect(body.message).toBe(
        `1 validation error for StagePayload\n${field}\n  Input should be a valid dictionary [type=dict_type, input_value=None, input_type=NoneType]\n` +
          '    For further information visit https://errors.pydantic.dev/2.11/v/dict_type',
      );
    }
    expect(h.gateway.calls.map((c) => c.outcome)).toEqual(['error', 'error']);
  });

  it('a full request passes through the strict stand-in: no call is refused', async () => {
    const h = closeAfterTest(await startHarness({ gateway: { clips: 3, framesPerClip: 2 } }));
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'strict' })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(h.gateway.calls).toHaveLength(3 + 3 * 3 + 3 * 2);
    expect(h.gateway.calls.every((c) => c.outcome === 'success')).toBe(true);
  });

  it('a state.json written when linear stages were sent fanout: null resumes with fanout {}', async () => {
    const h = closeAfterTest(await startHarness({ gateway: { clips: 2, framesPerClip: 1, faults: [{ stage: 'librosa', kind: 'hang', times: 1 }] } }));
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'legacy' });
    handle.done.catch(() => undefined);
    await until(async () => h.gateway.callsTo('librosa').length === 1 && (await h.readState('legacy')).state === 'LIBROSA', { message: 'librosa in flight' });
    await h.app.orchestrator.close();

    // What an older version wrote: the in-flight call's input with `fanout: null`.
    const loc = { bucket: 'fave-artifacts', key: requestKeys.state('legacy') };
    const state = JSON.parse((await h.store.get(loc)).toString('utf8')) as {
      snapshot: { children: Record<string, { snapshot: { input: { task: { fanout: unknown } } } }> };
    };
    const child = state.snapshot.children.librosa;
    expect(child?.snapshot.input.task.fanout).toEqual({});
    child!.snapshot.input.task.fanout = null;
    await h.store.put(loc, JSON.stringify(state));

    const second = closeAfterTest(await createApp({ env: h.env, logger: pino({ level: 'silent' }) }));
    const resumed = await (await second.orchestrator.resume('legacy')).done;
    expect(resumed.status).toBe('COMPLETED');
    expect(h.gateway.callsTo('librosa').map((c) => c.outcome)).toEqual(['hang', 'success']);
  });
});

describe('stage answers as the orchestrator reads them', () => {
  /** A small deterministic generator (mulberry32), so a failure names an answer that stays the same. */
  function random(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** Answers of every shape: well-formed ones and ones broken in one field or several. */
  function answers(count: number): string[] {
    const next = random(27);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
    const odd = [null, 1, 'x', true, [], {}, [1], { a: 1 }];
    const field = (into: Record<string, unknown>, key: string, good: readonly unknown[]) => {
      const roll = next();
      if (roll < 0.25) return;
      into[key] = roll < 0.85 ? pick(good) : pick(odd);
    };
    const output = (): unknown => {
      if (next() < 0.03) return pick(odd);
      const o: Record<string, unknown> = {};
      field(o, 'type', ['video', 'image', 'json']);
      field(o, 'uri', ['s3://fave-artifacts/k']);
      field(o, 'metadata', [{ clip_index: 1, detections: [{ label: 'car' }] }, null, {}]);
      if (next() < 0.2) o.extra = { kept: true };
      return o;
    };
    const list: string[] = [];
    for (let i = 0; i < count; i++) {
      const answer: Record<string, unknown> = {};
      field(answer, 'status', ['success', 'error', 'skipped', 'simulated', 'done']);
      field(answer, 'request_id', ['r1']);
      field(answer, 'stage', ['stage-detector']);
      field(answer, 'message', ['why', null]);
      if (next() < 0.8) answer.outputs = next() < 0.05 ? pick(odd) : Array.from({ length: Math.floor(next() * 3) }, output);
      if (next() < 0.8) {
        const metrics: Record<string, unknown> = {};
        for (const key of ['duration_ms', 'memory_limit_mb', 'cost_unit']) field(metrics, key, [12, 0.5, null]);
        field(metrics, 'cold_start', [true, false, null]);
        field(metrics, 'extra', [{ scripted: true }, null]);
        answer.metrics = next() < 0.05 ? pick(odd) : metrics;
      }
      if (next() < 0.2) answer.unknown_field = { passes: 'through' };
      list.push(JSON.stringify(next() < 0.02 ? pick(odd) : answer));
    }
    return list;
  }

  it('the hand-written check accepts, refuses and normalizes exactly as StageResponseSchema does', () => {
    let accepted = 0;
    for (const text of answers(5000)) {
      const bySchema = StageResponseSchema.safeParse(JSON.parse(text));
      const checked = parseStageResponse(JSON.parse(text));
      expect({ text, success: checked.success }).toEqual({ text, success: bySchema.success });
      if (bySchema.success && checked.success) {
        accepted++;
        expect(checked.data).toEqual(bySchema.data);
      }
    }
    // Both kinds are well represented.
    expect(accepted).toBeGreaterThan(300);
    expect(accepted).toBeLessThan(4700);
  });

  it('a broken answer is still described by the schema', () => {
    const parsed = parseStageResponse({ status: 'success', outputs: [{ type: 'video' }] });
    expect(parsed.success).toBe(false);
    if (!parsed.success) expect(parsed.error.issues[0]?.path).toEqual(['outputs', 0, 'uri']);
  });
});
