import { readFileSync, existsSync } from 'node:fs';
import { z } from 'zod';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { defaultS3InputRules, parseS3InputRules, type S3InputRule } from '../input/s3-input-rules.ts';
import { DEFAULT_MAX_INPUT_BYTES } from '../input/import.ts';
import { DEFAULT_STAGE_NAMES, STAGE_KEYS, type StageKey } from '../domain/stage.ts';
import { CallModeSchema, RetryPolicySchema, type CallMode, type Settings } from '../domain/settings.ts';
import { DEFAULT_MIN_CONFIDENCE } from '../domain/query/match.ts';
import { parseApiTokens, ROLES, type ApiAuth } from './api-tokens.ts';
import { describeZodIssue } from '../lib/zod-issue.ts';
import { envBoolean, envInt, readEnv } from '../lib/env.ts';

const STAGE_NAME_ENV: Record<StageKey, string> = {
  ffmpeg0: 'STAGE_FFMPEG_0',
  librosa: 'STAGE_LIBROSA',
  ffmpeg1: 'STAGE_FFMPEG_1',
  ffmpeg2: 'STAGE_FFMPEG_2',
  deepspeech: 'STAGE_DEEPSPEECH',
  ffmpeg3: 'STAGE_FFMPEG_3',
  detector: 'STAGE_OBJECT_DETECTOR',
};

const StrictRetryPolicySchema = RetryPolicySchema.strict();

/** A profile: timeouts, retry policy, concurrency, tolerated failures and the replica regime. */
export const ProfileSchema = z.strictObject({
  stage_timeout_s: z.number().positive(),
  stage_timeouts_s: z.partialRecord(z.enum(STAGE_KEYS), z.number().positive()),
  request_deadline_s: z.number().positive(),
  retry: StrictRetryPolicySchema,
  max_concurrency: z.number().int().min(1).max(1024),
  tolerated_failure_pct: z.number().min(0).max(100),
  replicas: z.strictObject({ min: z.number().int().min(0), max: z.number().int().min(1) }),
  /** One mode for every stage, or per stage (stages not named keep STAGE_CALL_MODE). */
  call_mode: z.union([CallModeSchema, z.partialRecord(z.enum(STAGE_KEYS), CallModeSchema)]),
  /** What the profile is for, in a sentence or two: the request form shows it beside the choice. */
  description: z.string().max(500).optional(),
  /** Whether requests of this profile scale the stages ahead of need (PREWARM when not given). */
  prewarm: z.enum(['on', 'off']),
});
export type Profile = z.infer<typeof ProfileSchema>;

export const PartialProfileSchema = ProfileSchema.partial().extend({
  retry: StrictRetryPolicySchema.partial().optional(),
  replicas: z.strictObject({ min: z.number().int().min(0), max: z.number().int().min(1) }).optional(),
});
type PartialProfile = z.infer<typeof PartialProfileSchema>;

/**
 * The profiles every deployment has. Each description is the one place that explains a profile
 * to the people choosing it (the request form shows it).
 */
const BUILT_IN_PROFILES: Record<string, PartialProfile> = {
  default: { description: 'The settings of the environment, unchanged.' },
  // Scaling from zero answers 502/503 for a while: give it more attempts and longer backoff.
  // It keeps its whole budget even for a repeated answer: a function starting up may fail alike.
  // FAVE's cold regime, kept measurable: every stage scales from zero on its first call.
  cold: {
    replicas: { min: 0, max: 5 },
    prewarm: 'off',
    retry: { max_attempts: 6, base_delay_ms: 500, max_delay_ms: 15_000, stop_on_repeated_error: false },
    description: 'Stages may have to start first: slower, with more retries and longer waits between them.',
  },
  warm: { replicas: { min: 1, max: 5 }, description: 'Stages are already running: the usual choice.' },
  'burst-ready': { replicas: { min: 3, max: 10 }, description: 'Stages kept running in numbers: for many clips or many requests at once.' },
};

