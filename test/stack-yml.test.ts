import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { loadConfig } from '../src/config/config.ts';
import { DEFAULT_STAGE_NAMES, STAGE_KEYS } from '../src/domain/stage.ts';

const REPO = join(import.meta.dirname, '..');
const STAGE_NAMES = STAGE_KEYS.map((k) => DEFAULT_STAGE_NAMES[k]);

const FunctionSchema = z.object({
  lang: z.literal('dockerfile'),
  handler: z.string(),
  dockerfile: z.string().optional(),
  image: z.string(),
  environment: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  secrets: z.array(z.string()),
  labels: z.record(z.string(), z.string()),
});
const StackSchema = z.object({ functions: z.record(z.string(), FunctionSchema) });

/** faas-cli's substitution of `${VAR:-default}` (and `${VAR}`) from an environment. */
function substitute(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, name: string, fallback: string | undefined) => env[name] ?? fallback ?? '');
}

async function stack(env: Record<string, string> = {}) {
  return StackSchema.parse(parse(substitute(await readFile(join(REPO, 'stack.yml'), 'utf8'), env)));
}

/** The header's profile table: `profile  FAVE_PROFILE  FAVE_SCALE_MIN  FAVE_SCALE_MAX`. */
async function profileTable(): Promise<Array<{ profile: string; min: string; max: string }>> {
  const text = await readFile(join(REPO, 'stack.yml'), 'utf8');
  return [...text.matchAll(/^#\s+([\w-]+)\s+([\w-]+)\s+(\d+)(?: \(\*\))?\s+(\d+)\s*$/gm)].map((m) => ({ profile: m[2]!, min: m[3]!, max: m[4]! }));
}

describe('stack.yml', () => {
  it("deploys the orchestrator and the seven stages under FAVE's function names, each from an image of this repo", async () => {
    const { functions } = await stack();
    expect(Object.keys(functions).sort()).toEqual(['orchestrator', ...STAGE_NAMES].sort());
    expect(functions.orchestrator!.handler).toBe('.');
    expect(functions.orchestrator!.dockerfile).toBeUndefined();
    expect(functions.orchestrator!.image).toMatch(/\/fave-orchestrator:/);
    for (const name of STAGE_NAMES) {
      const fn = functions[name]!;
      expect(fn.handler).toBe('.');
      expect(fn.dockerfile).toBe('Dockerfile.stages');
      expect(fn.image).toMatch(/\/fave-stages:/);
      // The function picks its stage: the fprocess of the watchdog names it.
      expect(fn.environment.fprocess).toBe(`node dist/cli/main.js stage serve ${name}`);
    }
    const dockerfile = await readFile(join(REPO, 'Dockerfile.stages'), 'utf8');
    expect(dockerfile).toMatch(/mode=http/);
    expect(dockerfile).toMatch(/upstream_url=http:\/\/127\.0\.0\.1:8082/);
  });

  it('gives every function the scale labels of the profile it is deployed for', async () => {
    const config = loadConfig({});
    const table = await profileTable();
    expect(table.map((row) => row.profile).sort()).toEqual(['burst-ready', 'cold', 'warm']);
    for (const row of table) {
      const replicas = config.profiles[row.profile]!.replicas;
      expect({ profile: row.profile, min: Number(row.min), max: Number(row.max) }).toEqual({ profile: row.profile, ...replicas });
      const { functions } = await stack({ FAVE_PROFILE: row.profile, FAVE_SCALE_MIN: row.min, FAVE_SCALE_MAX: row.max });
      for (const [name, fn] of Object.entries(functions)) {
        expect({ name, min: fn.labels['com.openfaas.scale.min'], max: fn.labels['com.openfaas.scale.max'] }).toEqual({
          name,
          min: String(replicas.min),
          max: String(replicas.max),
        });
      }
    }
    // With nothing set, the labels are those of the profile CONFIG_PROFILE defaults to.
    const { functions } = await stack();
    const profile = config.profiles[String(functions.orchestrator!.environment.CONFIG_PROFILE)]!;
    for (const fn of Object.values(functions)) {
      expect([fn.labels['com.openfaas.scale.min'], fn.labels['com.openfaas.scale.max']]).toEqual([String(profile.replicas.min), String(profile.replicas.max)]);
    }
  });

  it("points every stage at the orchestrator's artifact store, with the credentials as secrets", async () => {
    const { functions } = await stack({ ARTIFACT_ENDPOINT: 'http://minio.example:9000', ARTIFACT_BUCKET: 'my-bucket' });
    const orchestrator = functions.orchestrator!.environment;
    expect(orchestrator.ARTIFACT_BUCKET).toBe('my-bucket');
    for (const name of STAGE_NAMES) {
      const env = functions[name]!.environment;
      for (const key of ['FAVE_STORE', 'ARTIFACT_ENDPOINT', 'ARTIFACT_BUCKET', 'ARTIFACT_REGION'])
        expect({ name, key, value: env[key] }).toEqual({ name, key, value: orchestrator[key] });
      expect(functions[name]!.secrets).toEqual(expect.arrayContaining(['artifact-access-key', 'artifact-secret-key']));
    }
  });

  it('holds no secret value inline: credentials are only referenced by secret name', async () => {
    const { functions } = await stack();
    for (const [name, fn] of Object.entries(functions)) {
      for (const key of Object.keys(fn.environment)) {
        expect({ name, key, inline: /SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL/i.test(key) }).toEqual({ name, key, inline: false });
      }
      expect(fn.environment.ARTIFACT_ENDPOINT ?? 'http://host').not.toMatch(/\/\/[^/@]*@/);
    }
    const text = await readFile(join(REPO, 'stack.yml'), 'utf8');
    const active = text.split('\n').filter((line) => !line.trimStart().startsWith('#'));
    expect(active.filter((line) => /\b[A-Z_]*(SECRET|PASSWORD|TOKEN|ACCESS_KEY)[A-Z_]*\s*:/.test(line))).toEqual([]);
  });
});
