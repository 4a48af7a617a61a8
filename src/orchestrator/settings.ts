import { stageCallMode, stageTimeoutMs, type Config } from '../config/config.ts';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { STAGE_KEYS } from '../domain/stage.ts';
import { type Settings } from '../domain/settings.ts';

/** Detections below this confidence do not make a clip match a query. */
export const DEFAULT_MIN_CONFIDENCE = 0.5;

/** Fixes a request's configuration when it starts, so a resumed request behaves the same. */
export function resolveSettings(config: Config, profileName: string | null, now: number): Settings {
  const name = profileName ?? config.profileName;
  const profile = config.profiles[name];
  if (!profile) {
    throw new FaveFailure(
      faveError('BAD_REQUEST', `profile: unknown profile "${name}" (known: ${Object.keys(config.profiles).join(', ')})`, { field: 'profile' }),
    );
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
