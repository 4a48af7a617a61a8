import { createHash, timingSafeEqual } from 'node:crypto';
import { FaveFailure, faveError } from '../domain/errors.ts';

/** `read`: status, results, the UI and metrics. `operate`: all of that, and submit, cancel, resume, upload. */
export const ROLES = ['read', 'operate'] as const;
export type Role = (typeof ROLES)[number];

/** An accepted token, kept only as its SHA-256 so it can be compared in constant time. */
export interface ApiToken {
  role: Role;
  digest: Buffer;
}

export interface ApiAuth {
  tokens: ApiToken[];
  /** The role of a caller that sends no token; null refuses such callers. */
  anonymousRole: Role | null;
}

const TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]{16,512}$/;

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Parses `role:token` entries separated by commas or new lines (the same text in
 * `FAVE_API_TOKENS` and in the `fave-api-tokens` secret file). `source` names where the text
 * came from in the error; a token itself is never part of an error.
 */
export function parseApiTokens(text: string, source: string): ApiToken[] {
  const tokens: ApiToken[] = [];
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e !== '');
  entries.forEach((entry, index) => {
    const colon = entry.indexOf(':');
    const role = colon > 0 ? entry.slice(0, colon) : '';
    const token = colon > 0 ? entry.slice(colon + 1) : '';
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new FaveFailure(faveError('BAD_CONFIG', `${source} entry ${index + 1} must be "read:<token>" or "operate:<token>"`));
    }
    if (!TOKEN_PATTERN.test(token)) {
      throw new FaveFailure(faveError('BAD_CONFIG', `${source} entry ${index + 1}: a token must be 16 to 512 characters of A-Z a-z 0-9 . _ ~ + / = -`));
    }
    tokens.push({ role: role as Role, digest: digestOf(token) });
  });
  return tokens;
}

/** The role of `token`, or null. Every configured token is compared, each in constant time. */
export function roleOfToken(auth: ApiAuth, token: string): Role | null {
  const presented = digestOf(token);
  let found: Role | null = null;
  for (const candidate of auth.tokens) {
    if (timingSafeEqual(presented, candidate.digest) && found !== 'operate') found = candidate.role;
  }
  return found;
}

export function describeAuth(auth: ApiAuth): { tokens: { read: number; operate: number }; anonymous_role: Role | null } {
  return {
    tokens: { read: auth.tokens.filter((t) => t.role === 'read').length, operate: auth.tokens.filter((t) => t.role === 'operate').length },
    anonymous_role: auth.anonymousRole,
  };
}
