import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { s3InputRefusal } from '../src/input/s3-input-rules.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { closeNodeServer } from './support/cleanup.ts';

let h: Harness | null = null;
let server: HttpServer | null = null;
let source: Server | null = null;

afterEach(async () => {
  await server?.close(200);
  await h?.close();
  if (source) await closeNodeServer(source);
  server = h = source = null;
});

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('permissions come from the running process', () => {
  it('resumes a state.json that claims allow_local_path / allow_private_network under the server policy, and refuses', async () => {
    h = await startHarness({ gateway: { clips: 1, framesPerClip: 1 } });
    const harness = h;
    // A source that never answers keeps both requests at INIT until they are abandoned.
    source = createServer(() => undefined);
    await new Promise<void>((resolve) => source!.listen(0, '127.0.0.1', resolve));
    const silent = `http://127.0.0.1:${(source.address() as AddressInfo).port}/v.mp4`;
    for (const id of ['planted-local', 'planted-private']) {
      const handle = await harness.app.orchestrator.submit({ video_uri: silent, request_id: id }, { allowPrivateNetwork: true });
      await handle.execution!.abandon();
    }
    // Plant the permissions an older version stored, and a local file as the input of one.
    for (const [id, videoUri] of [
      ['planted-local', '/etc/hostname'],
      ['planted-private', silent],
    ] as const) {
      const loc = { bucket: 'fave-artifacts', key: requestKeys.state(id) };
      const state = JSON.parse((await harness.store.get(loc)).toString('utf8'));
      expect(state.state).toBe('INIT');
      expect(state.snapshot.context).not.toHaveProperty('allow_local_path');
      // The import actor restarts from its own persisted input, a copy of the context: plant both.
      const planted = { video_uri: videoUri, allow_local_path: true, allow_private_network: true };
      Object.assign(state.snapshot.context, planted);
      Object.assign(state.snapshot.children.importInput.snapshot.input, planted);
      await harness.store.put(loc, JSON.stringify(state));
    }

    server = await startHttpServer({ app: harness.app, port: 0, host: '127.0.0.1', processMetrics: false });
    const local = await post('/requests/planted-local/resume', {});
    expect(local.status).toBe(422);
    expect(local.body.error).toMatchObject({ code: 'BAD_REQUEST', step: 'INIT' });
    expect(local.body.error.message).toMatch(/local paths are not accepted/);
    const priv = await post('/requests/planted-private/resume', {});
    expect(priv.status).toBe(422);
    expect(priv.body.error.message).toMatch(/loopback address .*ALLOW_PRIVATE_SOURCES/);
    const keys = await harness.store.list('fave-artifacts', 'requests/');
    expect(keys.filter((k) => k.includes('/input/'))).toEqual([]);
    // The permissions are gone from the state written since.
    const after = (await harness.readState('planted-local')).snapshot;
    expect(after.context).not.toHaveProperty('allow_local_path');
    expect(JSON.stringify(after)).not.toContain('allow_private_network');
  });

  it("refuses a video under the artifact bucket's requests/, over HTTP and from the CLI's orchestrator", async () => {
    h = await startHarness({ gateway: { clips: 1, framesPerClip: 1 } });
    const ok = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'other' });
    await ok.done;
    server = await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false });
    const deputy = await post('/', { video_uri: 's3://fave-artifacts/requests/other/metadata/state.json' });
    expect(deputy.status).toBe(400);
    expect(deputy.body.error.field).toBe('video_uri');
    expect(deputy.body.error.message).toMatch(/requests\/… holds the requests' own state/);

    const cli = await h.app.orchestrator.submit(
      { video_uri: 's3://fave-artifacts/requests/other/metadata/final.json', request_id: 'deputy' },
      { allowLocalPath: true, allowPrivateNetwork: true },
    );
    const outcome = await cli.done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.result.error).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await h.store.list('fave-artifacts', 'requests/deputy/input/')).toEqual([]);
  });

  it('reads INPUT_S3_ALLOW as bucket, bucket/prefix or * entries', () => {
    const env = { OPENFAAS_SECRETS_DIR: '/nonexistent', ARTIFACT_BUCKET: 'fave-artifacts' };
    const defaults = { artifactBucket: 'fave-artifacts', rules: loadConfig(env).inputS3Rules };
    expect(s3InputRefusal({ bucket: 'fave-artifacts', key: 'uploads/a.mp4' }, defaults)).toBeNull();
    expect(s3InputRefusal({ bucket: 'media', key: 'any/a.mp4' }, defaults)).toBeNull();
    expect(s3InputRefusal({ bucket: 'fave-artifacts', key: 'other/a.mp4' }, defaults)).toMatch(/INPUT_S3_ALLOW/);
    const narrow = { artifactBucket: 'fave-artifacts', rules: loadConfig({ ...env, INPUT_S3_ALLOW: 'media/in/, fave-artifacts' }).inputS3Rules };
    expect(s3InputRefusal({ bucket: 'media', key: 'in/a.mp4' }, narrow)).toBeNull();
    expect(s3InputRefusal({ bucket: 'media', key: 'out/a.mp4' }, narrow)).toMatch(/outside/);
    expect(s3InputRefusal({ bucket: 'fave-artifacts', key: 'x/a.mp4' }, narrow)).toBeNull();
    expect(s3InputRefusal({ bucket: 'fave-artifacts', key: 'requests/x/input/original.mp4' }, narrow)).toMatch(/requests/);
    expect(() => loadConfig({ ...env, INPUT_S3_ALLOW: 'Not_A_Bucket' })).toThrow(/INPUT_S3_ALLOW entry 1/);
  });
});