/** How the HTTP surfaces answer a request: this orchestrator's own answer, or the Python one's envelope. */
export const RESPONSE_FORMATS = ['fave', 'fave-v1'] as const;
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];

const EnvSchema = z.object({
  GATEWAY_URL: z.url({ protocol: /^https?$/ }).optional(),
  ARTIFACT_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name')
    .default('fave-artifacts'),
  ARTIFACT_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  ARTIFACT_REGION: z.string().min(1).default('us-east-1'),
  ARTIFACT_ACCESS_KEY: z.string().min(1).optional(),
  ARTIFACT_SECRET_KEY: z.string().min(1).optional(),
  FAVE_STORE: z.enum(['fs', 's3']).optional(),
  FAVE_DATA_DIR: z.string().min(1).default('./.fave'),
  CONFIG_PROFILE: z.string().min(1).default('default'),
  FAVE_PROFILES_FILE: z.string().min(1).optional(),
  MAX_CONCURRENT_INVOCATIONS: envInt(1, 1024).default(16),
  PROCESS_MAX_CONCURRENT_INVOCATIONS: envInt(1, 4096).default(256),
  STAGE_TIMEOUT_SECONDS: z.coerce.number().positive().default(300),
  REQUEST_DEADLINE_SECONDS: z.coerce
    .number()
    .positive()
    .default(6 * 3600),
  RETRY_MAX_ATTEMPTS: envInt(1, 50).default(4),
  RETRY_BASE_DELAY_MS: envInt(0, 600_000).default(200),
  RETRY_MAX_DELAY_MS: envInt(0, 3_600_000).default(10_000),
  RETRY_STOP_ON_REPEATED_ERROR: envBoolean.default(true),
  TOLERATED_FAILURE_PCT: z.coerce.number().min(0).max(100).default(0),
  ENABLE_OBJECT_DETECTOR: envBoolean.default(true),
  PERSIST_INTERVAL_MS: envInt(0, 3_600_000).default(1000),
  LEASE_TTL_MS: envInt(500, 3_600_000).default(30_000),
  // Shifts the clock leases are written and judged by, to rehearse replicas whose clocks disagree.
  LEASE_CLOCK_OFFSET_MS: envInt(-86_400_000, 86_400_000).default(0),
  BASIC_AUTH_USER: z.string().optional(),
  BASIC_AUTH_PASSWORD: z.string().optional(),
  // The gateway admin credentials of its system API (pre-warming's scale calls, `fave load --cold/--warm`),
  // as faas-cli names them; the gateway's basic auth when unset.
  OPENFAAS_USERNAME: z.string().min(1).optional(),
  OPENFAAS_PASSWORD: z.string().min(1).optional(),
  PREWARM: z.enum(['on', 'off']).default('on'),
  PREWARM_STRATEGY: z.enum(['speculative', 'just-in-time']).default('speculative'),
  // Calls one replica serves at once, when the function's max_inflight cannot be read.
  PREWARM_CALLS_PER_REPLICA: envInt(1, 1024).default(1),
  PREWARM_TIMEOUT_MS: envInt(100, 60_000).default(2000),
  OPENFAAS_SECRETS_DIR: z.string().default('/var/openfaas/secrets'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ALLOW_PRIVATE_SOURCES: envBoolean.default(false),
  RESUME_ON_START: envBoolean.default(false),
  STAGE_CALL_MODE: CallModeSchema.default('sync'),
  CALLBACK_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
  CALLBACK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  // API access: `role:token` entries (role read|operate), comma- or newline-separated.
  FAVE_API_TOKENS: z.string().optional(),
  FAVE_ANONYMOUS_ROLE: z.enum(ROLES).optional(),
  // Origins besides the service's own host whose pages may POST (a proxy that rewrites Host).
  FAVE_ALLOWED_ORIGINS: z.string().optional(),
  // Host names besides loopback that callers without a token may use (a proxy's name).
  FAVE_ALLOWED_HOSTS: z.string().optional(),
  // The largest answer read from a stage, and the largest input video stored.
  STAGE_RESPONSE_MAX_BYTES: envInt(1024, 2 ** 31).default(16 * 1024 * 1024),
  MAX_INPUT_BYTES: envInt(1, Number.MAX_SAFE_INTEGER).default(DEFAULT_MAX_INPUT_BYTES),
  // The filesystem store's lock on state.json outlives a holder's last heartbeat by this long.
  FS_LOCK_LEASE_MS: envInt(100, 600_000).default(3000),
  // How many orphaned requests one sweep takes over at once.
  ORPHAN_RESUME_CONCURRENCY: envInt(1, 256).default(8),
  // How often an orphan sweep also scans every request for one the running index misses.
  INDEX_FULL_SCAN_INTERVAL_MS: envInt(1000, 30 * 24 * 3_600_000).default(3_600_000),
  // Where s3:// videos may come from: `bucket`, `bucket/prefix` or `*` entries, comma-separated.
  INPUT_S3_ALLOW: z.string().optional(),
  RESPONSE_FORMAT: z.enum(RESPONSE_FORMATS).default('fave'),
  // POST /uploads: the largest video it stores (default 2 GiB); 0 turns the route off.
  FAVE_UPLOAD_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .default(2 * 1024 ** 3),
  // All stored uploads together (default 20 GiB); an upload that would pass it is refused with 507.
  MAX_UPLOAD_STORE_BYTES: envInt(1, Number.MAX_SAFE_INTEGER).default(20 * 1024 ** 3),
  // An upload is removed this long after it was stored unless a request running here still reads it; 0 keeps uploads.
  UPLOAD_TTL_SECONDS: envInt(0, 10 * 365 * 86_400).default(7 * 86_400),
  // A temp file of the filesystem store untouched this long is a dead writer's and is removed.
  STALE_TEMP_AFTER_SECONDS: envInt(1, 30 * 86_400).default(3600),
  ...Object.fromEntries(
    Object.values(STAGE_NAME_ENV).map((name) => [
      name,
      z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be an OpenFaaS function name')
        .optional(),
    ]),
  ),
});

export type PrewarmStrategy = 'speculative' | 'just-in-time';

export interface Config {
  gatewayUrl: string | null;
  gatewayAuth: { user: string; password: string } | null;
  /** Credentials of the gateway's `/system/*` (OPENFAAS_USERNAME/PASSWORD, else the gateway's basic auth). Never logged. */
  systemAuth: { user: string; password: string } | null;
  /** Pre-warming: when to scale the stages ahead (`PREWARM_*`); a profile's `prewarm` turns it off per request. */
  prewarm: { strategy: PrewarmStrategy; callsPerReplica: number; timeoutMs: number };
  store:
    | { kind: 'fs'; dataDir: string; bucket: string; lockLeaseMs?: number }
    | { kind: 's3'; bucket: string; endpoint: string | null; region: string; accessKeyId: string | null; secretAccessKey: string | null };
  bucket: string;
  profileName: string;
  profiles: Record<string, Profile>;
  stageNames: Record<StageKey, string>;
  detectorEnabled: boolean;
  processMaxConcurrency: number;
  persistIntervalMs: number;
  /** How long an owner's claim on a request lasts without renewal (renewed every third of it). */
  leaseTtlMs: number;
  /** Added to this process's clock for lease times only (0; other values rehearse clock skew). */
  leaseClockOffsetMs: number;
  logLevel: z.infer<typeof EnvSchema>['LOG_LEVEL'];
  /** Lets http(s) video sources resolve to loopback, private, link-local or metadata addresses. */
  allowPrivateSources: boolean;
  /** `fave serve` takes over unfinished requests whose owner is gone when it starts. */
  resumeOnStart: boolean;
  /** Where the queue-worker posts async results, and the key of their tokens; null when no stage runs async. */
  callback: CallbackConfig | null;
  /** Bearer tokens of the HTTP API (`FAVE_API_TOKENS` or the `fave-api-tokens` secret) and the anonymous role. */
  auth: ApiAuth;
  /** Origins (`scheme://host[:port]`, lower case) accepted on state-changing routes besides the request's own host. */
  allowedOrigins: string[];
  /** Host names (`name` or `name:port`, lower case) callers without a token may use besides 127.0.0.1, localhost and [::1] on the server's port. */
  allowedHosts: string[];
  /** Buckets and prefixes `s3://` videos may come from (`INPUT_S3_ALLOW`); `requests/` never. */
  inputS3Rules: S3InputRule[];
  /** Reading a stage's answer stops past this many bytes (`STAGE_RESPONSE_MAX_BYTES`, default 16 MiB). */
  stageResponseMaxBytes: number;
  /** A source video past this many bytes is refused and its partial copy removed (`MAX_INPUT_BYTES`, default 20 GiB). */
  maxInputBytes: number;
  /** Orphaned requests one sweep takes over at once (`ORPHAN_RESUME_CONCURRENCY`, default 8). */
  orphanResumeConcurrency: number;
  /**
   * At most one slow scan of every request per this period (`INDEX_FULL_SCAN_INTERVAL_MS`,
   * default 1 h): it finds a running request whose index marker a crash kept from being written.
   */
  indexFullScanIntervalMs: number;
  /** The answer format of the HTTP surfaces when a call names none (`?format=`). */
  responseFormat: ResponseFormat;
  /** The largest body `POST /uploads` stores; 0: uploads are refused. */
  uploadMaxBytes: number;
  /** What all stored uploads may take together (`MAX_UPLOAD_STORE_BYTES`, default 20 GiB). */
  uploadStoreMaxBytes: number;
  /** How long an upload no request running here reads is kept (`UPLOAD_TTL_SECONDS`, default 7 days); null: kept. */
  uploadTtlMs: number | null;
  /** A filesystem-store temp file untouched this long is a dead writer's (`STALE_TEMP_AFTER_SECONDS`, default 1 h). */
  staleTempMs: number;
}

function readSecret(dir: string, name: string): string | undefined {
  const path = `${dir}/${name}`;
  if (!existsSync(path)) return undefined;
  return readFileSync(path, 'utf8').trim() || undefined;
}

/** A URL without its user:password, and those apart (percent-decoded). */
function splitUserinfo(raw: string): { url: string; user?: string; password?: string } {
  const url = new URL(raw);
  if (!url.username && !url.password) return { url: raw };
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  return { url: url.toString(), user, password };
}

function parseOrigins(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
    .map((o, index) => {
      if (!URL.canParse(o) || !/^https?:$/.test(new URL(o).protocol)) throw badConfig('FAVE_ALLOWED_ORIGINS', `entry ${index + 1} is not an http(s) origin`);
      return new URL(o).origin.toLowerCase();
    });
}

function parseHosts(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '')
    .map((h, index) => {
      if (!/^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::\d{1,5})?$/.test(h))
        throw badConfig('FAVE_ALLOWED_HOSTS', `entry ${index + 1} is not a host name or host:port`);
      return h;
    });
}

