import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, stageCallMode } from '../src/config/config.ts';
import { FaveFailure } from '../src/domain/errors.ts';

let dir: string;
const SECRET = 'a-callback-secret-of-some-length';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-async-config-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function refusal(env: Record<string, string>): string {
  try {
    loadConfig({ OPENFAAS_SECRETS_DIR: join(dir, 'none'), ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(FaveFailure);
    return (err as FaveFailure).error.message;
  }
  throw new Error('the configuration was accepted');
}

describe('stage call mode configuration', () => {
  it('is sync by default and needs no callback settings', () => {
    const config = loadConfig({ OPENFAAS_SECRETS_DIR: join(dir, 'none') });
    expect(stageCallMode(config.profiles.default!, 'deepspeech')).toBe('sync');
    expect(config.callback).toBeNull();
  });

  it('async without CALLBACK_BASE_URL or a secret fails at start naming the variable', () => {
    expect(refusal({ STAGE_CALL_MODE: 'async', CALLBACK_SECRET: SECRET })).toMatch(/^CALLBACK_BASE_URL /);
    expect(refusal({ STAGE_CALL_MODE: 'async', CALLBACK_BASE_URL: 'http://orchestrator:8080' })).toMatch(/^CALLBACK_SECRET .*fave-callback-secret/);
    expect(refusal({ STAGE_CALL_MODE: 'later' })).toMatch(/^STAGE_CALL_MODE /);
  });

  it('a profile that calls one stage async needs the callback settings too', async () => {
    const file = join(dir, 'profiles.json');
    await writeFile(file, JSON.stringify({ long: { call_mode: { deepspeech: 'async' } } }));
    expect(refusal({ FAVE_PROFILES_FILE: file })).toMatch(/^CALLBACK_BASE_URL .*profile "long"/);
  });

  it('reads the secret file fave-callback-secret and resolves per-stage modes over the base', async () => {
    const secrets = join(dir, 'secrets');
    const file = join(dir, 'modes.json');
    await mkdir(secrets, { recursive: true });
    await writeFile(join(secrets, 'fave-callback-secret'), `${SECRET}\n`);
    await writeFile(file, JSON.stringify({ mixed: { call_mode: { ffmpeg0: 'sync' } }, allsync: { call_mode: 'sync' } }));
    const config = loadConfig({
      OPENFAAS_SECRETS_DIR: secrets,
      STAGE_CALL_MODE: 'async',
      CALLBACK_BASE_URL: 'http://gateway.openfaas:8080/function/orchestrator/',
      FAVE_PROFILES_FILE: file,
    });
    expect(config.callback).toEqual({ baseUrl: 'http://gateway.openfaas:8080/function/orchestrator', secret: SECRET });
    expect(stageCallMode(config.profiles.default!, 'librosa')).toBe('async');
    expect(stageCallMode(config.profiles.mixed!, 'ffmpeg0')).toBe('sync');
    expect(stageCallMode(config.profiles.mixed!, 'deepspeech')).toBe('async');
    expect(stageCallMode(config.profiles.allsync!, 'deepspeech')).toBe('sync');
  });
});
