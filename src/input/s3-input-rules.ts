import type { ObjectLocation } from '../persistence/store.ts';

/**
 * Which `s3://` objects may be submitted as a video. The orchestrator reads them with its own
 * credentials, which also reach every request's state and artifacts: without a rule, any object
 * it can read could be copied into a request and read back through its results.
 */
export interface S3InputRule {
  /** A bucket name, or `*`: any bucket other than the artifact bucket. */
  bucket: string;
  /** Key prefix; `''` allows the whole bucket. */
  prefix: string;
}

export interface S3InputPolicy {
  artifactBucket: string;
  rules: S3InputRule[];
}

/** The artifact bucket's `uploads/`, and any other bucket. */
export function defaultS3InputRules(artifactBucket: string): S3InputRule[] {
  return [
    { bucket: artifactBucket, prefix: 'uploads/' },
    { bucket: '*', prefix: '' },
  ];
}

/**
 * `INPUT_S3_ALLOW`: comma-separated `bucket`, `bucket/prefix` or `*` entries. Null with the
 * problem when an entry is not one of those.
 */
export function parseS3InputRules(text: string): S3InputRule[] | string {
  const rules: S3InputRule[] = [];
  for (const [index, raw] of text
    .split(',')
    .map((e) => e.trim())
    .entries()) {
    if (raw === '') continue;
    if (raw === '*') {
      rules.push({ bucket: '*', prefix: '' });
      continue;
    }
    const slash = raw.indexOf('/');
    const bucket = slash < 0 ? raw : raw.slice(0, slash);
    const prefix = slash < 0 ? '' : raw.slice(slash + 1);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) return `entry ${index + 1} does not start with a valid bucket name`;
    if (prefix.split('/').some((part) => part === '.' || part === '..')) return `entry ${index + 1} has a "." or ".." segment`;
    rules.push({ bucket, prefix });
  }
  return rules;
}

/** Why `loc` may not be used as a video, or null. `requests/` of the artifact bucket never may. */
export function s3InputRefusal(loc: ObjectLocation, policy: S3InputPolicy): string | null {
  const own = loc.bucket === policy.artifactBucket;
  if (own && loc.key.startsWith('requests/')) {
    return `s3://${loc.bucket}/requests/… holds the requests' own state and artifacts and cannot be used as a video (upload it under s3://${loc.bucket}/uploads/)`;
  }
  const allowed = policy.rules.some((rule) => (rule.bucket === '*' ? !own : rule.bucket === loc.bucket) && loc.key.startsWith(rule.prefix));
  if (allowed) return null;
  const shown = policy.rules.map((r) => (r.bucket === '*' ? '* (any bucket but the artifact bucket)' : `${r.bucket}/${r.prefix}`)).join(', ');
  return `s3://${loc.bucket}/${loc.key} is outside the buckets and prefixes videos may come from (INPUT_S3_ALLOW: ${shown || 'none'})`;
}