function badConfig(variable: string, problem: string): FaveFailure {
  return new FaveFailure(faveError('BAD_CONFIG', `${variable} ${problem}`, { field: variable }));
}

function mergeProfile(base: Profile, over: PartialProfile): Profile {
  return {
    ...base,
    ...over,
    stage_timeouts_s: { ...base.stage_timeouts_s, ...over.stage_timeouts_s },
    retry: { ...base.retry, ...over.retry },
    replicas: over.replicas ?? base.replicas,
    call_mode: mergeCallMode(base, over.call_mode),
  } as Profile;
}

/** A per-stage call_mode names only the stages it changes; the others keep the base's mode. */
function mergeCallMode(base: Profile, over: PartialProfile['call_mode']): Profile['call_mode'] {
  if (over === undefined || typeof over === 'string') return over ?? base.call_mode;
  return Object.fromEntries(STAGE_KEYS.map((stage) => [stage, over[stage] ?? stageCallMode(base, stage)]));
}

/** Reads and validates the environment; the error names the offending variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = readEnv(EnvSchema, env, 'environment');
  if (!parsed.ok) throw badConfig(parsed.variable, parsed.problem);
  const e = parsed.data;
  const base: Profile = {
    stage_timeout_s: e.STAGE_TIMEOUT_SECONDS,
    stage_timeouts_s: {},
    request_deadline_s: e.REQUEST_DEADLINE_SECONDS,
    retry: {
      max_attempts: e.RETRY_MAX_ATTEMPTS,
      base_delay_ms: e.RETRY_BASE_DELAY_MS,
      max_delay_ms: e.RETRY_MAX_DELAY_MS,
      stop_on_repeated_error: e.RETRY_STOP_ON_REPEATED_ERROR,
    },
    max_concurrency: e.MAX_CONCURRENT_INVOCATIONS,
    tolerated_failure_pct: e.TOLERATED_FAILURE_PCT,
    replicas: { min: 0, max: 5 },
    call_mode: e.STAGE_CALL_MODE,
    prewarm: e.PREWARM,
  };
  const partials: Record<string, PartialProfile> = { ...BUILT_IN_PROFILES };
  if (e.FAVE_PROFILES_FILE) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(e.FAVE_PROFILES_FILE, 'utf8'));
    } catch (err) {
      throw badConfig('FAVE_PROFILES_FILE', `cannot be read as JSON: ${(err as Error).message}`);
    }
    const file = z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), PartialProfileSchema).safeParse(raw);
    if (!file.success) {
      throw badConfig('FAVE_PROFILES_FILE', `is invalid at ${describeZodIssue(file.error)}`);
    }
    Object.assign(partials, file.data);
  }
  const profiles = Object.fromEntries(Object.entries(partials).map(([name, p]) => [name, mergeProfile(base, p)]));
  if (!profiles[e.CONFIG_PROFILE]) {
    throw badConfig('CONFIG_PROFILE', `names an unknown profile "${e.CONFIG_PROFILE}" (known: ${Object.keys(profiles).join(', ')})`);
  }
  const stageNames = Object.fromEntries(STAGE_KEYS.map((key) => [key, (e as Record<string, unknown>)[STAGE_NAME_ENV[key]] ?? DEFAULT_STAGE_NAMES[key]])) as Record<
    StageKey,
    string
  >;

  const secretsDir = e.OPENFAAS_SECRETS_DIR;
  // user:password in GATEWAY_URL is the gateway's basic auth: taken out of the URL (which is
  // logged) and sent as an Authorization header, unless basic auth is configured apart.
  const gateway = e.GATEWAY_URL ? splitUserinfo(e.GATEWAY_URL) : null;
  const user = e.BASIC_AUTH_USER ?? readSecret(secretsDir, 'basic-auth-user') ?? gateway?.user;
  const password = e.BASIC_AUTH_PASSWORD ?? readSecret(secretsDir, 'basic-auth-password') ?? gateway?.password;
  if (e.ARTIFACT_ENDPOINT && splitUserinfo(e.ARTIFACT_ENDPOINT).user !== undefined) {
    throw badConfig(
      'ARTIFACT_ENDPOINT',
      'must not carry credentials (user:password@): use ARTIFACT_ACCESS_KEY / ARTIFACT_SECRET_KEY or the artifact-access-key / artifact-secret-key secrets',
    );
  }
  const tokensText = e.FAVE_API_TOKENS ?? readSecret(secretsDir, 'fave-api-tokens');
  const tokens = tokensText ? parseApiTokens(tokensText, e.FAVE_API_TOKENS ? 'FAVE_API_TOKENS' : `${secretsDir}/fave-api-tokens`) : [];
  const s3Rules = e.INPUT_S3_ALLOW === undefined ? defaultS3InputRules(e.ARTIFACT_BUCKET) : parseS3InputRules(e.INPUT_S3_ALLOW);
  if (typeof s3Rules === 'string') throw badConfig('INPUT_S3_ALLOW', s3Rules);
  const storeKind = e.FAVE_STORE ?? (e.ARTIFACT_ENDPOINT ? 's3' : 'fs');
  const callback = callbackConfig(e.CALLBACK_BASE_URL, e.CALLBACK_SECRET ?? readSecret(secretsDir, 'fave-callback-secret'), profiles);
  if ((e.OPENFAAS_USERNAME === undefined) !== (e.OPENFAAS_PASSWORD === undefined)) {
    throw badConfig(e.OPENFAAS_USERNAME === undefined ? 'OPENFAAS_USERNAME' : 'OPENFAAS_PASSWORD', 'must be set together with its pair');
  }
  const gatewayAuth = user && password ? { user, password } : null;
  return {
    gatewayUrl: gateway ? gateway.url.replace(/\/+$/, '') : null,
    gatewayAuth,
    systemAuth: e.OPENFAAS_USERNAME && e.OPENFAAS_PASSWORD ? { user: e.OPENFAAS_USERNAME, password: e.OPENFAAS_PASSWORD } : gatewayAuth,
    prewarm: { strategy: e.PREWARM_STRATEGY, callsPerReplica: e.PREWARM_CALLS_PER_REPLICA, timeoutMs: e.PREWARM_TIMEOUT_MS },
    store:
      storeKind === 'fs'
        ? { kind: 'fs', dataDir: e.FAVE_DATA_DIR, bucket: e.ARTIFACT_BUCKET, lockLeaseMs: e.FS_LOCK_LEASE_MS }
        : {
            kind: 's3',
            bucket: e.ARTIFACT_BUCKET,
            endpoint: e.ARTIFACT_ENDPOINT ?? null,
            region: e.ARTIFACT_REGION,
            accessKeyId: e.ARTIFACT_ACCESS_KEY ?? readSecret(secretsDir, 'artifact-access-key') ?? null,
            secretAccessKey: e.ARTIFACT_SECRET_KEY ?? readSecret(secretsDir, 'artifact-secret-key') ?? null,
          },
    bucket: e.ARTIFACT_BUCKET,
    profileName: e.CONFIG_PROFILE,
    profiles,
    stageNames,
    detectorEnabled: e.ENABLE_OBJECT_DETECTOR,
    processMaxConcurrency: e.PROCESS_MAX_CONCURRENT_INVOCATIONS,
    persistIntervalMs: e.PERSIST_INTERVAL_MS,
    leaseTtlMs: e.LEASE_TTL_MS,
    leaseClockOffsetMs: e.LEASE_CLOCK_OFFSET_MS,
    logLevel: e.LOG_LEVEL,
    allowPrivateSources: e.ALLOW_PRIVATE_SOURCES,
    resumeOnStart: e.RESUME_ON_START,
    callback,
    auth: { tokens, anonymousRole: e.FAVE_ANONYMOUS_ROLE ?? null },
    allowedOrigins: parseOrigins(e.FAVE_ALLOWED_ORIGINS),
    allowedHosts: parseHosts(e.FAVE_ALLOWED_HOSTS),
    inputS3Rules: s3Rules,
    stageResponseMaxBytes: e.STAGE_RESPONSE_MAX_BYTES,
    maxInputBytes: e.MAX_INPUT_BYTES,
    orphanResumeConcurrency: e.ORPHAN_RESUME_CONCURRENCY,
    indexFullScanIntervalMs: e.INDEX_FULL_SCAN_INTERVAL_MS,
    responseFormat: e.RESPONSE_FORMAT,
    uploadMaxBytes: e.FAVE_UPLOAD_MAX_BYTES,
    uploadStoreMaxBytes: e.MAX_UPLOAD_STORE_BYTES,
    uploadTtlMs: e.UPLOAD_TTL_SECONDS === 0 ? null : e.UPLOAD_TTL_SECONDS * 1000,
    staleTempMs: e.STALE_TEMP_AFTER_SECONDS * 1000,
  };
}

/** Where the gateway's queue-worker calls back async stage calls, and the key of their tokens. */
export interface CallbackConfig {
  /** The orchestrator as the queue-worker reaches it, without a trailing slash. */
  baseUrl: string;
  /** HMAC key of the callback tokens. Never logged or stored. */
  secret: string;
}

