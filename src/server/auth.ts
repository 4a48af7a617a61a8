import { createHash, timingSafeEqual } from 'node:crypto';
import { FaveFailure, faveError } from '../errors.ts';

/** `read`: status, results, the UI and metrics. `operate`: all of that, and submit, cancel, resume, upload. */
export const ROLES = ['read', 'operate'] as const;
export type Role = (typeof ROLES)[number];

/** Who may call a route: anyone (`public`, e.g. `/healthz` or a route with its own check), or a role. */
export type Access = 'public' | Role;

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

/** The UI's sign-in cookie: the token itself, HttpOnly and SameSite=Strict. */
export const SESSION_COOKIE = 'fave_token';

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

export function allows(role: Role | null, access: Access): boolean {
  if (access === 'public') return true;
  if (role === null) return false;
  return role === 'operate' || access === 'read';
}

export type Caller = { ok: true; role: Role | null } | { ok: false; message: string };

/**
 * Who is calling: a bearer token in `Authorization`, else the UI's sign-in cookie, else the
 * anonymous role. A token that is presented and wrong is refused even when anonymous access is on.
 */
export function identify(auth: ApiAuth, headers: Record<string, string>): Caller {
  const header = headers.authorization?.trim();
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return { ok: false, message: 'Authorization: expected "Bearer <token>"' };
    const role = roleOfToken(auth, match[1]!);
    return role ? { ok: true, role } : { ok: false, message: 'Authorization: the token is not valid' };
  }
  const cookie = cookieValue(headers.cookie, SESSION_COOKIE);
  if (cookie) {
    const role = roleOfToken(auth, cookie);
    return role ? { ok: true, role } : { ok: false, message: 'the sign-in cookie holds a token that is not valid; sign in again' };
  }
  return { ok: true, role: auth.anonymousRole };
}

export function cookieValue(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value) || null;
      } catch {
        return null;
      }
    }
  }
  return null;
}

/**
 * Whether a state-changing request comes from this service's own pages or from a program (no
 * `Origin`). A browser sends `Origin` with every POST, `no-cors` ones included, so a page on
 * another origin is recognised here even when it cannot read the answer.
 */
export function foreignOrigin(headers: Record<string, string>, allowed: readonly string[] = []): string | null {
  const origin = headers.origin;
  if (origin !== undefined && allowed.includes(origin.toLowerCase())) return null;
  if (headers['sec-fetch-site'] === 'cross-site') return origin ?? 'a cross-site page';
  if (origin === undefined) return null;
  if (origin === 'null') return 'null';
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return origin;
  }
  const own = [headers['x-forwarded-host'], headers.host].filter((h): h is string => h !== undefined).map((h) => h.split(',')[0]!.trim().toLowerCase());
  return own.includes(host.toLowerCase()) ? null : origin;
}

/** The media type of a Content-Type header, without parameters, lower-cased. */
export function mediaType(headers: Record<string, string>): string | null {
  const value = headers['content-type'];
  if (!value) return null;
  return value.split(';')[0]!.trim().toLowerCase() || null;
}

/** A `Set-Cookie` value for the UI's sign-in (empty token: sign out). */
export function sessionCookie(token: string, secure: boolean): string {
  const parts = [`${SESSION_COOKIE}=${encodeURIComponent(token)}`, 'Path=/', 'HttpOnly', 'SameSite=Strict'];
  if (token === '') parts.push('Max-Age=0');
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

export function describeAuth(auth: ApiAuth): { tokens: { read: number; operate: number }; anonymous_role: Role | null } {
  return {
    tokens: { read: auth.tokens.filter((t) => t.role === 'read').length, operate: auth.tokens.filter((t) => t.role === 'operate').length },
    anonymous_role: auth.anonymousRole,
  };
}
