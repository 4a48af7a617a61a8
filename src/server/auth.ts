import { roleOfToken, type ApiAuth, type Role } from '../config/api-tokens.ts';

/** Who may call a route: anyone (`public`, e.g. `/healthz` or a route with its own check), or a role. */
export type Access = 'public' | Role;

/** The UI's sign-in cookie: the token itself, HttpOnly and SameSite=Strict. */
export const SESSION_COOKIE = 'fave_token';

export function allows(role: Role | null, access: Access): boolean {
  if (access === 'public') return true;
  if (role === null) return false;
  return role === 'operate' || access === 'read';
}

/** `anonymous`: no credentials were presented, the role (if any) is the anonymous one. */
export type Caller = { ok: true; role: Role | null; anonymous: boolean } | { ok: false; message: string };

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
    return role ? { ok: true, role, anonymous: false } : { ok: false, message: 'Authorization: the token is not valid' };
  }
  const cookie = cookieValue(headers.cookie, SESSION_COOKIE);
  if (cookie) {
    const role = roleOfToken(auth, cookie);
    return role ? { ok: true, role, anonymous: false } : { ok: false, message: 'the sign-in cookie holds a token that is not valid; sign in again' };
  }
  return { ok: true, role: auth.anonymousRole, anonymous: true };
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

/** The Host names a loopback-only server answers to; any port but the server's is refused too. */
export const LOOPBACK_HOST_NAMES = ['127.0.0.1', 'localhost', '[::1]'] as const;

/**
 * Which `Host` headers an anonymous caller may use. After a DNS rebind a page on another site
 * reaches a loopback server under its own name (`Host: evil.example:8080`), and the browser
 * then counts it as same-origin: only the names of this service let anonymous callers in.
 */
export interface HostPolicy {
  /** The port the server listens on; null when it is not known here (behind of-watchdog): any port. */
  port: number | null;
  /** `FAVE_ALLOWED_HOSTS`: `name` (any port) or `name:port`, lower case. */
  extra: readonly string[];
}

const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/i;

/** Null when `host` (the Host header) names this service under `policy`; else why not. */
export function foreignHost(host: string | undefined, policy: HostPolicy): string | null {
  if (host === undefined || host.trim() === '') return 'the request has no Host header';
  const match = HOST_HEADER.exec(host.trim());
  if (!match) return `Host: "${host.slice(0, 100)}" is not a host name`;
  const name = match[1]!.toLowerCase();
  const port = match[2] === undefined ? 80 : Number(match[2]);
  if ((LOOPBACK_HOST_NAMES as readonly string[]).includes(name) && (policy.port === null || port === policy.port)) return null;
  if (policy.extra.includes(name) || policy.extra.includes(`${name}:${port}`)) return null;
  const expected = LOOPBACK_HOST_NAMES.map((n) => (policy.port === null ? n : `${n}:${policy.port}`)).join(', ');
  return `Host: ${host.slice(0, 100)} is not a name of this service: callers without a token must use ${expected}${policy.extra.length > 0 ? ` or ${policy.extra.join(', ')}` : ''} (FAVE_ALLOWED_HOSTS lists more)`;
}