/** Async calls need somewhere to be called back and a key for their tokens; refused at start without them. */
function callbackConfig(baseUrl: string | undefined, secret: string | undefined, profiles: Record<string, Profile>): CallbackConfig | null {
  const asyncIn = Object.keys(profiles).find((name) => STAGE_KEYS.some((stage) => stageCallMode(profiles[name]!, stage) === 'async'));
  if (asyncIn === undefined) return baseUrl && secret ? { baseUrl: baseUrl.replace(/\/+$/, ''), secret } : null;
  const why = `is required when a stage is called async (STAGE_CALL_MODE or call_mode of profile "${asyncIn}")`;
  if (!baseUrl) throw badConfig('CALLBACK_BASE_URL', why);
  if (!secret) throw badConfig('CALLBACK_SECRET', `${why}; set it or mount the OpenFaaS secret fave-callback-secret`);
  if (secret.length < 16) throw badConfig('CALLBACK_SECRET', 'must be at least 16 characters (the secret file fave-callback-secret too)');
  return { baseUrl: baseUrl.replace(/\/+$/, ''), secret };
}

/** How one stage is called under a profile. */
export function stageCallMode(profile: Profile, stage: StageKey): CallMode {
  const mode = profile.call_mode;
  return typeof mode === 'string' ? mode : (mode[stage] ?? 'sync');
}

/** The timeout of one stage call under a profile, in milliseconds. */
export function stageTimeoutMs(profile: Profile, stage: StageKey): number {
  return (profile.stage_timeouts_s[stage] ?? profile.stage_timeout_s) * 1000;
}

/**
 * What a profile does at run time, in one line (the UI's profile picker; docs/configuration.md
 * says the same at length). `gateway`: stages are called through a gateway (else in-process).
 */
export function describeProfile(profile: Profile, gateway: boolean): string {
  const { min, max } = profile.replicas;
  if (!gateway) {
    return profile.prewarm === 'on'
      ? 'stages in this process; the detector model loads while the clips are processed'
      : 'stages in this process; the detector model loads at the first frame';
  }
  if (profile.prewarm === 'off') return 'no pre-warming: each stage scales from what it has on its first call (cold starts one after another)';
  const floor = min > 0 ? `keeps every stage at ≥ ${min} replica${min === 1 ? '' : 's'}` : 'scales every stage up from zero';
  return `pre-warms: ${floor} before it is needed, fan-outs up to ${max} replicas, given back after`;
}

/** Fixes a request's configuration when it starts, so a resumed request behaves the same. */
export function resolveSettings(config: Config, profileName: string | null, now: number): Settings {
  const name = profileName ?? config.profileName;
  const profile = config.profiles[name];
  if (!profile) {
    throw new FaveFailure(faveError('BAD_REQUEST', `profile: unknown profile "${name}" (known: ${Object.keys(config.profiles).join(', ')})`, { field: 'profile' }));
  }
  return {
    bucket: config.bucket,
    profile: name,
    stage_names: { ...config.stageNames },
    timeouts_ms: Object.fromEntries(STAGE_KEYS.map((k) => [k, stageTimeoutMs(profile, k)])) as Settings['timeouts_ms'],
    retry: { ...profile.retry },
    max_concurrency: profile.max_concurrency,
    tolerated_failure_pct: profile.tolerated_failure_pct,
    detector_enabled: config.detectorEnabled,
    min_confidence: DEFAULT_MIN_CONFIDENCE,
    deadline_at: now + profile.request_deadline_s * 1000,
    call_modes: Object.fromEntries(STAGE_KEYS.map((k) => [k, stageCallMode(profile, k)])) as Settings['call_modes'],
  };
}
